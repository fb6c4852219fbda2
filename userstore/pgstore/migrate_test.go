package pgstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
)

// schemaV1 is the schema of version 1, as pgstore created it before roles
// and email lookup existed. It is a frozen copy, so that the test below
// checks the migration from what that release wrote, whatever later edits
// do to the package's own migrations.
var schemaV1 = []string{
	`CREATE TABLE samljit_schema_version (
		singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
		version   integer NOT NULL
	)`,
	`CREATE TABLE samljit_users (
		id              text COLLATE "C" PRIMARY KEY,
		issuer          text COLLATE "C" NOT NULL CHECK (issuer <> ''),
		subject         text COLLATE "C" NOT NULL CHECK (subject <> ''),
		email           text NOT NULL,
		display_name    text NOT NULL,
		given_name      text NOT NULL,
		family_name     text NOT NULL,
		groups          jsonb NOT NULL,
		attributes      jsonb NOT NULL,
		status          smallint NOT NULL DEFAULT 0,
		created_at      timestamptz NOT NULL,
		created_ns      smallint NOT NULL CHECK (created_ns BETWEEN 0 AND 999),
		updated_at      timestamptz NOT NULL,
		updated_ns      smallint NOT NULL CHECK (updated_ns BETWEEN 0 AND 999),
		last_sign_in_at timestamptz NOT NULL,
		last_sign_in_ns smallint NOT NULL CHECK (last_sign_in_ns BETWEEN 0 AND 999),
		UNIQUE (issuer, subject)
	)`,
	`CREATE INDEX samljit_users_created ON samljit_users (created_at, created_ns, id)`,
	`CREATE INDEX samljit_users_last_sign_in ON samljit_users (last_sign_in_at, last_sign_in_ns, id)`,
	`CREATE TABLE samljit_replay (
		issuer       text COLLATE "C" NOT NULL,
		assertion_id text COLLATE "C" NOT NULL,
		expires_at   timestamptz NOT NULL,
		expires_ns   smallint NOT NULL CHECK (expires_ns BETWEEN 0 AND 999),
		PRIMARY KEY (issuer, assertion_id)
	)`,
	`CREATE INDEX samljit_replay_expires ON samljit_replay (expires_at, expires_ns)`,
	`INSERT INTO samljit_schema_version (version) VALUES (1)`,
}

// TestMigrateFromVersion1 opens a schema written at version 1 and finds
// its users migrated: roles empty, the normalized email backfilled (in Go,
// so without Unicode folding) so that LookupEmail finds them, and the new
// columns written by later sign-ins.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV1)
	created := time.Date(2024, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	users := []struct{ id, subject, email string }{
		{"u1", "ada", " Ada.Lovelace@Example.COM\t"},
		{"u2", "grace", ""},
		{"u3", "kelvin", "\u212Aelvin@example.com"},
		{"u4", "long-s", "\u017Fam@example.com"},
	}
	// More users than one backfill batch, so that batching is exercised.
	for i := range 1500 {
		users = append(users, struct{ id, subject, email string }{
			fmt.Sprint("bulk-", i), fmt.Sprint("bulk-", i), fmt.Sprint("Bulk", i, "@Example.com"),
		})
	}
	for _, u := range users {
		_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
				groups, attributes, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
			VALUES ($1, 'https://idp.example/', $2, $3, 'Someone', '', '', '["g"]', '{"a": ["b"]}', 1, $4, 789, $4, 789, $4, 789)`,
			u.id, u.subject, u.email, created)
		require.NoError(t, err)
	}

	s := openMigrated(t, db)
	var indexes int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'samljit_users_email_norm'`, schema).Scan(&indexes))
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
	require.True(t, created.Add(789).Equal(u.CreatedAt))

	for _, tc := range []struct {
		email string
		want  []string
	}{
		{"ada.lovelace@example.com", []string{"u1"}},
		{"\u212Aelvin@example.com", []string{"u3"}},
		{"kelvin@example.com", nil},
		{"\u017Fam@example.com", []string{"u4"}},
		{"sam@example.com", nil},
		{"bulk0@example.com", []string{"bulk-0"}},
		{"BULK1499@example.com", []string{"bulk-1499"}},
	} {
		found, err := s.LookupEmail(ctx, tc.email)
		require.NoError(t, err)
		var got []string
		for _, u := range found {
			got = append(got, u.ID)
		}
		require.Equal(t, tc.want, got, "LookupEmail(%q) on migrated rows", tc.email)
	}

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
	found, err := s.LookupEmail(ctx, "ada.lovelace@example.com")
	require.NoError(t, err)
	require.Empty(t, found, "the old email still finds the user")

	// Opening again changes nothing.
	_, err = pgstore.Open(ctx, db, pgstore.Options{})
	require.NoError(t, err)
}

