package jittest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

// newApp is the application under test: the jit middleware with one
// connection to the IdP, and a page only signed-in users reach. jit
// derives its ACS URL and cookies from RootURL, which must therefore be
// known before the server starts: httptest.NewUnstartedServer has already
// chosen the port, so the handler is built in between.
func newApp(idpMetadata []byte) (*httptest.Server, *jit.Middleware, error) {
	app := httptest.NewUnstartedServer(nil)
	key, cert, err := jittest.GenerateKeyPair() // the SP's key pair
	if err != nil {
		return nil, nil, err
	}
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL:     "http://" + app.Listener.Addr().String(),
		Key:         key,
		Certificate: cert,
		Store:       memstore.New(),
		SessionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		Connections: []jit.Connection{{IDPMetadata: idpMetadata}},
	})
	if err != nil {
		app.Listener.Close()
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(mw.Prefix()+"/", mw)
	mux.Handle("/", mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := jit.UserFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", u.Profile.Email)
	})))
	app.Config.Handler = mux
	app.Start()
	return app, mw, nil
}

// In a test, New starts the IdP and stops it when the test ends; SignIn
// walks a cookie-keeping client from the application's login URL through
// the IdP, posts the signed response to the application's ACS, and (the
// client following redirects) lands on the page after sign-in.
func ExampleNew() {
	testSignIn := func(t *testing.T) {
		idp := jittest.New(t)
		idp.AddUser(jittest.User{
			NameID: "alice", // persistent, the default format
			Attributes: map[string][]string{
				claims.OIDMail: {"alice@example.com"},
			},
		})
		app, mw, err := newApp(idp.Metadata())
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		defer mw.Close()

		jar, _ := cookiejar.New(nil)
		resp, err := idp.SignIn(t.Context(), &http.Client{Jar: jar}, app.URL+"/saml/login", "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "hello alice@example.com" {
			t.Fatalf("after sign-in: %s %q", resp.Status, body)
		}
	}
	_ = testSignIn
}

// Outside tests, such as in a development-only build of an application,
// NewServer runs the same IdP; Close stops it. Here it signs a person in
// to a jit application, which creates their record.
func ExampleNewServer() {
	idp, err := jittest.NewServer(jittest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	idp.AddUser(jittest.User{NameID: "alice", Attributes: map[string][]string{claims.OIDMail: {"alice@example.com"}}})

	app, mw, err := newApp(idp.Metadata())
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	defer mw.Close()

	jar, _ := cookiejar.New(nil)
	resp, err := idp.SignIn(context.Background(), &http.Client{Jar: jar}, app.URL+"/saml/login", "alice")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// 200 OK
	// hello alice@example.com
}
