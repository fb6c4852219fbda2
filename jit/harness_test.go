// This file holds no tests: it is the harness nearly every test of the
// package signs in through (an app on real HTTP over a real SQLite file,
// jittest IdPs, a browser-like client, the log and the events), and the
// small helpers those tests share. It stays one file, a little over 300
// lines, so that a reader finds the whole of what a test runs against in
// one place.

package jit_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// testStore is what the tests need of a store: the sign-in contract, the
// session records, and the admin operations a test performs as the
// application would.
type testStore interface {
	userstore.Store
	userstore.ReplayCache
	userstore.Sessions
	userstore.Admin
}

// spKeyPair is generated once: RSA key generation dominates test time
// otherwise, and the SP key plays no part in what the tests check.
var spKeyPair = sync.OnceValues(func() (*rsa.PrivateKey, *x509.Certificate) {
	key, cert, err := jittest.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	return key, cert
})

// openSQLite opens a real SQLite store in path.
func openSQLite(t testing.TB, path string) (*sqlitestore.Store, *sql.DB) {
	t.Helper()
	db, err := sql.Open("sqlite3", sqlitestore.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)
	return st, db
}

// harness is an application protected by the middleware, its store, and
// the IdPs it trusts, all on real HTTP.
type harness struct {
	t      testing.TB
	mw     *jit.Middleware
	app    *httptest.Server
	store  testStore
	dbPath string
	idps   map[string]*jittest.IdP
	logs   *syncBuffer

	mu         sync.Mutex
	events     []jit.Event
	mismatches []string // where the fast path and crewjam disagree
}

type harnessConfig struct {
	store       testStore
	connections []string // connection names; one unnamed when empty
	mapper      claims.Mapper
	configure   func(*jit.Options)
	idpOptions  func(*jittest.Options)
	// fastMayDecline lets the fast path decline responses the oracle
	// accepts: for tests that send shapes it is not for.
	fastMayDecline bool
}

// newHarness starts an app with one connection (or several, named) on a
// real SQLite file.
func newHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	h := &harness{t: t, idps: map[string]*jittest.IdP{}, logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("middleware log:\n%s", h.logs.String())
		}
	})
	if cfg.store == nil {
		h.dbPath = filepath.Join(t.TempDir(), "users.db")
		cfg.store, _ = openSQLite(t, h.dbPath)
	}
	h.store = cfg.store
	names := cfg.connections
	if len(names) == 0 {
		names = []string{""}
	}
	// The app server starts first: the SP's URLs derive from its address.
	var handler http.Handler = http.NotFoundHandler()
	var hmu sync.RWMutex
	h.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		defer hmu.RUnlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(h.app.Close)

	key, cert := spKeyPair()
	opts := jit.Options{
		RootURL:     h.app.URL,
		Key:         key,
		Certificate: cert,
		Store:       h.store,
		SessionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		Logger:      slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: func(_ context.Context, e jit.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, e)
		},
	}
	for _, name := range names {
		idp := jittest.New(t, func(o *jittest.Options) {
			if cfg.idpOptions != nil {
				cfg.idpOptions(o)
			}
		})
		h.idps[name] = idp
		opts.Connections = append(opts.Connections, jit.Connection{Name: name, IDPMetadata: idp.Metadata(), Mapper: cfg.mapper})
	}
	if cfg.configure != nil {
		cfg.configure(&opts)
	}
	mw, err := jit.New(context.Background(), opts)
	require.NoError(t, err)
	h.mw = mw
	// Every response of every test on the harness also goes through both
	// the fast path and crewjam, the oracle.
	jit.SetOracle(mw, cfg.fastMayDecline, func(msg string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.mismatches = append(h.mismatches, msg)
	})
	t.Cleanup(func() {
		for _, msg := range h.takeMismatches() {
			t.Errorf("fast path and crewjam disagree: %s", msg)
		}
	})

	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.Handle("/me", mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := jit.UserFromContext(r.Context())
		if !ok {
			http.Error(w, "no user in context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "home "+r.URL.Path) })
	hmu.Lock()
	handler = mux
	hmu.Unlock()
	return h
}

// takeMismatches returns, and forgets, where the fast path and crewjam
// disagreed.
func (h *harness) takeMismatches() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.mismatches
	h.mismatches = nil
	return m
}

// idp returns the IdP of the only or the named connection.
func (h *harness) idp(name ...string) *jittest.IdP {
	if len(name) == 0 {
		return h.idps[""]
	}
	return h.idps[name[0]]
}

// client returns a browser-like client: a cookie jar, and redirects not
// followed, so each test sees every hop.
func (h *harness) client() *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(h.t, err)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: toFailureOnly}
}

