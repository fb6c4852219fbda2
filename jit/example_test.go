package jit_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

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
	// The keys samljit keygen wrote (go run ./cmd/samljit keygen -dir keys).
	keys, err := jit.LoadKeys("keys")
	if err != nil {
		log.Fatal(err)
	}
	idpMetadata, err := os.ReadFile("entra-metadata.xml")
	if err != nil {
		log.Fatal(err)
	}

	mw, err := jit.New(ctx, jit.Options{
		RootURL:     "https://app.example.com",
		Key:         keys.Key,
		Certificate: keys.Certificate,
		Store:       store,
		SessionKeys: keys.SessionKeys,
		Connections: []jit.Connection{{IDPMetadata: idpMetadata, Mapper: claims.Entra()}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close()
	http.Handle(mw.Prefix()+"/", mw)
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

// A connection's Policy decides what its sign-ins may create and change:
// here roles follow Entra group object IDs at every sign-in, an overage of
// groups is resolved through Microsoft Graph, and accounts that existed
// before JIT are linked only for the tenant's verified domain.
func ExamplePolicy() {
	var graph jit.GroupResolverFunc = func(ctx context.Context, q jit.GroupsQuery) ([]string, error) {
		// Call Microsoft Graph's getMemberObjects for the user in
		// q.Identity (tenantid and objectidentifier claims).
		return nil, fmt.Errorf("not implemented in this example")
	}
	conn := jit.Connection{
		Name:           "contoso",
		IDPMetadataURL: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/federationmetadata/2007-06/federationmetadata.xml",
		Mapper:         claims.Entra(),
		Policy: jit.Policy{
			Roles: jit.RoleMapping{
				GroupRoles:     map[string][]string{"5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69": {"editor"}},
				AdminGroups:    []string{"0c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"},
				RequiredGroups: []string{"5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69", "0c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"},
				DefaultRoles:   []string{"viewer"},
			},
			GroupResolver: graph,
			Sync:          map[string]jit.SyncRule{"display_name": jit.SyncIfEmpty},
			Brownfield:    jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"contoso.com"}},
			BeforeCreate: func(ctx context.Context, u jit.NewUser) error {
				if u.Profile.Email == "" {
					return jit.Veto("Your account has no email address; ask IT to add one.")
				}
				return nil
			},
		},
	}
	_ = conn // passed in jit.Options.Connections
}

// Explain judges a captured response as a connection would, writing
// nothing. Now judges the captured response at its issue time, crewjam's
// checks included.
func ExampleExplain() {
	read := func(name string) []byte {
		b, err := os.ReadFile("../testdata/explain/" + name)
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	at := time.Date(2026, time.March, 2, 9, 30, 30, 0, time.UTC)
	t, err := jit.Explain(context.Background(), jit.ExplainRequest{
		Response:    read("response.b64"),
		IDPMetadata: read("idp-metadata.xml"),
		SPEntityID:  "https://app.example.com/saml/metadata",
		ACSURL:      "https://app.example.com/saml/acs",
		Mapper:      claims.Entra(),
		Now:         at,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range t.Steps {
		fmt.Println(s.Name, s.OK)
	}
	fmt.Println(t.Decision.Action, t.Key.Subject)
	// Output:
	// metadata true
	// decode true
	// parse true
	// structure true
	// protocol true
	// assertion true
	// mapping true
	// session true
	// create 72f988bf-86f1-41af-91ab-2d7cd011db47/00000000-0000-0000-0000-0000000000a1
}

// GenerateKeys and Keys.Write are what samljit keygen runs; LoadKeys reads
// the directory back, refusing private files that other users can read.
func ExampleGenerateKeys() {
	dir, err := os.MkdirTemp("", "keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keys, err := jit.GenerateKeys("app.example.com")
	if err != nil {
		log.Fatal(err)
	}
	if err := keys.Write(dir + "/keys"); err != nil {
		log.Fatal(err)
	}
	loaded, err := jit.LoadKeys(dir + "/keys")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loaded.Certificate.Subject.CommonName, loaded.Key.N.BitLen(), len(loaded.SessionKeys))
	// Output: app.example.com 3072 2
}
