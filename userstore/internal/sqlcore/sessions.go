package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/samljit/samljit/userstore"
)

// CreateSession records s, as [userstore.Sessions.CreateSession]
// describes, and purges a bounded batch of expired sessions when one is due
// (see [PurgeInterval]): in the same transaction, or after it as
// Dialect.PurgeAfterCommit says. It returns
// userstore.ErrNotFound, wrapped, when no active user has s.Key.
func (c *Core) CreateSession(ctx context.Context, s userstore.Session) error {
	args, created, err := c.sessionArgs(s)
	if err != nil {
		return c.errorf(err, "create session for %s", s.Key)
	}
	err = c.insertAndPurge(ctx, "session", c.d.Queries.InsertSession, args, errNoActiveUser, c.sessionPurge, c.d.Queries.PurgeSessions, created)
	if err != nil {
		return c.errorf(err, "create session for %s", s.Key)
	}
	return nil
}

// sessionArgs validates s and returns the arguments of
// Queries.InsertSession for it, and its creation time as the database
// keeps it.
func (c *Core) sessionArgs(s userstore.Session) ([]any, time.Time, error) {
	// A NUL in a text the database cannot hold is refused by the
	// database, with nothing written.
	err := s.Validate()
	var created, expires time.Time
	if err == nil {
		created, err = c.d.Time.Stored(s.CreatedAt)
	}
	if err == nil {
		expires, err = c.d.Time.Stored(s.ExpiresAt)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	n := s.NameID
	args := append(make([]any, 0, 13), s.ID, s.Key.Issuer, s.Key.Subject, s.Connection, s.SessionIndex,
		n.Value, n.Format, n.NameQualifier, n.SPNameQualifier)
	return c.appendTime(c.appendTime(args, created), expires), created, nil
}

// errNoActiveUser is CreateSession's error when no active user has the
// session's key.
var errNoActiveUser = fmt.Errorf("no active user has the key: %w", userstore.ErrNotFound)

// LookupSession returns the session with id live at now and its user, in
// one query that joins them, as [userstore.Sessions.LookupSession]
// describes.
func (c *Core) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	s, u, row, err := c.readSession(ctx, id, now)
	if err == nil {
		err = Decode(&u, &row)
	}
	if err != nil {
		return userstore.Session{}, userstore.User{}, c.errorf(err, "lookup session")
	}
	return s, u, nil
}

// LookupSessionLazy is [Core.LookupSession] whose user's lists are decoded
// on first use, as [userstore.LazySessions.LookupSessionLazy] describes:
// the same query, the same errors, and the same decoding, deferred.
func (c *Core) LookupSessionLazy(ctx context.Context, id string, now time.Time) (userstore.Session, *userstore.LazyUser, error) {
	s, u, row, err := c.readSession(ctx, id, now)
	if err != nil {
		return userstore.Session{}, nil, c.errorf(err, "lookup session")
	}
	return s, userstore.NewLazyUser(u, func(u *userstore.User) error {
		if err := Decode(u, &row); err != nil {
			return c.errorf(err, "lookup session")
		}
		return nil
	}), nil
}

// readSession runs Queries.SessionByID and returns the session and its
// user, with the user's status set and its lists left in row for
// [Decode]. A missing session is userstore.ErrNotFound.
func (c *Core) readSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, Row, error) {
	if c.d.TextRefusesNUL && hasNUL(id) {
		// No stored session has one.
		return userstore.Session{}, userstore.User{}, Row{}, userstore.ErrNotFound
	}
	args := c.appendTime(append(make([]any, 0, 3), id), c.d.Time.Clamp(now))
	var r *sql.Row
	if c.lookupSession != nil {
		r = c.lookupSession.QueryRowContext(ctx, args...)
	} else {
		r = c.db.QueryRowContext(ctx, c.d.Queries.SessionByID, args...)
	}
	s := userstore.Session{ID: id}
	var u userstore.User
	var row Row
	dest := append(make([]any, 0, 20+5*c.timeCols), &s.Connection, &s.SessionIndex)
	dest = appendNameIDDest(dest, &s.NameID)
	dest = c.d.Time.AppendDest(dest, &s.CreatedAt)
	dest = c.d.Time.AppendDest(dest, &s.ExpiresAt)
	err := r.Scan(c.appendUserDest(dest, &u, &row, true)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return userstore.Session{}, userstore.User{}, Row{}, userstore.ErrNotFound
	case err != nil:
		return userstore.Session{}, userstore.User{}, Row{}, err
	}
	u.Status = userstore.Status(row.Status)
	s.Key = u.Key
	return s, u, row, nil
}

