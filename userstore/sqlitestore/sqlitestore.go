// Package sqlitestore is an implementation of [userstore.Store],
// [userstore.ReplayCache], [userstore.Admin], [userstore.SignInStore],
// [userstore.SignInWithStore], [userstore.Linker], [userstore.Sessions],
// [userstore.Directory] and
// [userstore.GroupDirectory] on an SQLite database.
//
// The package uses only database/sql: it imports no SQL driver, so the
// application chooses one and opens the *sql.DB itself. It is written for and
// tested with github.com/mattn/go-sqlite3; [DSN] builds a data source name
// for that driver. Any driver for SQLite 3.24 or later should work, and the
// store does not depend on the parameters of the data source name: it sets
// what it needs on the connections it uses.
//
// Users, sessions and replay records live in the same database file, so
// replay protection holds, and an ended session stays ended, across
// restarts and across processes sharing the file.
//
// # Concurrency
//
// Writes run on a connection pinned from the pool, with the busy timeout of
// [Options] set on it, inside BEGIN IMMEDIATE … COMMIT. SQLite lets one
// writer at a time take that lock, so [Store.Provision] is atomic per key
// across connections and across processes: concurrent first sign-ins of one
// person create exactly one user. Writes of one Store also queue in the
// process, one at a time and for no longer than their context allows,
// before they ask SQLite for the lock, so that many concurrent sign-ins do
// not starve each other in SQLite's polling busy handler. Reads are single
// statements on the pool; in WAL mode, which [Open] enables, they do not
// wait for writers.
//
// The store sets its busy timeout on each connection it pins, and that
// setting stays on the connection when it returns to the pool. SQLite's wait
// for a lock does not notice a cancelled context, but it does end by the
// context's deadline: a write waits for the busy timeout or until the
// deadline, whichever comes first. When it gives up at the deadline, the
// error wraps [context.DeadlineExceeded] as well as the driver's "database
// is locked", even if SQLite gave up a moment before the context ended.
//
// # Storage
//
// Keys are compared byte for byte (BINARY collation). Times are stored as
// UTC nanoseconds since the Unix epoch, so they must lie between the years
// 1678 and 2262; [Store.Provision] refuses a time outside that range.
// Groups, Attributes, Roles and LocalRoles are stored as JSON, which keeps
// nil and empty apart but replaces bytes that are not valid UTF-8 with
// U+FFFD. A user's LocalRoles is nil whenever the user has no local role:
// when none was ever granted, and also after the last one is revoked.
//
// For [Store.LookupEmail], every write of a profile also stores the email
// in the form of [userstore.NormalizeEmail], computed in Go, in an indexed
// column; SQL's lower() is not used.
//
// An in-memory database (":memory:") is a separate database on each pooled
// connection; use it only with db.SetMaxOpenConns(1), or use memstore.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// SchemaVersion is the version of the database schema this package creates
// and understands. It is recorded in the database's user_version. [Open]
// migrates a database of an older version.
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

// DefaultBusyTimeout is the busy timeout used when [Options.BusyTimeout] is
// zero.
const DefaultBusyTimeout = 5 * time.Second

// ErrSchemaTooNew means the database was created or migrated by a newer
// version of this package. [Open] refuses such a database rather than risk
// misreading or damaging it.
var ErrSchemaTooNew = errors.New("sqlitestore: database schema is newer than this version supports")

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// BusyTimeout is how long a write waits for a write of another
	// connection or process to finish before it fails. Zero or a negative
	// value means DefaultBusyTimeout (5 seconds).
	BusyTimeout time.Duration
}

// Store is a user store and replay cache on an SQLite database. Create one
// with [Open]. A Store is safe for concurrent use; it does not own the
// *sql.DB, which the application closes when it is done.
type Store struct {
	db *sql.DB
	// core runs the statements, with the dialect of this Store.
	core        *sqlcore.Core
	busyTimeout time.Duration
	busyPragma  string
	// writes admits one write of this Store at a time. SQLite has one
	// writer anyway; queueing here, in order and without polling, keeps
	// concurrent sign-ins from competing in SQLite's busy handler, whose
	// sleeps starve some writers until their busy timeout expires. Writers
	// in other processes still wait in the busy handler.
	writes chan struct{}
}

