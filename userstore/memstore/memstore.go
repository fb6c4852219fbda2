// Package memstore is an in-memory implementation of [userstore.Store],
// [userstore.ReplayCache], [userstore.Admin], [userstore.SignInStore],
// [userstore.SignInWithStore], [userstore.Linker], [userstore.Sessions],
// [userstore.Directory] and [userstore.GroupDirectory].
//
// It keeps everything in the process's memory, so users, sessions and
// replay records are lost when the process exits and are not shared
// between instances. It
// is meant for tests, examples and single-process applications that accept
// that; use sqlitestore, or another persistent store, otherwise.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/samljit/samljit/userstore"
)

// purgeBatch bounds how many replay records one ConsumeAssertion examines
// when it purges expired records, so that the cost of a call stays small
// however many records are kept.
const purgeBatch = 32

// replayKey identifies one consumed assertion.
type replayKey struct {
	issuer string
	id     string
}

// Store is an in-memory user store and replay cache. The zero value is not
// usable; create one with [New].
//
// A Store is safe for concurrent use. It copies every [userstore.Profile] it
// is given and every one it returns, so callers cannot change stored data by
// mutating values they passed in or got back.
//
// A user's LocalRoles is nil whenever the user has no local role: when none
// was ever granted, and also after the last one is revoked.
//
// A stored user's slices and maps are never changed in place: every write
// gives the user new ones (copy on write). LookupSessionLazy relies on it
// to copy a user's lists after releasing the lock.
type Store struct {
	mu       sync.Mutex
	users    map[userstore.Key]*userstore.User
	replay   map[replayKey]time.Time
	sessions map[string]userstore.Session
	// userNames holds the DirectoryUser.UserName of users that have one,
	// by user ID; groups the GroupDirectory's groups by ID.
	userNames map[string]string
	groups    map[string]*userstore.Group
}

// Interface checks.
var (
	_ userstore.Store           = (*Store)(nil)
	_ userstore.ReplayCache     = (*Store)(nil)
	_ userstore.Admin           = (*Store)(nil)
	_ userstore.SignInStore     = (*Store)(nil)
	_ userstore.SignInWithStore = (*Store)(nil)
	_ userstore.LazySessions    = (*Store)(nil)
	_ userstore.Linker          = (*Store)(nil)
	_ userstore.Sessions        = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		users:     make(map[userstore.Key]*userstore.User),
		replay:    make(map[replayKey]time.Time),
		sessions:  make(map[string]userstore.Session),
		userNames: make(map[string]string),
		groups:    make(map[string]*userstore.Group),
	}
}

// Lookup returns the user with the given key. It returns an error wrapping
// [userstore.ErrNotFound] when there is none and one wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Lookup(ctx context.Context, key userstore.Key) (userstore.User, error) {
	if err := key.Validate(); err != nil {
		return userstore.User{}, err
	}
	if err := ctx.Err(); err != nil {
		return userstore.User{}, fmt.Errorf("memstore: lookup %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[key]
	if !ok {
		return userstore.User{}, fmt.Errorf("memstore: lookup %s: %w", key, userstore.ErrNotFound)
	}
	return cloneUser(u), nil
}

// Provision creates the user with the given key, or replaces its profile,
// as [userstore.Store.Provision] describes. Times are stored in UTC.
func (s *Store) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, err
	}
	if err := ctx.Err(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: provision %s: %w", key, err)
	}
	now = now.UTC()
	p = p.Clone()

	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.provisionLocked(key, p, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: provision %s: %w", key, err)
	}
	return res, nil
}

// provisionLocked creates the user with key or replaces its profile with p,
// which the caller has copied. s.mu must be held.
func (s *Store) provisionLocked(key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := s.emailFreeLocked(key, p.Email, ""); err != nil {
		return userstore.Provisioned{}, err
	}
	if u, ok := s.users[key]; ok {
		before := cloneUser(u)
		u.Profile = p
		u.UpdatedAt = now
		u.LastSignInAt = now
		return userstore.Provisioned{User: cloneUser(u), Before: &before}, nil
	}
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	u := &userstore.User{
		ID:           id,
		Key:          key,
		Profile:      p,
		Status:       userstore.Active,
		CreatedAt:    now,
		UpdatedAt:    now,
		LastSignInAt: now,
	}
	s.users[key] = u
	return userstore.Provisioned{User: cloneUser(u)}, nil
}

