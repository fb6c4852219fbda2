// Package sqlcore is what the SQL user stores, sqlitestore and pgstore,
// have in common: the order of the statements of a sign-in, a link and the
// other operations, the encoding of a user as columns, the assembly of the
// results, and the migration runner.
//
// A store describes what sets its database apart in a [Dialect]: the text
// of its statements ([Queries]), how it stores times ([TimeCodec]), how it
// runs a write transaction or statement (locking included), which errors
// may be retried, and a few switches. The store keeps its exported methods
// and their documentation, and calls a [Core] from them.
//
// The package uses only database/sql: it imports no SQL driver.
package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// MaxAttempts bounds how often a write transaction or statement runs when
// it fails with an error its dialect may retry, or, for a sign-in, when it
// races with the creation of the same user. Writes to one row succeed one
// at a time: of n sign-ins of one person at the same instant, the last
// may lose the race to create the user and then n-1 rounds of
// serialization failures, and a session's creation, which writes the same
// row, adds rounds of its own. Sixteen attempts serve eight devices at
// once with room to spare; the waits between them (see Backoff) add up to
// under a second.
const MaxAttempts = 16

// Querier is what the statements of a store run on: a *sql.DB, a
// *sql.Conn, a *sql.Tx or a *Tx.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Dialect is what sets one SQL store apart from the other.
type Dialect struct {
	// Name is the store's package name, which starts every error it
	// returns ("sqlitestore: lookup …").
	Name string

	// Queries are the store's statements.
	Queries Queries

	// Directory are the store's statements for userstore.Directory and
	// userstore.GroupDirectory.
	Directory DirectoryQueries

	// Connections are the store's statements for
	// userstore.ConnectionAdmin.
	Connections ConnectionQueries

	// Time is how the store keeps times.
	Time TimeCodec

	// TextRefusesNUL is set when the database's text cannot hold the NUL
	// character: a profile with one is refused before anything is written,
	// and LookupEmail of an address with one finds no one.
	TextRefusesNUL bool

	// PurgeAfterCommit is set when the bounded purge of expired replay
	// records runs after the write that records an assertion, as a
	// statement of its own whose failure is ignored, so that it holds no
	// lock while that write waits for one. Otherwise it runs inside the
	// write's transaction, and its failure fails the write.
	PurgeAfterCommit bool

	// Begin starts one write transaction that holds whatever lock the
	// database needs for the reads in it to stay true until its end.
	// [Core.Write] runs a write's statements in it and ends it.
	Begin func(ctx context.Context) (*Tx, error)

	// Exec runs one write statement once, outside any transaction of the
	// caller, and returns how many rows it changed. [Core.Exec] retries
	// it.
	Exec func(ctx context.Context, query string, args ...any) (int64, error)

	// Retryable reports whether a write that failed with err wrote
	// nothing and may simply run again (a transaction from its start).
	// Nil means no error is retried.
	Retryable func(err error) bool

	// KeyTaken, when set, reports whether err, returned by the statement
	// that binds a key in Link, means that another user has the key.
	KeyTaken func(err error) bool

	// EmailTaken reports whether err, returned by a statement that writes
	// a user, is a violation of the unique index on (issuer, normalized
	// email) that [EmailIndex] creates: another user of the issuer has the
	// email. Such a write is reported as [userstore.ErrEmailInUse].
	EmailTaken func(err error) bool

	// UserNameTaken reports whether err, returned by a statement that
	// writes a user, is a violation of the unique index on (issuer,
	// normalized user name): another user of the issuer has the name.
	// Such a write is reported as [userstore.ErrUserNameInUse].
	UserNameTaken func(err error) bool

	// DomainTaken, when set, reports whether err, returned by
	// ConnectionQueries.InsertDomain, is a violation of the domain's
	// uniqueness: another connection claims it. Such a write is reported
	// as [userstore.ErrDomainTaken].
	DomainTaken func(err error) bool
}

// EmailIndex returns the statement that makes an email belong to at most
// one user of an issuer, as [userstore.Store.Provision] requires: a unique
// index on (issuer, email_norm) of table, leaving out empty emails and
// local accounts. The database then enforces the rule atomically, across
// connections and processes.
func EmailIndex(name, table string) string {
	return `CREATE UNIQUE INDEX ` + name + ` ON ` + table + ` (issuer, email_norm) WHERE email_norm <> '' AND issuer <> '` + userstore.LocalIssuer + `'`
}