// Interface check: userstore.Store, ReplayCache, Admin, SignInStore,
// Linker and Sessions.
var _ sqlcore.Interfaces = (*Store)(nil)

// DSN returns a data source name for github.com/mattn/go-sqlite3 that opens
// the database file at path with a busy timeout of 5 seconds, WAL journaling,
// foreign keys enforced, BEGIN IMMEDIATE transactions and a cache of 32
// prepared statements per connection (the store runs a handful of fixed
// statements, and preparing them was a tenth of a sign-in's store time):
//
//	file:PATH?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_txlock=immediate&_stmt_cache_size=32
//
// It is a convenience for applications using that driver: the store is
// correct with any data source name that opens the file read-write. The
// characters '%', '?' and '#' in path are escaped.
func DSN(path string) string {
	path = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + path + "?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_txlock=immediate&_stmt_cache_size=32"
}

// Open returns a Store on db. It creates the schema, or migrates an older
// one, in a single transaction, and switches the database to WAL journaling
// (a setting kept in the file). Several processes may open a new database at
// once; one of them creates the schema. Open refuses with an error wrapping
// [ErrSchemaTooNew] a database whose schema version is newer than
// [SchemaVersion], before writing anything.
//
// A database whose schema is current may be read-only: Open then succeeds
// without writing, reads work and writes fail with an error. Switching such
// a database to WAL is best effort; the store is correct in any journal mode,
// and WAL only lets reads run alongside writes.
func Open(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: open: nil *sql.DB")
	}
	d := opts.BusyTimeout
	if d <= 0 {
		d = DefaultBusyTimeout
	}
	s := &Store{db: db, busyTimeout: d, busyPragma: busyPragma(d), writes: make(chan struct{}, 1)}
	s.core = sqlcore.New(db, sqlcore.Dialect{
		Name:        "sqlitestore",
		Queries:     queries,
		Directory:   directoryQueries,
		Connections: connectionQueries,
		Time:        nanos{},
		Begin:       s.begin,
		Exec:        s.exec,
		// The driver's message names the index's columns.
		EmailTaken: func(err error) bool {
			return strings.Contains(err.Error(), "UNIQUE constraint failed: users.issuer, users.email_norm")
		},
		UserNameTaken: func(err error) bool {
			return strings.Contains(err.Error(), "UNIQUE constraint failed: users.issuer, users.user_name_norm")
		},
		DomainTaken: func(err error) bool {
			return strings.Contains(err.Error(), "UNIQUE constraint failed: connection_domains.domain")
		},
	})
	if err := s.init(ctx); err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	// LookupSession runs on every request through RequireUser, and
	// Lookup at sign-ins: prepared once, database/sql keeps them prepared
	// on each pooled connection.
	s.core.PrepareLookup(ctx)
	return s, nil
}

// DB returns the database the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// init prepares the database: it checks the schema version, creates or
// migrates the schema and turns on WAL journaling.
func (s *Store) init(ctx context.Context) (err error) {
	p, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer p.release()
	defer func() { err = p.check(err) }()
	c := p.Conn

	current, err := sqlcore.Migrate(ctx, c, func(ctx context.Context) (*sqlcore.Tx, error) {
		if err := beginOn(ctx, c); err != nil {
			return nil, err
		}
		return &sqlcore.Tx{Conn: c, End: func(err error) error { return endTx(ctx, c, err) }}, nil
	}, schema)
	switch {
	case err != nil:
		return err
	case current:
		// Nothing to migrate. Switching to WAL is then best effort: the
		// store is correct in any journal mode, and a read-only database
		// that cannot switch must still open.
		_ = setWAL(ctx, c)
		return nil
	}
	return s.enableWAL(ctx, c)
}

