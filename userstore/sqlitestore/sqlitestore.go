// Package sqlitestore is an implementation of [userstore.Store],
// [userstore.ReplayCache], [userstore.Admin], [userstore.SignInStore] and
// [userstore.Linker] on an SQLite database.
//
// The package uses only database/sql: it imports no SQL driver, so the
// application chooses one and opens the *sql.DB itself. It is written for and
// tested with github.com/mattn/go-sqlite3; [DSN] builds a data source name
// for that driver. Any driver for SQLite 3.24 or later should work, and the
// store does not depend on the parameters of the data source name: it sets
// what it needs on the connections it uses.
//
// Users and replay records live in the same database file, so replay
// protection holds across restarts and across processes sharing the file.
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
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// SchemaVersion is the version of the database schema this package creates
// and understands. It is recorded in the database's user_version. [Open]
// migrates a database of an older version.
//
// Version 2 added the users' roles, local roles and normalized email.
const SchemaVersion = 2

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
	db          *sql.DB
	busyTimeout time.Duration
	busyPragma  string
	// lookup is selectUserByKey prepared once: database/sql keeps it
	// prepared on each pooled connection, so a Lookup (every request
	// through RequireUser) does not compile the query again. Nil when
	// preparing failed at Open; Lookup then runs the query unprepared.
	lookup *sql.Stmt
	// writes admits one write of this Store at a time. SQLite has one
	// writer anyway; queueing here, in order and without polling, keeps
	// concurrent sign-ins from competing in SQLite's busy handler, whose
	// sleeps starve some writers until their busy timeout expires. Writers
	// in other processes still wait in the busy handler.
	writes chan struct{}
}

// Interface checks.
var (
	_ userstore.Store       = (*Store)(nil)
	_ userstore.ReplayCache = (*Store)(nil)
	_ userstore.Admin       = (*Store)(nil)
	_ userstore.SignInStore = (*Store)(nil)
	_ userstore.Linker      = (*Store)(nil)
)

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
	if err := s.init(ctx); err != nil {
		return nil, fmt.Errorf("sqlitestore: open: %w", err)
	}
	if st, err := db.PrepareContext(ctx, selectUserByKey); err == nil {
		s.lookup = st
	}
	return s, nil
}

// DB returns the database the store uses.
func (s *Store) DB() *sql.DB { return s.db }

// migration takes the schema from one version to the next, inside the
// transaction Open runs it in, on the connection c that holds it.
type migration func(ctx context.Context, c *sql.Conn) error