// SharedEmails is the migration step to run before [EmailIndex] on a
// database that may already hold users of one issuer sharing an email:
// it refuses to go on, naming them, so that an administrator resolves
// them (change one's email, or delete one) rather than the store picking.
func SharedEmails(table string) Migration {
	return func(ctx context.Context, q Querier) error {
		rows, err := q.QueryContext(ctx, `SELECT issuer, email_norm, MIN(id), MAX(id), COUNT(*) FROM `+table+`
			WHERE email_norm <> '' AND issuer <> '`+userstore.LocalIssuer+`'
			GROUP BY issuer, email_norm HAVING COUNT(*) > 1 ORDER BY issuer, email_norm LIMIT 5`)
		if err != nil {
			return fmt.Errorf("find shared emails: %w", err)
		}
		defer rows.Close()
		var found []string
		for rows.Next() {
			var issuer, email, a, b string
			var n int
			if err := rows.Scan(&issuer, &email, &a, &b, &n); err != nil {
				return fmt.Errorf("find shared emails: %w", err)
			}
			found = append(found, fmt.Sprintf("%d users of %q have %q (among them %s and %s)", n, issuer, email, a, b))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find shared emails: %w", err)
		}
		if len(found) > 0 {
			return fmt.Errorf("%w: an email must belong to one user of an issuer, and %s; give one of each a different email, or delete it, then open the store again", userstore.ErrEmailInUse, strings.Join(found, "; "))
		}
		return nil
	}
}

// emailTaken reports whether err is the dialect's unique email violation.
func (c *Core) emailTaken(err error) bool {
	return err != nil && c.d.EmailTaken != nil && c.d.EmailTaken(err)
}

// Queries are a dialect's statements. The arguments of each are listed in
// order; a time takes one argument for each of its columns (see
// [TimeCodec]), and "profile" stands for eight: email, display name, given
// name, family name, groups, attributes and roles (JSON), and the
// normalized email.
//
// A statement that reads users selects, where it says "with the key",
// issuer and subject first, then the user columns: id, email,
// display_name, given_name, family_name, the groups, attributes, roles and
// local roles as JSON text, status, and the creation, update and last
// sign-in times, each in the columns its TimeCodec scans.
type Queries struct {
	// UserByKey reads the user columns of the user with (issuer, subject).
	UserByKey string
	// UserByKeyForWrite is UserByKey in a write transaction: where the
	// database locks rows, it locks the user's row until the commit.
	UserByKeyForWrite string
	// UserByIDForWrite reads, with the key, the user with (id), in a write
	// transaction, locking the row as UserByKeyForWrite does.
	UserByIDForWrite string
	// KeyOwner, when set, reads the id of the user with (issuer, subject).
	// Link runs it before binding a key other than the user's own, so that
	// the error for a taken key names its owner.
	KeyOwner string
	// InsertUser creates an active user: (id, issuer, subject, profile,
	// now) with now as its creation, update and sign-in time. It may
	// change no row when a unique index already holds its key or its
	// email (a database whose writers run concurrently must, as a
	// concurrent insert of the same key and email may meet either index
	// first); the sign-in then runs again if the key exists, and is
	// refused with [userstore.ErrEmailInUse] if not.
	InsertUser string
	// UpdateUser writes the profile, update time and sign-in time of the
	// user with the id: (id, profile, now).
	UpdateUser string
	// LinkUser is UpdateUser that also writes the key: (id, profile,
	// issuer, subject, now).
	LinkUser string
	// ConsumeAssertion records an assertion, or renews a record expired
	// at now: (issuer, assertion id, expires, now). It changes no row when
	// an unexpired record exists.
	ConsumeAssertion string
	// PurgeReplay deletes a batch of at most [PurgeBatch] of the records
	// expired at (now).
	PurgeReplay string
	// ReleaseAssertion deletes the record of (issuer, assertion id).
	ReleaseAssertion string
	// ListUsers reads every user with the key, ordered by creation time
	// then ID.
	ListUsers string
	// UsersSignedInBefore reads, with the key, the users whose last
	// sign-in is before (t), oldest first, with ties ordered by ID.
	UsersSignedInBefore string
	// UsersByEmail reads, with the key, the users whose normalized email
	// is (email), ordered by creation time then ID.
	UsersByEmail string

	// InsertSession records a session: (id, issuer, subject, connection,
	// session index, NameID value, format, name qualifier, SP name
	// qualifier, created, expires). It changes no row when no active
	// user has the key, and it must not record one for a user that a
	// concurrent suspension or deletion is changing (where the database
	// locks rows, it writes the user's row, so that a concurrent Suspend
	// either waits for it and ends the session, or runs first and leaves
	// nothing to insert).
	InsertSession string
	// SessionByID reads the session with (id) that is live at (now) and
	// its user: the session's connection, session index, NameID (value,
	// format, name qualifier, SP name qualifier), creation and expiry
	// times, then the user with the key (see [Qualify]). It reads
	// no row when the session or its user does not exist.
	SessionByID string
	// SessionsOfKey reads the id, connection, session index, NameID (as
	// SessionByID), creation and expiry of the sessions of (issuer, subject) live at (now), ordered
	// by creation time then id.
	SessionsOfKey string
	// DeleteSession deletes the session with (id).
	DeleteSession string
	// DeleteLiveSessions deletes the sessions of (issuer, subject, session
	// index, now) live at now: all of the key's when the session index is
	// '', and only those with it otherwise.
	DeleteLiveSessions string
	// DeleteLiveSessionsByNameID deletes the sessions of (issuer, NameID
	// value, session index, now) live at now, as DeleteLiveSessions does
	// for a key.
	DeleteLiveSessionsByNameID string
	// DeleteSessionsOfKey deletes every session of (issuer, subject): what
	// Suspend and Delete run after changing the user.
	DeleteSessionsOfKey string
	// PurgeSessions deletes a batch of at most [PurgeBatch] of the
	// sessions expired at (now).
	PurgeSessions string
}

