// Package pgstore is an implementation of [userstore.Store],
// [userstore.ReplayCache], [userstore.Admin], [userstore.SignInStore],
// [userstore.SignInWithStore], [userstore.Linker], [userstore.Sessions],
// [userstore.Directory] and
// [userstore.GroupDirectory] on PostgreSQL, for
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
//   - [Store.SignIn] records the assertion and provisions the user in one
//     transaction that locks the user's row (SELECT … FOR UPDATE), so it
//     has the guarantees of ConsumeAssertion and Provision together.
//   - [Store.Link] and the role changes ([Store.GrantRole],
//     [Store.RevokeRole]) are atomic too: a transaction locking the row, or
//     a single statement.
//   - Nothing is cached in the process: a suspension made by any instance
//     (or by SQL) is seen by the next Lookup on every instance.
//   - Sessions are kept in the database ([Store.CreateSession]): a session
//     ended on one instance ([Store.EndSession], [Store.EndSessions], or a
//     suspension) is refused by the next [Store.LookupSession] on every
//     other. CreateSession writes the user's row as it checks that the
//     user is active, so a suspension racing with a sign-in either ends
//     the new session or leaves none to create.
//
// The jit middleware puts a session's ID in a cookie sealed with
// jit.Options.SessionKeys, so every instance must be configured with the
// same SessionKeys (and the same SP key pair and RootURL), or a session
// issued by one instance is refused by the next. To rotate the keys,
// prepend a new pair on every instance and keep the old pair after it
// until every session sealed with it has expired
// (jit.Options.SessionLifetime), then remove it.
//
// # Storage
//
// The store keeps four tables, samljit_schema_version, samljit_users,
// samljit_sessions and samljit_replay, in the current schema: the first
// schema of the connections' search_path. To keep them apart from the application's own
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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// SchemaVersion is the version of the database schema this package creates
// and understands. It is recorded in the table samljit_schema_version.
// [Open] migrates a schema of an older version.
//
// Version 2 added the users' roles, local roles and normalized email;
// version 3 a unique index that keeps an email to one user of an issuer
// (migrating refuses a database where users of one issuer already share
// one, naming them); version 4 the sessions table; version 5 the
// sessions' NameIDs, for Single Logout; version 6 the user names and
// groups of a provisioning directory (SCIM); version 7 connections kept
// as data, their email domains and their change version; version 8 each
// issuer's number of users and groups, kept by triggers, so that a
// directory's list does not count them.
const SchemaVersion = 8

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
	// core runs the statements, with the dialect of this Store.
	core *sqlcore.Core
}

// Interface check: userstore.Store, ReplayCache, Admin, SignInStore,
// Linker and Sessions.
var _ sqlcore.Interfaces = (*Store)(nil)

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
	s.core = sqlcore.New(db, sqlcore.Dialect{
		Name:             "pgstore",
		Queries:          queries,
		Directory:        directoryQueries,
		Connections:      connectionQueries,
		Time:             splitTimes{},
		TextRefusesNUL:   true,
		PurgeAfterCommit: true,
		Begin:            s.begin,
		Exec:             s.exec,
		Retryable:        retryable,
		KeyTaken:         keyTaken,
		EmailTaken:       emailTaken,
		UserNameTaken:    userNameTaken,
		DomainTaken:      domainTaken,
	})
	if _, err := sqlcore.Migrate(ctx, db, s.beginMigration, schema); err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	return s, nil
}

// DB returns the database the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// begin begins a transaction, the dialect's Begin. In READ COMMITTED, the
// default, the statements that read a user for a write lock its row
// (SELECT … FOR UPDATE); under a stricter default isolation level, a
// conflict fails with a serialization failure and the write runs again.
func (s *Store) begin(ctx context.Context) (*sqlcore.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return &sqlcore.Tx{SQLTx: tx, End: func(err error) error { return end(tx, err) }}, nil
}