// migrations[v] takes the schema from version v to version v+1.
func migrations() []migration {
	return []migration{
		0: statements(
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
		1: func(ctx context.Context, c *sql.Conn) error {
			err := statements(
				`ALTER TABLE users ADD COLUMN roles_json TEXT NOT NULL DEFAULT 'null'`,
				`ALTER TABLE users ADD COLUMN local_roles_json TEXT NOT NULL DEFAULT 'null'`,
				`ALTER TABLE users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
			)(ctx, c)
			if err != nil {
				return err
			}
			if err := backfillEmailNorm(ctx, c); err != nil {
				return err
			}
			return statements(`CREATE INDEX users_email_norm ON users (email_norm, created_at, id)`)(ctx, c)
		},
	}
}

// statements returns a migration that runs stmts in order.
func statements(stmts ...string) migration {
	return func(ctx context.Context, c *sql.Conn) error {
		for _, stmt := range stmts {
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
}

// backfillEmailNorm sets the normalized email of every user from its email,
// computed with userstore.NormalizeEmail rather than SQL.
func backfillEmailNorm(ctx context.Context, c *sql.Conn) error {
	type row struct{ id, norm string }
	rows, err := c.QueryContext(ctx, `SELECT id, email FROM users WHERE email <> ''`)
	if err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	var todo []row
	for rows.Next() {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			rows.Close()
			return fmt.Errorf("read emails: %w", err)
		}
		if norm := userstore.NormalizeEmail(email); norm != "" {
			todo = append(todo, row{id, norm})
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read emails: %w", err)
	}
	if len(todo) == 0 {
		return nil
	}
	st, err := c.PrepareContext(ctx, `UPDATE users SET email_norm = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("normalize emails: %w", err)
	}
	defer st.Close()
	for _, r := range todo {
		if _, err := st.ExecContext(ctx, r.norm, r.id); err != nil {
			return fmt.Errorf("normalize email of user %s: %w", r.id, err)
		}
	}
	return nil
}

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

	v, err := schemaVersion(ctx, c)
	if err != nil {
		return err
	}
	if v == SchemaVersion {
		// Nothing to migrate. Switching to WAL is then best effort: the
		// store is correct in any journal mode, and a read-only database
		// that cannot switch must still open.
		_ = setWAL(ctx, c)
		return nil
	}
	err = s.inTxOn(ctx, c, func() error {
		// Another connection or process may have migrated the database
		// since the version was read; read it again under the lock.
		v, err := schemaVersion(ctx, c)
		if err != nil {
			return err
		}
		steps := migrations()
		for ; v < SchemaVersion; v++ {
			if err := steps[v](ctx, c); err != nil {
				return fmt.Errorf("migrate schema from version %d: %w", v, err)
			}
		}
		if _, err := c.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(SchemaVersion)); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.enableWAL(ctx, c)
}

// schemaVersion returns the database's user_version, or an error when it is
// one this package cannot handle.
func schemaVersion(ctx context.Context, c *sql.Conn) (int, error) {
	var v int64
	if err := c.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case v > SchemaVersion:
		return 0, fmt.Errorf("schema version %d, this package supports up to %d: %w", v, SchemaVersion, ErrSchemaTooNew)
	case v < 0:
		return 0, fmt.Errorf("unknown schema version %d", v)
	}
	return int(v), nil
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

// busyPragma returns the statement that sets a busy timeout of d, at least
// a millisecond.
func busyPragma(d time.Duration) string {
	ms := min(max(d.Milliseconds(), 1), math.MaxInt32)
	return "PRAGMA busy_timeout = " + strconv.FormatInt(ms, 10)
}

// pinned is a connection pinned from the pool by [Store.conn].
type pinned struct {
	*sql.Conn
	ctx    context.Context
	s      *Store
	pragma string
	// shortened is set when the busy timeout was cut to the time left
	// before ctx's deadline.
	shortened bool
}

// conn pins a connection from the pool and sets a busy timeout on it: the
// store's, or less when ctx's deadline comes sooner. SQLite's busy wait does
// not notice a cancelled context, so the deadline is how a write stops
// waiting for a lock in time. The caller calls release, which restores the
// store's busy timeout if it was shortened and returns the connection to
// the pool, and passes the errors of statements on it through check.
func (s *Store) conn(ctx context.Context) (*pinned, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("get connection: %w", err)
	}
	p := &pinned{Conn: c, ctx: ctx, s: s, pragma: s.busyPragma}
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left < s.busyTimeout {
			p.pragma = busyPragma(left)
			p.shortened = true
		}
	}
	if _, err := c.ExecContext(ctx, p.pragma); err != nil {
		c.Close()
		return nil, fmt.Errorf("set busy timeout: %w", err)
	}
	return p, nil
}

// release restores the store's busy timeout on p if it was changed and
// returns the connection to the pool.
func (p *pinned) release() {
	if p.pragma != p.s.busyPragma {
		if _, err := p.ExecContext(context.WithoutCancel(p.ctx), p.s.busyPragma); err != nil {
			// Do not hand the pool a connection with a setting of
			// this call's.
			_ = p.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	p.Close()
}

// check returns err, made to wrap [context.DeadlineExceeded] as well when
// the busy timeout was cut to ctx's deadline and err says the database is
// locked: SQLite's busy wait then ended at the deadline, possibly a moment
// before the context noticed, and the caller's deadline is why it failed.
func (p *pinned) check(err error) error {
	if err == nil || !p.shortened || errors.Is(err, context.DeadlineExceeded) || !isBusy(err) {
		return err
	}
	return fmt.Errorf("%w (the wait for the lock ended at the context's deadline: %w)", err, context.DeadlineExceeded)
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED. The
// package imports no driver, so it reads a Code() int method where the
// driver's error has one (modernc.org/sqlite), and otherwise SQLite's
// messages for these codes (github.com/mattn/go-sqlite3 and others).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "database table is locked")
}

// lockWrites waits until no other write of this Store runs, or until ctx
// ends. The caller calls unlock when its write is over.
func (s *Store) lockWrites(ctx context.Context) (unlock func(), err error) {
	select {
	case s.writes <- struct{}{}:
		return func() { <-s.writes }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for this store's other writes: %w", ctx.Err())
	}
}

// inTx runs fn in a write transaction on a pinned connection.
func (s *Store) inTx(ctx context.Context, fn func(c *sql.Conn) error) error {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer p.release()
	return p.check(s.inTxOn(ctx, p.Conn, func() error { return fn(p.Conn) }))
}

// inTxOn runs fn between BEGIN IMMEDIATE and COMMIT on c, and rolls back
// when fn or the commit fails, or fn panics. BEGIN IMMEDIATE takes SQLite's
// write lock at once (waiting up to the busy timeout), so the transaction
// never has to upgrade a read lock and cannot fail with a stale snapshot.
//
// The commit and rollback run even when ctx is cancelled, so that the
// transaction either happens whole or not at all and the connection goes
// back to the pool without one open. If the rollback fails, the connection
// is discarded.
func (s *Store) inTxOn(ctx context.Context, c *sql.Conn, fn func() error) error {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		// A failed BEGIN normally leaves no transaction, but a driver
		// may report an error, such as the context's, for a BEGIN that
		// took effect. Make sure: ROLLBACK is harmless on a connection
		// with no transaction.
		_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("begin transaction: %w", err)
	}
	returned := false
	defer func() {
		if !returned {
			// fn panicked (a caller's decide function, say): do not
			// leave the transaction open on the connection.
			_ = rollback(ctx, c)
		}
	}()
	err := fn()
	returned = true
	if err != nil {
		if rerr := rollback(ctx, c); rerr != nil {
			return fmt.Errorf("%w (rollback: %w)", err, rerr)
		}
		return err
	}
	if _, err := c.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		// SQLite may already have rolled back after a failed COMMIT, so
		// an error from ROLLBACK says nothing new; rollback still discards
		// the connection when it fails.
		_ = rollback(ctx, c)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rollback rolls back the transaction open on c. It ignores ctx's
// cancellation, and when it fails it marks c bad so that the pool closes it
// instead of reusing a connection whose transaction state is unknown.
func rollback(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		return err
	}
	return nil
}

// exec runs one write statement on a pinned connection with the busy
// timeout set, and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	p, err := s.conn(ctx)
	if err != nil {
		return 0, err
	}
	defer p.release()
	res, err := p.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, p.check(err)
	}
	return res.RowsAffected()
}

