package sqlitestore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// schemaV7 is the schema of version 7, the last before each issuer's
// number of users and groups was kept: version 6 (frozen above) and
// connections kept as data, frozen likewise.
var schemaV7 = append(schemaV6[:len(schemaV6)-1:len(schemaV6)-1],
	`CREATE TABLE connections (
		name             TEXT    NOT NULL UNIQUE COLLATE BINARY,
		display_name     TEXT    NOT NULL,
		idp_metadata     BLOB    NOT NULL,
		idp_metadata_url TEXT    NOT NULL,
		preset           TEXT    NOT NULL,
		entity_id        TEXT    NOT NULL,
		enabled          INTEGER NOT NULL,
		revision         INTEGER NOT NULL,
		updated_at       INTEGER NOT NULL
	)`,
	`CREATE TABLE connection_domains (
		domain     TEXT    NOT NULL PRIMARY KEY COLLATE BINARY,
		connection TEXT    NOT NULL COLLATE BINARY,
		position   INTEGER NOT NULL,
		verified   INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX connection_domains_connection ON connection_domains (connection, position)`,
	`CREATE TABLE connections_version (
		id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	)`,
	`INSERT INTO connections_version (id, version) VALUES (1, 0)`,
	`CREATE INDEX sessions_connection ON sessions (connection)`,
	`PRAGMA user_version = 7`,
)

// TestMigrateFromVersion7 opens a database written at schema version 7
// with users and groups of two issuers and local accounts, and finds each
// issuer's numbers backfilled, local accounts not counted, the numbers
// kept by later writes, and read from one row by its primary key.
func TestMigrateFromVersion7(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV7)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	const acme, globex = "https://idp.acme.example/", "https://idp.globex.example/"
	for i, iss := range []string{acme, acme, acme, globex, userstore.LocalIssuer, userstore.LocalIssuer} {
		_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, created_at, updated_at, last_sign_in_at)
			VALUES (?1, ?2, ?1, ?3, ?3, ?3)`, fmt.Sprint("u", i), iss, created.UnixNano())
		require.NoError(t, err)
	}
	for i, iss := range []string{acme, globex, globex} {
		_, err := db.ExecContext(ctx, `INSERT INTO scim_groups (id, issuer, display_name, external_id, created_at, updated_at)
			VALUES (?1, ?2, ?1, '', ?3, ?3)`, fmt.Sprint("g", i), iss, created.UnixNano())
		require.NoError(t, err)
	}
	db, s := reopenMigrated(t, db, path)

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
	require.NoError(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM directory_counts WHERE issuer = ?`, userstore.LocalIssuer).Scan(&local))
	require.Zero(t, local, "the local issuer has a row")

	// Writes after the migration keep the numbers.
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

	for _, q := range []struct{ query, plan string }{
		{`SELECT COALESCE((SELECT user_count FROM directory_counts WHERE issuer = ?1), 0)`, "SEARCH directory_counts USING PRIMARY KEY (issuer=?)"},
		// A page by key is a range of the index lists read, not a skip.
		{`SELECT id FROM users WHERE issuer = ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT 10`,
			"INDEX users_issuer_created (issuer=? AND (created_at,id)>(?,?))"},
		{`SELECT id FROM scim_groups WHERE issuer = ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT 10`,
			"INDEX scim_groups_issuer_created (issuer=? AND (created_at,id)>(?,?))"},
	} {
		plan := queryPlan(t, db, q.query, acme, 1, "x")
		require.Contains(t, plan, q.plan, "%s", plan)
	}
}