// end commits tx when err is nil and otherwise rolls it back, and returns
// err or the commit's error.
func end(tx *sql.Tx, err error) error {
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// exec runs one autocommit statement, the dialect's Exec, and returns how
// many rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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

// keyTaken reports whether err, from the statement of Link that binds a
// key, is a unique_violation (SQLSTATE 23505): the only unique column the
// statement changes is the key, so another user has it.
func keyTaken(err error) bool {
	return sqlState(err) == "23505" && !emailTaken(err) && !userNameTaken(err)
}

// userNameTaken reports whether err is a unique_violation of
// userNameIndex, which the driver's message names.
func userNameTaken(err error) bool {
	return sqlState(err) == "23505" && strings.Contains(err.Error(), userNameIndex)
}

// emailIndex is the unique index on (issuer, email_norm).
const emailIndex = "samljit_users_issuer_email"

// emailTaken reports whether err is a unique_violation of emailIndex,
// which the driver's message names.
func emailTaken(err error) bool {
	return sqlState(err) == "23505" && strings.Contains(err.Error(), emailIndex)
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

const (
	// userColumns are the user columns sqlcore reads, after issuer and
	// subject when it reads the key.
	userColumns = `id, email, display_name, given_name, family_name, groups::text, attributes::text, roles::text, local_roles::text, status,
		created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns`

	// selectUserByKey reads the user columns of the user with a key.
	selectUserByKey = `SELECT ` + userColumns + ` FROM samljit_users WHERE issuer = $1 AND subject = $2`

	// selectUsers reads users with their key; a clause follows.
	selectUsers = `SELECT issuer, subject, ` + userColumns + ` FROM samljit_users`

	// sessionColumns are the columns of a session that sqlcore reads
	// before its user's.
	sessionColumns = `s.connection, s.session_index, ` + nameIDColumns + `, s.created_at, s.created_ns, s.expires_at, s.expires_ns`

	// nameIDColumns are a session's NameID columns.
	nameIDColumns = `name_id, name_id_format, name_qualifier, sp_name_qualifier`

	// setProfile is the SET list of updateUser and linkUser: the profile
	// ($2 to $9) and the time of the sign-in ($10, $11, or with linkUser
	// $12, $13).
	setProfile = `email = $2, display_name = $3, given_name = $4, family_name = $5,
			groups = $6::jsonb, attributes = $7::jsonb, roles = $8::jsonb, email_norm = $9, `

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
)

// suspendUser, unsuspendUser and deleteUser change the user with key
// ($1, $2).
var (
	suspendUser   = `UPDATE samljit_users SET status = ` + strconv.Itoa(int(userstore.Suspended)) + ` WHERE issuer = $1 AND subject = $2`
	unsuspendUser = `UPDATE samljit_users SET status = ` + strconv.Itoa(int(userstore.Active)) + ` WHERE issuer = $1 AND subject = $2`
	deleteUser    = `DELETE FROM samljit_users WHERE issuer = $1 AND subject = $2`
)

// queries are the store's statements, taking the arguments
// [sqlcore.Queries] lists; a time is two arguments, a timestamptz and a
// smallint. A read for a write locks the row it reads (FOR UPDATE) until
// the transaction ends.
var queries = sqlcore.Queries{
	UserByKey:         selectUserByKey,
	UserByKeyForWrite: selectUserByKey + ` FOR UPDATE`,
	UserByIDForWrite:  selectUsers + ` WHERE id = $1 FOR UPDATE`,

	// Does nothing when a concurrent call created a user with the key
	// first; SignIn then runs again.
	InsertUser: `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, 0,
			$12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint)
		ON CONFLICT DO NOTHING`,
	UpdateUser: `UPDATE samljit_users SET ` + setProfile + `
			updated_at = $10::timestamptz, updated_ns = $11::smallint, last_sign_in_at = $10::timestamptz, last_sign_in_ns = $11::smallint
		WHERE id = $1`,
	LinkUser: `UPDATE samljit_users SET issuer = $10, subject = $11, ` + setProfile + `
			updated_at = $12::timestamptz, updated_ns = $13::smallint, last_sign_in_at = $12::timestamptz, last_sign_in_ns = $13::smallint
		WHERE id = $1`,

	ConsumeAssertion: `INSERT INTO samljit_replay AS r (issuer, assertion_id, expires_at, expires_ns)
		VALUES ($1, $2, $3::timestamptz, $4::smallint)
		ON CONFLICT (issuer, assertion_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, expires_ns = EXCLUDED.expires_ns
		WHERE (r.expires_at, r.expires_ns) <= ($5::timestamptz, $6::smallint)`,
	// At most 32 records, skipping rows other transactions hold, so that it
	// never waits and the cost of one ConsumeAssertion stays small however
	// many have expired.
	PurgeReplay: `DELETE FROM samljit_replay WHERE (issuer, assertion_id) IN (
			SELECT issuer, assertion_id FROM samljit_replay
			WHERE (expires_at, expires_ns) <= ($1::timestamptz, $2::smallint)
			LIMIT 32 FOR UPDATE SKIP LOCKED)`,
	ReleaseAssertion: `DELETE FROM samljit_replay WHERE issuer = $1 AND assertion_id = $2`,

	ListUsers: selectUsers + ` ORDER BY created_at, created_ns, id`,
	UsersSignedInBefore: selectUsers + ` WHERE (last_sign_in_at, last_sign_in_ns) < ($1::timestamptz, $2::smallint)
		ORDER BY last_sign_in_at, last_sign_in_ns, id`,
	UsersByEmail: selectUsers + ` WHERE email_norm = $1 ORDER BY created_at, created_ns, id`,

	// The no-op update locks the user's row and writes it: a Suspend
	// that has changed the row first is waited for and then finds
	// nothing active (READ COMMITTED re-reads the row), and one that
	// comes after waits for this insert and then deletes the session;
	// under REPEATABLE READ, whichever comes second fails with a
	// serialization failure and runs again.
	InsertSession: `WITH u AS (
			UPDATE samljit_users SET status = status
			WHERE issuer = $2 AND subject = $3 AND status = ` + strconv.Itoa(int(userstore.Active)) + `
			RETURNING 1
		)
		INSERT INTO samljit_sessions (id, issuer, subject, connection, session_index, ` + nameIDColumns + `, created_at, created_ns, expires_at, expires_ns)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz, $11::smallint, $12::timestamptz, $13::smallint FROM u`,
	SessionByID: `SELECT ` + sessionColumns + `, u.issuer, u.subject, ` + sqlcore.Qualify("u", userColumns) + `
		FROM samljit_sessions s JOIN samljit_users u ON u.issuer = s.issuer AND u.subject = s.subject
		WHERE s.id = $1 AND (s.expires_at, s.expires_ns) > ($2::timestamptz, $3::smallint)`,
	SessionsOfKey: `SELECT id, connection, session_index, ` + nameIDColumns + `, created_at, created_ns, expires_at, expires_ns FROM samljit_sessions
		WHERE issuer = $1 AND subject = $2 AND (expires_at, expires_ns) > ($3::timestamptz, $4::smallint)
		ORDER BY created_at, created_ns, id`,
	DeleteSession: `DELETE FROM samljit_sessions WHERE id = $1`,
	DeleteLiveSessions: `DELETE FROM samljit_sessions WHERE issuer = $1 AND subject = $2 AND ($3::text = '' OR session_index = $3)
		AND (expires_at, expires_ns) > ($4::timestamptz, $5::smallint)`,
	DeleteLiveSessionsByNameID: `DELETE FROM samljit_sessions WHERE issuer = $1 AND name_id = $2 AND ($3::text = '' OR session_index = $3)
		AND (expires_at, expires_ns) > ($4::timestamptz, $5::smallint)`,
	DeleteSessionsOfKey: `DELETE FROM samljit_sessions WHERE issuer = $1 AND subject = $2`,
	// As PurgeReplay.
	PurgeSessions: `DELETE FROM samljit_sessions WHERE id IN (
			SELECT id FROM samljit_sessions
			WHERE (expires_at, expires_ns) <= ($1::timestamptz, $2::smallint)
			LIMIT 32 FOR UPDATE SKIP LOCKED)`,
}

// The methods follow the guarantees the package documentation lists
// (Provision, the first, is in provision.go): the replay cache, SignIn,
// Link and the role changes, then suspension and Lookup, which sees it at
// once; then the others, alphabetically.

// ConsumeAssertion records that the assertion id from issuer was used until
// expires, as [userstore.ReplayCache.ConsumeAssertion] describes. A record
// whose expiry is at or before now has expired. The check and the record
// are one statement (INSERT … ON CONFLICT … DO UPDATE … WHERE expired), so
// exactly one of concurrent calls succeeds, on this instance or another.
// After a successful call, a second statement deletes a small, bounded
// batch of expired records; its failure does not fail the call, because
// the assertion is already recorded.
func (s *Store) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	return s.core.ConsumeAssertion(ctx, issuer, id, expires, now)
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (s *Store) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	return s.core.ReleaseAssertion(ctx, issuer, id)
}

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
	return s.core.SignIn(ctx, issuer, assertionID, expires, key, now, decide)
}