const (
	// userColumns are the columns scanUser reads, after issuer and subject
	// when it reads the key.
	userColumns = `id, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json, local_roles_json, status, created_at, updated_at, last_sign_in_at`

	selectUserByKey = `SELECT ` + userColumns + ` FROM users WHERE issuer = ? AND subject = ?`

	selectUserByID = `SELECT issuer, subject, ` + userColumns + ` FROM users WHERE id = ?`

	insertUser = `INSERT INTO users (id, issuer, subject, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json, email_norm, status, created_at, updated_at, last_sign_in_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`

	updateUser = `UPDATE users SET email = ?, display_name = ?, given_name = ?, family_name = ?, groups_json = ?, attributes_json = ?, roles_json = ?, email_norm = ?, updated_at = ?, last_sign_in_at = ?
		WHERE id = ?`

	linkUser = `UPDATE users SET issuer = ?, subject = ?, email = ?, display_name = ?, given_name = ?, family_name = ?, groups_json = ?, attributes_json = ?, roles_json = ?, email_norm = ?, updated_at = ?, last_sign_in_at = ?
		WHERE id = ?`

	consumeAssertion = `INSERT INTO replay (issuer, assertion_id, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (issuer, assertion_id) DO UPDATE SET expires_at = excluded.expires_at
		WHERE replay.expires_at <= ?`

	// purgeReplay deletes at most 32 expired replay records, so that the
	// cost of one ConsumeAssertion stays small however many have expired.
	purgeReplay = `DELETE FROM replay WHERE rowid IN (SELECT rowid FROM replay WHERE expires_at <= ? LIMIT 32)`
)

