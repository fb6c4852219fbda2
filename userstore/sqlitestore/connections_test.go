package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
	"github.com/samljit/samljit/userstore/storetest"
)

// TestConnectionsConformance runs the connection store suite on SQLite,
// with the recommended pool and with one connection.
func TestConnectionsConformance(t *testing.T) {
	for _, conns := range []int{0, 1} {
		t.Run(map[int]string{0: "DSN", 1: "OneConnection"}[conns], func(t *testing.T) {
			storetest.RunConnections(t, func(t *testing.T) userstore.ConnectionAdmin {
				db := openDB(t, sqlitestore.DSN(tempPath(t)))
				if conns > 0 {
					db.SetMaxOpenConns(conns)
				}
				return openStore(t, db)
			})
		})
	}
}

// schemaV6 is the schema of version 6, the last before connections were
// kept as data: version 5 (frozen above) and a provisioning directory's
// user names and groups, frozen likewise.
var schemaV6 = append(schemaV5[:len(schemaV5)-1:len(schemaV5)-1],
	`ALTER TABLE users ADD COLUMN user_name TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE users ADD COLUMN user_name_norm TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
	`CREATE UNIQUE INDEX users_issuer_user_name ON users (issuer, user_name_norm) WHERE user_name_norm <> ''`,
	`CREATE INDEX users_issuer_created ON users (issuer, created_at, id)`,
	`CREATE TABLE scim_groups (
		id           TEXT    NOT NULL PRIMARY KEY COLLATE BINARY,
		issuer       TEXT    NOT NULL COLLATE BINARY,
		display_name TEXT    NOT NULL COLLATE BINARY,
		external_id  TEXT    NOT NULL COLLATE BINARY,
		created_at   INTEGER NOT NULL,
		updated_at   INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX scim_groups_issuer_created ON scim_groups (issuer, created_at, id)`,
	`CREATE INDEX scim_groups_display_name ON scim_groups (issuer, display_name, created_at, id)`,
	`CREATE INDEX scim_groups_external_id ON scim_groups (issuer, external_id, created_at, id)`,
	`CREATE TABLE scim_members (
		group_id TEXT NOT NULL COLLATE BINARY,
		user_id  TEXT NOT NULL COLLATE BINARY,
		PRIMARY KEY (group_id, user_id)
	) WITHOUT ROWID`,
	`CREATE INDEX scim_members_user ON scim_members (user_id)`,
	`PRAGMA user_version = 6`,
)

// TestMigrateFromVersion6 opens a database written at schema version 6
// with a user, and finds it migrated: the user kept, no connection stored
// at version 0, connections stored and listed, a domain kept to one
// connection; and the version, a name and a domain each read through an
// index, not a scan.
func TestMigrateFromVersion6(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV6)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, email_norm, created_at, updated_at, last_sign_in_at)
		VALUES ('u1', 'https://idp.example/', 'ada', 'ada@example.com', 'ada@example.com', ?1, ?1, ?1)`, created.UnixNano())
	require.NoError(t, err)
	db, s := reopenMigrated(t, db, path)

	u, err := s.Lookup(ctx, userstore.Key{Issuer: "https://idp.example/", Subject: "ada"})
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	v, err := s.ConnectionsVersion(ctx)
	require.NoError(t, err)
	require.Zero(t, v)
	list, lv, err := s.ListConnections(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
	require.Zero(t, lv)

	acme := userstore.Connection{Name: "acme", IDPMetadataURL: "https://idp.acme.example/md", Preset: "entra", Enabled: true,
		Domains: []userstore.Domain{{Name: "acme.example", Verified: true}, {Name: "acme.test"}}}
	got, err := s.PutConnection(ctx, acme, created)
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Revision)
	_, err = s.PutConnection(ctx, userstore.Connection{Name: "globex", IDPMetadataURL: "https://idp.globex.example/md",
		Domains: []userstore.Domain{{Name: "acme.test"}}}, created)
	require.ErrorIs(t, err, userstore.ErrDomainTaken)
	read, err := s.GetConnection(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, acme.Domains, read.Domains, "the domains in the order given")

	for _, q := range []struct{ query, index string }{
		{`SELECT version FROM connections_version WHERE id = 1`, "INTEGER PRIMARY KEY"},
		{`SELECT enabled FROM connections WHERE name = ?1`, "sqlite_autoindex_connections_1"},
		{`SELECT connection FROM connection_domains WHERE domain = ?1`, "PRIMARY KEY"},
		{`SELECT domain FROM connection_domains WHERE connection = ?1 ORDER BY position`, "connection_domains_connection"},
		{`SELECT id FROM sessions WHERE connection = ?1`, "sessions_connection"},
	} {
		plan := queryPlan(t, db, q.query, "v")
		require.Contains(t, plan, "SEARCH ", "%s: %s", q.query, plan)
		require.Contains(t, plan, q.index, "%s: %s", q.query, plan)
	}
}

// BenchmarkConnectionsAtScale measures the connection poll and a read by
// name with 1 and with 10,000 stored connections, paired
// (storetest.BenchConnectionsScale): the target is at most 1.1×.
func BenchmarkConnectionsAtScale(b *testing.B) {
	open := func(n int) *sqlitestore.Store {
		s := openStore(b, openDB(b, sqlitestore.DSN(tempPath(b))))
		storetest.PopulateConnections(b, s, n)
		return s
	}
	storetest.BenchConnectionsScale(b, open(1), open(10_000), 1, 10_000)
}