// SignInWith is [Store.SignIn] of r in one transaction that also reads
// the users holding r.Email on a first sign-in and gives them to
// r.Decide, and records r.Session when the user is written, with the
// outcomes [userstore.SignInWithStore.SignInWith] lists: a first sign-in
// is then one commit. The email's users are read at the transaction's snapshot; the unique email index still refuses, atomically, a write that a concurrent sign-in made wrong. r.Decide may be called more than once, as SignIn's decide.
func (s *Store) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	return s.core.SignInWith(ctx, r)
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes, in one transaction that locks the
// account's row. It returns an error wrapping [userstore.ErrInvalidKey]
// when key has an empty part, and refuses a time outside the years 1 to
// 9999, and keys or profiles containing NUL characters.
func (s *Store) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	return s.core.Link(ctx, id, key, p, now)
}

// GrantRole adds role to the user's LocalRoles, kept sorted and without
// duplicates, in one statement. Granting a role the user already has
// locally is not an error. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user, and refuses an empty
// role.
func (s *Store) GrantRole(ctx context.Context, key userstore.Key, role string) error {
	if role == "" {
		return s.core.EmptyRole("grant role", key)
	}
	return s.core.Change(ctx, fmt.Sprintf("grant role %q for", role), key, grantRole, role)
}