// enableWAL switches the database to WAL journaling, retrying for up to
// the busy timeout. SQLite does not wait for other connections' locks when
// it changes the journal mode, so processes opening a new database at once
// can briefly make each other fail.
func (s *Store) enableWAL(ctx context.Context, c *sql.Conn) error {
	deadline := time.Now().Add(s.busyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := setWAL(ctx, c)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("enable WAL journaling: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// setWAL switches the database to WAL journaling unless it already uses
// it. SQLite keeps the setting in the file. A database that cannot use WAL
// (an in-memory one) keeps its mode.
func setWAL(ctx context.Context, c *sql.Conn) error {
	var mode string
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if strings.EqualFold(mode, "wal") {
		return nil
	}
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("enable WAL journaling: %w", err)
	}
	return nil
}

const (
	// userColumns are the user columns sqlcore reads, after issuer and
	// subject when it reads the key.
	userColumns = `id, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json, local_roles_json, status, created_at, updated_at, last_sign_in_at`

	// selectUserByKey reads the user columns of the user with a key.
	selectUserByKey = `SELECT ` + userColumns + ` FROM users WHERE issuer = ? AND subject = ?`

	// selectUsers reads users with their key; a clause follows.
	selectUsers = `SELECT issuer, subject, ` + userColumns + ` FROM users`

	// sessionColumns are the columns of a session that sqlcore reads
	// before its user's.
	sessionColumns = `s.connection, s.session_index, ` + nameIDColumns + `, s.created_at, s.expires_at`

	// nameIDColumns are a session's NameID columns.
	nameIDColumns = `name_id, name_id_format, name_qualifier, sp_name_qualifier`
)

// suspendUser, unsuspendUser and deleteUser change the user with key
// (?, ?).
var (
	suspendUser   = `UPDATE users SET status = ` + strconv.Itoa(int(userstore.Suspended)) + ` WHERE issuer = ? AND subject = ?`
	unsuspendUser = `UPDATE users SET status = ` + strconv.Itoa(int(userstore.Active)) + ` WHERE issuer = ? AND subject = ?`
	deleteUser    = `DELETE FROM users WHERE issuer = ? AND subject = ?`
)

// queries are the store's statements, taking the arguments
// [sqlcore.Queries] lists. The numbered parameters (?NNN) let a statement
// take its arguments in that order and use one twice. Reads for a write
// lock nothing: the write transaction holds SQLite's write lock.
var queries = sqlcore.Queries{
	UserByKey:         selectUserByKey,
	UserByKeyForWrite: selectUserByKey,
	UserByIDForWrite:  selectUsers + ` WHERE id = ?`,
	KeyOwner:          `SELECT id FROM users WHERE issuer = ? AND subject = ?`,

	InsertUser: `INSERT INTO users (id, issuer, subject, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json, email_norm, status, created_at, updated_at, last_sign_in_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?12, ?12)`,
	UpdateUser: `UPDATE users SET email = ?2, display_name = ?3, given_name = ?4, family_name = ?5, groups_json = ?6, attributes_json = ?7, roles_json = ?8, email_norm = ?9, updated_at = ?10, last_sign_in_at = ?10
		WHERE id = ?1`,
	LinkUser: `UPDATE users SET issuer = ?10, subject = ?11, email = ?2, display_name = ?3, given_name = ?4, family_name = ?5, groups_json = ?6, attributes_json = ?7, roles_json = ?8, email_norm = ?9, updated_at = ?12, last_sign_in_at = ?12
		WHERE id = ?1`,

	ConsumeAssertion: `INSERT INTO replay (issuer, assertion_id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (issuer, assertion_id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE replay.expires_at <= ?`,
	// At most 32 records, so that the cost of one ConsumeAssertion stays
	// small however many have expired.
	PurgeReplay:      `DELETE FROM replay WHERE rowid IN (SELECT rowid FROM replay WHERE expires_at <= ? LIMIT 32)`,
	ReleaseAssertion: `DELETE FROM replay WHERE issuer = ? AND assertion_id = ?`,

	ListUsers:           selectUsers + ` ORDER BY created_at, id`,
	UsersSignedInBefore: selectUsers + ` WHERE last_sign_in_at < ? ORDER BY last_sign_in_at, id`,
	UsersByEmail:        selectUsers + ` WHERE email_norm = ? ORDER BY created_at, id`,

	// The write transaction holds SQLite's write lock: no suspension
	// can come between the check and the insert.
	InsertSession: `INSERT INTO sessions (id, issuer, subject, connection, session_index, ` + nameIDColumns + `, created_at, expires_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 FROM users WHERE issuer = ?2 AND subject = ?3 AND status = ` + strconv.Itoa(int(userstore.Active)),
	// The CAST keeps the prepared statement prepared: compared bare
	// with the indexed id in a join, the parameter's value is one the
	// query planner reads, and SQLite prepares such a statement again
	// each time it is bound, which tripled the time of a request.
	SessionByID: `SELECT ` + sessionColumns + `, u.issuer, u.subject, ` + sqlcore.Qualify("u", userColumns) + `
		FROM sessions s JOIN users u ON u.issuer = s.issuer AND u.subject = s.subject
		WHERE s.id = CAST(? AS TEXT) AND s.expires_at > ?`,
	SessionsOfKey: `SELECT id, connection, session_index, ` + nameIDColumns + `, created_at, expires_at FROM sessions
		WHERE issuer = ? AND subject = ? AND expires_at > ? ORDER BY created_at, id`,
	DeleteSession:              `DELETE FROM sessions WHERE id = ?`,
	DeleteLiveSessions:         `DELETE FROM sessions WHERE issuer = ?1 AND subject = ?2 AND (?3 = '' OR session_index = ?3) AND expires_at > ?4`,
	DeleteLiveSessionsByNameID: `DELETE FROM sessions WHERE issuer = ?1 AND name_id = ?2 AND (?3 = '' OR session_index = ?3) AND expires_at > ?4`,
	DeleteSessionsOfKey:        `DELETE FROM sessions WHERE issuer = ? AND subject = ?`,
	// At most 32 sessions, as PurgeReplay. The table is clustered on
	// the id (WITHOUT ROWID), so a request's lookup seeks it once.
	PurgeSessions: `DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= ? LIMIT 32)`,
}

// The range of times the store records: UTC nanoseconds since the Unix
// epoch in an int64.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos is the store's [sqlcore.TimeCodec]: a time is one INTEGER column of
// UTC nanoseconds since the Unix epoch, so it lies between the years 1678
// and 2262.
type nanos struct{}

// Stored returns t to the nanosecond in UTC, or an error when it is
// outside the range of an int64 of nanoseconds.
func (nanos) Stored(t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("time %s is outside the range a store can record", t)
	}
	return time.Unix(0, t.UnixNano()).UTC(), nil
}

// Clamp returns t limited to the range of an int64 of nanoseconds.
func (nanos) Clamp(t time.Time) time.Time { return sqlcore.Clamp(t, minTime, maxTime) }

// Args returns t's nanoseconds since the Unix epoch.
func (nanos) Args(t time.Time) (any, any) { return t.UnixNano(), nil }

// AppendDest appends a destination that sets *t from the nanoseconds.
func (nanos) AppendDest(dest []any, t *time.Time) []any { return append(dest, nanosDest{t}) }

// nanosDest is a [sql.Scanner] that sets *t from nanoseconds since the
// Unix epoch, in UTC.
type nanosDest struct{ t *time.Time }

// Scan sets *d.t from src, an integer.
func (d nanosDest) Scan(src any) error {
	n, err := sqlcore.ScanInt64(src)
	*d.t = time.Unix(0, n).UTC()
	return err
}

// Lookup returns the user with the given key. It returns an error wrapping
// [userstore.ErrNotFound] when there is none and one wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	return s.core.Lookup(ctx, key)
}