// Lookup returns the user with the given key. It returns an error wrapping
// [userstore.ErrNotFound] when there is none and one wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	if err := key.Validate(); err != nil {
		return userstore.User{}, err
	}
	u := userstore.User{Key: key}
	var row *sql.Row
	if s.lookup != nil {
		row = s.lookup.QueryRowContext(ctx, key.Issuer, key.Subject)
	} else {
		row = s.db.QueryRowContext(ctx, selectUserByKey, key.Issuer, key.Subject)
	}
	err := scanUser(row, &u, false)
	if errors.Is(err, sql.ErrNoRows) {
		return userstore.User{}, fmt.Errorf("sqlitestore: lookup %s: %w", key, userstore.ErrNotFound)
	}
	if err != nil {
		return userstore.User{}, fmt.Errorf("sqlitestore: lookup %s: %w", key, err)
	}
	return u, nil
}

// Provision creates the user with the given key, or replaces its profile,
// as [userstore.Store.Provision] describes, in one transaction that holds
// SQLite's write lock. It never changes a user's status, local roles,
// creation time or ID. It refuses a time outside the years 1678 to 2262.
func (s *Store) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	w, err := newWrite(key, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: provision %s: %w", key, err)
	}
	e, err := encodeProfile(p)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: provision %s: %w", key, err)
	}
	var res userstore.Provisioned
	err = s.inTx(ctx, func(c *sql.Conn) error {
		res, err = w.apply(ctx, c, false, func(*userstore.User) (encoded, error) { return e, nil })
		return err
	})
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: provision %s: %w", key, err)
	}
	return res, nil
}

// write is the validated key and time of one Provision, SignIn or Link.
type write struct {
	key   userstore.Key
	nowNS int64
	now   time.Time
}

func newWrite(key userstore.Key, now time.Time) (write, error) {
	if err := key.Validate(); err != nil {
		return write{}, err
	}
	w := write{key: key}
	var err error
	if w.nowNS, err = unixNano(now); err != nil {
		return write{}, err
	}
	w.now = time.Unix(0, w.nowNS).UTC()
	return w, nil
}

// encoded is a profile in the form of the users table's columns.
type encoded struct {
	p                    userstore.Profile
	groups, attrs, roles string
	emailNorm            string
}

func encodeProfile(p userstore.Profile) (encoded, error) {
	e := encoded{p: p, emailNorm: userstore.NormalizeEmail(p.Email)}
	var err error
	if e.groups, err = encodeStrings(p.Groups); err != nil {
		return encoded{}, fmt.Errorf("encode groups: %w", err)
	}
	if e.attrs, err = encodeAttributes(p.Attributes); err != nil {
		return encoded{}, err
	}
	if e.roles, err = encodeStrings(p.Roles); err != nil {
		return encoded{}, fmt.Errorf("encode roles: %w", err)
	}
	return e, nil
}

