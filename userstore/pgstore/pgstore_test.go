package pgstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/storetest"
)

// openStore opens a store on a fresh schema and returns it with its pool.
func openStore(t testing.TB) (*pgstore.Store, *sql.DB, string) {
	t.Helper()
	schema := newSchema(t)
	db := openDB(t, schema)
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	return st, db, schema
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) userstore.Store {
		st, _, _ := openStore(t)
		return st
	})
}

func TestOpenNilDB(t *testing.T) {
	_, err := pgstore.Open(context.Background(), nil, pgstore.Options{})
	require.Error(t, err)
}

func TestOpenTwiceKeepsData(t *testing.T) {
	st, db, _ := openStore(t)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	res, err := st.Provision(t.Context(), k, userstore.Profile{DisplayName: "Ada"}, time.Now())
	require.NoError(t, err)
	again, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	u, err := again.Lookup(t.Context(), k)
	require.NoError(t, err)
	require.Equal(t, res.User.ID, u.ID)
}

func TestConcurrentMigrations(t *testing.T) {
	schema := newSchema(t)
	const n = 8
	dbs := make([]*sql.DB, n)
	for i := range dbs {
		dbs[i] = openDB(t, schema)
		// Connect first, so that the Opens below race each other and
		// not the connection set-up.
		require.NoError(t, dbs[i].PingContext(t.Context()))
	}
	stores := make([]*pgstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = pgstore.Open(t.Context(), dbs[i], pgstore.Options{})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "Open %d", i)
	}

	db := dbs[0]
	var rows, version int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT count(*), max(version) FROM samljit_schema_version`).Scan(&rows, &version))
	require.Equal(t, 1, rows, "schema version rows")
	require.Equal(t, pgstore.SchemaVersion, version)
	var tables []string
	r, err := db.QueryContext(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, schema)
	require.NoError(t, err)
	for r.Next() {
		var name string
		require.NoError(t, r.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, r.Err())
	require.Equal(t, []string{"samljit_connection_domains", "samljit_connections", "samljit_connections_version", "samljit_directory_counts", "samljit_group_members", "samljit_groups", "samljit_replay", "samljit_schema_version", "samljit_sessions", "samljit_users"}, tables)

	// Every instance sees the others' writes.
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	res, err := stores[3].Provision(t.Context(), k, userstore.Profile{DisplayName: "Ada"}, time.Now())
	require.NoError(t, err)
	u, err := stores[5].Lookup(t.Context(), k)
	require.NoError(t, err)
	require.Equal(t, res.User.ID, u.ID)
}

func TestSchemaTooNew(t *testing.T) {
	_, db, _ := openStore(t)
	_, err := db.ExecContext(t.Context(), `UPDATE samljit_schema_version SET version = $1`, pgstore.SchemaVersion+1)
	require.NoError(t, err)
	_, err = pgstore.Open(t.Context(), db, pgstore.Options{})
	require.ErrorIs(t, err, pgstore.ErrSchemaTooNew)
	require.Contains(t, err.Error(), fmt.Sprintf("schema version %d", pgstore.SchemaVersion+1))
	var v int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT version FROM samljit_schema_version`).Scan(&v))
	require.Equal(t, pgstore.SchemaVersion+1, v, "Open changed a newer schema")
}

func TestRefusesWhatPostgresCannotStore(t *testing.T) {
	st, _, _ := openStore(t)
	ctx := t.Context()
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	for _, p := range []userstore.Profile{
		{DisplayName: "A\x00da"},
		{Groups: []string{"g\x00"}},
		{Attributes: map[string][]string{"a\x00": {"x"}}},
	} {
		_, err := st.Provision(ctx, k, p, time.Now())
		require.Error(t, err, "%#v", p)
	}
	_, err := st.Provision(ctx, k, userstore.Profile{}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, err, "year 10000")
	_, err = st.Provision(ctx, k, userstore.Profile{}, time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC))
	require.Error(t, err, "year 0")
	users, err := st.List(ctx)
	require.NoError(t, err)
	require.Empty(t, users)

	// Extreme times in queries are clamped, not refused.
	require.NoError(t, st.ConsumeAssertion(ctx, k.Issuer, "_x", time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}))
	_, err = st.NotSignedInSince(ctx, time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
}

