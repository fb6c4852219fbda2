// Package pgstore is an implementation of [userstore.Store],
// [userstore.ReplayCache], [userstore.Admin], [userstore.SignInStore] and
// [userstore.Linker] on PostgreSQL, for applications that run several
// instances against one database.
//
// The package uses only database/sql: it imports no SQL driver, so the
// application chooses one and opens the *sql.DB itself. It is written for and
// tested with the database/sql driver of github.com/jackc/pgx/v5
// (import _ "github.com/jackc/pgx/v5/stdlib", driver name "pgx") on
// PostgreSQL 15. It needs PostgreSQL 11 or later.
//
// # Multi-instance guarantees
//
// Every guarantee below holds across any number of processes, each with its
// own connection pool, as long as they use the same database and schema:
//
//   - [Open] creates or migrates the schema in one transaction that holds a
//     transaction-level advisory lock, so instances starting at once end
//     with one schema; the others wait for the lock and find it current.
//   - [Store.Provision] is one SQL statement, atomic per key: concurrent
//     first sign-ins of one person, on any instances, create exactly one
//     user, and every call sees a consistent before and after image.
//   - [Store.ConsumeAssertion] is one SQL statement: an assertion consumed
//     on one instance is refused as a replay on every other.
//   - [Store.SignIn] records the assertion and provisions the user in one
//     transaction that locks the user's row (SELECT … FOR UPDATE), so it
//     has the guarantees of ConsumeAssertion and Provision together.
//   - [Store.Link] and the role changes ([Store.GrantRole],
//     [Store.RevokeRole]) are atomic too: a transaction locking the row, or
//     a single statement.
//   - Nothing is cached in the process: a suspension made by any instance
//     (or by SQL) is seen by the next Lookup on every instance.
//
// Sessions are not kept in the database. The jit middleware keeps them in
// cookies sealed with jit.Options.SessionKeys, so every instance must be
// configured with the same SessionKeys (and the same SP key pair and
// RootURL), or a session issued by one instance is refused by the next. To
// rotate the keys, prepend a new pair on every instance and keep the old
// pair after it until every session sealed with it has expired
// (jit.Options.SessionLifetime), then remove it.
//
// # Storage
//
// The store keeps three tables, samljit_schema_version, samljit_users and
// samljit_replay, in the current schema: the first schema of the
// connections' search_path. To keep them apart from the application's own
// tables, give the store's pool a search_path of its own (for pgx, add
// search_path=NAME to the data source name) and create that schema first.
//
// Keys are compared byte for byte (COLLATE "C"). Groups, Attributes, Roles
// and LocalRoles are stored as jsonb, which keeps nil (JSON null) and empty
// ([] or {}) apart. A user's LocalRoles is nil whenever the user has no
// local role: when none was ever granted, and also after the last one is
// revoked. LocalRoles are sorted byte by byte, as Go sorts strings.
//
// For [Store.LookupEmail], every write of a profile also stores the email
// in the form of [userstore.NormalizeEmail], computed in Go, in an indexed
// column; PostgreSQL's lower(), which folds by Unicode and locale rules, is
// not used.
//
// Times are stored as timestamptz, which holds microseconds, plus a
// smallint of the nanoseconds beyond the microsecond, so times come back
// exactly; they must lie between the years 1 and 9999, and
// [Store.Provision] refuses others. The database's encoding should be UTF8.
// PostgreSQL text cannot hold the NUL character or bytes that are not valid
// UTF-8, so keys and profile fields containing them are refused with an
// error, except in Groups, Attributes and Roles, where encoding/json
// replaces invalid bytes with U+FFFD (NUL is refused there too).
//
// # Errors and retries
//
// Statements and transactions that fail with a serialization failure or a
// deadlock (SQLSTATE 40001 or 40P01, which a database whose default
// isolation level is REPEATABLE READ or SERIALIZABLE can report for
// concurrent sign-ins) are retried a few times, a transaction from its
// start (so [Store.SignIn] may call its decide function again); the
// SQLSTATE is read from the driver's error through a SQLState() string
// method, as pgx's *pgconn.PgError has one.
// Other errors, such as a connection lost mid-statement, are returned.
// Every write is a single statement or a single transaction, retried whole,
// so it took effect whole or not at all; when the connection is lost after
// the server committed, the error can hide a write that happened, and a
// retried Provision then simply updates the user it created.
package pgstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// SchemaVersion is the version of the database schema this package creates
// and understands. It is recorded in the table samljit_schema_version.
// [Open] migrates a schema of an older version.
//
// Version 2 added the users' roles, local roles and normalized email.
const SchemaVersion = 2

// ErrSchemaTooNew means the database was created or migrated by a newer
// version of this package. [Open] refuses such a database rather than risk
// misreading or damaging it.
var ErrSchemaTooNew = errors.New("pgstore: database schema is newer than this version supports")

// Options configures a [Store]. The zero value is ready to use; there are
// no settings yet, and the type exists so that some can be added without
// changing [Open].
type Options struct{}

// Store is a user store and replay cache on a PostgreSQL database. Create
// one with [Open]. A Store is safe for concurrent use; it does not own the
// *sql.DB, which the application closes when it is done.
type Store struct {
	db *sql.DB
}

