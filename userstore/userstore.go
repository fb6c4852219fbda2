// Package userstore defines the user record that SAML just-in-time (JIT)
// provisioning creates and updates, and the narrow contract a store must
// honour for the sign-in path.
//
// # What JIT can and cannot do
//
// A SAML identity provider tells the application about a person only when
// that person signs in. Nothing arrives when the person is disabled or deleted
// at the identity provider. JIT provisioning can therefore create and update
// users, but it cannot deprovision them.
//
// The types here are shaped around that limit:
//
//   - [Store], the only store type the sign-in path accepts, has exactly two
//     methods, [Store.Lookup] and [Store.Provision]. Nothing reachable through
//     it can delete, suspend or reactivate a user.
//   - [Profile], the data a sign-in may write, has no status field: no claim
//     in an assertion can suspend or re-enable anyone.
//   - Suspending a user ([Admin.Suspend]) is the supported way to deprovision.
//     It is an administrative operation performed by the application, an HR
//     feed, a SCIM endpoint or a stale-account job ([Admin.NotSignedInSince]),
//     never by a sign-in. Deleting a JIT user is not deprovisioning: the next
//     sign-in creates the user again.
//
// A store may also keep signed-in sessions ([Sessions]), so that a logout,
// an administrator or a suspension ends a session at once, on every
// instance sharing the store, rather than when its cookie expires.
//
// A store may also serve a provisioning directory, the SCIM endpoint of a
// connection ([Directory], [GroupDirectory]): it finds a connection's
// users by indexed attributes, names them, and keeps groups whose
// membership rewrites the members' groups and roles. That side cannot
// change a user's status either; a directory allowed to suspend (SCIM is)
// uses [Admin].
//
// Stores return every time in UTC. SQL stores may refuse times they cannot
// represent (sqlitestore: outside the years 1678 to 2262).
//
// This package imports only the standard library. Implementations live in
// sub-packages (memstore, sqlitestore, pgstore) and are checked by the
// conformance suite in storetest.
package userstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Key identifies a user across sign-ins. It is the pair of the identity
// provider connection's issuer and an immutable, issuer-scoped subject
// identifier (a persistent NameID, or an attribute such as Entra ID's
// objectidentifier combined with its tenantid).
//
// A Key is never built from an email address or a user principal name: those
// change on rename and can be reassigned, which would merge or split accounts.
// Keys are compared exactly, byte for byte, with no case folding.
type Key struct {
	// Issuer is the entity ID of the identity provider that asserted the
	// subject, as configured for the connection.
	Issuer string
	// Subject is the immutable identifier of the person at that issuer.
	Subject string
}

// String returns a form of k suitable for logs.
func (k Key) String() string { return fmt.Sprintf("%q/%q", k.Issuer, k.Subject) }

// IsZero reports whether either part of k is empty. A store refuses such a
// key with [ErrInvalidKey].
func (k Key) IsZero() bool { return k.Issuer == "" || k.Subject == "" }

// Validate returns an error wrapping [ErrInvalidKey] when either part of k
// is empty.
func (k Key) Validate() error {
	if k.IsZero() {
		return fmt.Errorf("%w: %s", ErrInvalidKey, k)
	}
	return nil
}

// Profile is the part of a user that the identity provider asserts and that a
// sign-in may write. It deliberately has no status: suspension is never
// controlled by claims.
//
// A nil slice or map and an empty one are different values and a store
// returns each as it was given.
type Profile struct {
	// Email is display and contact data only. It is not proof of ownership
	// and is never used to identify or link a user unless the connection is
	// configured as authoritative for the address's domain.
	Email string
	// DisplayName is the person's full name as the identity provider shows it.
	DisplayName string
	// GivenName is the person's first name.
	GivenName string
	// FamilyName is the person's last name.
	FamilyName string
	// Groups lists the group identifiers or names asserted at sign-in, in the
	// order received. For Entra ID these are group object IDs by default.
	Groups []string
	// Attributes keeps further asserted attributes the mapping was asked to
	// keep, keyed by attribute Name.
	Attributes map[string][]string
	// Roles are the application roles the IdP connection's role mapping
	// granted at the latest sign-in, derived from Groups. They are
	// re-derived at every sign-in, so a role whose group disappeared at the
	// IdP is gone after the next one. Roles granted inside the application
	// are [User.LocalRoles], which no sign-in touches.
	Roles []string
}