func TestReplayPurgesExpiredRecords(t *testing.T) {
	st, db, _ := openStore(t)
	ctx := t.Context()
	now := time.Now()
	for i := range 40 {
		require.NoError(t, st.ConsumeAssertion(ctx, "https://idp.example/", fmt.Sprint("_old", i), now.Add(time.Minute), now))
	}
	later := now.Add(time.Hour)
	require.NoError(t, st.ConsumeAssertion(ctx, "https://idp.example/", "_new", later.Add(time.Minute), later))
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM samljit_replay`).Scan(&n))
	require.Equal(t, 41-32, n, "one consume purges a batch of 32 expired records")
}

// waitForLock returns the PID of the backend whose application_name is app
// once it waits for a lock.
func waitForLock(t *testing.T, admin *sql.DB, app string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pid int
		err := admin.QueryRowContext(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&pid)
		if err == nil {
			return pid
		}
		require.ErrorIs(t, err, sql.ErrNoRows)
		require.True(t, time.Now().Before(deadline), "the statement never waited for the lock")
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKilledConnectionMidProvision terminates the backend of a Provision
// while it waits for a row lock, and checks the call fails and nothing of
// it is written.
func TestKilledConnectionMidProvision(t *testing.T) {
	schema := newSchema(t)
	app := randomName("pgstore_kill_")
	db := openDB(t, schema, "application_name", app)
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	other := openDB(t, schema)
	ctx := t.Context()

	issuer := "https://idp.example/"
	existing := userstore.Key{Issuer: issuer, Subject: "existing"}
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	orig, err := st.Provision(ctx, existing, userstore.Profile{DisplayName: "Before", Groups: []string{"a"}}, t0)
	require.NoError(t, err)

	kill := func(t *testing.T, hold func(tx *sql.Tx), key userstore.Key) error {
		tx, err := other.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		hold(tx)

		done := make(chan error, 1)
		go func() {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := st.Provision(pctx, key, userstore.Profile{DisplayName: "After", Groups: []string{"b"}}, t0.Add(time.Hour))
			done <- err
		}()
		pid := waitForLock(t, other, app)
		var ok bool
		require.NoError(t, other.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
		require.True(t, ok)
		var perr error
		select {
		case perr = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Provision did not return after its connection was terminated")
		}
		require.NoError(t, tx.Rollback())
		return perr
	}

	t.Run("update", func(t *testing.T) {
		err := kill(t, func(tx *sql.Tx) {
			_, err := tx.ExecContext(ctx, `SELECT 1 FROM samljit_users WHERE issuer = $1 AND subject = $2 FOR UPDATE`, existing.Issuer, existing.Subject)
			require.NoError(t, err)
		}, existing)
		require.Error(t, err, "Provision on a terminated connection succeeded")
		t.Logf("Provision returned: %v", err)
		u, err := st.Lookup(ctx, existing)
		require.NoError(t, err)
		require.Equal(t, orig.User.Profile, u.Profile, "half of the update was written")
		require.True(t, orig.User.UpdatedAt.Equal(u.UpdatedAt), "UpdatedAt changed")
		require.True(t, orig.User.LastSignInAt.Equal(u.LastSignInAt), "LastSignInAt changed")
	})

	t.Run("create", func(t *testing.T) {
		fresh := userstore.Key{Issuer: issuer, Subject: "fresh"}
		err := kill(t, func(tx *sql.Tx) {
			// An uncommitted row with the same key makes the insert
			// wait for this transaction.
			_, err := tx.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
				groups, attributes, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
				VALUES ('held', $1, $2, '', '', '', '', 'null', 'null', now(), 0, now(), 0, now(), 0)`, fresh.Issuer, fresh.Subject)
			require.NoError(t, err)
		}, fresh)
		require.Error(t, err, "Provision on a terminated connection succeeded")
		_, err = st.Lookup(ctx, fresh)
		require.ErrorIs(t, err, userstore.ErrNotFound, "the terminated Provision created the user")
	})

	users, err := st.List(ctx)
	require.NoError(t, err)
	require.Len(t, users, 1)
	require.Equal(t, orig.User.ID, users[0].ID)

	// The pool recovers: the next calls work.
	res, err := st.Provision(ctx, existing, userstore.Profile{DisplayName: "Later"}, t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, "Before", res.Before.Profile.DisplayName)
}

// TestSerializableDefault checks that concurrent first sign-ins still
// create one user, without errors, when the database's default isolation
// level is SERIALIZABLE: the store retries serialization failures.
func TestSerializableDefault(t *testing.T) {
	schema := newSchema(t)
	db := openDB(t, schema, "default_transaction_isolation", "serializable")
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	var level string
	require.NoError(t, db.QueryRowContext(t.Context(), `SHOW transaction_isolation`).Scan(&level))
	require.Equal(t, "serializable", level)

	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	const n = 16
	requireOneCreated(t, st, n, func(i int) (userstore.Provisioned, error) {
		return st.Provision(t.Context(), k, userstore.Profile{DisplayName: fmt.Sprint(i)}, time.Now())
	})
}

// requireOneCreated runs call(0) … call(n-1) at once and requires that
// none fails, exactly one created the user, and the store holds one user.
func requireOneCreated(t *testing.T, st *pgstore.Store, n int, call func(i int) (userstore.Provisioned, error)) {
	t.Helper()
	errs := make([]error, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := call(i)
			errs[i], created[i] = err, err == nil && res.Created()
		}()
	}
	wg.Wait()
	count := 0
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
		if created[i] {
			count++
		}
	}
	require.Equal(t, 1, count)
	users, err := st.List(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 1)
}