// Provision creates the user with the given key, or replaces its profile,
// as [userstore.Store.Provision] describes, in one transaction that holds
// SQLite's write lock. It never changes a user's status, local roles,
// creation time or ID. It refuses a time outside the years 1678 to 2262.
func (s *Store) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	return s.core.Provision(ctx, key, p, now)
}

// SignIn is [Store.ConsumeAssertion] followed by [Store.Provision] with the
// profile decide returns, in one transaction, so that a sign-in waits for
// one commit (one fsync) instead of two and reads the user once: decide is
// given the row the transaction reads. The outcomes are those
// [userstore.SignInStore.SignIn] lists:
//
//   - an assertion already used returns an error wrapping
//     [userstore.ErrReplayed] and writes nothing; decide is not called;
//   - a suspended user keeps the assertion recorded, is not changed, and is
//     returned as stored (Status [userstore.Suspended], and Before the same
//     record) with a nil error; decide is not called;
//   - an error from decide writes nothing at all, neither the record of the
//     assertion nor the user, and is wrapped in the returned error;
//   - any other failure writes nothing at all either, so the person can
//     retry.
//
// decide runs while the transaction holds SQLite's write lock, so it must
// be quick and must not call the store; it must not modify *before, which
// is also the result's Before.
func (s *Store) SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, now time.Time, decide func(before *userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	return s.core.SignIn(ctx, issuer, assertionID, expires, key, now, decide)
}

