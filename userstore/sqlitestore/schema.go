package sqlitestore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// schema is the store's schema: its migrations, and its version kept in
// the database's user_version.
var schema = sqlcore.Schema{
	Version: SchemaVersion,
	TooNew:  ErrSchemaTooNew,
	ReadVersion: func(ctx context.Context, q sqlcore.Querier) (int64, error) {
		var v int64
		if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return 0, fmt.Errorf("read schema version: %w", err)
		}
		return v, nil
	},
	WriteVersion: func(ctx context.Context, q sqlcore.Querier, v int) error {
		_, err := q.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(v))
		return err
	},
	Migrations: []sqlcore.Migration{
		0: sqlcore.Statements(
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
		),
		1: sqlcore.Steps(
			sqlcore.Statements(
				`ALTER TABLE users ADD COLUMN roles_json TEXT NOT NULL DEFAULT 'null'`,
				`ALTER TABLE users ADD COLUMN local_roles_json TEXT NOT NULL DEFAULT 'null'`,
				`ALTER TABLE users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
			),
			backfillEmailNorm,
			sqlcore.Statements(`CREATE INDEX users_email_norm ON users (email_norm, created_at, id)`),
		),
		2: sqlcore.Steps(
			sqlcore.SharedEmails("users"),
			sqlcore.Statements(sqlcore.EmailIndex("users_issuer_email", "users")),
		),
		3: sqlcore.Statements(
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
		),
		// Sessions made before it have an empty NameID: an IdP's Single
		// Logout request cannot find them, and they end as before.
		4: sqlcore.Statements(
			`ALTER TABLE sessions ADD COLUMN name_id TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
			`ALTER TABLE sessions ADD COLUMN name_id_format TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE sessions ADD COLUMN name_qualifier TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE sessions ADD COLUMN sp_name_qualifier TEXT NOT NULL DEFAULT ''`,
			`CREATE INDEX sessions_name_id ON sessions (issuer, name_id, session_index)`,
		),
		// A provisioning directory's (SCIM's) user names and groups.
		// Users made before it have no user name.
		5: sqlcore.Statements(
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
		),
		// Connections kept as data.
		6: connectionsSchema,
		// Each issuer's number of users and groups.
		7: directoryCountsSchema,
	},
}

// backfillEmailNorm sets the normalized email of every user from its email,
// computed with userstore.NormalizeEmail rather than SQL, one prepared
// statement a user.
func backfillEmailNorm(ctx context.Context, q sqlcore.Querier) error {
	todo, err := sqlcore.NormalizedEmails(ctx, q, `SELECT id, email FROM users WHERE email <> ''`)
	if err != nil || len(todo) == 0 {
		return err
	}
	st, err := q.PrepareContext(ctx, `UPDATE users SET email_norm = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("normalize emails: %w", err)
	}
	defer st.Close()
	for _, r := range todo {
		if _, err := st.ExecContext(ctx, r.Norm, r.ID); err != nil {
			return fmt.Errorf("normalize email of user %s: %w", r.ID, err)
		}
	}
	return nil
}