// toFailureOnly is a CheckRedirect that stops at redirects, so that tests
// see where a sign-in sends the browser, but for the one to the failure
// page after a refused sign-in, which it follows as a browser does: a test
// sees the refusal page and its status.
func toFailureOnly(r *http.Request, _ []*http.Request) error {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/saml/failed") {
		return nil
	}
	return http.ErrUseLastResponse
}

// loginURL is where a sign-in through connection name starts.
func (h *harness) loginURL(name string) string {
	if name == "" {
		return h.app.URL + "/saml/login"
	}
	return h.app.URL + "/saml/" + name + "/login"
}

// signIn signs nameID in through connection name and returns the ACS's
// response, with its body read.
func (h *harness) signIn(c *http.Client, name, nameID string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.idp(name).SignIn(context.Background(), c, h.loginURL(name), nameID)
	require.NoError(h.t, err)
	return resp, readBody(h.t, resp)
}

// respond runs the sign-in up to the IdP's form, without posting it.
func (h *harness) respond(c *http.Client, name, nameID string) jittest.Form {
	h.t.Helper()
	f, err := h.idp(name).Respond(context.Background(), c, h.loginURL(name), nameID)
	require.NoError(h.t, err)
	return f
}

func (h *harness) post(c *http.Client, f jittest.Form) (*http.Response, string) {
	h.t.Helper()
	resp, err := f.Post(context.Background(), c)
	require.NoError(h.t, err)
	return resp, readBody(h.t, resp)
}

// me fetches the protected /me page.
func (h *harness) me(c *http.Client) (*http.Response, userstore.User) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
	require.NoError(h.t, err)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	var u userstore.User
	if resp.StatusCode == http.StatusOK {
		require.NoError(h.t, json.NewDecoder(resp.Body).Decode(&u))
	}
	return resp, u
}

func (h *harness) eventsOf(kind jit.EventKind) []jit.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []jit.Event
	for _, e := range h.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// lastEvent returns the latest event, or the zero Event when there is none.
func (h *harness) lastEvent() jit.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return jit.Event{}
	}
	return h.events[len(h.events)-1]
}

// users lists the store's users.
func (h *harness) users() []userstore.User {
	h.t.Helper()
	us, err := h.store.List(context.Background())
	require.NoError(h.t, err)
	return us
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// person is a jittest user with the generic preset's attributes.
func person(nameID, email, given, family string, groups ...string) jittest.User {
	return jittest.User{
		NameID: nameID,
		Attributes: map[string][]string{
			"urn:oid:0.9.2342.19200300.100.1.3": {email},
			"urn:oid:2.5.4.42":                  {given},
			"urn:oid:2.5.4.4":                   {family},
			"urn:oid:2.16.840.1.113730.3.1.241": {given + " " + family},
			"urn:oid:1.3.6.1.4.1.5923.1.5.1.1":  groups,
		},
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logged reports whether a log record with the correlation id mentions
// every one of words.
func (h *harness) logged(corr string, words ...string) bool {
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if !strings.Contains(line, corr) {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

func newMem() *memstore.Store { return memstore.New() }

func make32() []byte { return bytes.Repeat([]byte{9}, 32) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// lookupOnly hides every method of a store but the Store contract.
type lookupOnly struct{ userstore.Store }
