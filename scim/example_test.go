package scim_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// A SCIM endpoint for an Entra ID connection: the IdP creates a person,
// then disables them, which suspends their record (the one their SAML
// sign-ins use).
func ExampleNew() {
	store := memstore.New() // sqlitestore or pgstore in an application
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	issuer := "https://sts.windows.net/" + tenant + "/"
	token, hash, err := scim.NewToken() // give token to the IdP; keep hash
	if err != nil {
		log.Fatal(err)
	}
	h, err := scim.New(scim.Options{
		Store:   store,
		Issuer:  issuer,                                 // the connection's IdP entity ID
		Subject: scim.EntraObjectID(tenant),             // externalId is the user's object ID
		Tokens:  scim.NewTokens(hash),                   // rotate with Tokens.Set(old, new)
		Roles:   func([]string) []string { return nil }, // jit.RoleMapping.Derive of the connection
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))

	send := func(method, path, body string) int {
		req := httptest.NewRequest(method, "/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	fmt.Println(send("POST", "/Users", `{"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"ada@contoso.com"}`))
	u, err := store.Lookup(context.Background(), userstore.Key{Issuer: issuer, Subject: tenant + "/0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(send("PATCH", "/Users/"+u.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","path":"active","value":"False"}]}`))
	u, _ = store.Lookup(context.Background(), u.Key)
	fmt.Println(u.Status)
	// Output:
	// 201
	// 200
	// suspended
}
