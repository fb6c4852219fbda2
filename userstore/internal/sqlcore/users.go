package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Interfaces are the interfaces of package userstore that a SQL store
// implements. Each store checks at compile time that its Store has them.
type Interfaces interface {
	userstore.Store
	userstore.ReplayCache
	userstore.Admin
	userstore.SignInStore
	userstore.Linker
	userstore.Sessions
	userstore.SignInWithStore
}

// Lookup returns the user with key, as [userstore.Store.Lookup] describes.
func (c *Core) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	if err := key.Validate(); err != nil {
		return userstore.User{}, err
	}
	u := userstore.User{Key: key}
	var row *sql.Row
	if c.lookup != nil {
		row = c.lookup.QueryRowContext(ctx, key.Issuer, key.Subject)
	} else {
		row = c.db.QueryRowContext(ctx, c.d.Queries.UserByKey, key.Issuer, key.Subject)
	}
	err := c.scanUser(row, &u, false)
	if errors.Is(err, sql.ErrNoRows) {
		return userstore.User{}, c.errorf(userstore.ErrNotFound, "lookup %s", key)
	}
	if err != nil {
		return userstore.User{}, c.errorf(err, "lookup %s", key)
	}
	return u, nil
}

// Stamp validates key and returns now as the database stores it, or an
// error when the database cannot store it.
func (c *Core) Stamp(key userstore.Key, now time.Time) (time.Time, error) {
	if err := key.Validate(); err != nil {
		return time.Time{}, err
	}
	return c.d.Time.Stored(now)
}

// Provision creates the user with key, or replaces its profile, as
// [userstore.Store.Provision] describes, in one write transaction that
// reads the user and then inserts or updates it.
func (c *Core) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	now, err := c.Stamp(key, now)
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "provision %s", key)
	}
	e, err := c.Encode(p)
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "provision %s", key)
	}
	var res userstore.Provisioned
	err = c.Write(ctx, func(tx *Tx) error {
		var err error
		res, err = c.upsert(ctx, tx, key, now, false, func(*userstore.User) (Encoded, error) { return e, nil })
		return err
	})
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "provision %s", key)
	}
	return res, nil
}

// SignIn is ConsumeAssertion followed by Provision with the profile decide
// returns, in one write transaction, with the outcomes
// [userstore.SignInStore.SignIn] lists: [Core.SignInWith] of a request
// with neither an email nor a session.
func (c *Core) SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, now time.Time, decide func(before *userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	return c.SignInWith(ctx, userstore.SignInRequest{Issuer: issuer, AssertionID: assertionID, Expires: expires, Key: key, Now: now,
		Decide: func(st userstore.SignInState) (userstore.Profile, error) { return decide(st.Before) }})
}

