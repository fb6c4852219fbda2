package jittest_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/jit/jittest"
)

// An IdP-initiated Single Logout: the IdP knows the service provider by
// its metadata, sends it a signed LogoutRequest through the browser, and
// checks the signed LogoutResponse that comes back.
func ExampleIdP_LogoutRequestFor() {
	idp, err := jittest.NewServer(jittest.Options{SingleLogout: true})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	// The application: a crewjam service provider whose SLO endpoint ends
	// the session the request names and answers the IdP.
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(idp.Metadata(), &md); err != nil {
		log.Fatal(err)
	}
	key, cert, err := jittest.GenerateKeyPair()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	defer app.Close()
	base, _ := url.Parse(app.URL)
	sp := &saml.ServiceProvider{Key: key, Certificate: cert, IDPMetadata: &md,
		MetadataURL: *base.JoinPath("metadata"), AcsURL: *base.JoinPath("acs"), SloURL: *base.JoinPath("slo"),
		LogoutBindings: []string{saml.HTTPRedirectBinding}, LogoutSignatureMethod: dsig.RSASHA256SignatureMethod}
	mux.HandleFunc("GET /slo", func(w http.ResponseWriter, r *http.Request) {
		req, err := sp.ValidateLogoutRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Println("the app ends the sessions of", req.NameID.Value)
		u, err := sp.MakeRedirectLogoutResponse(req.ID, r.URL.Query().Get("RelayState"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	spMetadata, err := xml.Marshal(sp.Metadata())
	if err != nil {
		log.Fatal(err)
	}
	if err := idp.AddServiceProvider(spMetadata); err != nil {
		log.Fatal(err)
	}

	msg, err := idp.LogoutRequestFor(jittest.LogoutRequest{SPEntityID: sp.MetadataURL.String(), NameID: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := msg.Send(context.Background(), nil) // follows the redirect back to the IdP
	if err != nil {
		log.Fatal(err)
	}
	_ = resp.Body.Close()
	result, ok := idp.LogoutResult(msg.ID)
	fmt.Println(ok, result.Status)
	// Output:
	// the app ends the sessions of alice
	// true urn:oasis:names:tc:SAML:2.0:status:Success
}