// Tx is a write transaction begun by a dialect's Begin. Its statements
// run on Conn, a connection on which the dialect began the transaction
// with SQL, or on SQLTx, a transaction of database/sql: one of the two is
// set. (A concrete type rather than a Querier, so that the arguments of
// its statements need not escape to the heap.)
type Tx struct {
	// Conn is the connection holding the transaction, or nil.
	Conn *sql.Conn
	// SQLTx is the transaction, or nil.
	SQLTx *sql.Tx
	// End ends the transaction: it commits when err is nil and rolls
	// back otherwise. It returns the transaction's error: err, or the
	// commit's, with whatever the dialect adds to them. The Tx is not
	// used after.
	End func(err error) error
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.Conn != nil {
		return t.Conn.ExecContext(ctx, query, args...)
	}
	return t.SQLTx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.Conn != nil {
		return t.Conn.QueryContext(ctx, query, args...)
	}
	return t.SQLTx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query that returns at most one row in the
// transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if t.Conn != nil {
		return t.Conn.QueryRowContext(ctx, query, args...)
	}
	return t.SQLTx.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares a statement for use in the transaction.
func (t *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if t.Conn != nil {
		return t.Conn.PrepareContext(ctx, query)
	}
	return t.SQLTx.PrepareContext(ctx, query)
}

// TimeCodec is how a dialect keeps times in its columns.
type TimeCodec interface {
	// Stored returns t as the database keeps it and reads it back, in
	// UTC, or an error when the database cannot keep it.
	Stored(t time.Time) (time.Time, error)
	// Clamp returns t limited to the times the database can keep, for a
	// time that is compared rather than kept exactly (an expiry, a bound).
	Clamp(t time.Time) time.Time
	// Args returns the statement arguments of t, a time returned by
	// Stored or Clamp: one for each column a time takes, so that second
	// is nil when a time takes one column.
	Args(t time.Time) (first, second any)
	// AppendDest appends the Scan destinations of the columns of one
	// time, which together set *t to the time they hold, in UTC.
	AppendDest(dest []any, t *time.Time) []any
}

