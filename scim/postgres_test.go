package scim_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore/pgstore"
)

// pgStore opens a pgstore in a schema of its own on the server
// SAMLJIT_TEST_POSTGRES_DSN names (a postgres:// URL), dropped when the
// test ends. Without it the test skips, and fails when CI=true.
func pgStore(t *testing.T) scim.Store {
	t.Helper()
	db, err := sql.Open("pgx", pgDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	return s
}

// pgDSN returns the URL of a schema of its own on the server
// SAMLJIT_TEST_POSTGRES_DSN names, dropped when the test ends. Without it
// the test skips, and fails when CI=true.
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SAMLJIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SAMLJIT_TEST_POSTGRES_DSN is not set; CI must start a PostgreSQL server and export it (see .ci/run)")
		}
		t.Skip("SAMLJIT_TEST_POSTGRES_DSN is not set; start a PostgreSQL server and set it to run the PostgreSQL tests")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "samljit_scim_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	_, err = admin.ExecContext(t.Context(), `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err, "SAMLJIT_TEST_POSTGRES_DSN must be a postgres:// URL")
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
