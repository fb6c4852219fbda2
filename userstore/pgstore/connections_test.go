package pgstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/storetest"
)

// TestConnectionsConformance runs the connection store suite on
// PostgreSQL.
func TestConnectionsConformance(t *testing.T) {
	testDSN(t)
	storetest.RunConnections(t, func(t *testing.T) userstore.ConnectionAdmin {
		st, _, _ := openStore(t)
		return st
	})
}

// schemaV6 is the schema of version 6, the last before connections were
// kept as data: version 5 (frozen above) and a provisioning directory's
// user names and groups, frozen likewise.
var schemaV6 = append(schemaV5[:len(schemaV5)-1:len(schemaV5)-1],
	`ALTER TABLE samljit_users
		ADD COLUMN user_name text NOT NULL DEFAULT '',
		ADD COLUMN user_name_norm text COLLATE "C" NOT NULL DEFAULT ''`,
	`CREATE UNIQUE INDEX samljit_users_issuer_user_name ON samljit_users (issuer, user_name_norm) WHERE user_name_norm <> ''`,
	`ALTER TABLE samljit_users SET (fillfactor = 90)`,
	`CREATE INDEX samljit_users_issuer_created ON samljit_users (issuer, created_at, created_ns, id)`,
	`CREATE TABLE samljit_groups (
		id           text COLLATE "C" PRIMARY KEY,
		issuer       text COLLATE "C" NOT NULL,
		display_name text COLLATE "C" NOT NULL,
		external_id  text COLLATE "C" NOT NULL,
		created_at   timestamptz NOT NULL,
		created_ns   smallint NOT NULL CHECK (created_ns BETWEEN 0 AND 999),
		updated_at   timestamptz NOT NULL,
		updated_ns   smallint NOT NULL CHECK (updated_ns BETWEEN 0 AND 999)
	)`,
	`CREATE INDEX samljit_groups_issuer_created ON samljit_groups (issuer, created_at, created_ns, id)`,
	`CREATE INDEX samljit_groups_display_name ON samljit_groups (issuer, display_name, created_at, created_ns, id)`,
	`CREATE INDEX samljit_groups_external_id ON samljit_groups (issuer, external_id, created_at, created_ns, id)`,
	`CREATE TABLE samljit_group_members (
		group_id text COLLATE "C" NOT NULL,
		user_id  text COLLATE "C" NOT NULL,
		PRIMARY KEY (group_id, user_id)
	)`,
	`CREATE INDEX samljit_group_members_user ON samljit_group_members (user_id)`,
	`INSERT INTO samljit_schema_version (version) VALUES (6)`,
)

// TestMigrateFromVersion6 opens a schema written at version 6 with a user,
// and finds it migrated: the user kept, no connection stored at version 0,
// connections stored and read back, a domain kept to one connection, and
// the indexes that serve a name and a domain in place; with sequential
// scans off, a read by name or domain is an index scan.
func TestMigrateFromVersion6(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV6)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ('u1', 'https://idp.example/', 'ada', 'ada@example.com', '', '', '', 'null', 'null', 'null', 'ada@example.com', $1, 0, $1, 0, $1, 0)`, created)
	require.NoError(t, err)
	s := openMigrated(t, db)

	u, err := s.Lookup(ctx, userstore.Key{Issuer: "https://idp.example/", Subject: "ada"})
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	v, err := s.ConnectionsVersion(ctx)
	require.NoError(t, err)
	require.Zero(t, v)

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
	require.True(t, created.Equal(read.UpdatedAt))

	var indexes string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
		WHERE schemaname = $1 AND tablename IN ('samljit_connections', 'samljit_connection_domains', 'samljit_connections_version')`, schema).Scan(&indexes))
	require.Equal(t, "samljit_connection_domains_connection samljit_connection_domains_pkey samljit_connections_pkey samljit_connections_version_pkey", indexes)

	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SET enable_seqscan = off`)
	require.NoError(t, err)
	for _, q := range []struct{ query, index string }{
		{`SELECT enabled FROM samljit_connections WHERE name = 'acme'`, "samljit_connections_pkey"},
		{`SELECT connection FROM samljit_connection_domains WHERE domain = 'acme.test'`, "samljit_connection_domains_pkey"},
		{`SELECT domain FROM samljit_connection_domains WHERE connection = 'acme' ORDER BY position`, "samljit_connection_domains_connection"},
		{`DELETE FROM samljit_sessions WHERE connection = 'acme'`, "samljit_sessions_connection"},
	} {
		rows, err := conn.QueryContext(ctx, `EXPLAIN `+q.query)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		require.NoError(t, rows.Err())
		require.Contains(t, strings.Join(plan, "; "), q.index, "%s: %s", q.query, plan)
	}
}

// BenchmarkConnectionsAtScale measures the connection poll and a read by
// name with 1 and with 10,000 stored connections, paired
// (storetest.BenchConnectionsScale): the target is at most 1.1×.
func BenchmarkConnectionsAtScale(b *testing.B) {
	testDSN(b)
	open := func(n int) userstore.ConnectionAdmin {
		s, _, _ := openStore(b)
		storetest.PopulateConnections(b, s, n)
		return s
	}
	storetest.BenchConnectionsScale(b, open(1), open(10_000), 1, 10_000)
}