// SignInWith is the sign-in r asks for, in one write transaction, with
// the outcomes [userstore.SignInWithStore.SignInWith] lists. The
// transaction records the assertion, reads the user's row (locking it
// where the database locks rows), reads the users holding r.Email when
// there is no such row, gives what it read to r.Decide unless the user is
// suspended, writes the user and records r.Session. It may run again,
// r.Decide with it, as [Core.Write] describes.
func (c *Core) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	key := r.Key
	now, err := c.Stamp(key, r.Now)
	var session []any
	var created time.Time
	if err == nil && r.Session != nil {
		session, created, err = c.sessionArgs(*r.Session)
		if err == nil && r.Session.Key != key {
			err = fmt.Errorf("the session's key %s is not the sign-in's", r.Session.Key)
		}
	}
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "sign in %s", key)
	}
	consume := c.appendConsumeArgs(make([]any, 0, 8), r.Issuer, r.AssertionID, r.Expires, now)
	norm := userstore.NormalizeEmail(r.Email)

	var res userstore.Provisioned
	err = c.Write(ctx, func(tx *Tx) error {
		if err := insertIn(ctx, tx, "assertion", c.d.Queries.ConsumeAssertion, consume, userstore.ErrReplayed); err != nil {
			if errors.Is(err, userstore.ErrReplayed) {
				return fmt.Errorf("assertion %q from %q: %w", r.AssertionID, r.Issuer, err)
			}
			return err
		}
		if !c.d.PurgeAfterCommit {
			if err := c.purgeIn(ctx, tx, c.replayPurge, c.d.Queries.PurgeReplay, now); err != nil {
				return err
			}
		}
		// A suspended user is refused: the assertion stays recorded and
		// nothing else changes.
		var err error
		res, err = c.upsert(ctx, tx, key, now, true, func(before *userstore.User) (Encoded, error) {
			st := userstore.SignInState{Before: before}
			if before == nil && norm != "" {
				users, err := c.emailUsers(ctx, tx, norm)
				if err != nil {
					return Encoded{}, fmt.Errorf("read the users holding the email: %w", err)
				}
				st.EmailUsers, st.EmailLooked = users, true
			}
			p, err := r.Decide(st)
			if err != nil {
				return Encoded{}, &decideError{err}
			}
			return c.Encode(p)
		})
		if err != nil || session == nil || res.User.Status != userstore.Active {
			return err
		}
		if err := insertIn(ctx, tx, "session", c.d.Queries.InsertSession, session, errNoActiveUser); err != nil {
			return err
		}
		if !c.d.PurgeAfterCommit {
			return c.purgeIn(ctx, tx, c.sessionPurge, c.d.Queries.PurgeSessions, created)
		}
		return nil
	})
	if err != nil {
		var de *decideError
		if errors.As(err, &de) {
			err = de.err
		}
		return userstore.Provisioned{}, c.errorf(err, "sign in %s", key)
	}
	if c.d.PurgeAfterCommit {
		c.purgeAfter(ctx, c.replayPurge, c.d.Queries.PurgeReplay, now)
		if session != nil && res.User.Status == userstore.Active {
			c.purgeAfter(ctx, c.sessionPurge, c.d.Queries.PurgeSessions, created)
		}
	}
	return res, nil
}

// upsert creates or updates the user with key inside the caller's write
// transaction, at now, with the profile profileFor returns for the stored
// user (nil when there is none). It reads the user once. With
// keepSuspended, a suspended user is left as stored and returned, with
// Before set to the same record, and profileFor is not called.
func (c *Core) upsert(ctx context.Context, tx *Tx, key userstore.Key, now time.Time, keepSuspended bool, profileFor func(before *userstore.User) (Encoded, error)) (userstore.Provisioned, error) {
	before := userstore.User{Key: key}
	err := c.scanUser(tx.QueryRowContext(ctx, c.d.Queries.UserByKeyForWrite, key.Issuer, key.Subject), &before, false)
	found := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return userstore.Provisioned{}, fmt.Errorf("read user: %w", err)
	case keepSuspended && before.Status == userstore.Suspended:
		return userstore.Provisioned{User: cloneUser(before), Before: &before}, nil
	}
	var b *userstore.User
	if found {
		b = &before
	}
	e, err := profileFor(b)
	if err != nil {
		return userstore.Provisioned{}, err
	}
	if found {
		args := c.appendTime(e.appendArgs(append(make([]any, 0, 16), before.ID)), now)
		if _, err := tx.ExecContext(ctx, c.d.Queries.UpdateUser, args...); c.emailTaken(err) {
			return userstore.Provisioned{}, fmt.Errorf("update user: %w (%w)", userstore.ErrEmailInUse, err)
		} else if err != nil {
			return userstore.Provisioned{}, fmt.Errorf("update user: %w", err)
		}
		return userstore.Provisioned{User: Written(before, key, e.profile, now), Before: &before}, nil
	}
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	r, err := tx.ExecContext(ctx, c.d.Queries.InsertUser, c.AppendInsertArgs(make([]any, 0, 16), id, key, &e, now)...)
	if c.emailTaken(err) {
		return userstore.Provisioned{}, fmt.Errorf("insert user: %w (%w)", userstore.ErrEmailInUse, err)
	}
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("insert user: %w", err)
	}
	if n, err := r.RowsAffected(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("insert user: %w", err)
	} else if n == 0 {
		return userstore.Provisioned{}, c.insertConflict(ctx, tx, key, "")
	}
	u := userstore.User{ID: id, Status: userstore.Active, CreatedAt: now}
	return userstore.Provisioned{User: Written(u, key, e.profile, now)}, nil
}

