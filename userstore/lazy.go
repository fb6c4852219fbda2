package userstore

import (
	"context"
	"sync"
	"time"
)

// LazySessions is an optional side of a [Sessions] store whose session
// lookup leaves the user's lists undecoded until they are asked for. A
// user's Profile.Groups, Profile.Attributes, Profile.Roles and LocalRoles
// grow with what the IdP sends (up to 150 groups from Entra ID), while an
// authenticated request needs only the user's ID, key and status: the jit
// middleware uses LookupSessionLazy on every request when the store has
// it, so that a request costs the same whatever the user's group count.
//
// Nothing is cached across calls: each call reads the session and its
// user anew, exactly as LookupSession does, so an ended session or a
// suspended user is seen at the next call.
type LazySessions interface {
	// LookupSessionLazy is [Sessions.LookupSession] whose user's lists
	// are decoded on first use: the same read (one query), the same
	// errors, and a [LazyUser] whose User method returns the user
	// LookupSession would have returned. When the stored lists cannot be
	// decoded (a damaged row), User returns the error LookupSession would
	// have returned, and no user.
	LookupSessionLazy(ctx context.Context, id string, now time.Time) (Session, *LazyUser, error)
}

// LazyUser is a user as read by [LazySessions.LookupSessionLazy]: its
// ID, key and status at once, the rest on the first call of
// [LazyUser.User]. It is safe for concurrent use; it lives as long as the
// caller keeps it (the jit middleware: one request).
type LazyUser struct {
	head   User
	once   sync.Once
	decode func(u *User) error
	user   User
	err    error
}

// NewLazyUser returns a LazyUser of head, a user read with every field
// but its lists, which decode completes when User is first called. A nil
// decode means head is already complete. decode is called at most once,
// on a copy of head; it must not keep the user it is given.
func NewLazyUser(head User, decode func(u *User) error) *LazyUser {
	return &LazyUser{head: head, decode: decode}
}

// ID returns the user's ID, without decoding anything.
func (l *LazyUser) ID() string { return l.head.ID }

// Key returns the user's key, without decoding anything.
func (l *LazyUser) Key() Key { return l.head.Key }

// Status returns the user's status, without decoding anything.
func (l *LazyUser) Status() Status { return l.head.Status }

// User returns the whole user, decoding its lists on the first call; later
// calls return the same user (sharing its slices and maps) and the same
// error. On an error it returns no user.
func (l *LazyUser) User() (User, error) {
	l.once.Do(func() {
		u := l.head
		if l.decode != nil {
			if err := l.decode(&u); err != nil {
				l.err = err
				return
			}
		}
		l.user = u
	})
	return l.user, l.err
}