// emailFreeLocked refuses, with [userstore.ErrEmailInUse], to give the
// user with key (or, when self is set, the user with that ID, about to
// take key) an email another user of key's issuer has. s.mu must be held.
func (s *Store) emailFreeLocked(key userstore.Key, email, self string) error {
	norm := userstore.NormalizeEmail(email)
	if norm == "" || key.Issuer == userstore.LocalIssuer {
		return nil
	}
	for k, u := range s.users {
		if k.Issuer == key.Issuer && k != key && u.ID != self && userstore.NormalizeEmail(u.Profile.Email) == norm {
			return fmt.Errorf("%w: user %s has it", userstore.ErrEmailInUse, u.ID)
		}
	}
	return nil
}

// SignIn records the assertion and provisions the user in one step under
// the store's lock, with the outcomes [userstore.SignInStore.SignIn]
// describes. decide runs with the lock held, so it must not call the
// store. A suspended user is returned as stored with Before set to the same
// record: the call did not create it.
func (s *Store) SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, now time.Time, decide func(before *userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	return s.SignInWith(ctx, userstore.SignInRequest{Issuer: issuer, AssertionID: assertionID, Expires: expires, Key: key, Now: now,
		Decide: func(st userstore.SignInState) (userstore.Profile, error) { return decide(st.Before) }})
}

// SignInWith is [Store.SignIn] of r, also reading the users holding
// r.Email on a first sign-in and recording r.Session, all in one step
// under the store's lock, with the outcomes
// [userstore.SignInWithStore.SignInWith] describes. r.Decide runs with the
// lock held, so it must not call the store.
func (s *Store) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	key := r.Key
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: %w", key, err)
	}
	var sess userstore.Session
	if r.Session != nil {
		sess = *r.Session
		if err := sess.Validate(); err != nil {
			return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: session: %w", key, err)
		}
		if sess.Key != key {
			return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: the session's key %s is not the sign-in's", key, sess.Key)
		}
		sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	}
	now := r.Now.UTC()
	k := replayKey{issuer: r.Issuer, id: r.AssertionID}

	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.replay[k]; ok && exp.After(now) {
		return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: assertion %q from %q: %w", key, r.AssertionID, r.Issuer, userstore.ErrReplayed)
	}
	st := userstore.SignInState{}
	if u, ok := s.users[key]; ok {
		b := cloneUser(u)
		st.Before = &b
		if u.Status == userstore.Suspended {
			// Refused: the assertion is used up, the user untouched.
			s.replay[k] = r.Expires.UTC()
			s.purgeLocked(now)
			stored := cloneUser(u)
			return userstore.Provisioned{User: stored, Before: st.Before}, nil
		}
	} else if norm := userstore.NormalizeEmail(r.Email); norm != "" {
		st.EmailUsers, st.EmailLooked = s.emailUsersLocked(norm), true
	}
	p, err := r.Decide(st)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: %w", key, err)
	}
	if r.Session != nil {
		if _, ok := s.sessions[sess.ID]; ok {
			return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: create session: the ID is taken", key)
		}
	}
	res, err := s.provisionLocked(key, p.Clone(), now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: sign in %s: %w", key, err)
	}
	s.replay[k] = r.Expires.UTC()
	s.purgeLocked(now)
	if r.Session != nil {
		s.sessions[sess.ID] = sess
		purge(s.sessions, sess.CreatedAt, func(s userstore.Session) time.Time { return s.ExpiresAt })
	}
	return res, nil
}

// LookupEmail returns the users whose email equals email once both are put
// through [userstore.NormalizeEmail], ordered by creation time then ID. A
// blank email matches no one. It examines every user.
func (s *Store) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: lookup email: %w", err)
	}
	norm := userstore.NormalizeEmail(email)
	if norm == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emailUsersLocked(norm), nil
}