// TestMigrateRefusesSharedEmails: a schema where two users of one issuer
// share an email (as a race once allowed) is not silently fixed: opening
// it fails, naming them, and succeeds once one is resolved; then the
// unique index keeps it so.
func TestMigrateRefusesSharedEmails(t *testing.T) {
	ctx := t.Context()
	_, db := schemaAt(t, schemaV1)
	for _, u := range []struct{ id, issuer, email string }{
		{"u1", "https://idp.example/", "ada@example.com"},
		{"u2", "https://idp.example/", " ADA@example.com"},
		{"u3", "https://other.example/", "ada@example.com"},
		{"u4", userstore.LocalIssuer, "ada@example.com"},
		{"u5", userstore.LocalIssuer, "ada@example.com"},
	} {
		_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
				groups, attributes, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
			VALUES ($1, $2, $1, $3, '', '', '', 'null', 'null', now(), 0, now(), 0, now(), 0)`, u.id, u.issuer, u.email)
		require.NoError(t, err)
	}
	_, err := pgstore.Open(ctx, db, pgstore.Options{})
	require.ErrorIs(t, err, userstore.ErrEmailInUse)
	require.Contains(t, err.Error(), `2 users of "https://idp.example/" have "ada@example.com" (among them u1 and u2)`)

	_, err = db.ExecContext(ctx, `DELETE FROM samljit_users WHERE id = 'u2'`)
	require.NoError(t, err)
	s, err := pgstore.Open(ctx, db, pgstore.Options{})
	require.NoError(t, err)
	_, err = s.Provision(ctx, userstore.Key{Issuer: "https://idp.example/", Subject: "u6"}, userstore.Profile{Email: "Ada@Example.com"}, time.Now())
	require.ErrorIs(t, err, userstore.ErrEmailInUse)
}

// schemaV3 is the schema of version 3, the last before sessions were
// kept: version 1 (frozen above), the columns version 2 added and the
// unique email index of version 3, frozen likewise.
var schemaV3 = append(schemaV1[:len(schemaV1)-1:len(schemaV1)-1],
	`ALTER TABLE samljit_users
		ADD COLUMN roles jsonb NOT NULL DEFAULT 'null',
		ADD COLUMN local_roles jsonb NOT NULL DEFAULT 'null',
		ADD COLUMN email_norm text COLLATE "C" NOT NULL DEFAULT ''`,
	`CREATE INDEX samljit_users_email_norm ON samljit_users (email_norm, created_at, created_ns, id)`,
	`CREATE UNIQUE INDEX samljit_users_issuer_email ON samljit_users (issuer, email_norm) WHERE email_norm <> '' AND issuer <> 'urn:samljit:local'`,
	`INSERT INTO samljit_schema_version (version) VALUES (3)`,
)

// TestMigrateFromVersion3 opens a schema written at version 3 and finds
// it migrated to the sessions table and its indexes, its users kept, and
// sessions working on them.
func TestMigrateFromVersion3(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV3)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ('u1', 'https://idp.example/', 'ada', 'Ada@Example.com', '', '', '', 'null', 'null', '["admin"]', 'ada@example.com', $1, 789, $1, 789, $1, 789)`, created)
	require.NoError(t, err)

	s := openMigrated(t, db)
	var indexes string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
		WHERE schemaname = $1 AND tablename = 'samljit_sessions'`, schema).Scan(&indexes))
	require.Equal(t, "samljit_sessions_connection samljit_sessions_expires samljit_sessions_key samljit_sessions_name_id samljit_sessions_pkey", indexes, "the sessions table's indexes")

	// The migrated user signs in: a session of theirs is recorded, read
	// with them, and ended.
	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	require.NoError(t, s.CreateSession(ctx, userstore.Session{ID: "s1", Key: ada, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}))
	_, u, err := s.LookupSession(ctx, "s1", created)
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Equal(t, []string{"admin"}, u.Profile.Roles)
	n, err := s.EndSessions(ctx, ada, "", created)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// schemaV4 is the schema of version 4, the last before sessions kept
// their NameID: version 3 (frozen above) and the sessions table, frozen
// likewise.
var schemaV4 = append(schemaV3[:len(schemaV3)-1:len(schemaV3)-1],
	`CREATE TABLE samljit_sessions (
		id            text COLLATE "C" PRIMARY KEY,
		issuer        text COLLATE "C" NOT NULL,
		subject       text COLLATE "C" NOT NULL,
		connection    text NOT NULL,
		session_index text COLLATE "C" NOT NULL,
		created_at    timestamptz NOT NULL,
		created_ns    smallint NOT NULL CHECK (created_ns BETWEEN 0 AND 999),
		expires_at    timestamptz NOT NULL,
		expires_ns    smallint NOT NULL CHECK (expires_ns BETWEEN 0 AND 999)
	)`,
	`CREATE INDEX samljit_sessions_key ON samljit_sessions (issuer, subject, session_index)`,
	`CREATE INDEX samljit_sessions_expires ON samljit_sessions (expires_at, expires_ns)`,
	`INSERT INTO samljit_schema_version (version) VALUES (4)`,
)

// TestMigrateFromVersion4 opens a schema written at version 4 with a live
// session, and finds the session kept with an empty NameID (so a Single
// Logout request by NameID leaves it alone), and sessions made after the
// migration keeping theirs.
func TestMigrateFromVersion4(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV4)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ('u1', 'https://idp.example/', 'ada', 'ada@example.com', '', '', '', 'null', 'null', 'null', 'ada@example.com', $1, 0, $1, 0, $1, 0)`, created)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO samljit_sessions (id, issuer, subject, connection, session_index, created_at, created_ns, expires_at, expires_ns)
		VALUES ('old', 'https://idp.example/', 'ada', 'acme', '_i1', $1, 0, $2, 0)`, created, created.Add(time.Hour))
	require.NoError(t, err)

	s := openMigrated(t, db)
	var indexes string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
		WHERE schemaname = $1 AND tablename = 'samljit_sessions'`, schema).Scan(&indexes))
	require.Equal(t, "samljit_sessions_connection samljit_sessions_expires samljit_sessions_key samljit_sessions_name_id samljit_sessions_pkey", indexes, "the sessions table's indexes")

	old, u, err := s.LookupSession(ctx, "old", created)
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Equal(t, "_i1", old.SessionIndex)
	require.Equal(t, userstore.NameID{}, old.NameID)

	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	nid := userstore.NameID{Value: "nid-ada", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"}
	require.NoError(t, s.CreateSession(ctx, userstore.Session{ID: "new", Key: ada, SessionIndex: "_i1", NameID: nid, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}))
	n, err := s.EndSessionsByNameID(ctx, ada.Issuer, "nid-ada", "_i1", created)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the session made after the migration has the NameID")
	_, _, err = s.LookupSession(ctx, "old", created)
	require.NoError(t, err)
}