// insertConflict says why the insert of key's user in tx changed no row,
// where the dialect's insert does nothing on a conflict with any unique
// index: a concurrent write created the user, which the caller then
// updates (ErrCreatedMeanwhile, retried), or another user of the issuer
// holds the user name userNameNorm (userstore.ErrUserNameInUse; "" when
// the insert gave none) or else the email (userstore.ErrEmailInUse).
// Which index a concurrent insert of the same key meets first is the
// database's choice, so another index's conflict alone cannot tell these
// apart.
func (c *Core) insertConflict(ctx context.Context, tx *Tx, key userstore.Key, userNameNorm string) error {
	u := userstore.User{Key: key}
	err := c.scanUser(tx.QueryRowContext(ctx, c.d.Queries.UserByKeyForWrite, key.Issuer, key.Subject), &u, false)
	switch {
	case err == nil:
		return ErrCreatedMeanwhile
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("insert user: read the user after a conflict: %w", err)
	case userNameNorm == "":
		return fmt.Errorf("insert user: %w", userstore.ErrEmailInUse)
	}
	var holder userstore.DirectoryUser
	err = c.scanDirectoryUser(tx.QueryRowContext(ctx, c.d.Directory.UserByUserName, key.Issuer, userNameNorm), &holder, true)
	switch {
	case err == nil:
		return fmt.Errorf("insert user: %w", userstore.ErrUserNameInUse)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("insert user: %w", userstore.ErrEmailInUse)
	}
	return fmt.Errorf("insert user: read the user name's holder after a conflict: %w", err)
}

// Written returns u as a write of profile p under key at now leaves it:
// with key, a copy of p, and now as its update and sign-in time. It shares
// no memory with u or p.
func Written(u userstore.User, key userstore.Key, p userstore.Profile, now time.Time) userstore.User {
	u.Key = key
	u.Profile = p.Clone()
	u.LocalRoles = slices.Clone(u.LocalRoles)
	u.UpdatedAt = now
	u.LastSignInAt = now
	return u
}

// cloneUser returns a copy of u that shares no memory with it.
func cloneUser(u userstore.User) userstore.User {
	u.Profile = u.Profile.Clone()
	u.LocalRoles = slices.Clone(u.LocalRoles)
	return u
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes, in one write transaction that reads
// the account (locking its row where the database locks rows), checks that
// it is local and that key is free, and writes it.
func (c *Core) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	now, err := c.Stamp(key, now)
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "link user %q to %s", id, key)
	}
	e, err := c.Encode(p)
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "link user %q to %s", id, key)
	}
	var res userstore.Provisioned
	err = c.Write(ctx, func(tx *Tx) error {
		var before userstore.User
		err := c.scanUser(tx.QueryRowContext(ctx, c.d.Queries.UserByIDForWrite, id), &before, true)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return userstore.ErrNotFound
		case err != nil:
			return fmt.Errorf("read user: %w", err)
		case before.Key.Issuer != userstore.LocalIssuer:
			return fmt.Errorf("%w: the user's issuer is %q, not the local issuer", userstore.ErrNotLinkable, before.Key.Issuer)
		}
		if key != before.Key && c.d.Queries.KeyOwner != "" {
			var other string
			err := tx.QueryRowContext(ctx, c.d.Queries.KeyOwner, key.Issuer, key.Subject).Scan(&other)
			switch {
			case err == nil:
				return fmt.Errorf("%w: the key belongs to user %q", userstore.ErrNotLinkable, other)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read user with the key: %w", err)
			}
		}
		args := e.appendArgs(append(make([]any, 0, 16), before.ID))
		args = c.appendTime(append(args, key.Issuer, key.Subject), now)
		_, err = tx.ExecContext(ctx, c.d.Queries.LinkUser, args...)
		if c.emailTaken(err) {
			return fmt.Errorf("update user: %w (%w)", userstore.ErrEmailInUse, err)
		}
		if c.d.KeyTaken != nil && c.d.KeyTaken(err) {
			return fmt.Errorf("%w: the key belongs to another user (%w)", userstore.ErrNotLinkable, err)
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		res = userstore.Provisioned{User: Written(before, key, e.profile, now), Before: &before}
		return nil
	})
	if err != nil {
		return userstore.Provisioned{}, c.errorf(err, "link user %q to %s", id, key)
	}
	return res, nil
}