// apply creates or updates the user inside the caller's transaction, with
// the profile profileFor returns for the stored user (nil when there is
// none). It reads the user once. With keepSuspended, a suspended user is
// left exactly as stored and returned, with Before set to the same record,
// and profileFor is not called.
func (w write) apply(ctx context.Context, c *sql.Conn, keepSuspended bool, profileFor func(before *userstore.User) (encoded, error)) (res userstore.Provisioned, err error) {
	before := userstore.User{Key: w.key}
	err = scanUser(c.QueryRowContext(ctx, selectUserByKey, w.key.Issuer, w.key.Subject), &before, false)
	found := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return res, fmt.Errorf("read user: %w", err)
	case keepSuspended && before.Status == userstore.Suspended:
		res.User = cloneUser(before)
		res.Before = &before
		return res, nil
	}
	var b *userstore.User
	if found {
		b = &before
	}
	e, err := profileFor(b)
	if err != nil {
		return res, err
	}
	if !found {
		id, err := userstore.NewID()
		if err != nil {
			return res, err
		}
		if _, err := c.ExecContext(ctx, insertUser,
			id, w.key.Issuer, w.key.Subject, e.p.Email, e.p.DisplayName, e.p.GivenName, e.p.FamilyName,
			e.groups, e.attrs, e.roles, e.emailNorm, w.nowNS, w.nowNS, w.nowNS); err != nil {
			return res, fmt.Errorf("insert user: %w", err)
		}
		res.User = userstore.User{
			ID:           id,
			Key:          w.key,
			Status:       userstore.Active,
			CreatedAt:    w.now,
			UpdatedAt:    w.now,
			LastSignInAt: w.now,
		}
	} else {
		if _, err := c.ExecContext(ctx, updateUser,
			e.p.Email, e.p.DisplayName, e.p.GivenName, e.p.FamilyName, e.groups, e.attrs, e.roles, e.emailNorm, w.nowNS, w.nowNS,
			before.ID); err != nil {
			return res, fmt.Errorf("update user: %w", err)
		}
		res.User = before
		res.User.LocalRoles = slices.Clone(before.LocalRoles)
		res.User.UpdatedAt = w.now
		res.User.LastSignInAt = w.now
		res.Before = &before
	}
	res.User.Profile = e.p.Clone()
	return res, nil
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
	w, err := newWrite(key, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: sign in %s: %w", key, err)
	}
	exp, clampedNow := clampUnixNano(expires), clampUnixNano(w.now)
	profileFor := func(before *userstore.User) (encoded, error) {
		p, err := decide(before)
		if err != nil {
			return encoded{}, err
		}
		return encodeProfile(p)
	}

	var res userstore.Provisioned
	err = s.inTx(ctx, func(c *sql.Conn) error {
		r, err := c.ExecContext(ctx, consumeAssertion, issuer, assertionID, exp, clampedNow)
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
		if _, err := c.ExecContext(ctx, purgeReplay, clampedNow); err != nil {
			return fmt.Errorf("purge expired records: %w", err)
		}
		// A suspended user is refused: the assertion stays recorded and
		// nothing else changes.
		res, err = w.apply(ctx, c, true, profileFor)
		return err
	})
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: sign in %s: %w", key, err)
	}
	return res, nil
}

// LookupEmail returns the users whose email equals email once both are put
// through [userstore.NormalizeEmail], whatever their issuer, ordered by
// creation time then ID. A blank email matches no one. The query uses the
// indexed normalized email; a row whose stored email no longer has that
// normalized form (written by an older version of this package still
// running) is left out.
func (s *Store) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	norm := userstore.NormalizeEmail(email)
	if norm == "" {
		return nil, nil
	}
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM users
		WHERE email_norm = ? ORDER BY created_at, id`, norm)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: lookup email: %w", err)
	}
	return slices.DeleteFunc(users, func(u userstore.User) bool {
		return userstore.NormalizeEmail(u.Profile.Email) != norm
	}), nil
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes, in one transaction that holds SQLite's
// write lock. It returns an error wrapping [userstore.ErrInvalidKey] when
// key has an empty part, and refuses a time outside the years 1678 to 2262.
func (s *Store) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	w, err := newWrite(key, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: link user %q to %s: %w", id, key, err)
	}
	e, err := encodeProfile(p)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: link user %q to %s: %w", id, key, err)
	}
	var res userstore.Provisioned
	err = s.inTx(ctx, func(c *sql.Conn) error {
		var before userstore.User
		err := scanUser(c.QueryRowContext(ctx, selectUserByID, id), &before, true)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return userstore.ErrNotFound
		case err != nil:
			return fmt.Errorf("read user: %w", err)
		case before.Key.Issuer != userstore.LocalIssuer:
			return fmt.Errorf("%w: the user's issuer is %q, not the local issuer", userstore.ErrNotLinkable, before.Key.Issuer)
		}
		if key != before.Key {
			var other string
			err := c.QueryRowContext(ctx, `SELECT id FROM users WHERE issuer = ? AND subject = ?`, key.Issuer, key.Subject).Scan(&other)
			switch {
			case err == nil:
				return fmt.Errorf("%w: the key belongs to user %q", userstore.ErrNotLinkable, other)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read user with the key: %w", err)
			}
		}
		if _, err := c.ExecContext(ctx, linkUser,
			key.Issuer, key.Subject, e.p.Email, e.p.DisplayName, e.p.GivenName, e.p.FamilyName,
			e.groups, e.attrs, e.roles, e.emailNorm, w.nowNS, w.nowNS, before.ID); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		res.User = before
		res.User.Key = key
		res.User.Profile = e.p.Clone()
		res.User.LocalRoles = slices.Clone(before.LocalRoles)
		res.User.UpdatedAt = w.now
		res.User.LastSignInAt = w.now
		res.Before = &before
		return nil
	})
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("sqlitestore: link user %q to %s: %w", id, key, err)
	}
	return res, nil
}

// ConsumeAssertion records that the assertion id from issuer was used until
// expires, as [userstore.ReplayCache.ConsumeAssertion] describes. A record
// whose expiry is at or before now has expired. The check and the record
// are one statement, so exactly one of concurrent calls succeeds, in this
// process or another. Each successful call also deletes a small, bounded
// batch of expired records in the same transaction.
func (s *Store) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	exp, nowNS := clampUnixNano(expires), clampUnixNano(now)
	err := s.inTx(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, consumeAssertion, issuer, id, exp, nowNS)
		if err != nil {
			return fmt.Errorf("record assertion: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("record assertion: %w", err)
		}
		if n == 0 {
			return userstore.ErrReplayed
		}
		if _, err := c.ExecContext(ctx, purgeReplay, nowNS); err != nil {
			return fmt.Errorf("purge expired records: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: consume assertion %q from %q: %w", id, issuer, err)
	}
	return nil
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (s *Store) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM replay WHERE issuer = ? AND assertion_id = ?`, issuer, id); err != nil {
		return fmt.Errorf("sqlitestore: release assertion %q from %q: %w", id, issuer, err)
	}
	return nil
}

