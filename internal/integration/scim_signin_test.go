package integration_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

const (
	tenant    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	adaOID    = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
	bobOID    = "6c1e1c52-7a10-4c5e-9f57-2d4a8b0e1f11"
	adminsOID = "0c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
	token     = "scim-token-for-contoso-0123456789abcdef"
)

// app is an application with SAML sign-in (jit, Entra ID preset) and a
// SCIM endpoint for the same connection, on one SQLite file.
type app struct {
	t     *testing.T
	srv   *httptest.Server
	idp   *jittest.IdP
	store *sqlitestore.Store

	mu     sync.Mutex
	events []scim.Event
}

// takeEvents returns the SCIM events so far.
func (a *app) takeEvents() []scim.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// newApp starts the application; sync, when given, is the connection's
// Policy.Sync.
func newApp(t *testing.T, sync ...map[string]jit.SyncRule) *app {
	t.Helper()
	a := &app{t: t, idp: jittest.New(t)}
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "users.db")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	a.store, err = sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
	require.NoError(t, err)

	mux := http.NewServeMux()
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	key, cert := keyPair(t)
	roles := jit.RoleMapping{AdminGroups: []string{adminsOID}, DefaultRoles: []string{"member"}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := jit.Policy{Roles: roles}
	if len(sync) > 0 {
		policy.Sync = sync[0]
	}
	mw, err := jit.New(t.Context(), jit.Options{
		RootURL: a.srv.URL, Key: key, Certificate: cert, Store: a.store,
		SessionKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Logger: quiet,
		Connections: []jit.Connection{{IDPMetadata: a.idp.Metadata(), Mapper: claims.Entra(), Policy: policy}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	h, err := scim.New(scim.Options{
		Store: a.store, Issuer: a.idp.EntityID(), Connection: "contoso", Subject: scim.EntraObjectID(tenant),
		Tokens: scim.NewTokens(scim.HashToken(token)), Roles: roles.Derive, Logger: quiet,
		OnEvent: func(_ context.Context, e scim.Event) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.events = append(a.events, e)
		},
	})
	require.NoError(t, err)
	mux.Handle(mw.Prefix()+"/", mw)
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	mux.Handle("/me", mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := jit.UserFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"id": u.ID, "roles": u.Roles()})
	})))
	return a
}

// keyPair returns a new SP key pair.
func keyPair(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert
}

// scimDo sends a SCIM request and returns the status and JSON body.
func (a *app) scimDo(method, path, body string) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.srv.URL+"/scim/v2"+path, rd)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		require.NoError(a.t, json.Unmarshal(raw, &m), string(raw))
	}
	return resp.StatusCode, m
}

// addPerson adds an Entra user to the IdP.
func (a *app) addPerson(upn, oid string) {
	a.idp.AddUser(jittest.User{NameID: upn, Attributes: map[string][]string{
		claims.ClaimEntraTenantID: {tenant},
		claims.ClaimEntraObjectID: {oid},
		claims.ClaimEmailAddress:  {upn},
		claims.ClaimDisplayName:   {"Person " + upn},
	}})
}

// browser returns a client with its own cookies that does not follow
// redirects away from the app.
func (a *app) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(a.t, err)
	return &http.Client{Jar: jar}
}

// signIn signs upn in with c.
func (a *app) signIn(c *http.Client, upn string) {
	a.t.Helper()
	resp, err := a.idp.SignIn(a.t.Context(), c, a.srv.URL+"/saml/login", upn)
	require.NoError(a.t, err)
	_ = resp.Body.Close()
}

// me requests /me with c without following redirects, and returns the
// status and the user's id and roles.
func (a *app) me(c *http.Client) (int, string, []any) {
	a.t.Helper()
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nc.Get(a.srv.URL + "/me")
	require.NoError(a.t, err)
	defer resp.Body.Close()
	var m map[string]any
	if resp.StatusCode == http.StatusOK {
		require.NoError(a.t, json.NewDecoder(resp.Body).Decode(&m))
		roles, _ := m["roles"].([]any)
		return resp.StatusCode, m["id"].(string), roles
	}
	return resp.StatusCode, "", nil
}