// SignInWith is [Store.SignIn] of r in one transaction that also reads
// the users holding r.Email on a first sign-in and gives them to
// r.Decide, and records r.Session when the user is written, with the
// outcomes [userstore.SignInWithStore.SignInWith] lists: a first sign-in
// is then one commit. It runs while the transaction holds SQLite's write lock, as SignIn does.
func (s *Store) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	return s.core.SignInWith(ctx, r)
}

// LookupEmail returns the users whose email equals email once both are put
// through [userstore.NormalizeEmail], whatever their issuer, ordered by
// creation time then ID. A blank email matches no one. The query uses the
// indexed normalized email; a row whose stored email no longer has that
// normalized form (written by an older version of this package still
// running) is left out.
func (s *Store) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	return s.core.LookupEmail(ctx, email)
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes, in one transaction that holds SQLite's
// write lock. It returns an error wrapping [userstore.ErrInvalidKey] when
// key has an empty part, and refuses a time outside the years 1678 to 2262.
func (s *Store) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	return s.core.Link(ctx, id, key, p, now)
}

// ConsumeAssertion records that the assertion id from issuer was used until
// expires, as [userstore.ReplayCache.ConsumeAssertion] describes. A record
// whose expiry is at or before now has expired. The check and the record
// are one statement, so exactly one of concurrent calls succeeds, in this
// process or another. Each successful call also deletes a small, bounded
// batch of expired records in the same transaction.
func (s *Store) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	return s.core.ConsumeAssertion(ctx, issuer, id, expires, now)
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (s *Store) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	return s.core.ReleaseAssertion(ctx, issuer, id)
}

// List returns every user, ordered by creation time then ID.
func (s *Store) List(ctx context.Context) ([]userstore.User, error) { return s.core.List(ctx) }

// NotSignedInSince returns the users whose last sign-in is before t, oldest
// first, with ties ordered by ID.
func (s *Store) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	return s.core.NotSignedInSince(ctx, t)
}

// Suspend marks the user suspended and ends every session of theirs, in
// one transaction. It returns an error wrapping [userstore.ErrNotFound]
// when there is no such user.
func (s *Store) Suspend(ctx context.Context, key userstore.Key) error {
	return s.core.ChangeEndingSessions(ctx, "suspend", key, suspendUser)
}

// Unsuspend marks the user active again; the sessions Suspend ended stay
// ended. It returns an error wrapping [userstore.ErrNotFound] when there
// is no such user.
func (s *Store) Unsuspend(ctx context.Context, key userstore.Key) error {
	return s.core.Change(ctx, "unsuspend", key, unsuspendUser)
}

// Delete removes the user record and ends every session of theirs, in one
// transaction. It returns an error wrapping [userstore.ErrNotFound] when
// there is no such user. Deleting is not deprovisioning: the next sign-in
// creates a new record.
func (s *Store) Delete(ctx context.Context, key userstore.Key) error {
	return s.core.ChangeEndingSessions(ctx, "delete", key, deleteUser)
}