// List returns every user, ordered by creation time then ID.
func (s *Store) List(ctx context.Context) ([]userstore.User, error) {
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list: %w", err)
	}
	return users, nil
}

// NotSignedInSince returns the users whose last sign-in is before t, oldest
// first, with ties ordered by ID.
func (s *Store) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	users, err := s.query(ctx, `SELECT issuer, subject, `+userColumns+` FROM users
		WHERE last_sign_in_at < ? ORDER BY last_sign_in_at, id`, clampUnixNano(t))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: users not signed in since %s: %w", t, err)
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
	return s.change(ctx, "suspend", key, `UPDATE users SET status = `+strconv.Itoa(int(userstore.Suspended))+` WHERE issuer = ? AND subject = ?`)
}

// Unsuspend marks the user active again. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user.
func (s *Store) Unsuspend(ctx context.Context, key userstore.Key) error {
	return s.change(ctx, "unsuspend", key, `UPDATE users SET status = `+strconv.Itoa(int(userstore.Active))+` WHERE issuer = ? AND subject = ?`)
}

// Delete removes the user record. It returns an error wrapping
// [userstore.ErrNotFound] when there is no such user. Deleting is not
// deprovisioning: the next sign-in creates a new record.
func (s *Store) Delete(ctx context.Context, key userstore.Key) error {
	return s.change(ctx, "delete", key, `DELETE FROM users WHERE issuer = ? AND subject = ?`)
}

// change runs query, a statement on the user with key taking the issuer and
// subject as arguments, and reports ErrNotFound when it changed no row.
func (s *Store) change(ctx context.Context, op string, key userstore.Key, query string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	n, err := s.exec(ctx, query, key.Issuer, key.Subject)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s %s: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: %s %s: %w", op, key, userstore.ErrNotFound)
	}
	return nil
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
		return fmt.Errorf("sqlitestore: %s for %s: empty role", op, key)
	}
	err := s.inTx(ctx, func(c *sql.Conn) error {
		var stored string
		err := c.QueryRowContext(ctx, `SELECT local_roles_json FROM users WHERE issuer = ? AND subject = ?`, key.Issuer, key.Subject).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return userstore.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read local roles: %w", err)
		}
		roles, err := decodeLocalRoles(stored)
		if err != nil {
			return fmt.Errorf("read local roles: %w", err)
		}
		next := change(slices.Clone(roles))
		if slices.Equal(next, roles) {
			return nil
		}
		enc, err := encodeLocalRoles(next)
		if err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, `UPDATE users SET local_roles_json = ? WHERE issuer = ? AND subject = ?`, enc, key.Issuer, key.Subject); err != nil {
			return fmt.Errorf("write local roles: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: %s %q for %s: %w", op, role, key, err)
	}
	return nil
}