// TestSCIMAndSignInShareOneRecord: SCIM creates a person, their SAML
// sign-in finds the same record; a SCIM group change takes their admin
// role away before their next sign-in; SCIM disables them and their open
// session is refused at the next request; SCIM re-enables them and they
// sign in again.
func TestSCIMAndSignInShareOneRecord(t *testing.T) {
	a := newApp(t)
	status, created := a.scimDo("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"externalId":"`+adaOID+`","userName":"ada@contoso.com","active":true,
		"emails":[{"value":"ada@contoso.com","type":"work","primary":true}]}`)
	require.Equal(t, 201, status, created)
	id := created["id"].(string)

	a.addPerson("ada@contoso.com", adaOID)
	ada := a.browser()
	a.signIn(ada, "ada@contoso.com")
	status, got, roles := a.me(ada)
	require.Equal(t, 200, status)
	require.Equal(t, id, got, "the sign-in found the record SCIM created")
	require.Equal(t, []any{"member"}, roles)
	users, err := a.store.List(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 1)

	// Groups: the same role mapping as sign-in, at once.
	status, group := a.scimDo("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
		"externalId":"`+adminsOID+`","displayName":"Admins","members":[{"value":"`+id+`"}]}`)
	require.Equal(t, 201, status, group)
	_, _, roles = a.me(ada)
	require.Equal(t, []any{"admin", "member"}, roles)
	status, _ = a.scimDo("PATCH", "/Groups/"+group["id"].(string), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Remove","path":"members","value":[{"value":"`+id+`"}]}]}`)
	require.Equal(t, 204, status, "a group PATCH answers 204 No Content, as Entra's tutorial shows")
	_, _, roles = a.me(ada)
	require.Equal(t, []any{"member"}, roles, "a removal from the admin group takes effect before the next sign-in")

	// Disable: the open session is refused at the next request, and a
	// new sign-in too.
	status, _ = a.scimDo("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	require.Equal(t, 200, status)
	status, _, _ = a.me(ada)
	require.NotEqual(t, 200, status, "a disabled person's session is refused")
	again := a.browser()
	a.signIn(again, "ada@contoso.com")
	status, _, _ = a.me(again)
	require.NotEqual(t, 200, status, "a disabled person cannot sign in")
	require.Equal(t, userstore.Suspended, lookup(t, a, adaOID).Status)

	// Re-enable: the ended session stays ended; a new sign-in works.
	status, _ = a.scimDo("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","path":"active","value":"True"}]}`)
	require.Equal(t, 200, status)
	status, _, _ = a.me(ada)
	require.NotEqual(t, 200, status, "re-enabling revives no session")
	a.signIn(ada, "ada@contoso.com")
	status, got, _ = a.me(ada)
	require.Equal(t, 200, status)
	require.Equal(t, id, got)

	var kinds []scim.EventKind
	for _, e := range a.takeEvents() {
		require.Equal(t, scim.SourceSCIM, e.Source)
		kinds = append(kinds, e.Kind)
	}
	require.Subset(t, kinds, []scim.EventKind{scim.EventUserCreated, scim.EventGroupCreated, scim.EventUserUpdated, scim.EventUserSuspended, scim.EventUserReactivated})
}

// TestSignedInUserIsAdoptedBySCIM: a person a sign-in created is found by
// the IdP's matching query and adopted by its POST, never duplicated.
func TestSignedInUserIsAdoptedBySCIM(t *testing.T) {
	a := newApp(t)
	a.addPerson("bob@contoso.com", bobOID)
	bob := a.browser()
	a.signIn(bob, "bob@contoso.com")
	status, jitID, _ := a.me(bob)
	require.Equal(t, 200, status)

	status, list := a.scimDo("GET", "/Users?filter="+url.QueryEscape(`externalId eq "`+bobOID+`"`), "")
	require.Equal(t, 200, status)
	require.Equal(t, 1.0, list["totalResults"])
	require.Equal(t, jitID, list["Resources"].([]any)[0].(map[string]any)["id"])

	status, created := a.scimDo("POST", "/Users", `{"externalId":"`+bobOID+`","userName":"bob@contoso.com","displayName":"Bob"}`)
	require.Equal(t, 201, status, created)
	require.Equal(t, jitID, created["id"], "adopted, not duplicated")
	users, err := a.store.List(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 1)
	require.Equal(t, scim.EventUserAdopted, a.takeEvents()[0].Kind)
	status, got, _ := a.me(bob)
	require.Equal(t, 200, status, "adoption does not end the session")
	require.Equal(t, jitID, got)
}

// lookup returns the stored user with the Entra object ID.
func lookup(t *testing.T, a *app, oid string) userstore.User {
	t.Helper()
	u, err := a.store.Lookup(t.Context(), userstore.Key{Issuer: a.idp.EntityID(), Subject: tenant + "/" + oid})
	require.NoError(t, err)
	return u
}

// TestSCIMAttributesAndSignIn: with the default Sync a sign-in keeps
// SCIM's enterprise attributes (they are the directory's, outside the
// sync rules) but rewrites the groups from its claims, dropping SCIM's;
// with the Sync the README gives for a connection SCIM provisions, SCIM's
// groups survive the sign-in too and its roles stay.
func TestSCIMAttributesAndSignIn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sync  map[string]jit.SyncRule
		keeps bool
	}{
		{"default sync", nil, false},
		{"scim sync", map[string]jit.SyncRule{"groups": jit.SyncNever}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(t, tc.sync)
			status, created := a.scimDo("POST", "/Users", `{"externalId":"`+adaOID+`","userName":"ada@contoso.com",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Engines"}}`)
			require.Equal(t, 201, status, created)
			id := created["id"].(string)
			status, _ = a.scimDo("POST", "/Groups", `{"externalId":"`+adminsOID+`","displayName":"Admins","members":[{"value":"`+id+`"}]}`)
			require.Equal(t, 201, status)

			a.addPerson("ada@contoso.com", adaOID)
			ada := a.browser()
			a.signIn(ada, "ada@contoso.com")
			status, _, roles := a.me(ada)
			require.Equal(t, 200, status)
			u := lookup(t, a, adaOID)
			dept := u.Profile.Attributes["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"]
			require.Equal(t, []string{"Engines"}, dept, "a sign-in keeps the directory's attributes under any sync")
			if tc.keeps {
				require.Equal(t, []string{adminsOID}, u.Profile.Groups)
				require.Equal(t, []any{"admin", "member"}, roles)
			} else {
				require.Empty(t, u.Profile.Groups, "no groups claim: the default sync empties the groups")
				require.Equal(t, []any{"member"}, roles)
			}
		})
	}
}