// ConsumeAssertion records that the assertion id from issuer was used
// until expires, as [userstore.ReplayCache.ConsumeAssertion] describes,
// and purges a bounded batch of expired records: in the same transaction,
// or after it as Dialect.PurgeAfterCommit says.
func (c *Core) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	now = c.d.Time.Clamp(now)
	args := c.appendConsumeArgs(make([]any, 0, 8), issuer, id, expires, now)
	if err := c.insertAndPurge(ctx, "assertion", c.d.Queries.ConsumeAssertion, args, userstore.ErrReplayed, c.replayPurge, c.d.Queries.PurgeReplay, now); err != nil {
		return c.errorf(err, "consume assertion %q from %q", id, issuer)
	}
	return nil
}

// appendConsumeArgs appends the arguments of Queries.ConsumeAssertion,
// with expires clamped; now must be a time the database keeps.
func (c *Core) appendConsumeArgs(args []any, issuer, id string, expires, now time.Time) []any {
	args = c.appendTime(append(args, issuer, id), c.d.Time.Clamp(expires))
	return c.appendTime(args, now)
}

// insertIn runs query, which adds one record (what it records names it in
// errors), with args in tx, and returns none when it changed no row.
func insertIn(ctx context.Context, tx *Tx, what, query string, args []any, none error) error {
	r, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("record %s: %w", what, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("record %s: %w", what, err)
	}
	if n == 0 {
		return none
	}
	return nil
}

