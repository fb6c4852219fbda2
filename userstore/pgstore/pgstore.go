// Package pgstore is an implementation of [userstore.Store],
// [userstore.ReplayCache] and [userstore.Admin] on PostgreSQL, for
// applications that run several instances against one database.
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
// Keys are compared byte for byte (COLLATE "C"). Groups and Attributes are
// stored as jsonb, which keeps nil (JSON null) and empty ([] or {}) apart.
// Times are stored as timestamptz, which holds microseconds, plus a
// smallint of the nanoseconds beyond the microsecond, so times come back
// exactly; they must lie between the years 1 and 9999, and
// [Store.Provision] refuses others. The database's encoding should be UTF8.
// PostgreSQL text cannot hold the NUL character or bytes that are not valid
// UTF-8, so keys and profile fields containing them are refused with an
// error, except in Groups and Attributes, where encoding/json replaces
// invalid bytes with U+FFFD (NUL is refused there too).
//
// # Errors and retries
//
// Statements that fail with a serialization failure or a deadlock
// (SQLSTATE 40001 or 40P01, which a database whose default isolation level
// is REPEATABLE READ or SERIALIZABLE can report for concurrent sign-ins)
// are retried a few times; the SQLSTATE is read from the driver's error
// through a SQLState() string method, as pgx's *pgconn.PgError has one.
// Other errors, such as a connection lost mid-statement, are returned.
// Every write is a single statement, so it took effect whole or not at all;
// when the connection is lost after the server committed, the error can
// hide a write that happened, and a retried Provision then simply updates
// the user it created.
package pgstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// SchemaVersion is the version of the database schema this package creates
// and understands. It is recorded in the table samljit_schema_version.
const SchemaVersion = 1

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

