package userstore

import (
	"context"
	"time"
)

// SignInRequest is one sign-in for [SignInWithStore.SignInWith]: the
// arguments of [SignInStore.SignIn], and what else the store is to do in
// the same transaction.
type SignInRequest struct {
	// Issuer and AssertionID name the assertion to record, until Expires.
	Issuer, AssertionID string
	// Expires is when the assertion's record may be forgotten.
	Expires time.Time
	// Key is the user's key.
	Key Key
	// Now is the time of the sign-in.
	Now time.Time
	// Email, when not blank, asks the store to read, inside the
	// transaction and only when no user has Key, the users whose email
	// equals it as [Linker.LookupEmail] finds them, and to give them to
	// Decide ([SignInState.EmailUsers]). A blank Email reads nothing.
	Email string
	// Session, when not nil, is recorded as [Sessions.CreateSession]
	// records it, in the same transaction, when the user is written
	// (created or updated); never for a suspended user, nor when
	// anything fails. Its Key must be Key.
	Session *Session
	// Decide decides the profile to write, as SignIn's decide does: it
	// must be quick, must not modify what it is given, must not call the
	// store, and may be called more than once when the store retries.
	Decide func(SignInState) (Profile, error)
}

// SignInState is what a [SignInRequest]'s Decide is given: what the
// transaction read.
type SignInState struct {
	// Before is the stored user, nil when there is none.
	Before *User
	// EmailLooked is set when the store read the users holding the
	// request's Email: on a first sign-in (Before nil) with a non-blank
	// Email.
	EmailLooked bool
	// EmailUsers are those users, ordered as [Linker.LookupEmail]
	// orders them; nil when none holds it or EmailLooked is false.
	EmailUsers []User
}

// SignInWithStore is an optional interface of a store that is its own
// [ReplayCache], a [Linker] and its own [Sessions]: a first sign-in is
// then one transaction that records the assertion, reads the users
// holding the asserted email, writes the user and records the session,
// rather than a transaction, a lookup, a second transaction and a
// session's commit. The jit middleware uses it when the store implements
// it.
//
// Like [Store], it can neither delete, suspend nor reactivate anyone.
type SignInWithStore interface {
	SignInStore
	Linker
	Sessions

	// SignInWith is [SignInStore.SignIn] of r's assertion, key and time,
	// with r.Decide given the state the transaction read, and with the
	// outcomes SignIn lists. Besides, as one atomic step with them:
	//
	//   - with a non-blank r.Email and no user under r.Key, the users
	//     holding the email are read and given to r.Decide;
	//   - with a non-nil r.Session, the session is recorded when the user
	//     is created or updated. A session that fails
	//     [Session.Validate], has another key than r.Key or an ID already
	//     taken fails the whole sign-in: nothing is written. A suspended
	//     user's sign-in records the assertion only, no session.
	SignInWith(ctx context.Context, r SignInRequest) (Provisioned, error)
}
