package pgstore_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"log"
	"net/http"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore/pgstore"
)

// Every instance of the application runs the same code against the same
// database: the store makes provisioning and replay protection hold across
// instances, and the shared session keys let any instance serve a session
// another one started.
func Example() {
	ctx := context.Background()
	// The application picks the driver; pgstore uses only database/sql.
	// search_path keeps the store's tables in a schema of their own
	// (create it first: CREATE SCHEMA samljit).
	db, err := sql.Open("pgx", "postgres://app@db.internal:5432/app?sslmode=verify-full&search_path=samljit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)

	// Open creates or migrates the schema; instances starting together
	// wait for one another.
	store, err := pgstore.Open(ctx, db, pgstore.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// Every instance must use the same session keys (and SP key pair and
	// RootURL). Keys come in pairs: an authentication key, then an
	// encryption key or nil. To rotate, put the new pair first and keep
	// the old pair until the sessions it sealed have expired.
	newKey, _ := base64.StdEncoding.DecodeString(os.Getenv("SESSION_KEY"))
	oldKey, _ := base64.StdEncoding.DecodeString(os.Getenv("SESSION_KEY_PREVIOUS"))
	sessionKeys := [][]byte{newKey, nil}
	if len(oldKey) > 0 {
		sessionKeys = append(sessionKeys, oldKey, nil)
	}

	var (
		key            *rsa.PrivateKey   // the SP's key pair, loaded from your secrets
		cert           *x509.Certificate //
		idpMetadata, _ = os.ReadFile("entra-metadata.xml")
	)
	mw, err := jit.New(ctx, jit.Options{
		RootURL:     "https://app.example.com", // the load balancer's URL, the same on every instance
		Key:         key,
		Certificate: cert,
		Store:       store, // also the replay cache
		SessionKeys: sessionKeys,
		Connections: []jit.Connection{{IDPMetadata: idpMetadata, Mapper: claims.Entra()}},
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/saml/", mw)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
