package userstore

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Errors returned by a [Directory] or a [GroupDirectory]. Callers test them
// with errors.Is.
var (
	// ErrUserNameInUse means a write would give a user the UserName of
	// another user of the same issuer; nothing was written.
	ErrUserNameInUse = errors.New("userstore: user name in use by another user of the issuer")
	// ErrLocalAccount means a directory call named [LocalIssuer]: local
	// accounts belong to the application, and no directory may read or
	// change them.
	ErrLocalAccount = errors.New("userstore: local accounts are not reachable through a directory")
	// ErrNotMember means a group write named as a member a user that is
	// not a user of the group's issuer (there is none with the ID, or it
	// belongs to another issuer); nothing was written.
	ErrNotMember = errors.New("userstore: not a user of the group's issuer")
)

// DirectoryUser is a user as a provisioning directory (a SCIM client such
// as Entra ID's or Okta's provisioning service) sees it: the record the
// sign-in path keeps, with the name the directory gave it.
type DirectoryUser struct {
	User
	// UserName is the directory's name for the user (SCIM's userName),
	// unique within the issuer once put through [NormalizeEmail] (SCIM
	// compares it without case). It is "" for a user no directory has
	// named, such as one created by a sign-in only.
	UserName string
}

// UserAttr is an attribute a [Directory] finds a user by. Each is served by
// an index, so that finding a user costs the same with ten thousand users
// as with a million.
type UserAttr int

const (
	// UserByID compares User.ID exactly.
	UserByID UserAttr = iota
	// UserBySubject compares Key.Subject exactly: the immutable subject
	// that a sign-in keys the user by, which SCIM carries as externalId.
	UserBySubject
	// UserByUserName compares DirectoryUser.UserName once both are put
	// through [NormalizeEmail]. A blank value matches no one.
	UserByUserName
	// UserByEmail compares Profile.Email once both are put through
	// [NormalizeEmail]. A blank value matches no one.
	UserByEmail
)

// String returns the attribute's name, as errors show it.
func (a UserAttr) String() string {
	switch a {
	case UserByID:
		return "id"
	case UserBySubject:
		return "subject"
	case UserByUserName:
		return "user name"
	case UserByEmail:
		return "email"
	}
	return "UserAttr(?)"
}

// DirectoryPut is the outcome of [Directory.PutUser].
type DirectoryPut struct {
	// User is the record as stored after the call.
	User DirectoryUser
	// Before is the record as it was before the call, or nil when the
	// call created the user.
	Before *DirectoryUser
}

// Directory is the optional side of a store that a provisioning
// directory (the scim package) writes through: it finds users of one
// issuer by indexed attributes, lists them a page at a time, and creates
// or replaces a user with the name the directory gives it.
//
// Like [Store], a Directory can neither delete, suspend nor reactivate a
// user: a directory that is allowed to do so (SCIM is) uses the store's
// [Admin] for it, so that the permission is visible in the types the
// caller asks for.
//
// No method reaches a user of [LocalIssuer]: each refuses that issuer
// with an error wrapping [ErrLocalAccount]. Every method is scoped to one
// issuer, so a directory given one connection's issuer can neither read
// nor change another connection's users.
//
// Implementations must be safe for concurrent use.
type Directory interface {
	// FindUser returns the user of issuer whose attr equals value, or an
	// error wrapping [ErrNotFound] when there is none. Within an issuer
	// each attribute names at most one user (an email and a user name
	// belong to one user of an issuer).
	FindUser(ctx context.Context, issuer string, attr UserAttr, value string) (DirectoryUser, error)

	// ListUsers returns the users of issuer ordered by creation time then
	// ID, skipping the first offset of them and returning at most limit,
	// and how many users the issuer has in all. A negative offset counts
	// as 0 and a limit of 0 or less returns no user but the total. The
	// SQL stores keep each issuer's total as it changes, so that reading
	// it costs the same with a million users as with ten.
	ListUsers(ctx context.Context, issuer string, offset, limit int) ([]DirectoryUser, int, error)

	// PutUser creates the user with key or changes it, as one atomic
	// step: before is the stored user (nil when there is none), and
	// decide returns the user name and profile to store. decide must be
	// quick, must not modify *before and must not call the store; it may
	// be called more than once when the store retries. When decide
	// returns an error, nothing is written and PutUser returns an error
	// for which errors.Is finds it.
	//
	// A creation sets CreatedAt, UpdatedAt and LastSignInAt to now (the
	// stale-account report counts a user no one signed in as from its
	// creation) and the status Active. A change sets UpdatedAt only: it is
	// not a sign-in. PutUser never changes Status or LocalRoles.
	//
	// It refuses, writing nothing, a user name whose [NormalizeEmail]
	// form another user of the issuer has ([ErrUserNameInUse]), and an
	// email as [Store.Provision] does ([ErrEmailInUse]).
	PutUser(ctx context.Context, key Key, now time.Time, decide func(before *DirectoryUser) (userName string, p Profile, err error)) (DirectoryPut, error)
}

