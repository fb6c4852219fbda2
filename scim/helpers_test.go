package scim_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// The connections of the tests: an Entra ID tenant and a generic IdP.
const (
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraIssuer = "https://sts.windows.net/" + entraTenant + "/"
	oktaIssuer  = "http://www.okta.com/exk1fcia6d6EMsf331d8"
)

// testRoles is the connection's role mapping: admins-oid grants admin.
func testRoles(groups []string) []string {
	roles := []string{"member"}
	for _, g := range groups {
		if g == "admins-oid" {
			roles = append(roles, "admin")
		}
	}
	return roles
}

// server is a SCIM endpoint of one or more connections on a real HTTP
// server, over one store.
type server struct {
	t     *testing.T
	srv   *httptest.Server
	store scim.Store

	mu     sync.Mutex
	events []scim.Event
}

// connection is one connection a server serves, at /scim/NAME/v2.
type connection struct {
	name    string
	issuer  string
	subject scim.SubjectMapping
	token   string
}

// sqliteStore opens a store on a new SQLite file.
func sqliteStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "users.db")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
	require.NoError(t, err)
	return s
}

// stores are the stores each test runs on.
var stores = []struct {
	name string
	open func(t *testing.T) scim.Store
}{
	{"memstore", func(*testing.T) scim.Store { return memstore.New() }},
	{"sqlite", func(t *testing.T) scim.Store { return sqliteStore(t) }},
	{"postgres", pgStore},
}

// newServer serves conns over store.
func newServer(t *testing.T, store scim.Store, conns ...connection) *server {
	t.Helper()
	s := &server{t: t, store: store}
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	for _, c := range conns {
		prefix := "/scim/" + c.name + "/v2"
		h, err := scim.New(scim.Options{
			Store: store, Issuer: c.issuer, Connection: c.name, Subject: c.subject,
			Tokens: scim.NewTokens(scim.HashToken(c.token)), Roles: testRoles,
			BaseURL: s.srv.URL + prefix,
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnEvent: func(_ context.Context, e scim.Event) {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.events = append(s.events, e)
			},
		})
		require.NoError(t, err)
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	}
	return s
}

// entra and okta are the two connections of most tests.
var (
	entra = connection{name: "contoso", issuer: entraIssuer, subject: scim.EntraObjectID(entraTenant), token: "entra-token-0123456789abcdef0123456789"}
	okta  = connection{name: "initech", issuer: oktaIssuer, subject: scim.PersistentNameID(), token: "okta-token-0123456789abcdef0123456789ab"}
)

// reply is a response's status, header and decoded JSON body.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request to conn's endpoint with its token and decodes the
// reply.
func (s *server) do(conn connection, method, path string, body any) reply {
	s.t.Helper()
	return s.doToken(conn.name, conn.token, method, path, body)
}

// doToken sends a request to the endpoint of the connection named name
// with token.
func (s *server) doToken(name, token, method, path string, body any) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(s.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.srv.URL+"/scim/"+name+"/v2"+path, rd)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		require.Equal(s.t, "application/scim+json; charset=utf-8", resp.Header.Get("Content-Type"), "content type of %s %s", method, path)
		require.NoError(s.t, json.Unmarshal(raw, &r.body), "body of %s %s: %s", method, path, raw)
	}
	return r
}

// takeEvents returns and forgets the events so far.
func (s *server) takeEvents() []scim.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events
	s.events = nil
	return e
}

// kinds returns the kinds of events.
func kinds(events []scim.Event) []scim.EventKind {
	out := []scim.EventKind{}
	for _, e := range events {
		out = append(out, e.Kind)
	}
	return out
}

// resources returns a ListResponse's resources.
func resources(t *testing.T, r reply) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:ListResponse"}, r.body["schemas"])
	list, _ := r.body["Resources"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, item := range list {
		out = append(out, item.(map[string]any))
	}
	return out
}

// requireError requires r to be a SCIM error with status and scimType.
func requireError(t *testing.T, r reply, status int, scimType string) {
	t.Helper()
	require.Equal(t, status, r.status, r.raw)
	require.Equal(t, []any{"urn:ietf:params:scim:api:messages:2.0:Error"}, r.body["schemas"], r.raw)
	require.Equal(t, http.StatusText(status), http.StatusText(status))
	if scimType != "" {
		require.Equal(t, scimType, r.body["scimType"], r.raw)
	} else {
		require.NotContains(t, r.body, "scimType", r.raw)
	}
}

// lookupUser returns the stored user with the key.
func lookupUser(t *testing.T, s userstore.Store, issuer, subject string) userstore.User {
	t.Helper()
	u, err := s.Lookup(t.Context(), userstore.Key{Issuer: issuer, Subject: subject})
	require.NoError(t, err)
	return u
}

// epoch is a fixed instant for stores written directly.
var epoch = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

// newRecorder returns a response recorder.
func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// sortStrings returns ss sorted.
func sortStrings(ss []string) []string {
	slices.Sort(ss)
	return ss
}