// emailUsersLocked returns copies of the users whose normalized email is
// norm, ordered by creation time then ID. s.mu must be held.
func (s *Store) emailUsersLocked(norm string) []userstore.User {
	var users []userstore.User
	for _, u := range s.users {
		if userstore.NormalizeEmail(u.Profile.Email) == norm {
			users = append(users, cloneUser(u))
		}
	}
	sortByCreation(users)
	return users
}

// Link binds key to the local account with the given ID, as
// [userstore.Linker.Link] describes. It returns an error wrapping
// [userstore.ErrInvalidKey] when key has an empty part.
func (s *Store) Link(ctx context.Context, id string, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w", id, key, err)
	}
	if err := ctx.Err(); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w", id, key, err)
	}
	now = now.UTC()
	p = p.Clone()

	s.mu.Lock()
	defer s.mu.Unlock()
	var u *userstore.User
	for _, c := range s.users {
		if c.ID == id {
			u = c
			break
		}
	}
	switch {
	case u == nil:
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w", id, key, userstore.ErrNotFound)
	case u.Key.Issuer != userstore.LocalIssuer:
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w: the user's issuer is %q, not the local issuer", id, key, userstore.ErrNotLinkable, u.Key.Issuer)
	}
	if other, ok := s.users[key]; ok && other != u {
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w: the key belongs to user %q", id, key, userstore.ErrNotLinkable, other.ID)
	}
	if err := s.emailFreeLocked(key, p.Email, u.ID); err != nil {
		return userstore.Provisioned{}, fmt.Errorf("memstore: link user %q to %s: %w", id, key, err)
	}
	before := cloneUser(u)
	delete(s.users, u.Key)
	u.Key = key
	u.Profile = p
	u.UpdatedAt = now
	u.LastSignInAt = now
	s.users[key] = u
	return userstore.Provisioned{User: cloneUser(u), Before: &before}, nil
}

// ConsumeAssertion records that the assertion id from issuer was used until
// expires, as [userstore.ReplayCache.ConsumeAssertion] describes. A record
// whose expiry is at or before now has expired. Each call also drops a
// small, bounded number of expired records.
func (s *Store) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: consume assertion %q from %q: %w", id, issuer, err)
	}
	k := replayKey{issuer: issuer, id: id}

	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.replay[k]; ok && exp.After(now) {
		return fmt.Errorf("memstore: consume assertion %q from %q: %w", id, issuer, userstore.ErrReplayed)
	}
	s.replay[k] = expires.UTC()
	s.purgeLocked(now)
	return nil
}

// purgeLocked deletes expired replay records among at most purgeBatch of
// them. s.mu must be held.
func (s *Store) purgeLocked(now time.Time) {
	purge(s.replay, now, func(exp time.Time) time.Time { return exp })
}

// purge deletes the records of m that have expired at now, by the time
// expires gives, among at most purgeBatch of them. Map iteration order is
// unspecified and varies between calls, so repeated calls reach every
// record over time.
func purge[K comparable, V any](m map[K]V, now time.Time, expires func(V) time.Time) {
	n := 0
	for k, v := range m {
		if n == purgeBatch {
			return
		}
		n++
		if !expires(v).After(now) {
			delete(m, k)
		}
	}
}

// ReleaseAssertion forgets the record of the assertion id from issuer.
// Releasing an unknown id is not an error.
func (s *Store) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: release assertion %q from %q: %w", id, issuer, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.replay, replayKey{issuer: issuer, id: id})
	return nil
}

// List returns every user, ordered by creation time then ID.
func (s *Store) List(ctx context.Context) ([]userstore.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list: %w", err)
	}
	s.mu.Lock()
	users := make([]userstore.User, 0, len(s.users))
	for _, u := range s.users {
		users = append(users, cloneUser(u))
	}
	s.mu.Unlock()
	sortByCreation(users)
	return users, nil
}

