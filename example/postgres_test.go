package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestPostgresDB runs the example on PostgreSQL (-db postgres://…) in a
// schema of its own.
func TestPostgresDB(t *testing.T) {
	admin, schema, scoped := postgresSchema(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg, err := parseFlags([]string{"-addr", ln.Addr().String(), "-data", t.TempDir(), "-db", scoped}, io.Discard)
	require.NoError(t, err)
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close() })
	root := cfg.rootURL

	c := browser(t)
	signIn(t, a, c, root, "globex", "globex-0002")
	code, body := get(t, c, root+"/api/me")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "frank@globex.example")

	var n int
	require.NoError(t, admin.QueryRow("SELECT count(*) FROM "+schema+".samljit_users").Scan(&n))
	assert.Equal(t, 1, n, "the user is in PostgreSQL")
}

// postgresSchema returns a connection to the test server, a fresh schema
// dropped at cleanup, and a DSN whose search_path is that schema.
func postgresSchema(t *testing.T) (*sql.DB, string, string) {
	t.Helper()
	dsn := os.Getenv("SAMLJIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Need(t, "SAMLJIT_TEST_POSTGRES_DSN is not set", testenv.PostgresHowTo)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "example_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return admin, schema, dsn + sep + "search_path=" + schema
}

// TestTwoInstancesOneDatabase runs two instances of the example app (two
// handlers, two connection pools) behind one round-robin front, sharing a
// PostgreSQL database, a data directory (SP key and session secret) and a
// real IdP.
func TestTwoInstancesOneDatabase(t *testing.T) {
	_, schema, scoped := postgresSchema(t)
	idp := jittest.New(t)
	for i := range 8 {
		id := fmt.Sprintf("p-%d", i)
		idp.AddUser(jittest.User{NameID: id, Attributes: map[string][]string{
			claims.OIDMail: {id + "@example.com"}, claims.OIDIsMemberOf: {"staff"},
		}})
	}
	md := filepath.Join(t.TempDir(), "idp.xml")
	require.NoError(t, os.WriteFile(md, idp.Metadata(), 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg, err := parseFlags([]string{"-addr", ln.Addr().String(), "-data", t.TempDir(), "-db", scoped,
		"-idp-metadata", md, "-allow-idp-initiated"}, io.Discard)
	require.NoError(t, err)
	var instances [2]*app
	for i := range instances {
		instances[i], err = newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		t.Cleanup(instances[i].Close)
	}
	var next atomic.Uint64
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		instances[next.Add(1)%2].ServeHTTP(w, r)
	}))
	front.Listener.Close()
	front.Listener = ln
	front.Start()
	t.Cleanup(front.Close)
	root := cfg.rootURL

	// A response consumed on one instance is refused on the other.
	f, err := idp.Unsolicited(root+"/saml/metadata", root+"/saml/acs", "p-0", "/")
	require.NoError(t, err)
	first := httptest.NewRecorder()
	instances[0].ServeHTTP(first, formRequest(f))
	require.Equal(t, http.StatusSeeOther, first.Code, first.Body.String())
	second := httptest.NewRecorder()
	instances[1].ServeHTTP(second, formRequest(f))
	assert.Equal(t, http.StatusSeeOther, second.Code)
	assert.Contains(t, second.Header().Get("Location"), "/saml/failed?ref=", "refused")
	// The trail is in PostgreSQL: instance 0 reads what instance 1 wrote.
	trail, err := instances[0].audit.Page(context.Background(), auditQuery{Limit: 2})
	require.NoError(t, err)
	require.Len(t, trail, 2)
	assert.Equal(t, string(jit.EventRefused), trail[0].Kind)
	assert.Contains(t, trail[0].Reason, jit.ErrReplayed.Error())
	assert.Equal(t, string(jit.EventCreated), trail[1].Kind)

	// 64 concurrent first sign-ins, 8 per person, alternating instances
	// hop by hop: one user per person, no error.
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	for i := range 64 {
		wg.Add(1)
		c := browser(t)
		go func() {
			defer wg.Done()
			resp, err := idp.SignIn(context.Background(), c, root+"/saml/login", fmt.Sprintf("p-%d", i%8))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		assert.Equal(t, http.StatusSeeOther, code)
	}
	users, err := instances[1].store.List(context.Background())
	require.NoError(t, err)
	assert.Len(t, users, 8, "one user per person in schema %s", schema)

	// A session issued by one instance is honoured by the other.
	c := browser(t)
	signIn2(t, idp, c, root+"/saml/login", "p-3")
	for range 4 {
		code, body := get(t, c, root+"/api/me")
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, "p-3@example.com")
	}
}

func formRequest(f jittest.Form) *http.Request {
	body := url.Values{"SAMLResponse": {f.SAMLResponse}, "RelayState": {f.RelayState}}.Encode()
	r := httptest.NewRequest(http.MethodPost, f.ACS, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func signIn2(t *testing.T, idp *jittest.IdP, c *http.Client, loginURL, nameID string) {
	t.Helper()
	resp, err := idp.SignIn(context.Background(), c, loginURL, nameID)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
}