// cloneUser returns a copy of u that shares no memory with it.
func cloneUser(u userstore.User) userstore.User {
	u.Profile = u.Profile.Clone()
	u.LocalRoles = slices.Clone(u.LocalRoles)
	return u
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
		created, updated, signedIn       int64
	)
	dest := make([]any, 0, 15)
	if withKey {
		dest = append(dest, &u.Key.Issuer, &u.Key.Subject)
	}
	dest = append(dest, &u.ID, &u.Profile.Email, &u.Profile.DisplayName, &u.Profile.GivenName, &u.Profile.FamilyName,
		&groups, &attrs, &roles, &localRoles, &status, &created, &updated, &signedIn)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	var err error
	if u.Profile.Groups, err = decodeStrings(groups); err != nil {
		return fmt.Errorf("user %s: groups: %w", u.ID, err)
	}
	if u.Profile.Attributes, err = decodeAttributes(attrs); err != nil {
		return fmt.Errorf("user %s: attributes: %w", u.ID, err)
	}
	if u.Profile.Roles, err = decodeStrings(roles); err != nil {
		return fmt.Errorf("user %s: roles: %w", u.ID, err)
	}
	if u.LocalRoles, err = decodeLocalRoles(localRoles); err != nil {
		return fmt.Errorf("user %s: local roles: %w", u.ID, err)
	}
	u.Status = userstore.Status(status)
	u.CreatedAt = time.Unix(0, created).UTC()
	u.UpdatedAt = time.Unix(0, updated).UTC()
	u.LastSignInAt = time.Unix(0, signedIn).UTC()
	return nil
}

// encodeStrings returns ss as JSON: "null" for a nil slice and "[]" for an
// empty one.
func encodeStrings(ss []string) (string, error) {
	switch {
	case ss == nil:
		return "null", nil
	case len(ss) == 0:
		return "[]", nil
	}
	b, err := json.Marshal(ss)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeStrings is the inverse of encodeStrings.
func decodeStrings(s string) ([]string, error) {
	switch s {
	case "null":
		return nil, nil
	case "[]":
		return []string{}, nil
	}
	var ss []string
	if err := json.Unmarshal([]byte(s), &ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// encodeLocalRoles returns roles as JSON, "null" when there are none.
func encodeLocalRoles(roles []string) (string, error) {
	if len(roles) == 0 {
		return "null", nil
	}
	b, err := json.Marshal(roles)
	if err != nil {
		return "", fmt.Errorf("encode local roles: %w", err)
	}
	return string(b), nil
}

// decodeLocalRoles is the inverse of encodeLocalRoles: nil when there are
// none, and otherwise sorted and unique whatever the column holds.
func decodeLocalRoles(s string) ([]string, error) {
	if s == "null" {
		return nil, nil
	}
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

// encodeAttributes returns attrs as JSON: "null" for a nil map and "{}" for
// an empty one. Nil and empty value slices likewise stay apart.
func encodeAttributes(attrs map[string][]string) (string, error) {
	switch {
	case attrs == nil:
		return "null", nil
	case len(attrs) == 0:
		return "{}", nil
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return "", fmt.Errorf("encode attributes: %w", err)
	}
	return string(b), nil
}

// decodeAttributes is the inverse of encodeAttributes.
func decodeAttributes(s string) (map[string][]string, error) {
	switch s {
	case "null":
		return nil, nil
	case "{}":
		return map[string][]string{}, nil
	}
	var attrs map[string][]string
	if err := json.Unmarshal([]byte(s), &attrs); err != nil {
		return nil, err
	}
	return attrs, nil
}

// unixNano returns t as nanoseconds since the Unix epoch, or an error when
// that does not fit in an int64.
func unixNano(t time.Time) (int64, error) {
	if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("time %s is outside the range a store can record", t)
	}
	return t.UnixNano(), nil
}

// clampUnixNano returns t as nanoseconds since the Unix epoch, clamped to
// the range of an int64.
func clampUnixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