// Clamp returns t limited to the range from lo to hi.
func Clamp(t, lo, hi time.Time) time.Time {
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// Core runs a dialect's statements on a database. It is safe for
// concurrent use.
type Core struct {
	// db is the database the statements run on.
	db *sql.DB
	// d is the dialect of the store.
	d Dialect
	// lookup and lookupSession are Queries.UserByKey and
	// Queries.SessionByID prepared by PrepareLookup, or nil.
	lookup, lookupSession *sql.Stmt
	// timeCols is how many columns, and arguments, a time takes.
	timeCols int
	// replayPurge and sessionPurge decide which writes purge expired
	// replay records and sessions.
	replayPurge, sessionPurge *purgeGate
}

// New returns a Core that runs d's statements on db.
func New(db *sql.DB, d Dialect) *Core {
	return &Core{db: db, d: d, timeCols: len(d.Time.AppendDest(nil, new(time.Time))),
		replayPurge: newPurgeGate(), sessionPurge: newPurgeGate()}
}

// PrepareLookup prepares the statements of [Core.Lookup] and
// [Core.LookupSession] once, so that database/sql keeps them prepared on
// each pooled connection. When preparing fails, they run unprepared.
func (c *Core) PrepareLookup(ctx context.Context) {
	if st, err := c.db.PrepareContext(ctx, c.d.Queries.UserByKey); err == nil {
		c.lookup = st
	}
	if st, err := c.db.PrepareContext(ctx, c.d.Queries.SessionByID); err == nil {
		c.lookupSession = st
	}
}

// ErrCreatedMeanwhile means a sign-in found no user with its key, but a
// concurrent one created that user before its insert; what it ran wrote
// nothing that matters, and [Retry] runs it again at once.
var ErrCreatedMeanwhile = errors.New("the user was created by a concurrent sign-in")

// decideError carries an error of SignIn's decide function through the
// transaction, so that it is never mistaken for a database error to retry.
type decideError struct{ err error }

// Error returns the text of decide's error.
func (e *decideError) Error() string { return e.err.Error() }

// Unwrap returns decide's error.
func (e *decideError) Unwrap() error { return e.err }

// Write runs fn in a write transaction of the dialect, through [Retry]:
// again from its start when the transaction fails with an error the
// dialect may retry (unless decide returned it), or because a concurrent
// sign-in created the user it was about to create.
func (c *Core) Write(ctx context.Context, fn func(tx *Tx) error) error {
	return Retry(ctx, c.d.Retryable, func() error {
		tx, err := c.d.Begin(ctx)
		if err != nil {
			return err
		}
		return run(tx, fn)
	})
}

// Retry runs fn, and runs it again when it fails with an error wrapping
// [ErrCreatedMeanwhile] (at once) or one that retryable, which may be nil,
// says the database asks to retry (after [Backoff]), up to MaxAttempts
// times in all and while ctx lasts. An error of a SignIn's decide function
// is never retried. It returns fn's last error.
func Retry(ctx context.Context, retryable func(error) bool, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		meanwhile := errors.Is(err, ErrCreatedMeanwhile)
		var de *decideError
		if !meanwhile && (retryable == nil || !retryable(err) || errors.As(err, &de)) {
			return err
		}
		if attempt >= MaxAttempts {
			if meanwhile {
				return errors.New("the user kept changing; gave up")
			}
			return err
		}
		if !meanwhile && !Backoff(ctx, attempt) || ctx.Err() != nil {
			return err
		}
	}
}

// Backoff waits before the next attempt of a write that failed with an
// error the database asks to retry (a serialization failure, a deadlock,
// a busy database): a random time up to 2^attempt ms, at most 64 ms, so
// that transactions that conflicted do not conflict again in lockstep.
// It reports false when ctx ended first.
func Backoff(ctx context.Context, attempt int) bool {
	limit := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(rand.N(limit) + time.Millisecond/4)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errPanicked ends a transaction whose function panicked.
var errPanicked = errors.New("the transaction's function panicked")

// run runs fn in tx and ends tx: with fn's error when fn returns, and
// rolling back when fn panics (a caller's decide function, say), so that
// no transaction is left open.
func run(tx *Tx, fn func(tx *Tx) error) error {
	returned := false
	defer func() {
		if !returned {
			_ = tx.End(errPanicked)
		}
	}()
	err := fn(tx)
	returned = true
	return tx.End(err)
}

// Exec runs one write statement with the dialect's Exec, through [Retry],
// and returns how many rows it changed.
func (c *Core) Exec(ctx context.Context, query string, args ...any) (n int64, err error) {
	err = Retry(ctx, c.d.Retryable, func() error {
		n, err = c.d.Exec(ctx, query, args...)
		return err
	})
	return n, err
}

// errorf returns err wrapped in the store's name and the operation that
// format and args describe.
func (c *Core) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", c.d.Name, fmt.Sprintf(format, args...), err)
}