// Interface checks.
var (
	_ userstore.Store       = (*Store)(nil)
	_ userstore.ReplayCache = (*Store)(nil)
	_ userstore.Admin       = (*Store)(nil)
	_ userstore.SignInStore = (*Store)(nil)
	_ userstore.Linker      = (*Store)(nil)
)

// Open returns a Store on db. It creates the schema, or migrates an older
// one, in a single transaction holding an advisory lock (pg_advisory_xact_lock)
// scoped to the current schema, so that instances opening a new database at
// once end with one schema and no error. When the schema is already current
// Open only reads, so a role without CREATE privilege can use an existing
// schema. Open refuses with an error wrapping [ErrSchemaTooNew] a schema
// whose version is newer than [SchemaVersion], before writing anything.
func Open(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	_ = opts
	if db == nil {
		return nil, errors.New("pgstore: open: nil *sql.DB")
	}
	s := &Store{db: db}
	if err := s.init(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	return s, nil
}

// DB returns the database the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// migration takes the schema from one version to the next, inside the
// transaction of Open that holds the migration lock.
type migration func(ctx context.Context, tx *sql.Tx) error

// migrations returns the steps that take the schema from version i to
// i+1, indexed by i.
func migrations() []migration {
	return []migration{
		0: statements(
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
		1: func(ctx context.Context, tx *sql.Tx) error {
			// Adding a column with a constant default rewrites no
			// rows (PostgreSQL 11 and later).
			err := statements(
				`ALTER TABLE samljit_users ADD COLUMN roles jsonb NOT NULL DEFAULT 'null'`,
				`ALTER TABLE samljit_users ADD COLUMN local_roles jsonb NOT NULL DEFAULT 'null'`,
				`ALTER TABLE samljit_users ADD COLUMN email_norm text COLLATE "C" NOT NULL DEFAULT ''`,
			)(ctx, tx)
			if err != nil {
				return err
			}
			if err := backfillEmailNorm(ctx, tx); err != nil {
				return err
			}
			return statements(
				`CREATE INDEX samljit_users_email_norm ON samljit_users (email_norm, created_at, created_ns, id)`,
			)(ctx, tx)
		},
	}
}

// statements returns a migration that runs stmts in order.
func statements(stmts ...string) migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
}

// backfillBatch is how many users one statement of backfillEmailNorm
// updates.
const backfillBatch = 1000

// backfillEmailNorm sets the normalized email of every user from its email,
// computed with userstore.NormalizeEmail rather than SQL. It updates the
// rows in batches, each passed as one JSON object from ID to normalized
// email, which any driver can send.
func backfillEmailNorm(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, email FROM samljit_users WHERE email <> ''`)
	if err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	var batches []map[string]string
	for rows.Next() {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			rows.Close()
			return fmt.Errorf("read emails: %w", err)
		}
		norm := userstore.NormalizeEmail(email)
		if norm == "" {
			continue
		}
		if len(batches) == 0 || len(batches[len(batches)-1]) == backfillBatch {
			batches = append(batches, make(map[string]string))
		}
		batches[len(batches)-1][id] = norm
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	for _, b := range batches {
		j, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("normalize emails: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE samljit_users AS u SET email_norm = n.value
			FROM jsonb_each_text($1::jsonb) AS n WHERE u.id = n.key`, string(j)); err != nil {
			return fmt.Errorf("normalize emails: %w", err)
		}
	}
	return nil
}

// migrationLock takes the transaction-level advisory lock that serializes
// schema changes by instances using the same schema.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtextextended('samljit/pgstore/' || coalesce(current_schema(), ''), 0))`

