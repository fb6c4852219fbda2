package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
	"github.com/samljit/samljit/userstore/storetest"
)

// openDB opens the database named by dsn and closes it when the test ends.
func openDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", dsn)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// openStore opens a Store on db.
func openStore(tb testing.TB, db *sql.DB) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(tb, err)
	return s
}

// tempPath returns the path of a database file in a new temporary directory.
func tempPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "users.db")
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsn  func(path string) string
		// conns limits the pool; 0 leaves the default (unlimited), so
		// concurrent calls use many connections.
		conns int
	}{
		// The recommended data source name.
		{name: "DSN", dsn: sqlitestore.DSN},
		// A bare path: the store must not depend on DSN parameters.
		{name: "PlainPath", dsn: func(p string) string { return p }},
		// One connection: the store must never need a second connection
		// while it holds one.
		{name: "OneConnection", dsn: sqlitestore.DSN, conns: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) userstore.Store {
				db := openDB(t, tc.dsn(tempPath(t)))
				if tc.conns > 0 {
					db.SetMaxOpenConns(tc.conns)
				}
				return openStore(t, db)
			})
		})
	}
}

// databaseAt returns a new database file, and a pool on it, in which
// stmts ran in order, as an older release of the store wrote its schema.
func databaseAt(t *testing.T, stmts []string) (string, *sql.DB) {
	t.Helper()
	path := tempPath(t)
	db := openDB(t, path)
	for _, stmt := range stmts {
		_, err := db.ExecContext(t.Context(), stmt)
		require.NoError(t, err)
	}
	return path, db
}

// reopenMigrated closes db, the pool databaseAt returned for path, and
// opens the store on the file through a new pool, requiring it migrated
// to SchemaVersion.
func reopenMigrated(t *testing.T, db *sql.DB, path string) (*sql.DB, *sqlitestore.Store) {
	t.Helper()
	require.NoError(t, db.Close())
	db = openDB(t, sqlitestore.DSN(path))
	s := openStore(t, db)
	require.Equal(t, sqlitestore.SchemaVersion, pragmaInt(t, db, "user_version"))
	return db, s
}

// pragmaInt returns the integer value of a PRAGMA query.
func pragmaInt(t *testing.T, db *sql.DB, pragma string) int {
	t.Helper()
	var v int
	require.NoError(t, db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&v))
	return v
}

func TestSchemaVersionAndRestart(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 26, 53, 589793238, time.UTC)

	db := openDB(t, path)
	s := openStore(t, db)
	require.Same(t, db, s.DB())
	require.Equal(t, sqlitestore.SchemaVersion, pragmaInt(t, db, "user_version"))
	var mode string
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode, "Open did not switch to WAL journaling")
	created, err := s.Provision(ctx, k, userstore.Profile{DisplayName: "Ada", Groups: []string{}}, now)
	require.NoError(t, err)
	require.NoError(t, s.Suspend(ctx, k))
	require.NoError(t, db.Close())

	// A restart: a new *sql.DB on the same file, opened again.
	db = openDB(t, path)
	s = openStore(t, db)
	require.Equal(t, sqlitestore.SchemaVersion, pragmaInt(t, db, "user_version"))
	u, err := s.Lookup(ctx, k)
	require.NoError(t, err)
	require.Equal(t, created.User.ID, u.ID)
	require.Equal(t, userstore.Suspended, u.Status)
	require.Equal(t, []string{}, u.Profile.Groups)
	require.True(t, now.Equal(u.CreatedAt))
}

