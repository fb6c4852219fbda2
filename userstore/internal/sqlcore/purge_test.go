package sqlcore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// TestPurgeSpacedOut: a write purges expired replay records while the
// last purge deleted a full batch, and otherwise once a
// sqlcore.PurgeInterval has passed by the writes' own clock since it;
// on SQLite in the write's transaction, on PostgreSQL after it.
func TestPurgeSpacedOut(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "users.db")))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		st, err := sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
		require.NoError(t, err)
		testPurgeSpacedOut(t, st, db, "replay")
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		st, db := postgresDB(t)(t)
		testPurgeSpacedOut(t, st, db, "samljit_replay")
	})
}

type consumer interface {
	ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error
}

func testPurgeSpacedOut(t *testing.T, st consumer, db *sql.DB, table string) {
	ctx := t.Context()
	const issuer = "https://idp.example/"
	n := 0
	consume := func(now, expires time.Time) {
		t.Helper()
		n++
		require.NoError(t, st.ConsumeAssertion(ctx, issuer, fmt.Sprint("_a", n), expires, now))
	}
	count := func() int {
		t.Helper()
		var c int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&c))
		return c
	}
	t0 := time.Date(2026, time.December, 6, 9, 0, 0, 0, time.UTC)
	for range sqlcore.PurgeBatch + 8 {
		consume(t0, t0.Add(time.Minute))
	}
	require.Equal(t, 40, count())

	// An hour on, all 40 have expired: a full batch, then the rest at once.
	t1 := t0.Add(time.Hour)
	consume(t1, t1.Add(time.Minute))
	require.Equal(t, 41-sqlcore.PurgeBatch, count(), "the first write purges a full batch")
	consume(t1, t1.Add(time.Minute))
	require.Equal(t, 2, count(), "after a full batch, the next write purges the rest")

	// That purge deleted fewer than a batch: none runs for PurgeInterval.
	for range 5 {
		consume(t1, t1.Add(500*time.Millisecond))
	}
	almost := t1.Add(sqlcore.PurgeInterval - time.Millisecond)
	consume(almost, almost.Add(time.Minute))
	require.Equal(t, 8, count(), "five expired, and no purge within the interval")
	at := t1.Add(sqlcore.PurgeInterval)
	consume(at, at.Add(time.Minute))
	require.Equal(t, 4, count(), "the first write at the interval purges")
}