// init checks the schema version and creates or migrates the schema.
func (s *Store) init(ctx context.Context) error {
	v, err := schemaVersion(ctx, s.db)
	if err != nil {
		return err
	}
	if v == SchemaVersion {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	// Another instance may have migrated the schema while this one waited
	// for the lock; read the version again under it.
	if v, err = schemaVersion(ctx, tx); err != nil {
		return err
	}
	if v == SchemaVersion {
		return tx.Commit()
	}
	steps := migrations()
	for from := v; from < SchemaVersion; from++ {
		if err := steps[from](ctx, tx); err != nil {
			return fmt.Errorf("migrate schema from version %d: %w", from, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO samljit_schema_version (version) VALUES (`+strconv.Itoa(SchemaVersion)+`)
		ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version`); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema: %w", err)
	}
	return nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion returns the schema version recorded in the current schema,
// 0 when there is none, or an error when it is one this package cannot
// handle.
func schemaVersion(ctx context.Context, q querier) (int, error) {
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
	case v > SchemaVersion:
		return 0, fmt.Errorf("schema version %d, this package supports up to %d: %w", v, SchemaVersion, ErrSchemaTooNew)
	case v < 1:
		return 0, fmt.Errorf("unknown schema version %d", v)
	}
	return int(v), nil
}

const (
	// userColumns are the columns scanUser reads, after issuer and subject
	// when it reads the key.
	userColumns = `id, email, display_name, given_name, family_name, groups::text, attributes::text, roles::text, local_roles::text, status,
		created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns`

	selectUserByKey = `SELECT ` + userColumns + ` FROM samljit_users WHERE issuer = $1 AND subject = $2`

	// provisionUser creates or updates a user in one statement, returning
	// the row's ID, status, creation time and local roles, then the before
	// image: all NULL when the statement created the user.
	//
	// The CTE old reads the existing row FOR UPDATE. In READ COMMITTED, a
	// row locked by a concurrent Provision is waited for and re-read at its
	// latest committed version, so old is the exact before image and the
	// row stays locked until the statement commits. The upsert then
	// inserts, or updates the row old locked: its DO UPDATE applies only to
	// that row (u.id = old.id). When the key was absent from the
	// statement's snapshot but a concurrent Provision created it before the
	// insert, old is empty and the conflicting row is not updated: the
	// statement returns no row and writes nothing, and Provision runs it
	// again with a new snapshot, which finds and locks the row.
	provisionUser = `WITH old AS (
			SELECT ` + userColumns + ` FROM samljit_users
			WHERE issuer = $2 AND subject = $3
			FOR UPDATE
		), up AS (
			INSERT INTO samljit_users AS u (id, issuer, subject, email, display_name, given_name, family_name,
				groups, attributes, roles, email_norm, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $12::jsonb, $13, 0,
				$10::timestamptz, $11::smallint, $10::timestamptz, $11::smallint, $10::timestamptz, $11::smallint)
			ON CONFLICT (issuer, subject) DO UPDATE SET
				email = EXCLUDED.email,
				display_name = EXCLUDED.display_name,
				given_name = EXCLUDED.given_name,
				family_name = EXCLUDED.family_name,
				groups = EXCLUDED.groups,
				attributes = EXCLUDED.attributes,
				roles = EXCLUDED.roles,
				email_norm = EXCLUDED.email_norm,
				updated_at = EXCLUDED.updated_at,
				updated_ns = EXCLUDED.updated_ns,
				last_sign_in_at = EXCLUDED.last_sign_in_at,
				last_sign_in_ns = EXCLUDED.last_sign_in_ns
			WHERE u.id = (SELECT id FROM old)
			RETURNING u.id, u.status, u.created_at, u.created_ns, u.local_roles::text
		)
		SELECT up.id, up.status, up.created_at, up.created_ns, up.local_roles, old.*
		FROM up LEFT JOIN old ON true`

	// insertUser creates a user for SignIn, or does nothing when a
	// concurrent call created one with the key first.
	insertUser = `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, 0,
			$12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint)
		ON CONFLICT (issuer, subject) DO NOTHING`

	// updateUser writes the profile and sign-in time of the user whose ID
	// is $1, and with linkUser its key.
	updateUser = `UPDATE samljit_users SET email = $2, display_name = $3, given_name = $4, family_name = $5,
			groups = $6::jsonb, attributes = $7::jsonb, roles = $8::jsonb, email_norm = $9,
			updated_at = $10::timestamptz, updated_ns = $11::smallint, last_sign_in_at = $10::timestamptz, last_sign_in_ns = $11::smallint
		WHERE id = $1`
	linkUser = `UPDATE samljit_users SET issuer = $12, subject = $13, email = $2, display_name = $3, given_name = $4, family_name = $5,
			groups = $6::jsonb, attributes = $7::jsonb, roles = $8::jsonb, email_norm = $9,
			updated_at = $10::timestamptz, updated_ns = $11::smallint, last_sign_in_at = $10::timestamptz, last_sign_in_ns = $11::smallint
		WHERE id = $1`

	// localRolesOf is the local roles of the row being updated, one per
	// row, collated byte by byte (as Go compares strings).
	localRolesOf = `SELECT jsonb_array_elements_text(CASE jsonb_typeof(local_roles) WHEN 'array' THEN local_roles ELSE '[]'::jsonb END) COLLATE "C" AS r`

	// grantRole adds $3 to the local roles of the user with key ($1, $2),
	// keeping them sorted and unique, in one statement.
	grantRole = `UPDATE samljit_users SET local_roles = (
			SELECT jsonb_agg(r ORDER BY r) FROM (` + localRolesOf + ` UNION SELECT $3::text COLLATE "C") roles
		) WHERE issuer = $1 AND subject = $2`

	// revokeRole removes $3 from the local roles of the user with key ($1,
	// $2), leaving JSON null when none is left, in one statement.
	revokeRole = `UPDATE samljit_users SET local_roles = coalesce((
			SELECT jsonb_agg(r ORDER BY r) FROM (` + localRolesOf + `) roles WHERE r <> $3::text COLLATE "C"
		), 'null'::jsonb) WHERE issuer = $1 AND subject = $2`

	// consumeAssertion records an assertion ID, or renews an expired
	// record. It changes no row when an unexpired record exists.
	consumeAssertion = `INSERT INTO samljit_replay AS r (issuer, assertion_id, expires_at, expires_ns)
		VALUES ($1, $2, $3::timestamptz, $4::smallint)
		ON CONFLICT (issuer, assertion_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, expires_ns = EXCLUDED.expires_ns
		WHERE (r.expires_at, r.expires_ns) <= ($5::timestamptz, $6::smallint)`

	// purgeReplay deletes at most 32 expired replay records, skipping rows
	// other transactions hold, so that it never waits and the cost of one
	// ConsumeAssertion stays small however many have expired.
	purgeReplay = `DELETE FROM samljit_replay WHERE (issuer, assertion_id) IN (
			SELECT issuer, assertion_id FROM samljit_replay
			WHERE (expires_at, expires_ns) <= ($1::timestamptz, $2::smallint)
			LIMIT 32 FOR UPDATE SKIP LOCKED)`
)

// maxAttempts bounds how often a statement or transaction is run when it
// fails with a serialization failure or deadlock, or, for Provision and
// SignIn, races with the creation of the same user.
const maxAttempts = 8

// Lookup returns the user with the given key. It returns an error wrapping
// [userstore.ErrNotFound] when there is none and one wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	if err := key.Validate(); err != nil {
		return userstore.User{}, err
	}
	u := userstore.User{Key: key}
	err := scanUser(s.db.QueryRowContext(ctx, selectUserByKey, key.Issuer, key.Subject), &u, false)
	if errors.Is(err, sql.ErrNoRows) {
		return userstore.User{}, fmt.Errorf("pgstore: lookup %s: %w", key, userstore.ErrNotFound)
	}
	if err != nil {
		return userstore.User{}, fmt.Errorf("pgstore: lookup %s: %w", key, err)
	}
	return u, nil
}

// Provision creates the user with the given key, or replaces its profile,
// as [userstore.Store.Provision] describes, in one SQL statement (an
// INSERT … ON CONFLICT … DO UPDATE with a CTE that locks and reads the
// existing row). It never changes a user's status, local roles, creation
// time or ID. It refuses a time outside the years 1 to 9999, and keys or
// profiles containing NUL characters.
func (s *Store) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, err
	}
	res, err := s.provision(ctx, key, p, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: provision %s: %w", key, err)
	}
	return res, nil
}

// encoded is a profile in the form of samljit_users' columns.
type encoded struct {
	p                    userstore.Profile
	groups, attrs, roles string
	emailNorm            string
}

// encodeProfile checks that PostgreSQL can store p and encodes it.
func encodeProfile(p userstore.Profile) (encoded, error) {
	for _, f := range []string{p.Email, p.DisplayName, p.GivenName, p.FamilyName} {
		if strings.IndexByte(f, 0) >= 0 {
			return encoded{}, errors.New("profile contains a NUL character")
		}
	}
	e := encoded{p: p, emailNorm: userstore.NormalizeEmail(p.Email)}
	var err error
	if e.groups, err = encodeJSON(p.Groups == nil, len(p.Groups) == 0, "[]", p.Groups); err != nil {
		return encoded{}, fmt.Errorf("encode groups: %w", err)
	}
	if e.attrs, err = encodeJSON(p.Attributes == nil, len(p.Attributes) == 0, "{}", p.Attributes); err != nil {
		return encoded{}, fmt.Errorf("encode attributes: %w", err)
	}
	if e.roles, err = encodeJSON(p.Roles == nil, len(p.Roles) == 0, "[]", p.Roles); err != nil {
		return encoded{}, fmt.Errorf("encode roles: %w", err)
	}
	return e, nil
}

// args returns the arguments $2 to $9 of updateUser and linkUser.
func (e *encoded) args() []any {
	return []any{e.p.Email, e.p.DisplayName, e.p.GivenName, e.p.FamilyName, e.groups, e.attrs, e.roles, e.emailNorm}
}

func (s *Store) provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if !inRange(now) {
		return userstore.Provisioned{}, fmt.Errorf("time %s is outside the years 1 to 9999", now)
	}
	e, err := encodeProfile(p)
	if err != nil {
		return userstore.Provisioned{}, err
	}
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	at, ns := splitTime(now)
	now = joinTime(at, ns)

	for attempt := 1; ; attempt++ {
		var (
			res        userstore.Provisioned
			status     int64
			created    time.Time
			createN    int64
			localRoles string
			old        nullableUser
		)
		err := s.db.QueryRowContext(ctx, provisionUser,
			id, key.Issuer, key.Subject, p.Email, p.DisplayName, p.GivenName, p.FamilyName,
			e.groups, e.attrs, at, ns, e.roles, e.emailNorm,
		).Scan(append([]any{&res.User.ID, &status, &created, &createN, &localRoles}, old.dest()...)...)
		if errors.Is(err, sql.ErrNoRows) || retryable(err) {
			// Either the user was created by a concurrent call after
			// this statement's snapshot and nothing was written, or
			// the database asked for a retry. Run it again.
			if attempt >= maxAttempts {
				if errors.Is(err, sql.ErrNoRows) {
					err = errors.New("the user kept changing; gave up")
				}
				return userstore.Provisioned{}, err
			}
			if err := ctx.Err(); err != nil {
				return userstore.Provisioned{}, err
			}
			continue
		}
		if err != nil {
			return userstore.Provisioned{}, err
		}
		if old.id != nil {
			before, err := old.user(key)
			if err != nil {
				return userstore.Provisioned{}, err
			}
			if before.ID != res.User.ID {
				return userstore.Provisioned{}, fmt.Errorf("read user %s before, but wrote %s", before.ID, res.User.ID)
			}
			res.Before = &before
		}
		if res.User.LocalRoles, err = decodeLocalRoles(localRoles); err != nil {
			return userstore.Provisioned{}, fmt.Errorf("user %s: local roles: %w", res.User.ID, err)
		}
		res.User.Key = key
		res.User.Profile = p.Clone()
		res.User.Status = userstore.Status(status)
		res.User.CreatedAt = joinTime(created, createN)
		res.User.UpdatedAt = now
		res.User.LastSignInAt = now
		return res, nil
	}
}

// nullableUser receives the before image of provisionUser, whose columns
// are all NULL when the call created the user.
type nullableUser struct {
	id, email, displayName, givenName, familyName, groups, attrs, roles, localRoles *string
	status, createdNS, updatedNS, signedInNS                                        *int64
	created, updated, signedIn                                                      *time.Time
}

// dest returns the scan destinations in the order of userColumns.
func (n *nullableUser) dest() []any {
	return []any{&n.id, &n.email, &n.displayName, &n.givenName, &n.familyName, &n.groups, &n.attrs, &n.roles, &n.localRoles, &n.status,
		&n.created, &n.createdNS, &n.updated, &n.updatedNS, &n.signedIn, &n.signedInNS}
}

// user returns the user n holds, which must not be NULL.
func (n *nullableUser) user(key userstore.Key) (userstore.User, error) {
	for _, p := range []*string{n.email, n.displayName, n.givenName, n.familyName, n.groups, n.attrs, n.roles, n.localRoles} {
		if p == nil {
			return userstore.User{}, errors.New("before image has NULL columns")
		}
	}
	for _, p := range []*int64{n.status, n.createdNS, n.updatedNS, n.signedInNS} {
		if p == nil {
			return userstore.User{}, errors.New("before image has NULL columns")
		}
	}
	if n.created == nil || n.updated == nil || n.signedIn == nil {
		return userstore.User{}, errors.New("before image has NULL columns")
	}
	u := userstore.User{
		ID:  *n.id,
		Key: key,
		Profile: userstore.Profile{
			Email:       *n.email,
			DisplayName: *n.displayName,
			GivenName:   *n.givenName,
			FamilyName:  *n.familyName,
		},
		Status:       userstore.Status(*n.status),
		CreatedAt:    joinTime(*n.created, *n.createdNS),
		UpdatedAt:    joinTime(*n.updated, *n.updatedNS),
		LastSignInAt: joinTime(*n.signedIn, *n.signedInNS),
	}
	if err := decodeJSONColumns(&u, *n.groups, *n.attrs, *n.roles, *n.localRoles); err != nil {
		return userstore.User{}, err
	}
	return u, nil
}

// errCreatedMeanwhile means SignIn found no user with the key but a
// concurrent call created one before its insert; the transaction wrote
// nothing that matters and runs again.
var errCreatedMeanwhile = errors.New("the user was created by a concurrent sign-in")

// decideError carries an error of SignIn's decide function through the
// transaction, so that it is never mistaken for a database error to retry.
type decideError struct{ err error }

func (e *decideError) Error() string { return e.err.Error() }
func (e *decideError) Unwrap() error { return e.err }

// SignIn is [Store.ConsumeAssertion] followed by [Store.Provision] with the
// profile decide returns, in one transaction: it records the assertion,
// reads and locks the user's row (SELECT … FOR UPDATE), gives decide that
// row, and writes the user, with the outcomes [userstore.SignInStore.SignIn]
// lists:
//
//   - an assertion already used returns an error wrapping
//     [userstore.ErrReplayed] and writes nothing; decide is not called;
//   - a suspended user keeps the assertion recorded, is not changed, and is
//     returned as stored (Status [userstore.Suspended], and Before the same
//     record) with a nil error; decide is not called;
//   - an error from decide rolls the transaction back, so nothing at all is
//     written, neither the record of the assertion nor the user, and is
//     wrapped in the returned error;
//   - any other failure rolls back too, so the person can retry.
//
// When the transaction fails with a serialization failure or deadlock, or
// the user was created by a concurrent call after it looked, the whole
// transaction runs again, so decide may be called more than once; it must
// be pure, quick, must not call the store, and must not modify *before. A
// bounded batch of expired replay records is deleted after the commit, as
// ConsumeAssertion does. It refuses a time outside the years 1 to 9999, and
// keys or profiles containing NUL characters.
func (s *Store) SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, now time.Time, decide func(before *userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: sign in %s: %w", key, err)
	}
	if !inRange(now) {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: sign in %s: time %s is outside the years 1 to 9999", key, now)
	}
	exp, expNS := splitTime(clampTime(expires))
	at, ns := splitTime(now)
	now = joinTime(at, ns)
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: sign in %s: %w", key, err)
	}

	var res userstore.Provisioned
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res = userstore.Provisioned{}
		r, err := tx.ExecContext(ctx, consumeAssertion, issuer, assertionID, exp, expNS, at, ns)
		if err != nil {
			return fmt.Errorf("record assertion: %w", err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return fmt.Errorf("record assertion: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("assertion %q from %q: %w", assertionID, issuer, userstore.ErrReplayed)
		}

		before := userstore.User{Key: key}
		err = scanUser(tx.QueryRowContext(ctx, selectUserByKey+` FOR UPDATE`, key.Issuer, key.Subject), &before, false)
		found := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read user: %w", err)
		case before.Status == userstore.Suspended:
			// Refused: the assertion stays recorded, the user as
			// stored.
			res.User = cloneUser(before)
			res.Before = &before
			return nil
		}
		var b *userstore.User
		if found {
			b = &before
		}
		p, err := decide(b)
		if err != nil {
			return &decideError{err}
		}
		e, err := encodeProfile(p)
		if err != nil {
			return err
		}
		if found {
			if _, err := tx.ExecContext(ctx, updateUser, append(append([]any{before.ID}, e.args()...), at, ns)...); err != nil {
				return fmt.Errorf("update user: %w", err)
			}
			res.User = before
			res.User.LocalRoles = slices.Clone(before.LocalRoles)
			res.Before = &before
		} else {
			r, err := tx.ExecContext(ctx, insertUser,
				id, key.Issuer, key.Subject, p.Email, p.DisplayName, p.GivenName, p.FamilyName,
				e.groups, e.attrs, e.roles, e.emailNorm, at, ns)
			if err != nil {
				return fmt.Errorf("insert user: %w", err)
			}
			if n, err := r.RowsAffected(); err != nil {
				return fmt.Errorf("insert user: %w", err)
			} else if n == 0 {
				return errCreatedMeanwhile
			}
			res.User = userstore.User{ID: id, Key: key, Status: userstore.Active, CreatedAt: now}
		}
		res.User.Profile = p.Clone()
		res.User.UpdatedAt = now
		res.User.LastSignInAt = now
		return nil
	})
	if err != nil {
		var de *decideError
		if errors.As(err, &de) {
			err = de.err
		}
		return userstore.Provisioned{}, fmt.Errorf("pgstore: sign in %s: %w", key, err)
	}
	// Housekeeping, after the commit and never waiting, as in
	// ConsumeAssertion.
	_, _ = s.db.ExecContext(ctx, purgeReplay, at, ns)
	return res, nil
}

// LookupEmail returns the users whose email equals email once both are put
// through [userstore.NormalizeEmail], whatever their issuer, ordered by
// creation time then ID. A blank email matches no one. The query uses the
// indexed normalized email; a row whose stored email no longer has that
// normalized form (written by an instance still running an older version of
// this package) is left out.
func (s *Store) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	norm := userstore.NormalizeEmail(email)
	if norm == "" {
		return nil, nil
	}
	if strings.IndexByte(norm, 0) >= 0 {
		// PostgreSQL text cannot hold NUL, so no stored email has one.
		return nil, nil
	}
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM samljit_users
		WHERE email_norm = $1 ORDER BY created_at, created_ns, id`, norm)
	if err != nil {
		return nil, fmt.Errorf("pgstore: lookup email: %w", err)
	}
	return slices.DeleteFunc(users, func(u userstore.User) bool {
		return userstore.NormalizeEmail(u.Profile.Email) != norm
	}), nil
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes, in one transaction that locks the
// account's row. It returns an error wrapping [userstore.ErrInvalidKey]
// when key has an empty part, and refuses a time outside the years 1 to
// 9999, and keys or profiles containing NUL characters.
func (s *Store) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: link user %q to %s: %w", id, key, err)
	}
	if !inRange(now) {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: link user %q to %s: time %s is outside the years 1 to 9999", id, key, now)
	}
	e, err := encodeProfile(p)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: link user %q to %s: %w", id, key, err)
	}
	at, ns := splitTime(now)
	now = joinTime(at, ns)

	var res userstore.Provisioned
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var before userstore.User
		err := scanUser(tx.QueryRowContext(ctx, `SELECT issuer, subject, `+userColumns+` FROM samljit_users WHERE id = $1 FOR UPDATE`, id), &before, true)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return userstore.ErrNotFound
		case err != nil:
			return fmt.Errorf("read user: %w", err)
		case before.Key.Issuer != userstore.LocalIssuer:
			return fmt.Errorf("%w: the user's issuer is %q, not the local issuer", userstore.ErrNotLinkable, before.Key.Issuer)
		}
		_, err = tx.ExecContext(ctx, linkUser, append(append([]any{before.ID}, e.args()...), at, ns, key.Issuer, key.Subject)...)
		if sqlState(err) == "23505" {
			// unique_violation: the only unique column the statement
			// changes is the key.
			return fmt.Errorf("%w: the key belongs to another user (%w)", userstore.ErrNotLinkable, err)
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		res.User = before
		res.User.Key = key
		res.User.Profile = p.Clone()
		res.User.LocalRoles = slices.Clone(before.LocalRoles)
		res.User.UpdatedAt = now
		res.User.LastSignInAt = now
		res.Before = &before
		return nil
	})
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: link user %q to %s: %w", id, key, err)
	}
	return res, nil
}

