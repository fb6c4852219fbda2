package sqlcore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

var errTooNew = errors.New("too new")

// testSchema is a two-step schema on SQLite's user_version, with a
// version read that fails when readErr is set.
func testSchema(db *sql.DB, readErr *error) (sqlcore.Schema, func(context.Context) (*sqlcore.Tx, error)) {
	s := sqlcore.Schema{
		Version: 2,
		TooNew:  errTooNew,
		Migrations: []sqlcore.Migration{
			sqlcore.Statements("CREATE TABLE a (x)"),
			sqlcore.Statements("CREATE TABLE b (x)"),
		},
		ReadVersion: func(ctx context.Context, q sqlcore.Querier) (int64, error) {
			if *readErr != nil {
				return 0, *readErr
			}
			var v int64
			err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
			return v, err
		},
		WriteVersion: func(ctx context.Context, q sqlcore.Querier, v int) error {
			_, err := q.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
			return err
		},
	}
	begin := func(ctx context.Context) (*sqlcore.Tx, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &sqlcore.Tx{SQLTx: tx, End: func(err error) error {
			if err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		}}, nil
	}
	return s, begin
}

// TestMigrateVersions: an empty database is migrated to the current
// version; a current one is left alone, and said to be; a newer one is
// refused with the schema's TooNew, a negative one refused, and a version
// that cannot be read is an error, before anything is written.
func TestMigrateVersions(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "m.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	var readErr error
	s, begin := testSchema(db, &readErr)
	tables := func() int {
		var n int
		require.NoError(t, db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'table'").Scan(&n))
		return n
	}

	current, err := sqlcore.Migrate(ctx, db, begin, s)
	require.NoError(t, err)
	assert.False(t, current, "an empty database was migrated")
	assert.Equal(t, 2, tables())

	current, err = sqlcore.Migrate(ctx, db, begin, s)
	require.NoError(t, err, "a current database opens again")
	assert.True(t, current)

	readErr = errors.New("disk I/O error")
	_, err = sqlcore.Migrate(ctx, db, begin, s)
	require.ErrorIs(t, err, readErr, "a version that cannot be read is an error")
	readErr = nil

	for v, want := range map[int]error{3: errTooNew, -1: nil} {
		_, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v))
		require.NoError(t, err)
		_, err = sqlcore.Migrate(ctx, db, begin, s)
		require.Error(t, err, "version %d", v)
		if want != nil {
			assert.ErrorIs(t, err, want)
		}
		assert.Equal(t, 2, tables(), "nothing written")
	}
}