// Group is a group a provisioning directory keeps in the store (SCIM's
// Group resource). Its members are users of the same issuer, and each
// member's Profile.Groups holds the group's [Group.Name], so that a
// directory's groups and a sign-in's group claims mean the same to the
// connection's role mapping.
type Group struct {
	// ID is the store's identifier for the group, stable for its life.
	ID string
	// Issuer is the issuer of the connection the group belongs to.
	Issuer string
	// DisplayName is the group's name at the directory.
	DisplayName string
	// ExternalID is the directory's own identifier for the group (Entra
	// ID: the group's object ID, which is what its group claims carry).
	ExternalID string
	// Members are the IDs of the member users, sorted and unique, never
	// nil in a group a store returns. A user that is deleted leaves every
	// group.
	Members []string
	// CreatedAt is when the group was created.
	CreatedAt time.Time
	// UpdatedAt is when the group was last written.
	UpdatedAt time.Time
}

// Name returns the value a member's Profile.Groups holds for g: its
// ExternalID, or its DisplayName when it has none.
func (g Group) Name() string {
	if g.ExternalID != "" {
		return g.ExternalID
	}
	return g.DisplayName
}

// Clone returns a copy of g that shares no memory with it.
func (g Group) Clone() Group {
	g.Members = slices.Clone(g.Members)
	return g
}

// GroupAttr is an attribute a [GroupDirectory] finds groups by, through an
// index.
type GroupAttr int

const (
	// GroupByID compares Group.ID exactly.
	GroupByID GroupAttr = iota
	// GroupByDisplayName compares Group.DisplayName exactly.
	GroupByDisplayName
	// GroupByExternalID compares Group.ExternalID exactly.
	GroupByExternalID
)

// String returns the attribute's name, as errors show it.
func (a GroupAttr) String() string {
	switch a {
	case GroupByID:
		return "id"
	case GroupByDisplayName:
		return "display name"
	case GroupByExternalID:
		return "external id"
	}
	return "GroupAttr(?)"
}

// GroupChange is the outcome of a write of a [GroupDirectory].
type GroupChange struct {
	// Group is the group as stored after the call; its zero value after
	// a deletion.
	Group Group
	// Before is the group as it was before the call, or nil when the
	// call created it.
	Before *Group
	// Users are the users whose Profile.Groups (and so Profile.Roles) the
	// call changed, each with its record before and after, ordered by ID.
	Users []Provisioned
}

// RoleFunc derives a user's Profile.Roles from their Profile.Groups: a
// connection's role mapping, the same one its sign-ins use, so that a
// group change means the same on both paths.
type RoleFunc func(groups []string) []string

