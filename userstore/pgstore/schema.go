package pgstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// schema is the store's schema: its migrations, and its version kept in
// the table samljit_schema_version.
var schema = sqlcore.Schema{
	Version: SchemaVersion,
	TooNew:  ErrSchemaTooNew,
	Migrations: []sqlcore.Migration{
		0: sqlcore.Statements(
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
		),
		1: sqlcore.Steps(
			// Adding a column with a constant default rewrites no
			// rows (PostgreSQL 11 and later).
			sqlcore.Statements(`ALTER TABLE samljit_users
				ADD COLUMN roles jsonb NOT NULL DEFAULT 'null',
				ADD COLUMN local_roles jsonb NOT NULL DEFAULT 'null',
				ADD COLUMN email_norm text COLLATE "C" NOT NULL DEFAULT ''`),
			backfillEmailNorm,
			sqlcore.Statements(`CREATE INDEX samljit_users_email_norm ON samljit_users (email_norm, created_at, created_ns, id)`),
		),
		2: sqlcore.Steps(
			sqlcore.SharedEmails("samljit_users"),
			sqlcore.Statements(sqlcore.EmailIndex(emailIndex, "samljit_users")),
		),
		3: sqlcore.Statements(
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
		),
		// Sessions made before it have an empty NameID: an IdP's Single
		// Logout request cannot find them, and they end as before.
		4: sqlcore.Statements(
			`ALTER TABLE samljit_sessions
				ADD COLUMN name_id text COLLATE "C" NOT NULL DEFAULT '',
				ADD COLUMN name_id_format text NOT NULL DEFAULT '',
				ADD COLUMN name_qualifier text NOT NULL DEFAULT '',
				ADD COLUMN sp_name_qualifier text NOT NULL DEFAULT ''`,
			`CREATE INDEX samljit_sessions_name_id ON samljit_sessions (issuer, name_id, session_index)`,
		),
		// A provisioning directory's (SCIM's) user names and groups.
		// Users made before it have no user name.
		5: sqlcore.Statements(
			`ALTER TABLE samljit_users
				ADD COLUMN user_name text NOT NULL DEFAULT '',
				ADD COLUMN user_name_norm text COLLATE "C" NOT NULL DEFAULT ''`,
			`CREATE UNIQUE INDEX `+userNameIndex+` ON samljit_users (issuer, user_name_norm) WHERE user_name_norm <> ''`,
			// Room on each page for an updated row, so that a write that
			// changes no indexed column (a directory's PATCH of a name)
			// is a heap-only update that touches no index. It applies
			// to pages written from now on.
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
		),
		// Connections kept as data.
		6: connectionsSchema,
		// Each issuer's number of users and groups.
		7: directoryCountsSchema,
	},
	ReadVersion: schemaVersion,
	WriteVersion: func(ctx context.Context, q sqlcore.Querier, v int) error {
		_, err := q.ExecContext(ctx, `INSERT INTO samljit_schema_version (version) VALUES ($1)
			ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version`, v)
		return err
	},
}

// backfillBatch is how many users one statement of backfillEmailNorm
// updates.
const backfillBatch = 1000

// backfillEmailNorm sets the normalized email of every user from its email,
// computed with userstore.NormalizeEmail rather than SQL. It updates the
// rows in batches, each passed as one JSON object from ID to normalized
// email, which any driver can send.
func backfillEmailNorm(ctx context.Context, q sqlcore.Querier) error {
	todo, err := sqlcore.NormalizedEmails(ctx, q, `SELECT id, email FROM samljit_users WHERE email <> ''`)
	if err != nil {
		return err
	}
	for batch := range slices.Chunk(todo, backfillBatch) {
		m := make(map[string]string, len(batch))
		for _, r := range batch {
			m[r.ID] = r.Norm
		}
		j, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("normalize emails: %w", err)
		}
		if _, err := q.ExecContext(ctx, `UPDATE samljit_users AS u SET email_norm = n.value
			FROM jsonb_each_text($1::jsonb) AS n WHERE u.id = n.key`, string(j)); err != nil {
			return fmt.Errorf("normalize emails: %w", err)
		}
	}
	return nil
}

// schemaVersion returns the schema version recorded in the current schema,
// 0 when there is none, or an error when the record is missing or below 1.
func schemaVersion(ctx context.Context, q sqlcore.Querier) (int64, error) {
	// The catalog is read with a query rather than to_regclass, which can
	// answer from a cache that has not yet seen a table another instance
	// created while this one waited for the migration lock.
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = 'samljit_schema_version' AND n.nspname = current_schema())`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int64
	err := q.QueryRowContext(ctx, `SELECT version FROM samljit_schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, errors.New("read schema version: samljit_schema_version is empty")
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	case v < 1:
		return 0, fmt.Errorf("unknown schema version %d", v)
	}
	return v, nil
}

// migrationLock takes the transaction-level advisory lock that serializes
// schema changes by instances using the same schema.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtextextended('samljit/pgstore/' || coalesce(current_schema(), ''), 0))`

// beginMigration begins the transaction that creates or migrates the
// schema, holding the migration lock.
func (s *Store) beginMigration(ctx context.Context) (*sqlcore.Tx, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, migrationLock); err != nil {
		return nil, tx.End(fmt.Errorf("take migration lock: %w", err))
	}
	return tx, nil
}