// purgeIn runs purge, a statement that deletes a bounded batch of the
// records expired at now (Queries.PurgeReplay or PurgeSessions), in tx,
// when g says a write at now purges.
func (c *Core) purgeIn(ctx context.Context, tx *Tx, g *purgeGate, purge string, now time.Time) error {
	if !g.due(now) {
		return nil
	}
	r, err := tx.ExecContext(ctx, purge, c.appendTime(make([]any, 0, 2), now)...)
	if err != nil {
		return fmt.Errorf("purge expired records: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("purge expired records: %w", err)
	}
	g.ran(now, n)
	return nil
}

// purgeAfter runs purge, as purgeIn does, in a statement of its own after
// the write that added a record. It is housekeeping: its failure does not
// fail that write, which is already committed.
func (c *Core) purgeAfter(ctx context.Context, g *purgeGate, purge string, now time.Time) {
	if !g.due(now) {
		return
	}
	r, err := c.db.ExecContext(ctx, purge, c.appendTime(make([]any, 0, 2), now)...)
	if err != nil {
		return
	}
	if n, err := r.RowsAffected(); err == nil {
		g.ran(now, n)
	}
}

// insertAndPurge runs query, which adds one record (what names it), with
// args, and returns none when it changed no row. It then runs purge at
// now: in the same write transaction, or after it as
// Dialect.PurgeAfterCommit says.
func (c *Core) insertAndPurge(ctx context.Context, what, query string, args []any, none error, g *purgeGate, purge string, now time.Time) error {
	if !c.d.PurgeAfterCommit {
		return c.Write(ctx, func(tx *Tx) error {
			if err := insertIn(ctx, tx, what, query, args, none); err != nil {
				return err
			}
			return c.purgeIn(ctx, tx, g, purge, now)
		})
	}
	n, err := c.Exec(ctx, query, args...)
	if err == nil && n == 0 {
		err = none
	}
	if err != nil {
		return err
	}
	c.purgeAfter(ctx, g, purge, now)
	return nil
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (c *Core) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	if _, err := c.Exec(ctx, c.d.Queries.ReleaseAssertion, issuer, id); err != nil {
		return c.errorf(err, "release assertion %q from %q", id, issuer)
	}
	return nil
}

// Change runs query, a write statement on the user with key that takes
// the issuer and subject as its first arguments and args after them, and
// reports userstore.ErrNotFound when it changed no row. op names the
// change in errors.
func (c *Core) Change(ctx context.Context, op string, key userstore.Key, query string, args ...any) error {
	if err := key.Validate(); err != nil {
		return err
	}
	n, err := c.Exec(ctx, query, append([]any{key.Issuer, key.Subject}, args...)...)
	if err != nil {
		return c.errorf(err, "%s %s", op, key)
	}
	if n == 0 {
		return c.errorf(userstore.ErrNotFound, "%s %s", op, key)
	}
	return nil
}

// EmptyRole returns the error for an empty role given to the change op
// (grant role, revoke role) of the user with key.
func (c *Core) EmptyRole(op string, key userstore.Key) error {
	return fmt.Errorf("%s: %s for %s: empty role", c.d.Name, op, key)
}

// List returns every user, ordered by creation time then ID.
func (c *Core) List(ctx context.Context) ([]userstore.User, error) {
	users, err := c.users(ctx, c.d.Queries.ListUsers)
	if err != nil {
		return nil, c.errorf(err, "list")
	}
	return users, nil
}

// NotSignedInSince returns the users whose last sign-in is before t,
// oldest first, with ties ordered by ID. A t beyond the times the database
// keeps is clamped.
func (c *Core) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	users, err := c.users(ctx, c.d.Queries.UsersSignedInBefore, c.appendTime(make([]any, 0, 2), c.d.Time.Clamp(t))...)
	if err != nil {
		return nil, c.errorf(err, "users not signed in since %s", t)
	}
	return users, nil
}

// LookupEmail returns the users whose email equals email once both are
// put through [userstore.NormalizeEmail], as [userstore.Linker.LookupEmail]
// describes. The query uses the stored normalized email; a row whose email
// no longer has that normalized form (written by an older version of the
// store still running) is left out.
func (c *Core) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	norm := userstore.NormalizeEmail(email)
	if norm == "" {
		return nil, nil
	}
	users, err := c.emailUsers(ctx, c.db, norm)
	if err != nil {
		return nil, c.errorf(err, "lookup email")
	}
	return users, nil
}

// emailUsers returns the users whose stored normalized email is norm, a
// non-empty [userstore.NormalizeEmail] form, read through q (the database,
// or a transaction), as [Core.LookupEmail] describes.
func (c *Core) emailUsers(ctx context.Context, q rowsQuerier, norm string) ([]userstore.User, error) {
	if c.d.TextRefusesNUL && hasNUL(norm) {
		// No stored email has one.
		return nil, nil
	}
	users, err := c.usersOn(ctx, q, c.d.Queries.UsersByEmail, norm)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(users, func(u userstore.User) bool {
		return userstore.NormalizeEmail(u.Profile.Email) != norm
	}), nil
}

// rowsQuerier runs a query that returns rows: a *sql.DB or a *Tx.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// users runs query, which reads users with the key, and returns them.
func (c *Core) users(ctx context.Context, query string, args ...any) ([]userstore.User, error) {
	return c.usersOn(ctx, c.db, query, args...)
}

// usersOn is [Core.users] through q.
func (c *Core) usersOn(ctx context.Context, q rowsQuerier, query string, args ...any) ([]userstore.User, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var users []userstore.User
	for rows.Next() {
		var u userstore.User
		if err := c.scanUser(rows, &u, true); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return users, nil
}