// CreateSession records sess, as [userstore.Sessions.CreateSession]
// describes, in one transaction that holds SQLite's write lock and also
// deletes a small, bounded batch of expired sessions. It returns an error
// wrapping [userstore.ErrNotFound] when no active user has sess.Key.
func (s *Store) CreateSession(ctx context.Context, sess userstore.Session) error {
	return s.core.CreateSession(ctx, sess)
}

// LookupSession returns the live session with the given ID and its user,
// as [userstore.Sessions.LookupSession] describes. It is one prepared
// statement joining the two, which in WAL mode does not wait for writers:
// what RequireUser runs on every request.
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

// EndSession deletes the session with the given ID from the database file,
// so that every process sharing the file refuses it. Ending an unknown,
// ended or expired session is not an error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	return s.core.EndSession(ctx, id)
}

// EndSessions deletes the sessions of key live at now (only those with
// sessionIndex, when it is not empty) in one statement under SQLite's
// write lock, and returns how many it deleted; expired ones are left to
// the purge.
func (s *Store) EndSessions(ctx context.Context, key userstore.Key, sessionIndex string, now time.Time) (int, error) {
	return s.core.EndSessions(ctx, key, sessionIndex, now)
}

// EndSessionsByNameID deletes the sessions of issuer live at now whose
// NameID value is nameID (only those with sessionIndex, when it is not
// empty) in one statement through the index on the NameID, and returns
// how many it deleted.
func (s *Store) EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error) {
	return s.core.EndSessionsByNameID(ctx, issuer, nameID, sessionIndex, now)
}

// ListSessions returns the sessions of key live at now, oldest first,
// with ties ordered by ID, read through the index on the key.
func (s *Store) ListSessions(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	return s.core.ListSessions(ctx, key, now)
}

// GrantRole adds role to the user's LocalRoles, kept sorted and without
// duplicates. Granting a role the user already has locally is not an
// error. It returns an error wrapping [userstore.ErrNotFound] when there is
// no such user, and refuses an empty role.
func (s *Store) GrantRole(ctx context.Context, key userstore.Key, role string) error {
	return s.changeRoles(ctx, "grant role", key, role, func(roles []string) []string {
		if i, found := slices.BinarySearch(roles, role); !found {
			roles = slices.Insert(roles, i, role)
		}
		return roles
	})
}

// RevokeRole removes role from the user's LocalRoles. Revoking a role the
// user does not have locally is not an error; revoking the last one leaves
// LocalRoles nil. It returns an error wrapping [userstore.ErrNotFound] when
// there is no such user, and refuses an empty role.
func (s *Store) RevokeRole(ctx context.Context, key userstore.Key, role string) error {
	return s.changeRoles(ctx, "revoke role", key, role, func(roles []string) []string {
		if i, found := slices.BinarySearch(roles, role); found {
			roles = slices.Delete(roles, i, i+1)
		}
		return roles
	})
}

// changeRoles replaces the LocalRoles of the user with key by what change
// returns for them, sorted and unique, in one transaction.
func (s *Store) changeRoles(ctx context.Context, op string, key userstore.Key, role string, change func([]string) []string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if role == "" {
		return s.core.EmptyRole(op, key)
	}
	err := s.core.Write(ctx, func(tx *sqlcore.Tx) error {
		var stored string
		err := tx.QueryRowContext(ctx, `SELECT local_roles_json FROM users WHERE issuer = ? AND subject = ?`, key.Issuer, key.Subject).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return userstore.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read local roles: %w", err)
		}
		roles, err := sqlcore.DecodeLocalRoles(stored)
		if err != nil {
			return fmt.Errorf("read local roles: %w", err)
		}
		next := change(slices.Clone(roles))
		if slices.Equal(next, roles) {
			return nil
		}
		enc, err := sqlcore.EncodeLocalRoles(next)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET local_roles_json = ? WHERE issuer = ? AND subject = ?`, enc, key.Issuer, key.Subject); err != nil {
			return fmt.Errorf("write local roles: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: %s %q for %s: %w", op, role, key, err)
	}
	return nil
}