// sortByCreation sorts users by creation time then ID.
func sortByCreation(users []userstore.User) {
	slices.SortFunc(users, func(a, b userstore.User) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// Suspend marks the user suspended and ends their sessions, in one step.
// It returns an error wrapping [userstore.ErrNotFound] when there is no
// such user.
func (s *Store) Suspend(ctx context.Context, key userstore.Key) error {
	return s.setStatus(ctx, "suspend", key, userstore.Suspended)
}

// Unsuspend marks the user active again; the sessions Suspend ended stay
// ended. It returns an error wrapping [userstore.ErrNotFound] when there
// is no such user.
func (s *Store) Unsuspend(ctx context.Context, key userstore.Key) error {
	return s.setStatus(ctx, "unsuspend", key, userstore.Active)
}

// setStatus sets the status of the user with key, ending their sessions
// when it suspends them.
func (s *Store) setStatus(ctx context.Context, op string, key userstore.Key, st userstore.Status) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s %s: %w", op, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[key]
	if !ok {
		return fmt.Errorf("memstore: %s %s: %w", op, key, userstore.ErrNotFound)
	}
	u.Status = st
	if st == userstore.Suspended {
		s.endSessionsLocked(key, "", nil)
	}
	return nil
}

// Delete removes the user record and ends their sessions, in one step. It
// returns an error wrapping [userstore.ErrNotFound] when there is no such
// user. Deleting is not deprovisioning: the next sign-in creates a new
// record.
func (s *Store) Delete(ctx context.Context, key userstore.Key) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[key]
	if !ok {
		return fmt.Errorf("memstore: delete %s: %w", key, userstore.ErrNotFound)
	}
	delete(s.users, key)
	delete(s.userNames, u.ID)
	s.endSessionsLocked(key, "", nil)
	return nil
}

// NotSignedInSince returns the users whose last sign-in is before t, oldest
// first, with ties ordered by ID.
func (s *Store) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: users not signed in since %s: %w", t, err)
	}
	var users []userstore.User
	s.mu.Lock()
	for _, u := range s.users {
		if u.LastSignInAt.Before(t) {
			users = append(users, cloneUser(u))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(users, func(a, b userstore.User) int {
		return cmp.Or(a.LastSignInAt.Compare(b.LastSignInAt), cmp.Compare(a.ID, b.ID))
	})
	return users, nil
}

// GrantRole adds role to the user's LocalRoles, kept sorted and without
// duplicates. Granting a role the user already has locally is not an
// error. It returns an error wrapping [userstore.ErrNotFound] when there is
// no such user, and refuses an empty role.
func (s *Store) GrantRole(ctx context.Context, key userstore.Key, role string) error {
	return s.changeRoles(ctx, "grant role", key, role, func(roles []string) []string {
		i, found := slices.BinarySearch(roles, role)
		if found {
			return roles
		}
		return slices.Insert(slices.Clone(roles), i, role)
	})
}

// RevokeRole removes role from the user's LocalRoles. Revoking a role the
// user does not have locally is not an error; revoking the last one leaves
// LocalRoles nil. It returns an error wrapping [userstore.ErrNotFound] when
// there is no such user, and refuses an empty role.
func (s *Store) RevokeRole(ctx context.Context, key userstore.Key, role string) error {
	return s.changeRoles(ctx, "revoke role", key, role, func(roles []string) []string {
		i, found := slices.BinarySearch(roles, role)
		if !found {
			return roles
		}
		roles = slices.Delete(slices.Clone(roles), i, i+1)
		if len(roles) == 0 {
			return nil
		}
		return roles
	})
}

// changeRoles replaces the LocalRoles of the user with key by change's
// result. change must not modify the slice it is given.
func (s *Store) changeRoles(ctx context.Context, op string, key userstore.Key, role string, change func([]string) []string) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if role == "" {
		return fmt.Errorf("memstore: %s to %s: empty role", op, key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s %q for %s: %w", op, role, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[key]
	if !ok {
		return fmt.Errorf("memstore: %s %q for %s: %w", op, role, key, userstore.ErrNotFound)
	}
	u.LocalRoles = change(u.LocalRoles)
	return nil
}

// cloneUser returns a copy of *u that shares no memory with it.
func cloneUser(u *userstore.User) userstore.User {
	c := *u
	c.Profile = u.Profile.Clone()
	if u.LocalRoles != nil {
		c.LocalRoles = slices.Clone(u.LocalRoles)
	}
	return c
}