// RevokeRole removes role from the user's LocalRoles, in one statement.
// Revoking a role the user does not have locally is not an error; revoking
// the last one leaves LocalRoles nil. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user, and refuses an empty
// role.
func (s *Store) RevokeRole(ctx context.Context, key userstore.Key, role string) error {
	if role == "" {
		return s.core.EmptyRole("revoke role", key)
	}
	return s.core.Change(ctx, fmt.Sprintf("revoke role %q for", role), key, revokeRole, role)
}

// Suspend marks the user suspended and ends every session of theirs, in
// one transaction that locks the user's row. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user.
func (s *Store) Suspend(ctx context.Context, key userstore.Key) error {
	return s.core.ChangeEndingSessions(ctx, "suspend", key, suspendUser)
}

// Unsuspend marks the user active again; the sessions Suspend ended stay
// ended. It returns an error wrapping [userstore.ErrNotFound] when there
// is no such user.
func (s *Store) Unsuspend(ctx context.Context, key userstore.Key) error {
	return s.core.Change(ctx, "unsuspend", key, unsuspendUser)
}

// CreateSession records sess, as [userstore.Sessions.CreateSession]
// describes, in one statement that checks, locking and writing the user's
// row, that the user is active. A bounded batch of expired sessions is
// deleted after it, as ConsumeAssertion does with replay records. It
// returns an error wrapping [userstore.ErrNotFound] when no active user
// has sess.Key, and refuses NUL characters and times outside the years 1
// to 9999.
func (s *Store) CreateSession(ctx context.Context, sess userstore.Session) error {
	return s.core.CreateSession(ctx, sess)
}

// LookupSession returns the live session with the given ID and its user,
// in one query joining the two, as [userstore.Sessions.LookupSession]
// describes. A session ended on any instance is not found.
func (s *Store) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	return s.core.LookupSession(ctx, id, now)
}

// LookupSessionLazy is LookupSession with the user's groups, attributes
// and roles decoded on first use, as
// [userstore.LazySessions.LookupSessionLazy] describes: what RequireUser
// runs on every request, so that its cost does not grow with the user's
// group count.
func (s *Store) LookupSessionLazy(ctx context.Context, id string, now time.Time) (userstore.Session, *userstore.LazyUser, error) {
	return s.core.LookupSessionLazy(ctx, id, now)
}