// GroupDirectory is the optional side of a store that keeps a provisioning
// directory's groups (SCIM's /Groups) and their members. A change of
// membership writes, in the same transaction, the Profile.Groups of each
// user who joined or left, and their Profile.Roles as roles derives them,
// so that a removal from an administrators' group takes effect at the
// user's next request, not at their next sign-in.
//
// Groups belong to one issuer, and their members are users of that issuer:
// every method is scoped to one issuer and refuses [LocalIssuer] with an
// error wrapping [ErrLocalAccount]. It never changes a user's status.
//
// Implementations must be safe for concurrent use.
type GroupDirectory interface {
	// FindGroups returns the groups of issuer whose attr equals value,
	// ordered by creation time then ID (at most one for [GroupByID]).
	FindGroups(ctx context.Context, issuer string, attr GroupAttr, value string) ([]Group, error)

	// ListGroups returns the groups of issuer ordered by creation time
	// then ID, skipping the first offset and returning at most limit,
	// and how many the issuer has in all, as [Directory.ListUsers] does.
	ListGroups(ctx context.Context, issuer string, offset, limit int) ([]Group, int, error)

	// PutGroup creates a group of issuer (id "") or changes the group with
	// id, as one atomic step: before is the stored group (nil on
	// creation) and decide returns the DisplayName, ExternalID and
	// Members to store (its other fields are ignored). decide follows the
	// rules of [Directory.PutUser]'s. PutGroup returns an error wrapping
	// [ErrNotFound] when id names no group of issuer, and one wrapping
	// [ErrNotMember] when a member is not a user of issuer.
	//
	// Each user who joins gains the group's Name in Profile.Groups (once),
	// each who leaves loses it (every occurrence), and when the Name
	// changes every member's entry follows; each such user's Profile.Roles
	// becomes roles(Profile.Groups) when roles is not nil, and their
	// UpdatedAt now.
	PutGroup(ctx context.Context, issuer, id string, now time.Time, decide func(before *Group) (Group, error), roles RoleFunc) (GroupChange, error)

	// DeleteGroup removes the group with id from issuer, and its Name from
	// the Profile.Groups of its members, with their roles re-derived as
	// PutGroup does. It returns an error wrapping [ErrNotFound] when there
	// is no such group.
	DeleteGroup(ctx context.Context, issuer, id string, now time.Time, roles RoleFunc) (GroupChange, error)
}

// PageKey is where a page of a [DirectoryPager] starts: after the user or
// group created at CreatedAt with ID, in the order of creation time then
// ID that the lists use. The zero PageKey starts at the first.
type PageKey struct {
	// CreatedAt is the creation time of the last user or group of the
	// page before.
	CreatedAt time.Time
	// ID is its ID.
	ID string
}

// UserPageKey returns the key of the page that follows u.
func UserPageKey(u DirectoryUser) PageKey { return PageKey{CreatedAt: u.CreatedAt, ID: u.ID} }

// GroupPageKey returns the key of the page that follows g.
func GroupPageKey(g Group) PageKey { return PageKey{CreatedAt: g.CreatedAt, ID: g.ID} }

// DirectoryPager is the optional side of a store with a [Directory] and a
// [GroupDirectory] that lists by key rather than by offset (SCIM's cursor
// paging, RFC 9865): a page is found through the index its list is read
// by, so that the millionth page costs what the first does, where an
// offset's cost grows with the rows it skips. A user or group created
// while a client pages is listed at the end, and one deleted is not
// listed; none is listed twice.
type DirectoryPager interface {
	// ListUsersAfter returns at most limit users of issuer that follow
	// after, in the order of [Directory.ListUsers]. A limit of 0 or less
	// returns none.
	ListUsersAfter(ctx context.Context, issuer string, after PageKey, limit int) ([]DirectoryUser, error)
	// ListGroupsAfter is ListUsersAfter for the groups of issuer.
	ListGroupsAfter(ctx context.Context, issuer string, after PageKey, limit int) ([]Group, error)
}

// After reports whether the item created at createdAt with id follows k.
func (k PageKey) After(createdAt time.Time, id string) bool {
	if k.ID == "" && k.CreatedAt.IsZero() {
		return true
	}
	if c := createdAt.Compare(k.CreatedAt); c != 0 {
		return c > 0
	}
	return id > k.ID
}

// CheckDirectoryIssuer returns an error wrapping [ErrLocalAccount] for
// [LocalIssuer] and one wrapping [ErrInvalidKey] for an empty issuer, the
// issuers no [Directory] or [GroupDirectory] call accepts.
func CheckDirectoryIssuer(issuer string) error {
	switch issuer {
	case LocalIssuer:
		return ErrLocalAccount
	case "":
		return ErrInvalidKey
	}
	return nil
}

// Regroup returns groups without any occurrence of leave (when not "") and
// with join appended unless already present (when not ""): how a
// [GroupDirectory] changes a member's Profile.Groups. It does not modify
// groups; a nil groups stays nil when nothing is added.
func Regroup(groups []string, leave, join string) []string {
	out := groups
	if leave != "" && slices.Contains(groups, leave) {
		out = slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == leave })
	}
	if join != "" && !slices.Contains(out, join) {
		out = append(slices.Clone(out), join)
	}
	return out
}
