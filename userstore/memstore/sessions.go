package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// CreateSession records s, as [userstore.Sessions.CreateSession]
// describes, and drops a small, bounded number of expired sessions. It
// returns an error wrapping [userstore.ErrNotFound] when no active user
// has s.Key.
func (s *Store) CreateSession(ctx context.Context, sess userstore.Session) error {
	if err := sess.Validate(); err != nil {
		return fmt.Errorf("memstore: create session: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: create session: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()

	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[sess.Key]; !ok || u.Status != userstore.Active {
		return fmt.Errorf("memstore: create session for %s: no active user: %w", sess.Key, userstore.ErrNotFound)
	}
	if _, ok := s.sessions[sess.ID]; ok {
		return fmt.Errorf("memstore: create session for %s: the ID is taken", sess.Key)
	}
	s.sessions[sess.ID] = sess
	purge(s.sessions, sess.CreatedAt, func(s userstore.Session) time.Time { return s.ExpiresAt })
	return nil
}

// LookupSession returns the live session with the given ID and its user,
// as [userstore.Sessions.LookupSession] describes.
func (s *Store) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	if err := ctx.Err(); err != nil {
		return userstore.Session{}, userstore.User{}, fmt.Errorf("memstore: lookup session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if ok && sess.ExpiresAt.After(now) {
		if u, ok := s.users[sess.Key]; ok {
			return sess, cloneUser(u), nil
		}
	}
	return userstore.Session{}, userstore.User{}, fmt.Errorf("memstore: lookup session: %w", userstore.ErrNotFound)
}

// LookupSessionLazy is LookupSession whose user's lists (groups,
// attributes, roles, local roles) are copied on the first call of
// [userstore.LazyUser.User], as [userstore.LazySessions] describes. The
// lists are those of the user as stored at the lookup: the store never
// changes them in place.
func (s *Store) LookupSessionLazy(ctx context.Context, id string, now time.Time) (userstore.Session, *userstore.LazyUser, error) {
	if err := ctx.Err(); err != nil {
		return userstore.Session{}, nil, fmt.Errorf("memstore: lookup session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if ok && sess.ExpiresAt.After(now) {
		if u, ok := s.users[sess.Key]; ok {
			stored := *u
			head := stored
			head.Profile.Groups, head.Profile.Attributes, head.Profile.Roles, head.LocalRoles = nil, nil, nil, nil
			return sess, userstore.NewLazyUser(head, func(u *userstore.User) error {
				*u = cloneUser(&stored)
				return nil
			}), nil
		}
	}
	return userstore.Session{}, nil, fmt.Errorf("memstore: lookup session: %w", userstore.ErrNotFound)
}

// EndSession ends the session with the given ID. Ending an unknown, ended
// or expired session is not an error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: end session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// EndSessions ends the sessions of key live at now (only those with
// sessionIndex, when it is not empty) and returns how many it ended.
func (s *Store) EndSessions(ctx context.Context, key userstore.Key, sessionIndex string, now time.Time) (int, error) {
	if err := key.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: end sessions of %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endSessionsLocked(key, sessionIndex, &now), nil
}

// EndSessionsByNameID ends the sessions live at now of issuer whose NameID
// value is nameID (only those with sessionIndex, when it is not empty) and
// returns how many it ended. It examines every session.
func (s *Store) EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memstore: end sessions of NameID: %w", err)
	}
	if issuer == "" || nameID == "" {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, sess := range s.sessions {
		if sess.Key.Issuer != issuer || sess.NameID.Value != nameID || sessionIndex != "" && sess.SessionIndex != sessionIndex {
			continue
		}
		if sess.ExpiresAt.After(now) {
			n++
			delete(s.sessions, id)
		}
	}
	return n, nil
}

// endSessionsLocked deletes the sessions of key (only those with
// sessionIndex, when it is not empty) and returns how many of them were
// live at *now, or how many there were when now is nil. s.mu must be
// held.
func (s *Store) endSessionsLocked(key userstore.Key, sessionIndex string, now *time.Time) int {
	n := 0
	for id, sess := range s.sessions {
		if sess.Key != key || sessionIndex != "" && sess.SessionIndex != sessionIndex {
			continue
		}
		if now == nil || sess.ExpiresAt.After(*now) {
			n++
		}
		delete(s.sessions, id)
	}
	return n
}

// ListSessions returns the sessions of key live at now, ordered by
// creation time then ID. It examines every session.
func (s *Store) ListSessions(ctx context.Context, key userstore.Key, now time.Time) ([]userstore.Session, error) {
	if err := key.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: list sessions of %s: %w", key, err)
	}
	var out []userstore.Session
	s.mu.Lock()
	for _, sess := range s.sessions {
		if sess.Key == key && sess.ExpiresAt.After(now) {
			out = append(out, sess)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b userstore.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