// inTx runs fn in a transaction and commits it, or rolls it back when fn
// fails or panics. When fn or the commit fails with a serialization failure
// or deadlock, or fn returns errCreatedMeanwhile, the whole transaction
// runs again, up to maxAttempts times in all.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		var de *decideError
		again := errors.Is(err, errCreatedMeanwhile) || (retryable(err) && !errors.As(err, &de))
		if !again {
			return err
		}
		if attempt >= maxAttempts {
			if errors.Is(err, errCreatedMeanwhile) {
				return errors.New("the user kept changing; gave up")
			}
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// tryTx runs fn in one transaction.
func (s *Store) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// After a commit, Rollback does nothing; after a failure or a panic
	// in fn it ends the transaction.
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ConsumeAssertion records that the assertion id from issuer was used until
// expires, as [userstore.ReplayCache.ConsumeAssertion] describes. A record
// whose expiry is at or before now has expired. The check and the record
// are one statement (INSERT … ON CONFLICT … DO UPDATE … WHERE expired), so
// exactly one of concurrent calls succeeds, on this instance or another.
// After a successful call, a second statement deletes a small, bounded
// batch of expired records; its failure does not fail the call, because
// the assertion is already recorded.
func (s *Store) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	exp, expNS := splitTime(clampTime(expires))
	at, atNS := splitTime(clampTime(now))
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, consumeAssertion, issuer, id, exp, expNS, at, atNS)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err == nil && n == 0 {
		err = userstore.ErrReplayed
	}
	if err != nil {
		return fmt.Errorf("pgstore: consume assertion %q from %q: %w", id, issuer, err)
	}
	// Housekeeping, in its own statement so that it holds no lock while
	// the record above waits for one, and never waits itself.
	_, _ = s.db.ExecContext(ctx, purgeReplay, at, atNS)
	return nil
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (s *Store) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	err := s.retry(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `DELETE FROM samljit_replay WHERE issuer = $1 AND assertion_id = $2`, issuer, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: release assertion %q from %q: %w", id, issuer, err)
	}
	return nil
}

