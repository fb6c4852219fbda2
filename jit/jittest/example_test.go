package jittest_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/crewjam/saml"

	"github.com/samljit/samljit/jit/jittest"
)

// The application under test: a minimal crewjam service provider that
// trusts the IdP's metadata. /login redirects to the IdP, /acs consumes the
// response and redirects to /home, which greets the user.
func exampleApp(idpMetadata []byte) *httptest.Server {
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(idpMetadata, &md); err != nil {
		log.Fatal(err)
	}
	sp := &saml.ServiceProvider{EntityID: "https://app.example/saml", IDPMetadata: &md}
	mux := http.NewServeMux()
	app := httptest.NewServer(mux)
	acs, _ := url.Parse(app.URL + "/acs")
	sp.AcsURL = *acs

	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		u, err := req.Redirect("/home", sp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "request", Value: req.ID, Path: "/"})
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /acs", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("request")
		if err != nil || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a, err := sp.ParseResponse(r, []string{c.Value})
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "user", Value: a.Subject.NameID.Value, Path: "/"})
		http.Redirect(w, r, r.PostForm.Get("RelayState"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("user"); err == nil {
			_, _ = fmt.Fprintf(w, "hello %s", c.Value)
		}
	})
	return app
}

// In a test, New starts the IdP and stops it when the test ends; SignIn
// walks a cookie-keeping client from the application's login URL through
// the IdP and posts the signed response to the application's ACS.
func ExampleNew() {
	testSignIn := func(t *testing.T) {
		idp := jittest.New(t)
		idp.AddUser(jittest.User{
			NameID: "alice",
			Attributes: map[string][]string{
				"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": {"alice@example.com"},
			},
		})
		app := exampleApp(idp.Metadata())
		defer app.Close()

		jar, _ := cookiejar.New(nil)
		resp, err := idp.SignIn(t.Context(), &http.Client{Jar: jar}, app.URL+"/login", "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %s", resp.Status)
		}
	}
	_ = testSignIn
}

// Outside tests, such as in a development-only build of an application,
// NewServer runs the same IdP; Close stops it.
func ExampleNewServer() {
	idp, err := jittest.NewServer(jittest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	idp.AddUser(jittest.User{NameID: "alice"})

	app := exampleApp(idp.Metadata())
	defer app.Close()

	jar, _ := cookiejar.New(nil)
	resp, err := idp.SignIn(context.Background(), &http.Client{Jar: jar}, app.URL+"/login", "alice")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// 200 OK
	// hello alice
}
