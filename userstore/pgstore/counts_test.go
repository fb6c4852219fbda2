package pgstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
)

// schemaV7 is the schema of version 7, the last before each issuer's
// number of users and groups was kept: version 6 (frozen above) and
// connections kept as data, frozen likewise.
var schemaV7 = append(schemaV6[:len(schemaV6)-1:len(schemaV6)-1],
	`CREATE TABLE samljit_connections (
		name             text COLLATE "C" PRIMARY KEY,
		display_name     text NOT NULL,
		idp_metadata     bytea NOT NULL,
		idp_metadata_url text NOT NULL,
		preset           text NOT NULL,
		entity_id        text NOT NULL,
		enabled          boolean NOT NULL,
		revision         bigint NOT NULL,
		updated_at       timestamptz NOT NULL,
		updated_ns       smallint NOT NULL CHECK (updated_ns BETWEEN 0 AND 999)
	)`,
	`CREATE TABLE samljit_connection_domains (
		domain     text COLLATE "C" NOT NULL,
		connection text COLLATE "C" NOT NULL,
		position   integer NOT NULL,
		verified   boolean NOT NULL,
		CONSTRAINT samljit_connection_domains_pkey PRIMARY KEY (domain)
	)`,
	`CREATE INDEX samljit_connection_domains_connection ON samljit_connection_domains (connection, position)`,
	`CREATE TABLE samljit_connections_version (
		singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
		version   bigint NOT NULL
	)`,
	`INSERT INTO samljit_connections_version (version) VALUES (0)`,
	`CREATE INDEX samljit_sessions_connection ON samljit_sessions (connection)`,
	`INSERT INTO samljit_schema_version (version) VALUES (7)`,
)

// insertV7User inserts a user row as version 7 wrote it.
func insertV7User(ctx context.Context, db *sql.DB, id, issuer string, created time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $1, '', '', '', '', 'null', 'null', 'null', '', $3, 0, $3, 0, $3, 0)`, id, issuer, created)
	return err
}

// TestMigrateFromVersion7 opens a schema written at version 7 with users
// and groups of two issuers and local accounts, and finds each issuer's
// numbers backfilled, local accounts not counted, and the numbers kept
// by later writes.
func TestMigrateFromVersion7(t *testing.T) {
	ctx := t.Context()
	_, db := schemaAt(t, schemaV7)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	const acme, globex = "https://idp.acme.example/", "https://idp.globex.example/"
	for i, iss := range []string{acme, acme, acme, globex, userstore.LocalIssuer, userstore.LocalIssuer} {
		require.NoError(t, insertV7User(ctx, db, fmt.Sprint("u", i), iss, created))
	}
	for i, iss := range []string{acme, globex, globex} {
		_, err := db.ExecContext(ctx, `INSERT INTO samljit_groups (id, issuer, display_name, external_id, created_at, created_ns, updated_at, updated_ns)
			VALUES ($1, $2, $1, '', $3, 0, $3, 0)`, fmt.Sprint("g", i), iss, created)
		require.NoError(t, err)
	}
	s := openMigrated(t, db)

	totals := func(iss string) (users, groups int) {
		t.Helper()
		_, users, err := s.ListUsers(ctx, iss, 0, 0)
		require.NoError(t, err)
		_, groups, err = s.ListGroups(ctx, iss, 0, 0)
		require.NoError(t, err)
		return users, groups
	}
	for _, tc := range []struct {
		issuer        string
		users, groups int
	}{{acme, 3, 1}, {globex, 1, 2}, {"https://idp.unknown.example/", 0, 0}} {
		users, groups := totals(tc.issuer)
		require.Equal(t, tc.users, users, "users of %s", tc.issuer)
		require.Equal(t, tc.groups, groups, "groups of %s", tc.issuer)
	}
	var local int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM samljit_directory_counts WHERE issuer = $1`, userstore.LocalIssuer).Scan(&local))
	require.Zero(t, local, "the local issuer has a row")

	_, err := s.Provision(ctx, userstore.Key{Issuer: acme, Subject: "new"}, userstore.Profile{}, created)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, userstore.Key{Issuer: globex, Subject: "u3"}))
	_, err = s.DeleteGroup(ctx, globex, "g1", created, nil)
	require.NoError(t, err)
	users, _ := totals(acme)
	require.Equal(t, 4, users, "acme's users after a creation")
	users, groups := totals(globex)
	require.Equal(t, 0, users, "globex's users after a deletion")
	require.Equal(t, 1, groups, "globex's groups after a deletion")

	// A TRUNCATE, which fires no DELETE trigger, leaves nothing counted.
	_, err = db.ExecContext(ctx, `TRUNCATE samljit_users, samljit_groups, samljit_group_members`)
	require.NoError(t, err)
	for _, iss := range []string{acme, globex} {
		users, groups := totals(iss)
		require.Zero(t, users, "users of %s after a TRUNCATE", iss)
		require.Zero(t, groups, "groups of %s after a TRUNCATE", iss)
	}
	_, err = s.Provision(ctx, userstore.Key{Issuer: acme, Subject: "after"}, userstore.Profile{}, created)
	require.NoError(t, err)
	users, _ = totals(acme)
	require.Equal(t, 1, users, "acme's users after the TRUNCATE and a creation")
}

// TestCountsUnderConcurrentCreations creates users of one issuer from
// many connections at once, each connection counting in its own slot, and
// finds the total exact.
func TestCountsUnderConcurrentCreations(t *testing.T) {
	st, _, _ := openStore(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := userstore.Key{Issuer: "https://idp.example/", Subject: fmt.Sprint(w, "-", i)}
				if _, err := st.Provision(t.Context(), k, userstore.Profile{}, time.Now()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, total, err := st.ListUsers(t.Context(), "https://idp.example/", 0, 0)
	require.NoError(t, err)
	require.Equal(t, workers*each, total)
}

// TestMigrationCountsRowsOfOlderInstances: while one instance migrates, an
// instance of version 7 keeps creating users; every user it created is
// counted once, whether it committed before the migration or after it.
func TestMigrationCountsRowsOfOlderInstances(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV7)
	old := openDB(t, schema)
	created := time.Now()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var inserted atomic.Int64
	insertErr := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := insertV7User(ctx, old, fmt.Sprint("old-", inserted.Load()), "https://idp.example/", created); err != nil {
				insertErr <- err
				return
			}
			inserted.Add(1)
		}
	})
	for inserted.Load() < 20 && len(insertErr) == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err := pgstore.Open(ctx, db, pgstore.Options{})
	require.NoError(t, err)
	before := inserted.Load()
	for inserted.Load() < before+20 && len(insertErr) == 0 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(insertErr)
	require.NoError(t, <-insertErr)
	var rows int64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM samljit_users`).Scan(&rows))
	require.Equal(t, inserted.Load(), rows)
	s := openMigrated(t, db)
	_, total, err := s.ListUsers(ctx, "https://idp.example/", 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, rows, total)
}
