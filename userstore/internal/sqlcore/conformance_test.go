package sqlcore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
	"github.com/samljit/samljit/userstore/storetest"
)

// The stores run the conformance suite in their own packages; it runs here
// too, through both dialects, so that sqlcore's own tests exercise the one
// algorithm the two stores share. Mutation testing (.ci/mutation) runs a
// package's own tests only: without these, no mutant of sqlcore would meet
// a test.

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) userstore.Store { return newSQLite(t) })
}

// TestConnectionsSQLite runs the connection store suite through the
// SQLite dialect.
func TestConnectionsSQLite(t *testing.T) {
	storetest.RunConnections(t, func(t *testing.T) userstore.ConnectionAdmin { return newSQLite(t) })
}

// newSQLite returns a store on a new SQLite file.
func newSQLite(t *testing.T) *sqlitestore.Store {
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "users.db")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)
	return st
}

// TestConformancePostgreSQL runs on the server SAMLJIT_TEST_POSTGRES_DSN
// names, as userstore/pgstore's tests do, each store in a schema of its
// own.
func TestConformancePostgreSQL(t *testing.T) {
	newStore := postgres(t)
	storetest.Run(t, func(t *testing.T) userstore.Store { return newStore(t) })
}

// TestConnectionsPostgreSQL runs the connection store suite through the
// PostgreSQL dialect.
func TestConnectionsPostgreSQL(t *testing.T) {
	newStore := postgres(t)
	storetest.RunConnections(t, func(t *testing.T) userstore.ConnectionAdmin { return newStore(t) })
}

// postgres returns a function that opens a store in a new schema of the
// server SAMLJIT_TEST_POSTGRES_DSN names, dropped when its test ends.
func postgres(t *testing.T) func(t *testing.T) *pgstore.Store {
	newStore := postgresDB(t)
	return func(t *testing.T) *pgstore.Store {
		st, _ := newStore(t)
		return st
	}
}

// postgresDB is postgres, each store given with its database handle.
func postgresDB(t *testing.T) func(t *testing.T) (*pgstore.Store, *sql.DB) {
	dsn := os.Getenv("SAMLJIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Need(t, "SAMLJIT_TEST_POSTGRES_DSN is not set", testenv.PostgresHowTo)
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	require.Contains(t, []string{"postgres", "postgresql"}, u.Scheme, "SAMLJIT_TEST_POSTGRES_DSN in URL form")
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	return func(t *testing.T) (*pgstore.Store, *sql.DB) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		schema := "samljit_test_" + hex.EncodeToString(b[:])
		_, err := admin.ExecContext(t.Context(), `CREATE SCHEMA `+schema)
		require.NoError(t, err)
		t.Cleanup(func() {
			if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
				t.Errorf("drop test schema %s: %v", schema, err)
			}
		})
		q := u.Query()
		q.Set("search_path", schema)
		su := *u
		su.RawQuery = q.Encode()
		db, err := sql.Open("pgx", su.String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
		require.NoError(t, err)
		return st, db
	}
}