// Clone returns a deep copy of p. Nil and empty slices and maps stay as
// they are.
func (p Profile) Clone() Profile {
	if p.Groups != nil {
		p.Groups = append(make([]string, 0, len(p.Groups)), p.Groups...)
	}
	if p.Roles != nil {
		p.Roles = append(make([]string, 0, len(p.Roles)), p.Roles...)
	}
	if p.Attributes != nil {
		attrs := make(map[string][]string, len(p.Attributes))
		for k, v := range p.Attributes {
			if v != nil {
				v = append(make([]string, 0, len(v)), v...)
			}
			attrs[k] = v
		}
		p.Attributes = attrs
	}
	return p
}

// NewID returns a random 128-bit identifier in hexadecimal, the form the
// bundled stores use for [User.ID].
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("userstore: generate user id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Status is the administrative state of a user. Only administrative
// operations ([Admin]) change it; a sign-in never does.
type Status int

const (
	// Active users may sign in and use the application.
	Active Status = iota
	// Suspended users are refused at sign-in, before anything is written,
	// and on every request of a session they already hold.
	Suspended
)

// String returns "active" or "suspended".
func (s Status) String() string {
	switch s {
	case Active:
		return "active"
	case Suspended:
		return "suspended"
	default:
		return fmt.Sprintf("Status(%d)", int(s))
	}
}

// User is a provisioned user record.
type User struct {
	// ID is the store's own identifier for the user, stable for the life of
	// the record. Applications use it as a foreign key.
	ID string
	// Key is the identity the record is bound to.
	Key Key
	// Profile is the latest asserted profile.
	Profile Profile
	// Status is the administrative state.
	Status Status
	// CreatedAt is when the first sign-in created the record.
	CreatedAt time.Time
	// UpdatedAt is when a sign-in last wrote the record (every sign-in
	// writes the asserted profile, changed or not).
	UpdatedAt time.Time
	// LastSignInAt is when the user last signed in. The stale-account report
	// ([Admin.NotSignedInSince]) is built on it.
	LastSignInAt time.Time
	// LocalRoles are roles granted inside the application by an
	// administrator ([Admin.GrantRole]). No sign-in reads or changes them.
	// Nil when none was ever granted.
	LocalRoles []string
}

// Roles returns the user's effective roles: the IdP-granted
// Profile.Roles and the LocalRoles, sorted, without duplicates.
func (u User) Roles() []string {
	out := make([]string, 0, len(u.Profile.Roles)+len(u.LocalRoles))
	out = append(out, u.Profile.Roles...)
	out = append(out, u.LocalRoles...)
	slices.Sort(out)
	return slices.Compact(out)
}

// HasRole reports whether role is among the user's effective roles, from
// either source. A role in Profile.Roles was derived from what the user's
// IdP asserted (its groups), and is only as trustworthy as that IdP: in a
// multi-tenant application every customer's IdP can assert any group name
// for its own users. Use HasRole for rights within the user's own
// connection (Key.Issuer) only; for rights across connections, such as an
// operator's, use HasLocalRole.
func (u User) HasRole(role string) bool {
	return u.HasIdPRole(role) || u.HasLocalRole(role)
}

// HasIdPRole reports whether role is in Profile.Roles: derived at sign-in
// (or by SCIM) from what the user's IdP says. It grants nothing beyond the
// user's own connection.
func (u User) HasIdPRole(role string) bool { return slices.Contains(u.Profile.Roles, role) }

// HasLocalRole reports whether role was granted inside the application
// ([Admin.GrantRole]); no IdP can grant or remove it.
func (u User) HasLocalRole(role string) bool { return slices.Contains(u.LocalRoles, role) }

// LocalIssuer is the issuer of accounts that exist in the application
// before JIT (brownfield accounts): an application creates them with
// [Store.Provision] under Key{Issuer: LocalIssuer, Subject: its own account
// ID}. No IdP connection may have this issuer. A [Linker] can bind such an
// account, and only such an account, to an IdP key.
const LocalIssuer = "urn:samljit:local"

// NormalizeEmail is the form in which stores compare email addresses for
// [Linker.LookupEmail]: surrounding whitespace removed and ASCII letters
// lowercased. Nothing else is folded: Unicode case folding would equate
// "ſ" with "s" and the Kelvin sign with "K", letting one address match
// another the mail system treats as different.
func NormalizeEmail(email string) string {
	email = strings.TrimSpace(email)
	for i := 0; i < len(email); i++ {
		if c := email[i]; 'A' <= c && c <= 'Z' {
			b := []byte(email)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return email
}

// Provisioned is the outcome of [Store.Provision].
type Provisioned struct {
	// User is the record as stored after the call.
	User User
	// Before is the record as it was before the call, or nil when the call
	// created the user.
	Before *User
}

// Created reports whether the call created the user.
func (p Provisioned) Created() bool { return p.Before == nil }

// Errors returned by stores. Callers test them with errors.Is.
var (
	// ErrNotFound means no user has the key or, from [Sessions], that
	// no live session has the ID (or no active user the session's key).
	ErrNotFound = errors.New("userstore: user not found")
	// ErrInvalidKey means the key has an empty issuer or subject.
	ErrInvalidKey = errors.New("userstore: key has an empty issuer or subject")
	// ErrReplayed means an assertion ID was already recorded and its record
	// has not expired.
	ErrReplayed = errors.New("userstore: assertion already used")
	// ErrNotLinkable means [Linker.Link] was asked to bind a key to a user
	// that is not a local (brownfield) account, or to a key that already
	// belongs to a user.
	ErrNotLinkable = errors.New("userstore: user cannot be linked")
	// ErrEmailInUse means a write would give a user the email of another
	// user of the same issuer (see [Store.Provision]); nothing was written.
	ErrEmailInUse = errors.New("userstore: email in use by another user of the issuer")
)

// Store is the contract between the sign-in path and the place users are
// kept. It is deliberately limited to reading a user and writing the asserted
// profile: nothing reachable through a Store can delete, suspend or reactivate
// a user, so no SAML assertion can do so either.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Lookup returns the user with the given key, or an error wrapping
	// [ErrNotFound] when there is none.
	Lookup(ctx context.Context, key Key) (User, error)

	// Provision creates the user with the given key if there is none, or
	// replaces the stored profile with p if there is. Either way it sets
	// UpdatedAt and LastSignInAt to now; on creation CreatedAt too, and the
	// status is Active.
	//
	// Provision is atomic per key: concurrent calls for one key create
	// exactly one user and every caller sees a consistent before and after.
	// It never changes Status, so a suspended user stays suspended, and it
	// never removes a user. Either the whole write happens or none of it.
	//
	// Within one issuer an email belongs to one user: Provision refuses,
	// with an error wrapping [ErrEmailInUse] and writing nothing, to give
	// a user a non-empty email whose [NormalizeEmail] form another user
	// of the same issuer has. The check is atomic with the write, so two
	// subjects of one IdP signing in at once with one email cannot both
	// get it. Users of [LocalIssuer], and users of different issuers, may
	// share an email. Every write that sets a profile or a key (SignIn,
	// Link) keeps the same rule.
	Provision(ctx context.Context, key Key, p Profile, now time.Time) (Provisioned, error)
}

// ReplayCache records the IDs of assertions that have been consumed, so that
// a captured response cannot be used twice (SAML 2.0 Profiles §4.1.4.5). A
// store that keeps it in the same database as its users makes the guard hold
// across restarts and across instances sharing that database.
//
// Implementations must be safe for concurrent use.
type ReplayCache interface {
	// ConsumeAssertion records that the assertion id from issuer was used,
	// keeping the record until expires. It returns an error wrapping
	// [ErrReplayed] when an unexpired record of the same issuer and id
	// exists at now; a record whose expiry is at or before now has expired. Exactly one of any number of concurrent calls with the
	// same issuer and id succeeds.
	ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error

	// ReleaseAssertion forgets a record made by ConsumeAssertion. The
	// sign-in path calls it when a sign-in fails for a reason of the store
	// rather than of the assertion, so that retrying the same response is
	// not refused as a replay. Releasing an unknown id is not an error.
	ReleaseAssertion(ctx context.Context, issuer, id string) error
}

// SignInStore is an optional interface of a store that is also its own
// [ReplayCache]: it records the assertion and provisions the user in one
// transaction, so a sign-in waits for one commit and reads the user once.
// The jit middleware uses it when the store implements it.
//
// Like [Store], it can neither delete, suspend nor reactivate anyone.
type SignInStore interface {
	// SignIn is ConsumeAssertion(ctx, issuer, assertionID, expires, now),
	// then Provision(ctx, key, p, now) with p = decide(before), as one
	// atomic step. before is the stored user (nil when there is none);
	// decide must be quick, must not modify *before and must not call the
	// store; it may be called more than once when the store retries. The
	// outcomes:
	//
	//   - an assertion already used: an error wrapping [ErrReplayed];
	//     nothing written, decide not called;
	//   - a suspended user: the assertion stays recorded, the user is
	//     returned as stored (Status [Suspended], Before the same record)
	//     with a nil error; decide not called;
	//   - decide returns an error: nothing written at all (neither the
	//     assertion record nor the user), and an error for which errors.Is
	//     and errors.As find decide's;
	//   - any other failure: nothing written, so the person can retry;
	//   - otherwise the record is created or its profile replaced as
	//     Provision does, and the outcome returned.
	SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key Key, now time.Time, decide func(before *User) (Profile, error)) (Provisioned, error)
}

// Linker is the optional brownfield side of a store: finding users by email
// and binding a pre-existing local account to the IdP key of its owner.
// The jit middleware uses it only as a connection's brownfield policy
// allows. Like [Store], it can neither delete, suspend nor reactivate
// anyone.
type Linker interface {
	// LookupEmail returns every user whose Profile.Email equals email
	// once both are put through [NormalizeEmail], whatever their issuer,
	// ordered by creation time then ID. A blank email matches no one.
	LookupEmail(ctx context.Context, email string) ([]User, error)

	// Link binds key to the existing user with the given ID, which must be
	// a local account (Key.Issuer is [LocalIssuer]): the record keeps its
	// ID, status, local roles and creation time, takes key and the profile
	// p, and has UpdatedAt and LastSignInAt set to now. It returns an error
	// wrapping [ErrNotFound] when there is no such user, and one wrapping
	// [ErrNotLinkable] when the user is not a local account or another
	// user already has key. It is atomic.
	Link(ctx context.Context, id string, key Key, p Profile, now time.Time) (Provisioned, error)
}

// Session is a signed-in session kept by a store that implements
// [Sessions]. The jit middleware creates one at each successful sign-in
// and puts only its ID in the browser's cookie, so that the session can be
// ended from anywhere: by a logout, by an administrator, by a suspension,
// or later by the IdP's Single Logout.
type Session struct {
	// ID identifies the session record, never reused. The jit middleware
	// records a session under the SHA-256 (hex) of the random ID its
	// cookie holds ([NewSessionID]), so that the store never holds a
	// value that opens the session.
	ID string
	// Key is the key of the signed-in user.
	Key Key
	// Connection is the name of the IdP connection the user signed in
	// through ("" for the sole, unnamed connection).
	Connection string
	// SessionIndex is the IdP's SessionIndex from the assertion's
	// AuthnStatement, or "" when it gave none. A Single Logout request
	// names the sessions it ends by it.
	SessionIndex string
	// NameID is the assertion's NameID, as the IdP sent it: the name by
	// which the IdP's Single Logout messages, either way, refer to the
	// person. It is not the user's key (a connection may key users on
	// an attribute) and is zero when the assertion had none.
	NameID NameID
	// CreatedAt is when the sign-in created the session.
	CreatedAt time.Time
	// ExpiresAt is when the session ends by itself: the session has
	// expired at any time at or after it.
	ExpiresAt time.Time
}

// NameID is a SAML NameID: its value and the qualifiers that scope it
// (SAML 2.0 Core §2.2.2). A Single Logout request must repeat the NameID
// of the assertion exactly, so a session keeps all four.
type NameID struct {
	// Value is the identifier itself.
	Value string
	// Format is the NameID's Format URI, "" when the IdP gave none.
	Format string
	// NameQualifier is the domain that qualifies Value, usually the IdP.
	NameQualifier string
	// SPNameQualifier is the SP (or affiliation) that qualifies Value.
	SPNameQualifier string
}

// IsZero reports whether n has no value.
func (n NameID) IsZero() bool { return n.Value == "" }

// maxSessionID bounds the length of a session ID a store accepts.
const maxSessionID = 128

// Validate returns an error when s cannot be created: an ID that is empty
// or over 128 bytes, a key with an empty part (wrapping [ErrInvalidKey]),
// or an expiry not after its creation.
func (s Session) Validate() error {
	switch {
	case s.ID == "" || len(s.ID) > maxSessionID:
		return fmt.Errorf("session ID of %d bytes: want 1 to %d", len(s.ID), maxSessionID)
	case !s.ExpiresAt.After(s.CreatedAt):
		return fmt.Errorf("session expires at %s, not after its creation at %s", s.ExpiresAt, s.CreatedAt)
	}
	return s.Key.Validate()
}

// NewSessionID returns a random 256-bit session ID, in the URL-safe
// base64 alphabet without padding (43 characters).
func NewSessionID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("userstore: generate session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Sessions is the optional side of a store that keeps signed-in sessions
// beside the users, so that a session can be ended at once on every
// instance sharing the store. The jit middleware requires it (from the
// store, or given apart as jit.Options.Sessions): a session that only a
// cookie holds cannot be revoked.
//
// Like [Store], it can neither delete, suspend nor reactivate a user. It
// reads users, though: [Sessions.LookupSession] returns the session's user
// as the store keeps it, so a Sessions must keep its sessions beside the
// users of the Store it serves.
//
// A session is live from its creation until it is ended or expires. Once
// ended it never becomes live again, whatever happens to its user: an
// [Admin] store that implements Sessions ends the sessions of a user it
// suspends or deletes in the same transaction, and unsuspending revives
// none of them. Stores purge expired sessions in small, bounded batches as
// they write, so expired rows may linger for a while but are never live.
//
// Implementations must be safe for concurrent use.
type Sessions interface {
	// CreateSession records s, which must pass [Session.Validate]. It
	// returns an error wrapping [ErrNotFound] when no active user has
	// s.Key (there is none, or the user is suspended): the check and the
	// record are atomic, so a suspension that races with a sign-in never
	// leaves a session behind. It refuses an ID that is already recorded.
	CreateSession(ctx context.Context, s Session) error

	// LookupSession returns the live session with the given ID and its
	// user, in one read. It returns an error wrapping [ErrNotFound] when
	// no session has the ID, when it was ended, when it has expired at
	// now (its ExpiresAt is at or before now), or when its user no longer
	// exists. A suspended user's session is returned with the user, whose
	// Status says so: the caller refuses it (a store's own Suspend ends
	// the sessions, but a user may be suspended by other means).
	LookupSession(ctx context.Context, id string, now time.Time) (Session, User, error)

	// EndSession ends the session with the given ID. Ending an unknown,
	// ended or expired session is not an error.
	EndSession(ctx context.Context, id string) error

	// EndSessions ends every session of key live at now and returns how
	// many it ended. With a non-empty sessionIndex it ends only the
	// sessions with that SessionIndex; an empty one ends them all (every
	// device), as a Single Logout request without a SessionIndex asks.
	EndSessions(ctx context.Context, key Key, sessionIndex string, now time.Time) (int, error)

	// EndSessionsByNameID ends every session live at now whose Key.Issuer
	// is issuer and whose NameID.Value is nameID, and returns how many it
	// ended: what an IdP's Single Logout request, which names the person
	// by NameID rather than by key, asks. The IdP's Format and qualifiers
	// are not compared: the issuer scopes the value. With a non-empty
	// sessionIndex it ends only the sessions with that SessionIndex, as
	// EndSessions does. A blank issuer or nameID ends nothing.
	EndSessionsByNameID(ctx context.Context, issuer, nameID, sessionIndex string, now time.Time) (int, error)

	// ListSessions returns the sessions of key live at now, ordered by
	// creation time then ID: for a page where a person or an
	// administrator reviews them.
	ListSessions(ctx context.Context, key Key, now time.Time) ([]Session, error)
}

// Admin is the administrative side of a store: the operations that change a
// user's status or remove a record. The sign-in path never accepts an Admin;
// applications use it from their own admin screens, HR feeds, SCIM endpoints
// and stale-account jobs.
type Admin interface {
	// List returns every user, ordered by creation time then ID.
	List(ctx context.Context) ([]User, error)

	// Suspend marks the user suspended. They are refused at their next
	// sign-in and on their next request. It returns an error wrapping
	// [ErrNotFound] when there is no such user.
	//
	// A store that also implements [Sessions] ends every session of the
	// user in the same transaction, so that a suspension is never undone
	// by unsuspending: the sessions it ended stay ended, and the person
	// must sign in again once active.
	Suspend(ctx context.Context, key Key) error

	// Unsuspend marks a suspended user active again. Only an administrator
	// can do this; a sign-in never does. It revives no session.
	Unsuspend(ctx context.Context, key Key) error

	// Delete removes the user record. This is not deprovisioning: the next
	// sign-in of the same person creates a new record. Use Suspend to keep
	// someone out. A store that also implements [Sessions] ends the
	// user's sessions in the same transaction.
	Delete(ctx context.Context, key Key) error

	// NotSignedInSince returns the users whose last sign-in is before t,
	// oldest first: the stale-account report. JIT cannot learn that someone
	// left, so this report is how an administrator finds accounts to
	// suspend.
	NotSignedInSince(ctx context.Context, t time.Time) ([]User, error)

	// GrantRole adds role to the user's LocalRoles; granting a role the
	// user already has locally is not an error. It returns an error
	// wrapping [ErrNotFound] when there is no such user.
	GrantRole(ctx context.Context, key Key, role string) error

	// RevokeRole removes role from the user's LocalRoles; revoking a role
	// the user does not have locally is not an error. IdP-granted
	// Profile.Roles are not affected: they follow the IdP's groups at the
	// next sign-in. It returns an error wrapping [ErrNotFound] when there
	// is no such user.
	RevokeRole(ctx context.Context, key Key, role string) error
}
