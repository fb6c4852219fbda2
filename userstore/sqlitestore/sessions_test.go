package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// schemaV3 is the schema of version 3, the last before sessions were
// kept: version 1 (frozen above), the columns version 2 added and the
// unique email index of version 3, frozen likewise.
var schemaV3 = append(schemaV1[:len(schemaV1)-1:len(schemaV1)-1],
	`ALTER TABLE users ADD COLUMN roles_json TEXT NOT NULL DEFAULT 'null'`,
	`ALTER TABLE users ADD COLUMN local_roles_json TEXT NOT NULL DEFAULT 'null'`,
	`ALTER TABLE users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
	`CREATE INDEX users_email_norm ON users (email_norm, created_at, id)`,
	`CREATE UNIQUE INDEX users_issuer_email ON users (issuer, email_norm) WHERE email_norm <> '' AND issuer <> 'urn:samljit:local'`,
	`PRAGMA user_version = 3`,
)

// TestMigrateFromVersion3 opens a database written at schema version 3
// and finds it migrated to the sessions table and its indexes, its users
// kept, and sessions working on the migrated users.
func TestMigrateFromVersion3(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV3)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, email_norm, roles_json, created_at, updated_at, last_sign_in_at)
		VALUES ('u1', 'https://idp.example/', 'ada', 'Ada@Example.com', 'ada@example.com', '["admin"]', ?1, ?1, ?1)`, created.UnixNano())
	require.NoError(t, err)
	db, s := reopenMigrated(t, db, path)
	var objects string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE tbl_name = 'sessions' ORDER BY name)`).Scan(&objects))
	require.Equal(t, "sessions sessions_connection sessions_expires_at sessions_key sessions_name_id", objects, "the sessions table and its indexes")

	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	u, err := s.Lookup(ctx, ada)
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Equal(t, []string{"admin"}, u.Profile.Roles)

	sess := userstore.Session{ID: "s1", Key: ada, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	require.NoError(t, s.CreateSession(ctx, sess))
	got, gu, err := s.LookupSession(ctx, "s1", created)
	require.NoError(t, err)
	require.Equal(t, "u1", gu.ID)
	require.True(t, sess.ExpiresAt.Equal(got.ExpiresAt))
	require.NoError(t, s.Suspend(ctx, ada))
	_, _, err = s.LookupSession(ctx, "s1", created)
	require.ErrorIs(t, err, userstore.ErrNotFound)
}

// schemaV4 is the schema of version 4, the last before sessions kept
// their NameID: version 3 (frozen above) and the sessions table, frozen
// likewise.
var schemaV4 = append(schemaV3[:len(schemaV3)-1:len(schemaV3)-1],
	`CREATE TABLE sessions (
		id            TEXT    NOT NULL PRIMARY KEY COLLATE BINARY,
		issuer        TEXT    NOT NULL COLLATE BINARY,
		subject       TEXT    NOT NULL COLLATE BINARY,
		connection    TEXT    NOT NULL,
		session_index TEXT    NOT NULL COLLATE BINARY,
		created_at    INTEGER NOT NULL,
		expires_at    INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX sessions_key ON sessions (issuer, subject, session_index)`,
	`CREATE INDEX sessions_expires_at ON sessions (expires_at)`,
	`PRAGMA user_version = 4`,
)

// TestMigrateFromVersion4 opens a database written at schema version 4
// with a live session, and finds the session kept with an empty NameID
// (so a Single Logout request by NameID leaves it alone), and sessions
// made after the migration keeping theirs.
func TestMigrateFromVersion4(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV4)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, email_norm, created_at, updated_at, last_sign_in_at)
		VALUES ('u1', 'https://idp.example/', 'ada', 'ada@example.com', 'ada@example.com', ?1, ?1, ?1)`, created.UnixNano())
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO sessions (id, issuer, subject, connection, session_index, created_at, expires_at)
		VALUES ('old', 'https://idp.example/', 'ada', 'acme', '_i1', ?1, ?2)`, created.UnixNano(), created.Add(time.Hour).UnixNano())
	require.NoError(t, err)
	db, s := reopenMigrated(t, db, path)
	var objects string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE tbl_name = 'sessions' ORDER BY name)`).Scan(&objects))
	require.Equal(t, "sessions sessions_connection sessions_expires_at sessions_key sessions_name_id", objects, "the sessions table and its indexes")

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