// EndSession deletes the session with id. Ending an unknown session is
// not an error.
func (c *Core) EndSession(ctx context.Context, id string) error {
	if c.d.TextRefusesNUL && hasNUL(id) {
		return nil
	}
	if _, err := c.Exec(ctx, c.d.Queries.DeleteSession, id); err != nil {
		return c.errorf(err, "end session")
	}
	return nil
}

// EndSessions deletes the sessions of key live at now, only those with
// sessionIndex when it is not empty, and returns how many it deleted.
// Expired ones are left to the purge.
func (c *Core) EndSessions(ctx context.Context, key userstore.Key, sessionIndex string, now time.Time) (int, error) {
	if err := key.Validate(); err != nil {
		return 0, err
	}
	if c.d.TextRefusesNUL && hasNUL(sessionIndex) {
		return 0, nil
	}
	args := c.appendTime(append(make([]any, 0, 5), key.Issuer, key.Subject, sessionIndex), c.d.Time.Clamp(now))
	n, err := c.Exec(ctx, c.d.Queries.DeleteLiveSessions, args...)
	if err != nil {
		return 0, c.errorf(err, "end sessions of %s", key)
	}
	return int(n), nil
}

// EndSessionsByNameID deletes the sessions of issuer live at now whose
// NameID value is nameID, only those with sessionIndex when it is not
// empty, and returns how many it deleted. A blank issuer or nameID
// deletes nothing.
func (c *Core) EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error) {
	if issuer == "" || nameID == "" || c.d.TextRefusesNUL && (hasNUL(issuer) || hasNUL(nameID) || hasNUL(sessionIndex)) {
		// No stored session matches.
		return 0, nil
	}
	args := c.appendTime(append(make([]any, 0, 5), issuer, nameID, sessionIndex), c.d.Time.Clamp(now))
	n, err := c.Exec(ctx, c.d.Queries.DeleteLiveSessionsByNameID, args...)
	if err != nil {
		return 0, c.errorf(err, "end sessions of NameID %q at %q", nameID, issuer)
	}
	return int(n), nil
}

// appendNameIDDest appends the scan destinations of a session's NameID
// columns, in the order of the queries.
func appendNameIDDest(dest []any, n *userstore.NameID) []any {
	return append(dest, &n.Value, &n.Format, &n.NameQualifier, &n.SPNameQualifier)
}

// ListSessions returns the sessions of key live at now, ordered by
// creation time then ID.
func (c *Core) ListSessions(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	sessions, err := c.sessionsOf(ctx, key, now)
	if err != nil {
		return nil, c.errorf(err, "list sessions of %s", key)
	}
	return sessions, nil
}

// sessionsOf runs Queries.SessionsOfKey.
func (c *Core) sessionsOf(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	args := c.appendTime(append(make([]any, 0, 4), key.Issuer, key.Subject), c.d.Time.Clamp(now))
	rows, err := c.db.QueryContext(ctx, c.d.Queries.SessionsOfKey, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []userstore.Session
	for rows.Next() {
		s := userstore.Session{Key: key}
		dest := append(make([]any, 0, 7+2*c.timeCols), &s.ID, &s.Connection, &s.SessionIndex)
		dest = appendNameIDDest(dest, &s.NameID)
		dest = c.d.Time.AppendDest(dest, &s.CreatedAt)
		if err := rows.Scan(c.d.Time.AppendDest(dest, &s.ExpiresAt)...); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// ChangeEndingSessions is [Core.Change] of a statement that suspends or
// deletes the user with key, followed by the end of every session of key,
// in one write transaction: a suspension that ends the sessions cannot be
// undone by unsuspending. It reports userstore.ErrNotFound when the
// statement changed no row, and then ends nothing.
func (c *Core) ChangeEndingSessions(ctx context.Context, op string, key userstore.Key, query string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	err := c.Write(ctx, func(tx *Tx) error {
		r, err := tx.ExecContext(ctx, query, key.Issuer, key.Subject)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return userstore.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, c.d.Queries.DeleteSessionsOfKey, key.Issuer, key.Subject); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		return nil
	})
	if err != nil {
		return c.errorf(err, "%s %s", op, key)
	}
	return nil
}
