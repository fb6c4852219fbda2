package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The application chooses the driver and owns the *sql.DB.
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(dir, "users.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		log.Fatal(err)
	}

	key := userstore.Key{
		Issuer:  "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
		Subject: "6f1e5f0e-0000-0000-0000-00000000ada1",
	}
	profile := userstore.Profile{
		Email:       "ada@example.com",
		DisplayName: "Ada Lovelace",
		Groups:      []string{"engineers"},
	}

	// The first sign-in creates the user; the next one updates it.
	signIn := time.Date(2025, time.March, 14, 9, 30, 0, 0, time.UTC)
	first, err := store.Provision(ctx, key, profile, signIn)
	if err != nil {
		log.Fatal(err)
	}
	profile.DisplayName = "Ada King"
	second, err := store.Provision(ctx, key, profile, signIn.Add(24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first sign-in created:", first.Created())
	fmt.Println("second sign-in created:", second.Created(), "was:", second.Before.Profile.DisplayName)

	user, err := store.Lookup(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(user.Profile.DisplayName, user.Status, user.Profile.Groups)
	fmt.Println("created", user.CreatedAt.Format(time.DateTime), "last sign-in", user.LastSignInAt.Format(time.DateTime))
	// Output:
	// first sign-in created: true
	// second sign-in created: false was: Ada Lovelace
	// Ada King active [engineers]
	// created 2025-03-14 09:30:00 last sign-in 2025-03-15 09:30:00
}

// The store keeps connections as data beside the users: give it to
// jit.Options as ConnectionStore too, and a connection put here, by any
// process sharing the file, is served within the poll interval.
func ExampleStore_PutConnection() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(dir, "app.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)
	_, err = store.PutConnection(ctx, userstore.Connection{
		Name: "contoso", IDPMetadataURL: "https://login.microsoftonline.com/contoso.example/federationmetadata/2007-06/federationmetadata.xml",
		Preset: "entra", Enabled: true,
		Domains: []userstore.Domain{{Name: "contoso.example", Verified: true}},
	}, now)
	if err != nil {
		log.Fatal(err)
	}
	// A domain belongs to one connection.
	_, err = store.PutConnection(ctx, userstore.Connection{
		Name: "impostor", IDPMetadataURL: "https://idp.impostor.example/metadata",
		Domains: []userstore.Domain{{Name: "contoso.example"}},
	}, now)
	fmt.Println("impostor refused:", errors.Is(err, userstore.ErrDomainTaken))

	if err := store.SetConnectionEnabled(ctx, "contoso", false, now); err != nil {
		log.Fatal(err)
	}
	list, version, err := store.ListConnections(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range list {
		fmt.Println(c.Name, c.Preset, c.VerifiedDomains(), "enabled:", c.Enabled, "revision:", c.Revision)
	}
	fmt.Println("version:", version)
	// Output:
	// impostor refused: true
	// contoso entra [contoso.example] enabled: false revision: 2
	// version: 2
}