// schemaV1 is the schema of version 1, as sqlitestore created it before
// roles and email lookup existed. It is a frozen copy, so that the test
// below checks the migration from what that release wrote, whatever later
// edits do to the package's own migrations.
var schemaV1 = []string{
	`CREATE TABLE users (
		id              TEXT    NOT NULL PRIMARY KEY,
		issuer          TEXT    NOT NULL COLLATE BINARY,
		subject         TEXT    NOT NULL COLLATE BINARY,
		email           TEXT    NOT NULL DEFAULT '',
		display_name    TEXT    NOT NULL DEFAULT '',
		given_name      TEXT    NOT NULL DEFAULT '',
		family_name     TEXT    NOT NULL DEFAULT '',
		groups_json     TEXT    NOT NULL DEFAULT 'null',
		attributes_json TEXT    NOT NULL DEFAULT 'null',
		status          INTEGER NOT NULL DEFAULT 0,
		created_at      INTEGER NOT NULL,
		updated_at      INTEGER NOT NULL,
		last_sign_in_at INTEGER NOT NULL,
		UNIQUE (issuer, subject)
	)`,
	`CREATE INDEX users_last_sign_in_at ON users (last_sign_in_at)`,
	`CREATE TABLE replay (
		issuer       TEXT    NOT NULL COLLATE BINARY,
		assertion_id TEXT    NOT NULL COLLATE BINARY,
		expires_at   INTEGER NOT NULL,
		PRIMARY KEY (issuer, assertion_id)
	)`,
	`CREATE INDEX replay_expires_at ON replay (expires_at)`,
	`PRAGMA user_version = 1`,
}