// List returns every user, ordered by creation time then ID.
func (s *Store) List(ctx context.Context) ([]userstore.User, error) {
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM samljit_users
		ORDER BY created_at, created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return users, nil
}

// NotSignedInSince returns the users whose last sign-in is before t, oldest
// first, with ties ordered by ID.
func (s *Store) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	at, ns := splitTime(clampTime(t))
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM samljit_users
		WHERE (last_sign_in_at, last_sign_in_ns) < ($1::timestamptz, $2::smallint)
		ORDER BY last_sign_in_at, last_sign_in_ns, id`, at, ns)
	if err != nil {
		return nil, fmt.Errorf("pgstore: users not signed in since %s: %w", t, err)
	}
	return users, nil
}

// query runs a query selecting issuer, subject and userColumns and returns
// the users it reads.
func (s *Store) query(ctx context.Context, query string, args ...any) ([]userstore.User, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []userstore.User
	for rows.Next() {
		var u userstore.User
		if err := scanUser(rows, &u, true); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

// Suspend marks the user suspended. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user.
func (s *Store) Suspend(ctx context.Context, key userstore.Key) error {
	return s.change(ctx, "suspend", key, `UPDATE samljit_users SET status = `+strconv.Itoa(int(userstore.Suspended))+` WHERE issuer = $1 AND subject = $2`)
}

// Unsuspend marks the user active again. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user.
func (s *Store) Unsuspend(ctx context.Context, key userstore.Key) error {
	return s.change(ctx, "unsuspend", key, `UPDATE samljit_users SET status = `+strconv.Itoa(int(userstore.Active))+` WHERE issuer = $1 AND subject = $2`)
}

// Delete removes the user record. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user. Deleting is not
// deprovisioning: the next sign-in creates a new record.
func (s *Store) Delete(ctx context.Context, key userstore.Key) error {
	return s.change(ctx, "delete", key, `DELETE FROM samljit_users WHERE issuer = $1 AND subject = $2`)
}

// GrantRole adds role to the user's LocalRoles, kept sorted and without
// duplicates, in one statement. Granting a role the user already has
// locally is not an error. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user, and refuses an empty
// role.
func (s *Store) GrantRole(ctx context.Context, key userstore.Key, role string) error {
	if role == "" {
		return fmt.Errorf("pgstore: grant role for %s: empty role", key)
	}
	return s.change(ctx, fmt.Sprintf("grant role %q for", role), key, grantRole, role)
}

// RevokeRole removes role from the user's LocalRoles, in one statement.
// Revoking a role the user does not have locally is not an error; revoking
// the last one leaves LocalRoles nil. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user, and refuses an empty
// role.
func (s *Store) RevokeRole(ctx context.Context, key userstore.Key, role string) error {
	if role == "" {
		return fmt.Errorf("pgstore: revoke role for %s: empty role", key)
	}
	return s.change(ctx, fmt.Sprintf("revoke role %q for", role), key, revokeRole, role)
}

// change runs query, a statement on the user with key taking the issuer and
// subject as its first arguments and args after them, and reports
// ErrNotFound when it changed no row.
func (s *Store) change(ctx context.Context, op string, key userstore.Key, query string, args ...any) error {
	if err := key.Validate(); err != nil {
		return err
	}
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, query, append([]any{key.Issuer, key.Subject}, args...)...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: %s %s: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("pgstore: %s %s: %w", op, key, userstore.ErrNotFound)
	}
	return nil
}

// retry runs fn, a single autocommit statement, again when it fails with a
// serialization failure or deadlock, up to maxAttempts times in all.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
	}
}

// retryable reports whether err carries SQLSTATE 40001 (serialization
// failure) or 40P01 (deadlock detected): errors after which the statement
// was rolled back and may simply be run again. Drivers expose the SQLSTATE
// through a SQLState method, as pgx's *pgconn.PgError has.
func retryable(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// sqlState returns the SQLSTATE of err, read through a SQLState method as
// pgx's *pgconn.PgError has, or "" when it has none.
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if err == nil || !errors.As(err, &e) {
		return ""
	}
	return e.SQLState()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanUser reads the userColumns of one row into u, preceded by issuer and
// subject when withKey is set.
func scanUser(r scanner, u *userstore.User, withKey bool) error {
	var (
		groups, attrs, roles, localRoles string
		status                           int64
		created, updated, signedIn       time.Time
		createdNS, updatedNS, signedInNS int64
		dest                             = make([]any, 0, 18)
	)
	if withKey {
		dest = append(dest, &u.Key.Issuer, &u.Key.Subject)
	}
	dest = append(dest, &u.ID, &u.Profile.Email, &u.Profile.DisplayName, &u.Profile.GivenName, &u.Profile.FamilyName,
		&groups, &attrs, &roles, &localRoles, &status, &created, &createdNS, &updated, &updatedNS, &signedIn, &signedInNS)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	if err := decodeJSONColumns(u, groups, attrs, roles, localRoles); err != nil {
		return err
	}
	u.Status = userstore.Status(status)
	u.CreatedAt = joinTime(created, createdNS)
	u.UpdatedAt = joinTime(updated, updatedNS)
	u.LastSignInAt = joinTime(signedIn, signedInNS)
	return nil
}

// encodeJSON returns v as JSON: "null" when isNil, empty when isEmpty, and
// json.Marshal's output otherwise. Nil and empty slices nested in v stay
// apart as null and [].
func encodeJSON(isNil, isEmpty bool, empty string, v any) (string, error) {
	switch {
	case isNil:
		return "null", nil
	case isEmpty:
		return empty, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if strings.Contains(string(b), `\u0000`) {
		return "", errors.New("contains a NUL character")
	}
	return string(b), nil
}

// decodeJSONColumns sets the groups, attributes, roles and local roles of
// u from their columns as PostgreSQL prints jsonb.
func decodeJSONColumns(u *userstore.User, groups, attrs, roles, localRoles string) error {
	var err error
	if u.Profile.Groups, err = decodeStrings(groups); err != nil {
		return fmt.Errorf("user %s: groups: %w", u.ID, err)
	}
	if err := json.Unmarshal([]byte(attrs), &u.Profile.Attributes); err != nil {
		return fmt.Errorf("user %s: attributes: %w", u.ID, err)
	}
	if u.Profile.Attributes == nil && attrs != "null" {
		u.Profile.Attributes = map[string][]string{}
	}
	if u.Profile.Roles, err = decodeStrings(roles); err != nil {
		return fmt.Errorf("user %s: roles: %w", u.ID, err)
	}
	if u.LocalRoles, err = decodeLocalRoles(localRoles); err != nil {
		return fmt.Errorf("user %s: local roles: %w", u.ID, err)
	}
	return nil
}

// decodeStrings is the inverse of encodeJSON for a []string: JSON null is
// nil and [] an empty slice.
func decodeStrings(s string) ([]string, error) {
	var ss []string
	if err := json.Unmarshal([]byte(s), &ss); err != nil {
		return nil, err
	}
	if ss == nil && s != "null" {
		ss = []string{}
	}
	return ss, nil
}

// decodeLocalRoles decodes the local_roles column: nil when there are none
// (JSON null, or an empty array), and otherwise sorted and unique whatever
// the column holds.
func decodeLocalRoles(s string) ([]string, error) {
	var roles []string
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, nil
	}
	slices.Sort(roles)
	return slices.Compact(roles), nil
}

// cloneUser returns a copy of u that shares no memory with it.
func cloneUser(u userstore.User) userstore.User {
	u.Profile = u.Profile.Clone()
	u.LocalRoles = slices.Clone(u.LocalRoles)
	return u
}

// The range of times the store records: the years 1 to 9999, which every
// PostgreSQL timestamptz and every driver can represent.
var (
	minTime = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, time.December, 31, 23, 59, 59, 999999999, time.UTC)
)

// inRange reports whether t lies between minTime and maxTime.
func inRange(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

// clampTime returns t limited to the range between minTime and maxTime.
func clampTime(t time.Time) time.Time {
	switch {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

// splitTime returns t in UTC truncated to the microsecond, for a
// timestamptz column, and the nanoseconds it dropped, for the companion
// smallint column.
func splitTime(t time.Time) (time.Time, int64) {
	t = t.Round(0).UTC()
	ns := int64(t.Nanosecond() % 1000)
	return t.Add(-time.Duration(ns)), ns
}

// joinTime is the inverse of splitTime: it returns the instant, in UTC.
func joinTime(t time.Time, ns int64) time.Time {
	return t.Add(time.Duration(ns)).UTC()
}
