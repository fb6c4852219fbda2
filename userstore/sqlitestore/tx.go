package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

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
// ends. The caller calls unlockWrites when its write is over.
func (s *Store) lockWrites(ctx context.Context) error {
	select {
	case s.writes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for this store's other writes: %w", ctx.Err())
	}
}

// unlockWrites lets the next write of this Store run.
func (s *Store) unlockWrites() { <-s.writes }

// begin starts a write transaction, the dialect's Begin: after this
// Store's other writes, on a pinned connection, with BEGIN IMMEDIATE. Its
// End ends the transaction with endTx, returns the connection to the pool
// and lets the Store's next write run.
func (s *Store) begin(ctx context.Context) (*sqlcore.Tx, error) {
	if err := s.lockWrites(ctx); err != nil {
		return nil, err
	}
	p, err := s.conn(ctx)
	if err != nil {
		s.unlockWrites()
		return nil, err
	}
	if err := beginOn(ctx, p.Conn); err != nil {
		err = p.check(err)
		p.release()
		s.unlockWrites()
		return nil, err
	}
	return &sqlcore.Tx{Conn: p.Conn, End: p.endWrite}, nil
}

// endWrite ends the write transaction of [Store.begin] on p.
func (p *pinned) endWrite(err error) error {
	err = p.check(endTx(p.ctx, p.Conn, err))
	p.release()
	p.s.unlockWrites()
	return err
}

// beginOn runs BEGIN IMMEDIATE on c. It takes SQLite's write lock at once
// (waiting up to the busy timeout), so the transaction never has to
// upgrade a read lock and cannot fail with a stale snapshot.
func beginOn(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		// A failed BEGIN normally leaves no transaction, but a driver
		// may report an error, such as the context's, for a BEGIN that
		// took effect. Make sure: ROLLBACK is harmless on a connection
		// with no transaction.
		_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("begin transaction: %w", err)
	}
	return nil
}

// endTx commits the transaction open on c when err is nil, and rolls it
// back otherwise (also when the commit fails); it returns err or the
// commit's error.
//
// The commit and rollback run even when ctx is cancelled, so that the
// transaction either happens whole or not at all and the connection goes
// back to the pool without one open. If the rollback fails, the connection
// is discarded.
func endTx(ctx context.Context, c *sql.Conn, err error) error {
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
// timeout set, after this Store's other writes, and returns the number of
// rows it changed: the dialect's Exec.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := s.lockWrites(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWrites()
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