// migrations returns the statements that take the schema from version i to
// i+1, indexed by i.
func migrations() [][]string {
	return [][]string{
		0: {
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
		},
	}
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
		for _, stmt := range steps[from] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate schema from version %d: %w", from, err)
			}
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
	userColumns = `id, email, display_name, given_name, family_name, groups::text, attributes::text, status,
		created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns`

	selectUserByKey = `SELECT ` + userColumns + ` FROM samljit_users WHERE issuer = $1 AND subject = $2`

	// provisionUser creates or updates a user in one statement, returning
	// the row's ID, status and creation time, then the before image: all
	// NULL when the statement created the user.
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
				groups, attributes, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, 0,
				$10::timestamptz, $11::smallint, $10::timestamptz, $11::smallint, $10::timestamptz, $11::smallint)
			ON CONFLICT (issuer, subject) DO UPDATE SET
				email = EXCLUDED.email,
				display_name = EXCLUDED.display_name,
				given_name = EXCLUDED.given_name,
				family_name = EXCLUDED.family_name,
				groups = EXCLUDED.groups,
				attributes = EXCLUDED.attributes,
				updated_at = EXCLUDED.updated_at,
				updated_ns = EXCLUDED.updated_ns,
				last_sign_in_at = EXCLUDED.last_sign_in_at,
				last_sign_in_ns = EXCLUDED.last_sign_in_ns
			WHERE u.id = (SELECT id FROM old)
			RETURNING u.id, u.status, u.created_at, u.created_ns
		)
		SELECT up.id, up.status, up.created_at, up.created_ns, old.*
		FROM up LEFT JOIN old ON true`

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

// maxAttempts bounds how often a statement is run when it fails with a
// serialization failure or deadlock, or, for Provision, races with the
// creation of the same user.
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
// existing row). It never changes a user's status, creation time or ID. It
// refuses a time outside the years 1 to 9999, and keys or profiles
// containing NUL characters.
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

func (s *Store) provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if !inRange(now) {
		return userstore.Provisioned{}, fmt.Errorf("time %s is outside the years 1 to 9999", now)
	}
	for _, f := range []string{p.Email, p.DisplayName, p.GivenName, p.FamilyName} {
		if strings.IndexByte(f, 0) >= 0 {
			return userstore.Provisioned{}, errors.New("profile contains a NUL character")
		}
	}
	groups, err := encodeJSON(p.Groups == nil, len(p.Groups) == 0, "[]", p.Groups)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("encode groups: %w", err)
	}
	attrs, err := encodeJSON(p.Attributes == nil, len(p.Attributes) == 0, "{}", p.Attributes)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("encode attributes: %w", err)
	}
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	at, ns := splitTime(now)
	now = at.Add(time.Duration(ns))

	for attempt := 1; ; attempt++ {
		var (
			res     userstore.Provisioned
			status  int64
			created time.Time
			createN int64
			old     nullableUser
		)
		err := s.db.QueryRowContext(ctx, provisionUser,
			id, key.Issuer, key.Subject, p.Email, p.DisplayName, p.GivenName, p.FamilyName,
			groups, attrs, at, ns,
		).Scan(append([]any{&res.User.ID, &status, &created, &createN}, old.dest()...)...)
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
	id, email, displayName, givenName, familyName, groups, attrs *string
	status, createdNS, updatedNS, signedInNS                     *int64
	created, updated, signedIn                                   *time.Time
}

// dest returns the scan destinations in the order of userColumns.
func (n *nullableUser) dest() []any {
	return []any{&n.id, &n.email, &n.displayName, &n.givenName, &n.familyName, &n.groups, &n.attrs, &n.status,
		&n.created, &n.createdNS, &n.updated, &n.updatedNS, &n.signedIn, &n.signedInNS}
}

// user returns the user n holds, which must not be NULL.
func (n *nullableUser) user(key userstore.Key) (userstore.User, error) {
	for _, p := range []*string{n.email, n.displayName, n.givenName, n.familyName, n.groups, n.attrs} {
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
	var err error
	if u.Profile.Groups, u.Profile.Attributes, err = decodeProfileJSON(*n.groups, *n.attrs); err != nil {
		return userstore.User{}, fmt.Errorf("user %s: %w", u.ID, err)
	}
	return u, nil
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

// change runs query, a statement on the user with key taking the issuer and
// subject as arguments, and reports ErrNotFound when it changed no row.
func (s *Store) change(ctx context.Context, op string, key userstore.Key, query string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, query, key.Issuer, key.Subject)
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
	var e interface{ SQLState() string }
	if err == nil || !errors.As(err, &e) {
		return false
	}
	switch e.SQLState() {
	case "40001", "40P01":
		return true
	}
	return false
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanUser reads the userColumns of one row into u, preceded by issuer and
// subject when withKey is set.
func scanUser(r scanner, u *userstore.User, withKey bool) error {
	var (
		groups, attrs                    string
		status                           int64
		created, updated, signedIn       time.Time
		createdNS, updatedNS, signedInNS int64
		dest                             = make([]any, 0, 16)
	)
	if withKey {
		dest = append(dest, &u.Key.Issuer, &u.Key.Subject)
	}
	dest = append(dest, &u.ID, &u.Profile.Email, &u.Profile.DisplayName, &u.Profile.GivenName, &u.Profile.FamilyName,
		&groups, &attrs, &status, &created, &createdNS, &updated, &updatedNS, &signedIn, &signedInNS)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	var err error
	if u.Profile.Groups, u.Profile.Attributes, err = decodeProfileJSON(groups, attrs); err != nil {
		return fmt.Errorf("user %s: %w", u.ID, err)
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

// decodeProfileJSON is the inverse of encodeJSON for groups and attributes
// as PostgreSQL prints jsonb.
func decodeProfileJSON(groupsJSON, attrsJSON string) (groups []string, attrs map[string][]string, err error) {
	if err := json.Unmarshal([]byte(groupsJSON), &groups); err != nil {
		return nil, nil, fmt.Errorf("groups: %w", err)
	}
	if groups == nil && groupsJSON != "null" {
		groups = []string{}
	}
	if err := json.Unmarshal([]byte(attrsJSON), &attrs); err != nil {
		return nil, nil, fmt.Errorf("attributes: %w", err)
	}
	if attrs == nil && attrsJSON != "null" {
		attrs = map[string][]string{}
	}
	return groups, attrs, nil
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
