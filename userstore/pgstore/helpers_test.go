package pgstore_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/userstore/pgstore"
)

// dsnVar names the environment variable holding the data source name of
// the PostgreSQL server the tests use. CI sets it; see .ci/run.
const dsnVar = "SAMLJIT_TEST_POSTGRES_DSN"

// testDSN returns the test server's data source name. It skips the test
// when none is set, or fails it when running in CI, where a server must be
// available.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(dsnVar)
	if dsn == "" {
		testenv.Need(t, dsnVar+" is not set", testenv.PostgresHowTo)
	}
	return dsn
}

// withParams returns dsn with the run-time parameters in params added, in
// URL form or in keyword/value form according to dsn's own.
func withParams(dsn string, params map[string]string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			panic(err)
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn
}

// randomName returns prefix followed by 16 random hexadecimal digits.
func randomName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newSchema creates a schema with a random name for one test and drops it,
// with everything in it, when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := testDSN(t)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	schema := randomName("samljit_test_")
	_, err = admin.ExecContext(t.Context(), `CREATE SCHEMA `+schema)
	require.NoError(t, err, "create test schema")
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return schema
}

// openDB opens a pool whose connections use schema as their search_path,
// with further run-time parameters if given, and closes it when the test
// ends.
func openDB(t testing.TB, schema string, params ...string) *sql.DB {
	t.Helper()
	p := map[string]string{"search_path": schema}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	db, err := sql.Open("pgx", withParams(testDSN(t), p))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// schemaAt returns a new schema, and a pool using it, in which stmts ran
// in order, as an older release of the store wrote its tables.
func schemaAt(t *testing.T, stmts []string) (string, *sql.DB) {
	t.Helper()
	schema := newSchema(t)
	db := openDB(t, schema)
	for _, stmt := range stmts {
		_, err := db.ExecContext(t.Context(), stmt)
		require.NoError(t, err)
	}
	return schema, db
}

// openMigrated opens the store on db, requiring it migrated to
// SchemaVersion.
func openMigrated(t *testing.T, db *sql.DB) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	var version int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT version FROM samljit_schema_version`).Scan(&version))
	require.Equal(t, pgstore.SchemaVersion, version)
	return s
}
