package jit_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"os"

	_ "github.com/mattn/go-sqlite3"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// This is the whole integration: a SQLite store, one IdP connection with
// the Entra ID mapping, the SAML endpoints under /saml/, and a page that
// only signed-in, active users reach.
func ExampleNew() {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", sqlitestore.DSN("users.db"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	var (
		key            *rsa.PrivateKey   // the SP's key pair, loaded from your secrets
		cert           *x509.Certificate //
		sessionKey     = make([]byte, 32)
		idpMetadata, _ = os.ReadFile("entra-metadata.xml")
	)
	_, _ = rand.Read(sessionKey) // in production: a stable secret shared by every instance

	mw, err := jit.New(ctx, jit.Options{
		RootURL:     "https://app.example.com",
		Key:         key,
		Certificate: cert,
		Store:       store,
		SessionKeys: [][]byte{sessionKey},
		Connections: []jit.Connection{{IDPMetadata: idpMetadata, Mapper: claims.Entra()}},
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/saml/", mw)
	http.Handle("/", mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := jit.UserFromContext(r.Context())
		fmt.Fprintf(w, "Hello, %s", u.Profile.DisplayName)
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}

// Handlers behind RequireUser find the signed-in user in the request's
// context.
func ExampleUserFromContext() {
	ctx := jit.ContextWithUser(context.Background(), userstore.User{
		ID:      "u1",
		Profile: userstore.Profile{DisplayName: "Ada Lovelace", Groups: []string{"engineering"}},
	})
	if u, ok := jit.UserFromContext(ctx); ok {
		fmt.Println(u.Profile.DisplayName, u.Profile.Groups)
	}
	// Output: Ada Lovelace [engineering]
}

// Diff names the fields a sign-in changed, as reported in update events.
func ExampleDiff() {
	before := userstore.Profile{Email: "ada@old.example", Groups: []string{"eng"}}
	after := userstore.Profile{Email: "ada@new.example", Groups: []string{"eng"}, Attributes: map[string][]string{"dept": {"R&D"}}}
	fmt.Println(jit.Diff(before, after))
	// Output: [email attributes/dept]
}