// TestSignInSerializableDefault checks that concurrent first sign-ins
// through SignIn create one user, without errors, when the database's
// default isolation level is SERIALIZABLE: the store runs the whole
// transaction again after a serialization failure, and decide with it.
func TestSignInSerializableDefault(t *testing.T) {
	schema := newSchema(t)
	db := openDB(t, schema, "default_transaction_isolation", "serializable")
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)

	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	const n = 8
	requireOneCreated(t, st, n, func(i int) (userstore.Provisioned, error) {
		return st.SignIn(t.Context(), k.Issuer, fmt.Sprint("_s", i), time.Now().Add(time.Minute), k, time.Now(),
			func(*userstore.User) (userstore.Profile, error) {
				return userstore.Profile{DisplayName: fmt.Sprint(i)}, nil
			})
	})
}

// TestSuspendRacingSessionsRepeatableRead checks that sessions created
// while their user is suspended never outlive the suspension when the
// database's default isolation level is REPEATABLE READ, where the
// suspension's transaction reads from a snapshot taken before a
// concurrent session's insert: the session's insert writes the user's
// row, so one of the two fails with a serialization failure and runs
// again.
func TestSuspendRacingSessionsRepeatableRead(t *testing.T) {
	schema := newSchema(t)
	// pgx does not read '+' in a URL's query as a space.
	dsn := strings.Replace(withParams(testDSN(t), map[string]string{"search_path": schema, "default_transaction_isolation": "repeatable read"}), "repeatable+read", "repeatable%20read", 1)
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var level string
	require.NoError(t, db.QueryRowContext(t.Context(), `SHOW transaction_isolation`).Scan(&level))
	require.Equal(t, "repeatable read", level)
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	ctx := t.Context()
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Now()
	_, err = st.Provision(ctx, k, userstore.Profile{}, now)
	require.NoError(t, err)
	const rounds, n = 5, 4
	for r := range rounds {
		ids := make([]string, n)
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		for i := range n + 1 {
			wg.Go(func() {
				if i == n {
					errs[i] = st.Suspend(ctx, k)
					return
				}
				ids[i] = fmt.Sprintf("r%d-s%d", r, i)
				errs[i] = st.CreateSession(ctx, userstore.Session{ID: ids[i], Key: k, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			})
		}
		wg.Wait()
		require.NoError(t, errs[n], "Suspend")
		require.NoError(t, st.Unsuspend(ctx, k))
		for i, id := range ids {
			if errs[i] != nil {
				require.ErrorIs(t, errs[i], userstore.ErrNotFound, "CreateSession %d", i)
			}
			_, _, err := st.LookupSession(ctx, id, now)
			require.ErrorIs(t, err, userstore.ErrNotFound, "round %d: session %d outlived the suspension", r, i)
		}
	}
}

// TestSignInDecidePanics checks that a panic in decide rolls the
// transaction back and returns its connection to the pool.
func TestSignInDecidePanics(t *testing.T) {
	st, db, _ := openStore(t)
	db.SetMaxOpenConns(1)
	ctx := t.Context()
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	now := time.Now()
	require.PanicsWithValue(t, "decide failed", func() {
		_, _ = st.SignIn(ctx, k.Issuer, "_p1", now.Add(time.Minute), k, now,
			func(*userstore.User) (userstore.Profile, error) { panic("decide failed") })
	})
	// The pool's only connection is usable, and nothing was written.
	_, err := st.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	res, err := st.SignIn(ctx, k.Issuer, "_p1", now.Add(time.Minute), k, now,
		func(*userstore.User) (userstore.Profile, error) { return userstore.Profile{}, nil })
	require.NoError(t, err, "the panicking SignIn recorded its assertion")
	require.True(t, res.Created())
}

// TestKeyIsUniqueInTheSchema: PostgreSQL itself refuses a second row for
// one (issuer, subject), whatever writes it.
func TestKeyIsUniqueInTheSchema(t *testing.T) {
	schema := newSchema(t)
	db := openDB(t, schema)
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	k := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	_, err = st.Provision(t.Context(), k, userstore.Profile{}, time.Now())
	require.NoError(t, err)
	insert := `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name, groups, attributes,
		created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $3, '', '', '', '', 'null', 'null', now(), 0, now(), 0, now(), 0)`
	_, err = db.ExecContext(t.Context(), insert, "other", k.Issuer, k.Subject)
	require.ErrorContains(t, err, "SQLSTATE 23505")
	_, err = db.ExecContext(t.Context(), insert, "other", k.Issuer, "ADA")
	require.NoError(t, err, "keys compare byte for byte")
}
