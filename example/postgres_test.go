package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPostgresDB runs the example on PostgreSQL (-db postgres://…) in a
// schema of its own.
func TestPostgresDB(t *testing.T) {
	dsn := os.Getenv("SAMLJIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SAMLJIT_TEST_POSTGRES_DSN is unset; CI must run the PostgreSQL tests")
		}
		t.Skip("SAMLJIT_TEST_POSTGRES_DSN is unset: start PostgreSQL as .ci/run does to run this test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "example_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer admin.Close()
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	scoped := dsn + sep + "search_path=" + schema

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