// TestMigrateFromVersion1 opens a database written at schema version 1
// and finds its users migrated: roles empty, the normalized email
// backfilled so that LookupEmail finds them, and the new columns written
// by later sign-ins.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV1)
	created := time.Date(2024, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	for _, u := range []struct{ id, subject, email string }{
		{"u1", "ada", " Ada.Lovelace@Example.COM\t"},
		{"u2", "grace", ""},
		{"u3", "kelvin", "\u212Aelvin@example.com"},
	} {
		_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, display_name, groups_json, attributes_json, status, created_at, updated_at, last_sign_in_at)
			VALUES (?, 'https://idp.example/', ?, ?, 'Someone', '["g"]', '{"a":["b"]}', 1, ?, ?, ?)`,
			u.id, u.subject, u.email, created.UnixNano(), created.UnixNano(), created.UnixNano())
		require.NoError(t, err)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO replay (issuer, assertion_id, expires_at) VALUES ('https://idp.example/', '_old', ?)`,
		created.Add(100*365*24*time.Hour).UnixNano())
	require.NoError(t, err)
	db, s := reopenMigrated(t, db, path)
	var indexes int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'users_email_norm'`).Scan(&indexes))
	require.Equal(t, 1, indexes, "the normalized email is not indexed")

	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	u, err := s.Lookup(ctx, ada)
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Equal(t, userstore.Suspended, u.Status)
	require.Equal(t, []string{"g"}, u.Profile.Groups)
	require.Equal(t, map[string][]string{"a": {"b"}}, u.Profile.Attributes)
	require.Nil(t, u.Profile.Roles)
	require.Nil(t, u.LocalRoles)
	require.True(t, created.Equal(u.CreatedAt))

	found, err := s.LookupEmail(ctx, "ada.lovelace@example.com")
	require.NoError(t, err)
	require.Len(t, found, 1, "LookupEmail did not find the migrated user")
	require.Equal(t, "u1", found[0].ID)
	found, err = s.LookupEmail(ctx, "\u212Aelvin@example.com")
	require.NoError(t, err)
	require.Len(t, found, 1)
	require.Equal(t, "u3", found[0].ID)
	found, err = s.LookupEmail(ctx, "kelvin@example.com")
	require.NoError(t, err)
	require.Empty(t, found, "the backfill folded the Kelvin sign")

	// The migrated rows take the new columns.
	require.NoError(t, s.GrantRole(ctx, ada, "admin"))
	require.NoError(t, s.Unsuspend(ctx, ada))
	res, err := s.Provision(ctx, ada, userstore.Profile{Email: "ada@example.org", Roles: []string{}}, created.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{"admin"}, res.User.LocalRoles)
	u, err = s.Lookup(ctx, ada)
	require.NoError(t, err)
	require.Equal(t, []string{}, u.Profile.Roles)
	require.Equal(t, []string{"admin"}, u.LocalRoles)
	found, err = s.LookupEmail(ctx, "ada.lovelace@example.com")
	require.NoError(t, err)
	require.Empty(t, found, "the old email still finds the user")

	// The replay records survived.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, "https://idp.example/", "_old", created.Add(time.Hour), created), userstore.ErrReplayed)
}

func TestNewerSchemaRefused(t *testing.T) {
	path := tempPath(t)
	db := openDB(t, path)
	_, err := db.ExecContext(t.Context(), "PRAGMA user_version = "+strconv.Itoa(sqlitestore.SchemaVersion+1))
	require.NoError(t, err)

	s, err := sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
	require.ErrorIs(t, err, sqlitestore.ErrSchemaTooNew)
	require.Nil(t, s)
	require.Contains(t, err.Error(), fmt.Sprintf("schema version %d", sqlitestore.SchemaVersion+1))

	// Open wrote nothing.
	require.Equal(t, sqlitestore.SchemaVersion+1, pragmaInt(t, db, "user_version"))
	var tables int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_schema").Scan(&tables))
	require.Zero(t, tables)
}

func TestOpenNilDB(t *testing.T) {
	_, err := sqlitestore.Open(t.Context(), nil, sqlitestore.Options{})
	require.Error(t, err)
}

func TestOpenRefusesForeignUsersTable(t *testing.T) {
	// A database that already has an unrelated users table but no schema
	// version is not silently adopted.
	db := openDB(t, tempPath(t))
	_, err := db.ExecContext(t.Context(), "CREATE TABLE users (name TEXT)")
	require.NoError(t, err)
	_, err = sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
	require.Error(t, err)
	require.Zero(t, pragmaInt(t, db, "user_version"), "a failed migration recorded a version")
}

func TestBusyTimeoutOnWriteConnections(t *testing.T) {
	// The driver is told not to wait at all; the store sets its own busy
	// timeout on the connection it writes through, whatever the DSN says.
	for _, tc := range []struct {
		opts sqlitestore.Options
		want int
	}{
		{sqlitestore.Options{}, 5000},
		{sqlitestore.Options{BusyTimeout: 250 * time.Millisecond}, 250},
		{sqlitestore.Options{BusyTimeout: time.Microsecond}, 1},
	} {
		db := openDB(t, "file:"+tempPath(t)+"?_busy_timeout=0")
		db.SetMaxOpenConns(1)
		require.Zero(t, pragmaInt(t, db, "busy_timeout"))
		s, err := sqlitestore.Open(t.Context(), db, tc.opts)
		require.NoError(t, err)
		_, err = s.Provision(t.Context(), userstore.Key{Issuer: "i", Subject: "s"}, userstore.Profile{}, time.Now())
		require.NoError(t, err)
		require.Equal(t, tc.want, pragmaInt(t, db, "busy_timeout"), "busy timeout with %+v", tc.opts)
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Several processes starting at once on a new file migrate it once.
	path := tempPath(t)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			_, err = sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	db := openDB(t, path)
	require.Equal(t, sqlitestore.SchemaVersion, pragmaInt(t, db, "user_version"))
}

func TestReplaySurvivesRestart(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	expires := now.Add(5 * time.Minute)

	db := openDB(t, path)
	s := openStore(t, db)
	require.NoError(t, s.ConsumeAssertion(ctx, "https://idp.example/", "_a1", expires, now))
	require.NoError(t, db.Close())

	db = openDB(t, sqlitestore.DSN(path))
	s = openStore(t, db)
	err := s.ConsumeAssertion(ctx, "https://idp.example/", "_a1", expires, now.Add(time.Minute))
	require.ErrorIs(t, err, userstore.ErrReplayed, "a restart forgot a consumed assertion")
}

func TestReplayPurgesExpired(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, sqlitestore.DSN(tempPath(t)))
	s := openStore(t, db)
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	for i := range 100 {
		require.NoError(t, s.ConsumeAssertion(ctx, "https://idp.example/", fmt.Sprint("_old", i), now.Add(time.Minute), now))
	}
	count := func() int {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM replay").Scan(&n))
		return n
	}
	require.Equal(t, 100, count())

	// Each later consume deletes a bounded batch of the expired records.
	later := now.Add(time.Hour)
	require.NoError(t, s.ConsumeAssertion(ctx, "https://idp.example/", "_new1", later.Add(time.Minute), later))
	require.Equal(t, 100+1-32, count())
	for i := range 3 {
		require.NoError(t, s.ConsumeAssertion(ctx, "https://idp.example/", fmt.Sprint("_new", i+2), later.Add(time.Minute), later))
	}
	require.Equal(t, 4, count(), "the expired records were not all purged")
}

func TestTwoProcessesOneFile(t *testing.T) {
	// Two *sql.DB handles on one file behave like two processes: SQLite's
	// file locks, not anything in this process, must serialise them. One
	// handle uses the recommended DSN and the other a bare path.
	ctx := t.Context()
	path := tempPath(t)
	stores := []*sqlitestore.Store{
		openStore(t, openDB(t, sqlitestore.DSN(path))),
		openStore(t, openDB(t, path)),
	}
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

	const n = 64
	type result struct {
		res userstore.Provisioned
		err error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			res, err := stores[i%2].Provision(ctx, k, userstore.Profile{DisplayName: fmt.Sprint(i)}, now.Add(time.Duration(i)*time.Millisecond))
			results <- result{res, err}
		}()
	}
	close(start)
	created := 0
	var id string
	for range n {
		r := <-results
		require.NoError(t, r.err)
		if r.res.Created() {
			created++
		}
		if id == "" {
			id = r.res.User.ID
		}
		require.Equal(t, id, r.res.User.ID)
	}
	require.Equal(t, 1, created)
	for _, s := range stores {
		users, err := s.List(ctx)
		require.NoError(t, err)
		require.Len(t, users, 1)
	}

	// The replay guard holds across the two as well.
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- stores[i%2].ConsumeAssertion(ctx, "https://idp.example/", "_a1", now.Add(time.Minute), now)
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		if err == nil {
			ok++
			continue
		}
		require.ErrorIs(t, err, userstore.ErrReplayed)
	}
	require.Equal(t, 1, ok)
}

func TestReadOnlyDatabase(t *testing.T) {
	for _, tc := range []struct {
		name, params string
	}{
		{"ModeRO", "?mode=ro"},
		{"QueryOnly", "?_query_only=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := tempPath(t)
			existing := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
			now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

			db := openDB(t, sqlitestore.DSN(path))
			s := openStore(t, db)
			before, err := s.Provision(ctx, existing, userstore.Profile{DisplayName: "Ada"}, now)
			require.NoError(t, err)
			require.NoError(t, db.Close())
			require.NoError(t, os.Chmod(path, 0o444))
			t.Cleanup(func() { _ = os.Chmod(path, 0o644) })

			// Root ignores file modes, so the driver is told too.
			ro := openDB(t, "file:"+path+tc.params)
			s = openStore(t, ro)
			u, err := s.Lookup(ctx, existing)
			require.NoError(t, err, "reads work on a read-only database")
			require.Equal(t, before.User.ID, u.ID)

			require.NotPanics(t, func() {
				_, err = s.Provision(ctx, userstore.Key{Issuer: "https://idp.example/", Subject: "grace"}, userstore.Profile{}, now)
			})
			require.Error(t, err)
			var sqliteErr sqlite3.Error
			require.True(t, errors.As(err, &sqliteErr), "the driver's error is not inspectable in %v", err)
			require.Equal(t, sqlite3.ErrReadonly, sqliteErr.Code)
			_, err = s.Provision(ctx, existing, userstore.Profile{DisplayName: "changed"}, now.Add(time.Hour))
			require.Error(t, err)
			require.Error(t, s.Suspend(ctx, existing))
			require.Error(t, s.ConsumeAssertion(ctx, "https://idp.example/", "_a1", now.Add(time.Minute), now))

			// The pool is still healthy: no connection was left in a
			// transaction.
			u, err = s.Lookup(ctx, existing)
			require.NoError(t, err)
			require.Equal(t, "Ada", u.Profile.DisplayName)
			require.NoError(t, ro.Close())

			// Nothing was written.
			require.NoError(t, os.Chmod(path, 0o644))
			s = openStore(t, openDB(t, path))
			users, err := s.List(ctx)
			require.NoError(t, err)
			require.Len(t, users, 1)
			requireUnchanged(t, before.User, users[0])
			err = s.ConsumeAssertion(ctx, "https://idp.example/", "_a1", now.Add(time.Minute), now)
			require.NoError(t, err, "a failed ConsumeAssertion left a record")
		})
	}
}

// requireUnchanged requires got to be the same record as want.
func requireUnchanged(t *testing.T, want, got userstore.User) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Profile, got.Profile)
	require.Equal(t, want.Status, got.Status)
	require.True(t, want.UpdatedAt.Equal(got.UpdatedAt))
}

func TestCancelledContext(t *testing.T) {
	db := openDB(t, sqlitestore.DSN(tempPath(t)))
	db.SetMaxOpenConns(1)
	s := openStore(t, db)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Provision(ctx, k, userstore.Profile{}, now)
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.ConsumeAssertion(ctx, "https://idp.example/", "_a1", now.Add(time.Minute), now), context.Canceled)

	// The only connection is still usable and nothing was written.
	_, err = s.Lookup(t.Context(), k)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	_, err = s.Provision(t.Context(), k, userstore.Profile{}, now)
	require.NoError(t, err)
}

func TestContextEndsWhileWaitingForLock(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	db := openDB(t, sqlitestore.DSN(path))
	db.SetMaxOpenConns(1)
	s := openStore(t, db)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)

	// Another process holds the write lock.
	other := openDB(t, path)
	holder, err := other.Conn(ctx)
	require.NoError(t, err)
	_, err = holder.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Provision(short, k, userstore.Profile{}, now)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 4*time.Second, "Provision did not give up when its context ended")
	require.ErrorIs(t, s.ConsumeAssertion(short, "https://idp.example/", "_a1", now.Add(time.Minute), now), context.DeadlineExceeded)

	_, err = holder.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, holder.Close())

	// The store's only connection was left without a transaction (other
	// writers are not blocked) and with the store's busy timeout.
	require.Equal(t, 5000, pragmaInt(t, db, "busy_timeout"))
	_, err = other.ExecContext(ctx, "DELETE FROM replay")
	require.NoError(t, err)
	res, err := s.Provision(ctx, k, userstore.Profile{}, now)
	require.NoError(t, err)
	require.True(t, res.Created())
	_, err = other.ExecContext(ctx, "DELETE FROM replay")
	require.NoError(t, err, "the store kept a transaction open")

	// A write whose context's deadline comes before the busy timeout
	// waits no longer than the deadline, and, when it succeeds, hands the
	// connection back with the store's busy timeout.
	soon, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = s.Provision(soon, k, userstore.Profile{DisplayName: "Ada"}, now)
	require.NoError(t, err)
	require.Equal(t, 5000, pragmaInt(t, db, "busy_timeout"), "the busy timeout of a write with a deadline was left on the connection")

	// The connection whose busy timeout was restored goes back to the
	// pool: a temporary table, which lives as long as its connection,
	// is still there.
	_, err = db.ExecContext(ctx, "CREATE TEMP TABLE connection_marker (x)")
	require.NoError(t, err)
	soon2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	_, err = s.Provision(soon2, k, userstore.Profile{DisplayName: "Ada L."}, now)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "SELECT count(*) FROM temp.connection_marker")
	require.NoError(t, err, "the connection was discarded after its busy timeout was restored")
}

func TestTimeOutOfRange(t *testing.T) {
	s := openStore(t, openDB(t, tempPath(t)))
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	for _, now := range []time.Time{{}, time.Date(2300, time.January, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := s.Provision(t.Context(), k, userstore.Profile{}, now)
		require.Error(t, err, "Provision at %s", now)
	}
	_, err := s.Lookup(t.Context(), k)
	require.ErrorIs(t, err, userstore.ErrNotFound)

	// Replay expiries far in the future are clamped, not refused.
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	require.NoError(t, s.ConsumeAssertion(t.Context(), "https://idp.example/", "_a1", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), now))
	require.ErrorIs(t, s.ConsumeAssertion(t.Context(), "https://idp.example/", "_a1", now, now.Add(100*365*24*time.Hour)), userstore.ErrReplayed)
}

func TestDSN(t *testing.T) {
	require.Equal(t,
		"file:/tmp/users.db?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_txlock=immediate&_stmt_cache_size=32",
		sqlitestore.DSN("/tmp/users.db"))

	// Characters that would end the path in a URI are escaped.
	dir := filepath.Join(t.TempDir(), "a?b#c%d")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "users.db")
	s := openStore(t, openDB(t, sqlitestore.DSN(path)))
	_, err := s.Provision(t.Context(), userstore.Key{Issuer: "i", Subject: "s"}, userstore.Profile{}, time.Now())
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.NoError(t, err, "the database was not created at the escaped path")
}

// returningUser opens a store on a new file holding one user, for the
// returning-user benchmarks.
func returningUser(b *testing.B) (*sqlitestore.Store, userstore.Key, userstore.Profile, time.Time) {
	s := openStore(b, openDB(b, sqlitestore.DSN(tempPath(b))))
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	p := userstore.Profile{
		Email:       "ada@example.com",
		DisplayName: "Ada Lovelace",
		GivenName:   "Ada",
		FamilyName:  "Lovelace",
		Groups:      []string{"b5b3c1d2-0000-0000-0000-000000000001", "engineers"},
		Attributes:  map[string][]string{"department": {"Engines"}},
	}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	if _, err := s.Provision(b.Context(), k, p, now); err != nil {
		b.Fatal(err)
	}
	return s, k, p, now
}

func BenchmarkProvisionReturning(b *testing.B) {
	s, k, p, now := returningUser(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Provision(ctx, k, p, now.Add(time.Duration(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProvisionNew(b *testing.B) {
	s := openStore(b, openDB(b, sqlitestore.DSN(tempPath(b))))
	ctx := context.Background()
	p := userstore.Profile{Email: "ada@example.com", DisplayName: "Ada Lovelace", Groups: []string{"engineers"}}
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		k := userstore.Key{Issuer: "https://idp.example/", Subject: strconv.Itoa(i)}
		if _, err := s.Provision(ctx, k, p, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	s := openStore(b, openDB(b, sqlitestore.DSN(tempPath(b))))
	ctx := context.Background()
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	p := userstore.Profile{
		Email:       "ada@example.com",
		DisplayName: "Ada Lovelace",
		Groups:      []string{"b5b3c1d2-0000-0000-0000-000000000001", "engineers"},
		Attributes:  map[string][]string{"department": {"Engines"}},
	}
	if _, err := s.Provision(ctx, k, p, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeyIsUniqueInTheSchema: the database itself refuses a second row for
// one (issuer, subject), whatever writes it: the store's serialised writes
// are not the only guard.
func TestKeyIsUniqueInTheSchema(t *testing.T) {
	db := openDB(t, sqlitestore.DSN(tempPath(t)))
	s := openStore(t, db)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	_, err := s.Provision(t.Context(), k, userstore.Profile{}, time.Now())
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, issuer, subject, created_at, updated_at, last_sign_in_at) VALUES ('other', ?, ?, 0, 0, 0)`, k.Issuer, k.Subject)
	require.ErrorContains(t, err, "UNIQUE constraint failed: users.issuer, users.subject")
	// Keys compare byte for byte: another case is another key.
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, issuer, subject, created_at, updated_at, last_sign_in_at) VALUES ('other', ?, ?, 0, 0, 0)`, k.Issuer, "ADA")
	require.NoError(t, err)
}

// TestMigrateRefusesSharedEmails: a database where two users of one issuer
// share an email (as a race once allowed) is not silently fixed: opening
// it fails, naming them, and succeeds once one is resolved; then the
// unique index keeps it so.
func TestMigrateRefusesSharedEmails(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV1)
	for _, u := range []struct{ id, issuer, email string }{
		{"u1", "https://idp.example/", "ada@example.com"},
		{"u2", "https://idp.example/", " ADA@example.com"},
		{"u3", "https://other.example/", "ada@example.com"},
		{"u4", userstore.LocalIssuer, "ada@example.com"},
		{"u5", userstore.LocalIssuer, "ada@example.com"},
	} {
		_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, created_at, updated_at, last_sign_in_at) VALUES (?, ?, ?, ?, 0, 0, 0)`,
			u.id, u.issuer, u.id, u.email)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	db = openDB(t, sqlitestore.DSN(path))
	_, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	require.ErrorIs(t, err, userstore.ErrEmailInUse)
	assert.Contains(t, err.Error(), `2 users of "https://idp.example/" have "ada@example.com" (among them u1 and u2)`)

	_, err = db.ExecContext(ctx, `DELETE FROM users WHERE id = 'u2'`)
	require.NoError(t, err)
	s := openStore(t, db)
	require.Equal(t, sqlitestore.SchemaVersion, pragmaInt(t, db, "user_version"))
	_, err = s.Provision(ctx, userstore.Key{Issuer: "https://idp.example/", Subject: "u6"}, userstore.Profile{Email: "Ada@Example.com"}, time.Now())
	require.ErrorIs(t, err, userstore.ErrEmailInUse)
}

// queryPlan is SQLite's EXPLAIN QUERY PLAN of query with args, its lines
// joined by "; ".
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "; ")
}