// EndSession ends the session with the given ID, for every instance.
// Ending an unknown, ended or expired session is not an error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.core.EndSession(ctx, id)
}

// EndSessions ends the sessions of key live at now (only those with
// sessionIndex, when it is not empty), for every instance, in one
// statement, and returns how many it ended.
func (s *Store) EndSessions(ctx context.Context, key userstore.Key, sessionIndex string, now time.Time) (int, error) {
	return s.core.EndSessions(ctx, key, sessionIndex, now)
}

// EndSessionsByNameID ends the sessions of issuer live at now whose NameID
// value is nameID (only those with sessionIndex, when it is not empty),
// for every instance, in one statement, and returns how many it ended.
func (s *Store) EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error) {
	return s.core.EndSessionsByNameID(ctx, issuer, nameID, sessionIndex, now)
}

// ListSessions returns the sessions of key live at now, ordered by
// creation time then ID.
func (s *Store) ListSessions(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	return s.core.ListSessions(ctx, key, now)
}

// Lookup returns the user with the given key. It returns an error wrapping
// [userstore.ErrNotFound] when there is none and one wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	return s.core.Lookup(ctx, key)
}

// Delete removes the user record and ends every session of theirs, in one
// transaction. It returns an error wrapping [userstore.ErrNotFound] when
// there is no such user. Deleting is not deprovisioning: the next sign-in
// creates a new record.
func (s *Store) Delete(ctx context.Context, key userstore.Key) error {
	return s.core.ChangeEndingSessions(ctx, "delete", key, deleteUser)
}

// List returns every user, ordered by creation time then ID.
func (s *Store) List(ctx context.Context) ([]userstore.User, error) { return s.core.List(ctx) }

// LookupEmail returns the users whose email equals email once both are put
// through [userstore.NormalizeEmail], whatever their issuer, ordered by
// creation time then ID. A blank email matches no one. The query uses the
// indexed normalized email; a row whose stored email no longer has that
// normalized form (written by an instance still running an older version of
// this package) is left out.
func (s *Store) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	return s.core.LookupEmail(ctx, email)
}

// NotSignedInSince returns the users whose last sign-in is before t, oldest
// first, with ties ordered by ID.
func (s *Store) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	return s.core.NotSignedInSince(ctx, t)
}

// The range of times the store records: the years 1 to 9999, which every
// PostgreSQL timestamptz and every driver can represent.
var (
	minTime = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, time.December, 31, 23, 59, 59, 999999999, time.UTC)
)

// inRange reports whether t lies between minTime and maxTime.
func inRange(t time.Time) bool { return !t.Before(minTime) && !t.After(maxTime) }

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

// splitTimes is the store's [sqlcore.TimeCodec]: a time is a timestamptz
// column, which holds microseconds, followed by a smallint column of the
// nanoseconds beyond the microsecond, so that times come back exactly.
type splitTimes struct{}

// Stored returns t in UTC, or an error when it is outside the years 1 to
// 9999.
func (splitTimes) Stored(t time.Time) (time.Time, error) {
	if !inRange(t) {
		return time.Time{}, fmt.Errorf("time %s is outside the years 1 to 9999", t)
	}
	return joinTime(splitTime(t)), nil
}

// Clamp returns t limited to the years 1 to 9999.
func (splitTimes) Clamp(t time.Time) time.Time { return sqlcore.Clamp(t, minTime, maxTime) }

// Args returns t split by splitTime.
func (splitTimes) Args(t time.Time) (any, any) {
	at, ns := splitTime(t)
	return at, ns
}

// AppendDest appends t itself, for the timestamptz column, and a
// destination that adds the smallint's nanoseconds to it: database/sql
// assigns the columns in order.
func (splitTimes) AppendDest(dest []any, t *time.Time) []any { return append(dest, t, addNanos{t}) }

// addNanos is a [sql.Scanner] that adds the nanoseconds of an integer
// column to *t, read from the column before it, and leaves *t in UTC.
type addNanos struct{ t *time.Time }

// Scan adds src, an integer, to *d.t as nanoseconds.
func (d addNanos) Scan(src any) error {
	ns, err := sqlcore.ScanInt64(src)
	*d.t = joinTime(*d.t, ns)
	return err
}
