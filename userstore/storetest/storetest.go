// Package storetest is a conformance suite for user stores: every
// implementation of [userstore.Store], [userstore.ReplayCache] and
// [userstore.Admin] in this module runs it, and so should any other. A
// store that also implements the optional [userstore.SignInStore] or
// [userstore.Linker] is checked against those contracts too; for a store
// that does not, their subtests are skipped.
//
// Call [Run] from a test of the store's package:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store {
//			return mystore.New()
//		})
//	}
//
// The suite checks the behaviour the userstore contract documents, and a
// few things the sign-in path relies on: keys are compared exactly, nil and
// empty Groups, Attributes and Roles stay apart, times come back with
// nanosecond precision in UTC, and concurrent first sign-ins create exactly
// one user, through Provision and through SignIn alike.
//
// For the administrator's roles it checks that LocalRoles is nil until a
// role is granted, that GrantRole and RevokeRole are idempotent and keep
// LocalRoles sorted (as Go sorts strings) and unique, and that no sign-in
// changes them. A store may return nil or an empty slice once the last
// local role is revoked; the suite accepts either.
//
// For a [userstore.Linker] it checks that LookupEmail folds ASCII letters
// and surrounding whitespace only (so "ſ" does not match "s", nor the
// Kelvin sign "K"), follows every write of the email, and orders its result
// by creation time then ID, and that Link binds only local accounts, to
// keys no other user has, keeping the account's ID, status, local roles and
// creation time.
//
// For a [userstore.SignInStore] it checks each outcome its documentation
// lists, including that decide is given the stored user, that an error from
// decide writes nothing (not even the assertion's record), and that a
// suspended user's sign-in records the assertion without calling decide.
package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// Store is what the suite tests: a store for the sign-in path that is also a
// replay cache and has the administrative operations. The stores of this
// module, memstore, sqlitestore and pgstore, satisfy it, and each also
// implements [userstore.SignInStore] and [userstore.Linker], which the
// suite tests when a store has them.
type Store interface {
	userstore.Store
	userstore.ReplayCache
	userstore.Admin
}

// concurrency is how many goroutines the concurrency tests start at once.
const concurrency = 64

// Run runs the conformance suite as subtests of t. newStore must return a
// new, empty store each time it is called; it is called once per subtest and
// should register any clean-up with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"LookupUnknownKey", testLookupUnknownKey},
		{"InvalidKey", testInvalidKey},
		{"ProvisionCreatesThenUpdates", testProvisionCreatesThenUpdates},
		{"ProfileRoundTrip", testProfileRoundTrip},
		{"NilAndEmptyStayApart", testNilAndEmptyStayApart},
		{"UnicodeValues", testUnicodeValues},
		{"KeysCompareExactly", testKeysCompareExactly},
		{"TimestampsRoundTrip", testTimestampsRoundTrip},
		{"ProvisionNeverChangesStatus", testProvisionNeverChangesStatus},
		{"DeleteThenProvisionCreatesAnew", testDeleteThenProvisionCreatesAnew},
		{"ListOrder", testListOrder},
		{"NotSignedInSince", testNotSignedInSince},
		{"AdminUnknownKey", testAdminUnknownKey},
		{"ReplayConsumeTwice", testReplayConsumeTwice},
		{"ReplayAfterExpiry", testReplayAfterExpiry},
		{"ReplayIssuersIndependent", testReplayIssuersIndependent},
		{"ReplayRelease", testReplayRelease},
		{"ReplayConcurrentConsume", testReplayConcurrentConsume},
		{"ConcurrentFirstSignIn", testConcurrentFirstSignIn},
		{"ConcurrentDistinctKeys", testConcurrentDistinctKeys},
		{"ReturnedValuesAreCopies", testReturnedValuesAreCopies},

		{"ProfileRolesNilAndEmpty", testProfileRolesNilAndEmpty},
		{"ProvisionNeverChangesLocalRoles", testProvisionNeverChangesLocalRoles},
		{"GrantRevokeRole", testGrantRevokeRole},
		{"RoleAdminErrors", testRoleAdminErrors},
		{"ConcurrentGrantAndProvision", testConcurrentGrantAndProvision},
		{"EffectiveRoles", testEffectiveRoles},

		{"LookupEmailFoldsASCIIOnly", testLookupEmailFoldsASCIIOnly},
		{"LookupEmailOrder", testLookupEmailOrder},
		{"LookupEmailBlank", testLookupEmailBlank},
		{"LookupEmailFollowsWrites", testLookupEmailFollowsWrites},
		{"LinkLocalAccount", testLinkLocalAccount},
		{"LinkKeepsSuspended", testLinkKeepsSuspended},
		{"LinkRefusesNonLocal", testLinkRefusesNonLocal},
		{"LinkRefusesTakenKey", testLinkRefusesTakenKey},
		{"LinkUnknownID", testLinkUnknownID},

		{"SignInCreatesThenUpdates", testSignInCreatesThenUpdates},
		{"SignInReplayed", testSignInReplayed},
		{"SignInSuspended", testSignInSuspended},
		{"SignInDecideError", testSignInDecideError},
		{"SignInInvalidKey", testSignInInvalidKey},
		{"SignInConcurrentFirst", testSignInConcurrentFirst},
		{"SignInConcurrentSameAssertion", testSignInConcurrentSameAssertion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			require.NotNil(t, s, "newStore returned nil")
			tt.fn(t, s)
		})
	}
}

const issuer = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/"

// key returns a key of the test issuer.
func key(subject string) userstore.Key {
	return userstore.Key{Issuer: issuer, Subject: subject}
}

// epoch is the time the tests start from. It is not in UTC and has
// nanoseconds, so that stores must normalise and keep precision.
func epoch() time.Time {
	return time.Date(2025, time.March, 14, 9, 26, 53, 589793238, time.FixedZone("UTC+1", 60*60))
}

// fullProfile returns a profile with every field set.
func fullProfile() userstore.Profile {
	return userstore.Profile{
		Email:       "ada@example.com",
		DisplayName: "Ada Lovelace",
		GivenName:   "Ada",
		FamilyName:  "Lovelace",
		Groups:      []string{"b5b3c1d2-0000-0000-0000-000000000001", "engineers", "engineers"},
		Attributes: map[string][]string{
			"http://schemas.microsoft.com/identity/claims/tenantid": {"00000000-0000-0000-0000-000000000001"},
			"department": {"Analytical Engines", ""},
		},
		// As given: neither sorted nor unique.
		Roles: []string{"writer", "reader", "writer"},
	}
}

// provision calls s.Provision and requires it to succeed.
func provision(t *testing.T, s Store, k userstore.Key, p userstore.Profile, now time.Time) userstore.Provisioned {
	t.Helper()
	res, err := s.Provision(t.Context(), k, p, now)
	require.NoError(t, err, "Provision(%s)", k)
	return res
}

// lookup calls s.Lookup and requires it to succeed.
func lookup(t *testing.T, s Store, k userstore.Key) userstore.User {
	t.Helper()
	u, err := s.Lookup(t.Context(), k)
	require.NoError(t, err, "Lookup(%s)", k)
	return u
}

// list calls s.List and requires it to succeed.
func list(t *testing.T, s Store) []userstore.User {
	t.Helper()
	users, err := s.List(t.Context())
	require.NoError(t, err, "List")
	return users
}

// requireTime requires got to be the same instant as want and in UTC.
func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	require.Truef(t, want.Equal(got), "%s = %s, want %s", field, got, want)
	require.Samef(t, time.UTC, got.Location(), "%s is in %s, want UTC", field, got.Location())
}

// requireSameUser requires got to be want, comparing times as instants and
// requiring them in UTC.
func requireSameUser(t *testing.T, want, got userstore.User) {
	t.Helper()
	require.Equal(t, want.ID, got.ID, "ID")
	require.Equal(t, want.Key, got.Key, "Key")
	require.Equal(t, want.Profile, got.Profile, "Profile")
	require.Equal(t, want.Status, got.Status, "Status")
	require.Equal(t, want.LocalRoles, got.LocalRoles, "LocalRoles")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
	requireTime(t, want.LastSignInAt, got.LastSignInAt, "LastSignInAt")
}

// ids returns the IDs of users, in order.
func ids(users []userstore.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

// concurrently calls fn(0) … fn(n-1), each in its own goroutine, releasing
// them together, and returns when all have returned.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func testLookupUnknownKey(t *testing.T, s Store) {
	_, err := s.Lookup(t.Context(), key("nobody"))
	require.ErrorIs(t, err, userstore.ErrNotFound)

	provision(t, s, key("somebody"), fullProfile(), epoch())
	_, err = s.Lookup(t.Context(), key("nobody"))
	require.ErrorIs(t, err, userstore.ErrNotFound)
	_, err = s.Lookup(t.Context(), userstore.Key{Issuer: "https://other.example/", Subject: "somebody"})
	require.ErrorIs(t, err, userstore.ErrNotFound, "a subject of another issuer is another user")
}

func testInvalidKey(t *testing.T, s Store) {
	for _, k := range []userstore.Key{
		{Issuer: "", Subject: "subject"},
		{Issuer: issuer, Subject: ""},
		{},
	} {
		_, err := s.Lookup(t.Context(), k)
		require.ErrorIs(t, err, userstore.ErrInvalidKey, "Lookup(%s)", k)
		_, err = s.Provision(t.Context(), k, fullProfile(), epoch())
		require.ErrorIs(t, err, userstore.ErrInvalidKey, "Provision(%s)", k)
	}
	require.Empty(t, list(t, s), "a refused Provision wrote a user")
}

func testProvisionCreatesThenUpdates(t *testing.T, s Store) {
	k := key("ada")
	t0 := epoch()
	first := provision(t, s, k, fullProfile(), t0)
	require.True(t, first.Created(), "first Provision did not create")
	require.Nil(t, first.Before)
	u := first.User
	require.NotEmpty(t, u.ID)
	require.Equal(t, k, u.Key)
	require.Equal(t, fullProfile(), u.Profile)
	require.Equal(t, userstore.Active, u.Status)
	requireTime(t, t0, u.CreatedAt, "CreatedAt")
	requireTime(t, t0, u.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, u.LastSignInAt, "LastSignInAt")
	requireSameUser(t, u, lookup(t, s, k))

	changed := fullProfile()
	changed.Email = "ada.king@example.com"
	changed.DisplayName = "Ada King"
	changed.Groups = []string{"countesses"}
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	second := provision(t, s, k, changed, t1)
	require.False(t, second.Created(), "second Provision created again")
	require.NotNil(t, second.Before)
	requireSameUser(t, u, *second.Before)

	want := u
	want.Profile = changed
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, second.User)
	requireSameUser(t, want, lookup(t, s, k))

	users := list(t, s)
	require.Len(t, users, 1, "the user was created more than once")
	requireSameUser(t, want, users[0])
}

func testProfileRoundTrip(t *testing.T, s Store) {
	k := key("ada")
	p := fullProfile()
	res := provision(t, s, k, p, epoch())
	require.Equal(t, p, res.User.Profile, "Provision result")
	require.Equal(t, p, lookup(t, s, k).Profile, "Lookup")
	users := list(t, s)
	require.Len(t, users, 1)
	require.Equal(t, p, users[0].Profile, "List")

	// An update replaces the whole profile, clearing fields left empty.
	res = provision(t, s, k, userstore.Profile{DisplayName: "Ada"}, epoch().Add(time.Minute))
	require.Equal(t, p, res.Before.Profile, "Before")
	require.Equal(t, userstore.Profile{DisplayName: "Ada"}, lookup(t, s, k).Profile)
}

func testNilAndEmptyStayApart(t *testing.T, s Store) {
	nilProfile := userstore.Profile{DisplayName: "nil"}
	emptyProfile := userstore.Profile{DisplayName: "empty", Groups: []string{}, Attributes: map[string][]string{}, Roles: []string{}}
	innerProfile := userstore.Profile{
		DisplayName: "inner",
		Attributes:  map[string][]string{"nil": nil, "empty": {}, "one": {"x"}},
	}

	provision(t, s, key("nil"), nilProfile, epoch())
	provision(t, s, key("empty"), emptyProfile, epoch())
	provision(t, s, key("inner"), innerProfile, epoch())

	got := lookup(t, s, key("nil")).Profile
	require.Nil(t, got.Groups, "nil Groups came back non-nil")
	require.Nil(t, got.Attributes, "nil Attributes came back non-nil")
	require.Nil(t, got.Roles, "nil Roles came back non-nil")

	got = lookup(t, s, key("empty")).Profile
	require.NotNil(t, got.Groups, "empty Groups came back nil")
	require.Empty(t, got.Groups)
	require.NotNil(t, got.Attributes, "empty Attributes came back nil")
	require.Empty(t, got.Attributes)
	require.NotNil(t, got.Roles, "empty Roles came back nil")
	require.Empty(t, got.Roles)

	got = lookup(t, s, key("inner")).Profile
	require.Equal(t, innerProfile, got)
	require.Nil(t, got.Attributes["nil"], "a nil attribute value came back non-nil")
	require.NotNil(t, got.Attributes["empty"], "an empty attribute value came back nil")
	require.Empty(t, got.Attributes["empty"])

	// Updates keep the distinction too, in both directions.
	res := provision(t, s, key("nil"), emptyProfile, epoch().Add(time.Second))
	require.Equal(t, nilProfile, res.Before.Profile)
	require.Nil(t, res.Before.Profile.Groups)
	require.Equal(t, emptyProfile, lookup(t, s, key("nil")).Profile)
	require.NotNil(t, lookup(t, s, key("nil")).Profile.Groups)

	res = provision(t, s, key("empty"), nilProfile, epoch().Add(time.Second))
	require.NotNil(t, res.Before.Profile.Groups)
	require.NotNil(t, res.Before.Profile.Attributes)
	got = lookup(t, s, key("empty")).Profile
	require.Nil(t, got.Groups)
	require.Nil(t, got.Attributes)
}

func testUnicodeValues(t *testing.T, s Store) {
	k := userstore.Key{Issuer: "https://idp.example/ß/", Subject: "山田-🦊-\u0645\u0631\u062d\u0628\u0627"}
	p := userstore.Profile{
		Email:       "zoë@bücher.example",
		DisplayName: "Zoë Ångström-山田 🦊",
		GivenName:   "Zoë",
		FamilyName:  "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", // right to left
		Groups:      []string{"Ⅻ", "e\u0301", "\u00e9", "<&>\"'\\", "tab\there", "line\nbreak"},
		Attributes: map[string][]string{
			"名前":          {"値", "🙂"},
			"\u212Aelvin": {"\u017Fharp"},
		},
	}
	res := provision(t, s, k, p, epoch())
	require.Equal(t, p, res.User.Profile)
	u := lookup(t, s, k)
	require.Equal(t, k, u.Key)
	require.Equal(t, p, u.Profile)
}

func testKeysCompareExactly(t *testing.T, s Store) {
	// Each group holds values that case folding, Unicode normalisation or
	// trimming would treat as equal. Keys are compared byte for byte, so
	// every value is a different user.
	groups := [][]string{
		{"K", "k", "\u212A"},       // Latin K, k and the Kelvin sign
		{"s", "S", "\u017F"},       // s, S and the long s
		{"\u00e9", "e\u0301"},      // é precomposed and decomposed
		{"user", "user ", " user"}, // surrounding spaces
		{"ABC-1", "abc-1"},
	}
	seen := make(map[string]userstore.Key)
	for _, g := range groups {
		for _, v := range g {
			for _, k := range []userstore.Key{
				{Issuer: issuer, Subject: v},
				{Issuer: "https://idp.example/" + v, Subject: "subject"},
			} {
				res := provision(t, s, k, userstore.Profile{DisplayName: k.String()}, epoch())
				require.True(t, res.Created(), "%s was taken for an existing user", k)
				prev, dup := seen[res.User.ID]
				require.False(t, dup, "%s and %s share user %s", k, prev, res.User.ID)
				seen[res.User.ID] = k
			}
		}
	}
	for id, k := range seen {
		u := lookup(t, s, k)
		require.Equal(t, id, u.ID, "Lookup(%s)", k)
		require.Equal(t, k, u.Key)
		require.Equal(t, k.String(), u.Profile.DisplayName)
	}
	require.Len(t, list(t, s), len(seen))
}

func testTimestampsRoundTrip(t *testing.T, s Store) {
	k := key("ada")
	times := []time.Time{
		epoch(),
		time.Now(), // has a monotonic clock reading
		time.Date(1969, time.December, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2200, time.February, 29, 12, 0, 0, 1, time.FixedZone("UTC-9:30", -(9*60+30)*60)),
		time.Date(2025, time.October, 26, 2, 30, 0, 123456789, time.FixedZone("CEST", 2*60*60)),
	}
	created := times[0]
	for _, now := range times {
		res := provision(t, s, k, fullProfile(), now)
		requireTime(t, created, res.User.CreatedAt, "Provision CreatedAt")
		requireTime(t, now, res.User.UpdatedAt, "Provision UpdatedAt")
		requireTime(t, now, res.User.LastSignInAt, "Provision LastSignInAt")

		u := lookup(t, s, k)
		requireTime(t, created, u.CreatedAt, "CreatedAt")
		requireTime(t, now, u.UpdatedAt, "UpdatedAt")
		requireTime(t, now, u.LastSignInAt, "LastSignInAt")
	}
}

func testProvisionNeverChangesStatus(t *testing.T, s Store) {
	k := key("ada")
	created := provision(t, s, k, fullProfile(), epoch()).User
	require.NoError(t, s.Suspend(t.Context(), k))
	require.Equal(t, userstore.Suspended, lookup(t, s, k).Status)

	changed := userstore.Profile{DisplayName: "Ada King", Groups: []string{"admins"}}
	res := provision(t, s, k, changed, epoch().Add(time.Hour))
	require.False(t, res.Created())
	require.Equal(t, userstore.Suspended, res.Before.Status)
	require.Equal(t, userstore.Suspended, res.User.Status, "Provision reactivated a suspended user")
	require.Equal(t, created.ID, res.User.ID)
	u := lookup(t, s, k)
	require.Equal(t, userstore.Suspended, u.Status, "Provision reactivated a suspended user")
	require.Equal(t, changed, u.Profile, "Provision of a suspended user did not write the profile")

	require.NoError(t, s.Unsuspend(t.Context(), k))
	require.Equal(t, userstore.Active, lookup(t, s, k).Status)
	res = provision(t, s, k, changed, epoch().Add(2*time.Hour))
	require.Equal(t, userstore.Active, res.User.Status)
}

func testDeleteThenProvisionCreatesAnew(t *testing.T, s Store) {
	// Deleting is not deprovisioning: the next sign-in creates the user
	// again, with a new ID. Suspend is the way to keep someone out.
	k := key("ada")
	first := provision(t, s, k, fullProfile(), epoch()).User
	require.NoError(t, s.Suspend(t.Context(), k))
	require.NoError(t, s.GrantRole(t.Context(), k, "admin"))
	require.NoError(t, s.Delete(t.Context(), k))
	_, err := s.Lookup(t.Context(), k)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	require.Empty(t, list(t, s))

	later := epoch().Add(24 * time.Hour)
	res := provision(t, s, k, fullProfile(), later)
	require.True(t, res.Created(), "Provision after Delete did not create")
	require.NotEqual(t, first.ID, res.User.ID, "the new record reused the deleted one's ID")
	require.Equal(t, userstore.Active, res.User.Status, "the new record is not active")
	require.Nil(t, res.User.LocalRoles, "the new record has the deleted one's local roles")
	require.Nil(t, lookup(t, s, k).LocalRoles, "the new record has the deleted one's local roles")
	requireTime(t, later, res.User.CreatedAt, "CreatedAt")
}

func testListOrder(t *testing.T, s Store) {
	t0 := epoch()
	// Created in an order that differs from the keys' order.
	provision(t, s, key("c"), userstore.Profile{}, t0)
	provision(t, s, key("a"), userstore.Profile{}, t0.Add(2*time.Hour))
	provision(t, s, key("b"), userstore.Profile{}, t0.Add(time.Hour))
	// Signing in again does not move a user in the list.
	provision(t, s, key("c"), userstore.Profile{}, t0.Add(3*time.Hour))
	// Two users created at one instant are ordered by ID.
	d := provision(t, s, key("d"), userstore.Profile{}, t0.Add(4*time.Hour)).User
	e := provision(t, s, key("e"), userstore.Profile{}, t0.Add(4*time.Hour)).User

	requireCreationOrder(t, list(t, s), d, e)
}

// requireCreationOrder checks the users c, b, a (created in that order)
// then d and e (created at one instant, so ordered by ID).
func requireCreationOrder(t *testing.T, users []userstore.User, d, e userstore.User) {
	t.Helper()
	tied := []string{d.ID, e.ID}
	if e.ID < d.ID {
		tied = []string{e.ID, d.ID}
	}
	require.Len(t, users, 5)
	var subjects []string
	for _, u := range users {
		subjects = append(subjects, u.Key.Subject)
	}
	require.Equal(t, []string{"c", "b", "a"}, subjects[:3])
	require.Equal(t, tied, ids(users[3:]))
}

func testNotSignedInSince(t *testing.T, s Store) {
	t0 := epoch()
	a := provision(t, s, key("a"), userstore.Profile{}, t0).User
	b := provision(t, s, key("b"), userstore.Profile{}, t0.Add(1*time.Hour)).User
	c := provision(t, s, key("c"), userstore.Profile{}, t0.Add(2*time.Hour)).User
	provision(t, s, key("d"), userstore.Profile{}, t0.Add(3*time.Hour))
	// a signs in again, so it is now the most recent.
	provision(t, s, key("a"), userstore.Profile{}, t0.Add(4*time.Hour))
	require.NoError(t, s.Suspend(t.Context(), key("c")))

	stale, err := s.NotSignedInSince(t.Context(), t0.Add(2*time.Hour+30*time.Minute))
	require.NoError(t, err)
	require.Equal(t, []string{b.ID, c.ID}, ids(stale), "want b then c, oldest first")
	requireTime(t, t0.Add(time.Hour), stale[0].LastSignInAt, "LastSignInAt")
	require.Equal(t, userstore.Suspended, stale[1].Status)

	// The bound is exclusive: a sign-in exactly at t is not stale.
	stale, err = s.NotSignedInSince(t.Context(), t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []string{b.ID}, ids(stale))

	stale, err = s.NotSignedInSince(t.Context(), t0)
	require.NoError(t, err)
	require.Empty(t, stale)

	stale, err = s.NotSignedInSince(t.Context(), t0.Add(5*time.Hour))
	require.NoError(t, err)
	require.Len(t, stale, 4)
	require.Equal(t, a.ID, stale[3].ID)
}

func testAdminUnknownKey(t *testing.T, s Store) {
	provision(t, s, key("somebody"), fullProfile(), epoch())
	k := key("nobody")
	ctx := t.Context()
	require.ErrorIs(t, s.Suspend(ctx, k), userstore.ErrNotFound, "Suspend")
	require.ErrorIs(t, s.Unsuspend(ctx, k), userstore.ErrNotFound, "Unsuspend")
	require.ErrorIs(t, s.Delete(ctx, k), userstore.ErrNotFound, "Delete")
	require.ErrorIs(t, s.GrantRole(ctx, k, "admin"), userstore.ErrNotFound, "GrantRole")
	require.ErrorIs(t, s.RevokeRole(ctx, k, "admin"), userstore.ErrNotFound, "RevokeRole")

	require.Error(t, s.Suspend(ctx, userstore.Key{Subject: "somebody"}), "Suspend with an empty issuer")
	require.Error(t, s.Delete(ctx, userstore.Key{Issuer: issuer}), "Delete with an empty subject")

	users := list(t, s)
	require.Len(t, users, 1)
	require.Equal(t, userstore.Active, users[0].Status)
}

func testReplayConsumeTwice(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	err := s.ConsumeAssertion(ctx, issuer, "_a1", expires, now.Add(time.Second))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	// Another id is independent.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now))
}

func testReplayAfterExpiry(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, expires.Add(-time.Nanosecond)),
		userstore.ErrReplayed, "an unexpired record was not honoured")

	later := expires.Add(time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later),
		"an expired record still refused the id")
	// The new record is honoured until its own expiry.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later.Add(time.Minute)),
		userstore.ErrReplayed, "consuming after expiry did not record the new expiry")
}

func testReplayIssuersIndependent(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now),
		"the same id from another issuer was refused")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now), userstore.ErrReplayed)
	// Issuers and ids are compared exactly.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_A1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1 ", expires, now))
}

func testReplayRelease(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now))
	require.NoError(t, s.ReleaseAssertion(ctx, issuer, "_a1"))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "a released id was refused")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing one id released another")
	require.NoError(t, s.ReleaseAssertion(ctx, issuer, "_unknown"), "releasing an unknown id")
	require.NoError(t, s.ReleaseAssertion(ctx, "https://other.example/", "_a2"), "releasing an unknown id")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing an id of another issuer released this one")
}

func testReplayConcurrentConsume(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		errs[i] = s.ConsumeAssertion(ctx, issuer, "_concurrent", now.Add(5*time.Minute), now)
	})
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, userstore.ErrReplayed, "call %d", i)
	}
	require.Equal(t, 1, ok, "want exactly one successful ConsumeAssertion")
}

func testConcurrentFirstSignIn(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		p := userstore.Profile{DisplayName: fmt.Sprint(i), Groups: []string{fmt.Sprint(i)}}
		results[i], errs[i] = s.Provision(ctx, k, p, epoch().Add(time.Duration(i)*time.Second))
	})
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
	}

	created := 0
	// befores counts how often each call's profile was seen as the one
	// before another call. Calls that are atomic per key form a chain:
	// every profile but the last is seen exactly once.
	befores := make(map[string]int)
	for i, res := range results {
		require.Equal(t, results[0].User.ID, res.User.ID, "call %d got another user", i)
		require.Equal(t, fmt.Sprint(i), res.User.Profile.DisplayName, "call %d", i)
		if res.Created() {
			created++
			continue
		}
		require.Equal(t, res.User.ID, res.Before.ID, "call %d", i)
		require.NotEqual(t, res.User.Profile.DisplayName, res.Before.Profile.DisplayName, "call %d saw its own write as before", i)
		befores[res.Before.Profile.DisplayName]++
	}
	require.Equal(t, 1, created, "want exactly one call to create the user")
	for name, n := range befores {
		require.Equal(t, 1, n, "profile %s was overwritten %d times", name, n)
	}
	require.Len(t, befores, concurrency-1)
	final := lookup(t, s, k)
	require.NotContains(t, befores, final.Profile.DisplayName, "the stored profile was overwritten")

	users := list(t, s)
	require.Len(t, users, 1, "concurrent first sign-ins created more than one user")
	require.Equal(t, results[0].User.ID, users[0].ID)
}

func testConcurrentDistinctKeys(t *testing.T, s Store) {
	ctx := t.Context()
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		results[i], errs[i] = s.Provision(ctx, key(fmt.Sprint("user-", i)), fullProfile(), epoch())
	})
	seen := make(map[string]bool)
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
		require.True(t, results[i].Created(), "call %d", i)
		require.False(t, seen[results[i].User.ID], "call %d reused an ID", i)
		seen[results[i].User.ID] = true
	}
	users := list(t, s)
	require.Len(t, users, concurrency)
	for _, u := range users {
		require.True(t, seen[u.ID], "List returned unknown user %s", u.ID)
	}
}

func testReturnedValuesAreCopies(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	in := fullProfile()
	res := provision(t, s, k, in, epoch())

	// Changing what was passed in does not change the store.
	in.Groups[0] = "changed"
	in.Attributes["department"][0] = "changed"
	in.Attributes["new"] = []string{"changed"}
	in.Roles[0] = "changed"
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept the caller's slices or map")

	// Nor does changing what came out.
	mutate := func(p *userstore.Profile) {
		p.Groups[0] = "changed"
		p.Groups = append(p.Groups, "appended")
		p.Attributes["department"][0] = "changed"
		p.Attributes["new"] = []string{"changed"}
		p.Roles[0] = "changed"
	}
	mutate(&res.User.Profile)
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "Provision returned the stored slices or map")

	u := lookup(t, s, k)
	mutate(&u.Profile)
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "Lookup returned the stored slices or map")

	users, err := s.List(ctx)
	require.NoError(t, err)
	mutate(&users[0].Profile)
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "List returned the stored slices or map")

	res = provision(t, s, k, fullProfile(), epoch().Add(time.Minute))
	mutate(&res.Before.Profile)
	mutate(&res.User.Profile)
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "Provision returned the stored slices or map")

	stale, err := s.NotSignedInSince(ctx, epoch().Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, stale, 1)
	mutate(&stale[0].Profile)
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "NotSignedInSince returned the stored slices or map")

	// Local roles likewise.
	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	u = lookup(t, s, k)
	u.LocalRoles[0] = "changed"
	require.Equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "Lookup returned the stored local roles")
	users, err = s.List(ctx)
	require.NoError(t, err)
	users[0].LocalRoles[0] = "changed"
	require.Equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "List returned the stored local roles")
	res = provision(t, s, k, fullProfile(), epoch().Add(2*time.Minute))
	res.User.LocalRoles[0] = "changed"
	res.Before.LocalRoles[0] = "changed"
	require.Equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "Provision returned the stored local roles")

	if l, ok := s.(userstore.Linker); ok {
		found, err := l.LookupEmail(ctx, fullProfile().Email)
		require.NoError(t, err)
		require.Len(t, found, 1)
		mutate(&found[0].Profile)
		found[0].LocalRoles[0] = "changed"
		u := lookup(t, s, k)
		require.Equal(t, fullProfile(), u.Profile, "LookupEmail returned the stored slices or map")
		require.Equal(t, []string{"admin"}, u.LocalRoles, "LookupEmail returned the stored local roles")
	}
}

// roles returns the local roles of the user with key.
func localRoles(t *testing.T, s Store, k userstore.Key) []string {
	t.Helper()
	return lookup(t, s, k).LocalRoles
}

func testProfileRolesNilAndEmpty(t *testing.T, s Store) {
	nilRoles := userstore.Profile{DisplayName: "nil"}
	emptyRoles := userstore.Profile{DisplayName: "empty", Roles: []string{}}
	someRoles := userstore.Profile{DisplayName: "some", Roles: []string{"z", "a", "z", "管理者", "e\u0301", ""}}

	for _, tc := range []struct {
		subject string
		p       userstore.Profile
	}{{"nil", nilRoles}, {"empty", emptyRoles}, {"some", someRoles}} {
		res := provision(t, s, key(tc.subject), tc.p, epoch())
		require.Equal(t, tc.p, res.User.Profile, "Provision result for %s roles", tc.subject)
		require.Equal(t, tc.p, lookup(t, s, key(tc.subject)).Profile, "Lookup of %s roles", tc.subject)
	}
	require.Nil(t, lookup(t, s, key("nil")).Profile.Roles, "nil Roles came back non-nil")
	got := lookup(t, s, key("empty")).Profile.Roles
	require.NotNil(t, got, "empty Roles came back nil")
	require.Empty(t, got)
	for _, u := range list(t, s) {
		switch u.Key.Subject {
		case "nil":
			require.Nil(t, u.Profile.Roles, "List: nil Roles came back non-nil")
		case "empty":
			require.NotNil(t, u.Profile.Roles, "List: empty Roles came back nil")
		case "some":
			require.Equal(t, someRoles.Roles, u.Profile.Roles, "List")
		}
	}

	// Every sign-in writes the roles, in both directions.
	res := provision(t, s, key("nil"), emptyRoles, epoch().Add(time.Second))
	require.Nil(t, res.Before.Profile.Roles)
	require.NotNil(t, res.User.Profile.Roles)
	require.NotNil(t, lookup(t, s, key("nil")).Profile.Roles, "nil Roles updated to empty came back nil")
	res = provision(t, s, key("empty"), nilRoles, epoch().Add(time.Second))
	require.NotNil(t, res.Before.Profile.Roles)
	require.Nil(t, lookup(t, s, key("empty")).Profile.Roles, "empty Roles updated to nil came back non-nil")
	res = provision(t, s, key("some"), userstore.Profile{DisplayName: "some", Roles: []string{"b"}}, epoch().Add(time.Second))
	require.Equal(t, someRoles.Roles, res.Before.Profile.Roles)
	require.Equal(t, []string{"b"}, lookup(t, s, key("some")).Profile.Roles, "a role whose group disappeared is still there")
}

func testProvisionNeverChangesLocalRoles(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	res := provision(t, s, k, fullProfile(), epoch())
	require.Nil(t, res.User.LocalRoles, "a new user has local roles")
	require.Nil(t, localRoles(t, s, k), "LocalRoles of a user never granted one is not nil")
	require.Nil(t, list(t, s)[0].LocalRoles, "LocalRoles of a user never granted one is not nil")

	require.NoError(t, s.GrantRole(ctx, k, "auditor"))
	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	want := []string{"admin", "auditor"}
	for i, p := range []userstore.Profile{
		{DisplayName: "no roles"},
		{DisplayName: "empty roles", Roles: []string{}},
		// An IdP role with the name of a local role is still only an
		// IdP role.
		{DisplayName: "other roles", Roles: []string{"admin", "owner"}},
	} {
		res := provision(t, s, k, p, epoch().Add(time.Duration(i+1)*time.Hour))
		require.Equal(t, want, res.Before.LocalRoles, "Provision's Before")
		require.Equal(t, want, res.User.LocalRoles, "Provision changed LocalRoles")
		u := lookup(t, s, k)
		require.Equal(t, want, u.LocalRoles, "Provision changed LocalRoles")
		require.Equal(t, p, u.Profile)
	}

	// Revoking a local role that is also an IdP role leaves the IdP role.
	require.NoError(t, s.RevokeRole(ctx, k, "admin"))
	u := lookup(t, s, k)
	require.Equal(t, []string{"auditor"}, u.LocalRoles)
	require.Equal(t, []string{"admin", "owner"}, u.Profile.Roles, "RevokeRole changed the IdP-granted roles")
}

func testGrantRevokeRole(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	created := provision(t, s, k, fullProfile(), epoch()).User

	for _, role := range []string{"writer", "admin", "reader", "admin", "writer"} {
		require.NoError(t, s.GrantRole(ctx, k, role), "GrantRole(%q)", role)
	}
	require.Equal(t, []string{"admin", "reader", "writer"}, localRoles(t, s, k), "LocalRoles not sorted and unique")

	// Roles are compared exactly and sorted as Go sorts strings (byte
	// by byte), not by any locale.
	for _, role := range []string{"Admin", " admin", "émigré", "Zeta", "admin "} {
		require.NoError(t, s.GrantRole(ctx, k, role), "GrantRole(%q)", role)
	}
	require.Equal(t, []string{" admin", "Admin", "Zeta", "admin", "admin ", "reader", "writer", "émigré"}, localRoles(t, s, k))

	// Granting changes nothing else.
	u := lookup(t, s, k)
	require.Equal(t, created.Profile, u.Profile)
	require.Equal(t, created.Status, u.Status)
	requireTime(t, created.UpdatedAt, u.UpdatedAt, "UpdatedAt")
	requireTime(t, created.LastSignInAt, u.LastSignInAt, "LastSignInAt")

	require.NoError(t, s.RevokeRole(ctx, k, "reader"))
	require.NoError(t, s.RevokeRole(ctx, k, "reader"), "revoking a role twice")
	require.NoError(t, s.RevokeRole(ctx, k, "nobody-has-this"), "revoking a role the user does not have")
	require.Equal(t, []string{" admin", "Admin", "Zeta", "admin", "admin ", "writer", "émigré"}, localRoles(t, s, k))
	require.Equal(t, fullProfile().Roles, lookup(t, s, k).Profile.Roles, "RevokeRole changed the IdP-granted roles")

	for _, role := range []string{" admin", "Admin", "Zeta", "admin", "admin ", "writer", "émigré"} {
		require.NoError(t, s.RevokeRole(ctx, k, role), "RevokeRole(%q)", role)
	}
	// Nil or empty: the contract only says nil when none was ever
	// granted.
	require.Empty(t, localRoles(t, s, k), "LocalRoles after revoking every role")
	require.NoError(t, s.RevokeRole(ctx, k, "admin"), "revoking from a user with no local roles")
	require.Empty(t, localRoles(t, s, k))

	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	require.Equal(t, []string{"admin"}, localRoles(t, s, k))

	// Other users are unaffected.
	other := provision(t, s, key("grace"), fullProfile(), epoch()).User
	require.Nil(t, other.LocalRoles)
	require.Nil(t, localRoles(t, s, key("grace")))
}

func testRoleAdminErrors(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	provision(t, s, k, fullProfile(), epoch())

	for _, bad := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		require.ErrorIs(t, s.GrantRole(ctx, bad, "admin"), userstore.ErrInvalidKey, "GrantRole(%s)", bad)
		require.ErrorIs(t, s.RevokeRole(ctx, bad, "admin"), userstore.ErrInvalidKey, "RevokeRole(%s)", bad)
	}
	for _, nobody := range []userstore.Key{key("nobody"), {Issuer: "https://other.example/", Subject: "ada"}, key("ADA")} {
		require.ErrorIs(t, s.GrantRole(ctx, nobody, "admin"), userstore.ErrNotFound, "GrantRole(%s)", nobody)
		require.ErrorIs(t, s.RevokeRole(ctx, nobody, "admin"), userstore.ErrNotFound, "RevokeRole(%s)", nobody)
	}

	require.Error(t, s.GrantRole(ctx, k, ""), "GrantRole of an empty role")
	require.Nil(t, localRoles(t, s, k), "a refused GrantRole wrote local roles")
	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	require.Error(t, s.RevokeRole(ctx, k, ""), "RevokeRole of an empty role")
	require.Equal(t, []string{"admin"}, localRoles(t, s, k))

	users := list(t, s)
	require.Len(t, users, 1, "a role change created a user")
}

func testConcurrentGrantAndProvision(t *testing.T, s Store) {
	// Grants of different roles, and sign-ins, at once: none is lost,
	// and no sign-in overwrites the local roles.
	ctx := t.Context()
	k := key("ada")
	provision(t, s, k, fullProfile(), epoch())
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		if i%2 == 0 {
			errs[i] = s.GrantRole(ctx, k, fmt.Sprintf("role-%02d", i))
			return
		}
		_, errs[i] = s.Provision(ctx, k, userstore.Profile{DisplayName: fmt.Sprint(i), Roles: []string{"idp"}}, epoch().Add(time.Duration(i)*time.Second))
	})
	var want []string
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
		if i%2 == 0 {
			want = append(want, fmt.Sprintf("role-%02d", i))
		}
	}
	require.Equal(t, want, localRoles(t, s, k), "a concurrent grant was lost")
}

func testEffectiveRoles(t *testing.T, s Store) {
	ctx := t.Context()
	k := key("ada")
	provision(t, s, k, userstore.Profile{Roles: []string{"writer", "reader", "writer"}}, epoch())
	require.NoError(t, s.GrantRole(ctx, k, "reader"))
	require.NoError(t, s.GrantRole(ctx, k, "admin"))

	u := lookup(t, s, k)
	require.Equal(t, []string{"admin", "reader", "writer"}, u.Roles())
	for _, role := range []string{"admin", "reader", "writer"} {
		require.True(t, u.HasRole(role), "HasRole(%q)", role)
	}
	require.False(t, u.HasRole("owner"))
	require.False(t, u.HasRole("Admin"))

	// The IdP takes a role away at the next sign-in; the local grant of
	// the same role keeps it.
	res := provision(t, s, k, userstore.Profile{Roles: []string{"writer"}}, epoch().Add(time.Hour))
	require.Equal(t, []string{"admin", "reader", "writer"}, res.User.Roles())
	res = provision(t, s, k, userstore.Profile{}, epoch().Add(2*time.Hour))
	require.Equal(t, []string{"admin", "reader"}, res.User.Roles())
	require.False(t, res.User.HasRole("writer"))
	require.NoError(t, s.RevokeRole(ctx, k, "reader"))
	require.Equal(t, []string{"admin"}, lookup(t, s, k).Roles())
}

// linker returns s as a [userstore.Linker], or skips the test when it is
// not one.
func linker(t *testing.T, s Store) userstore.Linker {
	t.Helper()
	l, ok := s.(userstore.Linker)
	if !ok {
		t.Skipf("%T does not implement userstore.Linker", s)
	}
	return l
}

// lookupEmail calls LookupEmail and requires it to succeed.
func lookupEmail(t *testing.T, l userstore.Linker, email string) []userstore.User {
	t.Helper()
	users, err := l.LookupEmail(t.Context(), email)
	require.NoError(t, err, "LookupEmail(%q)", email)
	return users
}

// localKey returns the key of a local (brownfield) account.
func localKey(subject string) userstore.Key {
	return userstore.Key{Issuer: userstore.LocalIssuer, Subject: subject}
}

func testLookupEmailFoldsASCIIOnly(t *testing.T, s Store) {
	l := linker(t, s)
	t0 := epoch()
	// Created in an order that is neither the subjects' nor the IDs'.
	emails := []struct {
		k     userstore.Key
		email string
	}{
		{userstore.Key{Issuer: "https://other.example/", Subject: "ada-other"}, "ada@example.com"},
		{key("ada-upper"), "Ada@Example.COM"},
		{localKey("ada-spaces"), " \tada@example.com\n "},
		{key("ada-inner-space"), "ada @example.com"},
		{key("ada-other-domain"), "ada@example.co"},
		{key("long-s"), "\u017Fam@example.com"}, // ſam
		{key("s"), "sam@example.com"},
		{key("kelvin"), "\u212Aate@example.com"}, // Kelvin sign, then ate
		{key("k"), "Kate@example.com"},
		{key("e-acute-upper"), "\u00c9MILE@example.com"}, // ÉMILE
		{key("e-acute-lower"), "\u00e9mile@example.com"}, // émile
		{key("e-combining"), "e\u0301mile@example.com"},
		{key("empty"), ""},
		{key("blank"), "   "},
	}
	users := make(map[string]userstore.User)
	for i, e := range emails {
		u := provision(t, s, e.k, userstore.Profile{Email: e.email}, t0.Add(time.Duration(i)*time.Minute)).User
		users[e.k.Subject] = u
	}
	subjects := func(found []userstore.User) []string {
		out := make([]string, 0, len(found))
		for _, u := range found {
			out = append(out, u.Key.Subject)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"ada@example.com", []string{"ada-other", "ada-upper", "ada-spaces"}},
		{"ADA@EXAMPLE.COM", []string{"ada-other", "ada-upper", "ada-spaces"}},
		{"\t aDa@eXample.com \r\n", []string{"ada-other", "ada-upper", "ada-spaces"}},
		{"ada @example.com", []string{"ada-inner-space"}},
		{"ada@example.co", []string{"ada-other-domain"}},
		{"ada@example.com.", nil},
		// ſ (U+017F) folds to s under Unicode rules; not here.
		{"sam@example.com", []string{"s"}},
		{"SAM@EXAMPLE.COM", []string{"s"}},
		{"\u017Fam@example.com", []string{"long-s"}},
		{"\u017FAM@EXAMPLE.COM", []string{"long-s"}},
		// The Kelvin sign (U+212A) folds to k under Unicode rules; not here.
		{"kate@example.com", []string{"k"}},
		{"KATE@example.com", []string{"k"}},
		{"\u212Aate@example.com", []string{"kelvin"}},
		{"\u212AATE@EXAMPLE.COM", []string{"kelvin"}},
		// Non-ASCII letters are not case folded, nor normalised.
		{"\u00e9mile@example.com", []string{"e-acute-lower"}},
		{"\u00e9MILE@example.com", []string{"e-acute-lower"}},
		{"\u00c9mile@example.com", []string{"e-acute-upper"}},
		{"e\u0301mile@example.com", []string{"e-combining"}},
		{"emile@example.com", nil},
	} {
		found := lookupEmail(t, l, tc.query)
		require.Equal(t, tc.want, nilIfEmpty(subjects(found)), "LookupEmail(%q)", tc.query)
		for _, u := range found {
			requireSameUser(t, users[u.Key.Subject], u)
		}
	}
}

// nilIfEmpty returns nil for an empty slice and ss otherwise.
func nilIfEmpty(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func testLookupEmailOrder(t *testing.T, s Store) {
	l := linker(t, s)
	t0 := epoch()
	const email = "shared@example.com"
	provision(t, s, key("c"), userstore.Profile{Email: email}, t0)
	provision(t, s, key("a"), userstore.Profile{Email: email}, t0.Add(2*time.Hour))
	provision(t, s, localKey("b"), userstore.Profile{Email: "Shared@Example.com"}, t0.Add(time.Hour))
	provision(t, s, key("other"), userstore.Profile{Email: "other@example.com"}, t0.Add(30*time.Minute))
	// Signing in again does not move a user.
	provision(t, s, key("c"), userstore.Profile{Email: email}, t0.Add(3*time.Hour))
	// Two users created at one instant are ordered by ID.
	d := provision(t, s, key("d"), userstore.Profile{Email: email}, t0.Add(4*time.Hour)).User
	e := provision(t, s, key("e"), userstore.Profile{Email: email}, t0.Add(4*time.Hour)).User

	requireCreationOrder(t, lookupEmail(t, l, email), d, e)
}

func testLookupEmailBlank(t *testing.T, s Store) {
	l := linker(t, s)
	provision(t, s, key("empty"), userstore.Profile{}, epoch())
	provision(t, s, key("blank"), userstore.Profile{Email: "  \t"}, epoch())
	provision(t, s, key("ada"), userstore.Profile{Email: "ada@example.com"}, epoch())
	for _, q := range []string{"", " ", "\t\n", "  \t"} {
		require.Empty(t, lookupEmail(t, l, q), "LookupEmail(%q) matched someone", q)
	}
}

func testLookupEmailFollowsWrites(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	id := provision(t, s, k, userstore.Profile{Email: "Ada@Example.com"}, t0).User.ID
	require.Equal(t, []string{id}, ids(lookupEmail(t, l, "ada@example.com")))

	// A sign-in that changes the email moves the user.
	provision(t, s, k, userstore.Profile{Email: "ada.king@example.com"}, t0.Add(time.Hour))
	require.Empty(t, lookupEmail(t, l, "ada@example.com"), "the old email still finds the user")
	require.Equal(t, []string{id}, ids(lookupEmail(t, l, "ADA.KING@example.com")))
	provision(t, s, k, userstore.Profile{}, t0.Add(2*time.Hour))
	require.Empty(t, lookupEmail(t, l, "ada.king@example.com"), "a cleared email still finds the user")

	// So does a SignIn.
	if ss, ok := s.(userstore.SignInStore); ok {
		_, err := ss.SignIn(ctx, issuer, "_follow", t0.Add(4*time.Hour), k, t0.Add(3*time.Hour),
			func(*userstore.User) (userstore.Profile, error) {
				return userstore.Profile{Email: "countess@example.com"}, nil
			})
		require.NoError(t, err)
		require.Equal(t, []string{id}, ids(lookupEmail(t, l, "Countess@example.com")), "after SignIn")
	}

	// And a Link.
	local := provision(t, s, localKey("acct-1"), userstore.Profile{Email: "legacy@example.com"}, t0).User
	_, err := l.Link(ctx, local.ID, key("grace"), userstore.Profile{Email: "grace@example.com"}, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Empty(t, lookupEmail(t, l, "legacy@example.com"), "after Link, the local email still finds the user")
	found := lookupEmail(t, l, "grace@example.com")
	require.Equal(t, []string{local.ID}, ids(found))
	require.Equal(t, key("grace"), found[0].Key)

	// A deleted user is found no more.
	require.NoError(t, s.Delete(ctx, key("grace")))
	require.Empty(t, lookupEmail(t, l, "grace@example.com"), "a deleted user is still found")
}

func testLinkLocalAccount(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	t0 := epoch()
	local := localKey("acct-42")
	provision(t, s, local, userstore.Profile{Email: "ada@example.com", DisplayName: "Ada (local)", Roles: []string{"legacy"}}, t0)
	require.NoError(t, s.GrantRole(ctx, local, "admin"))
	before := lookup(t, s, local)
	require.Equal(t, []string{"admin"}, before.LocalRoles)

	idp := key("ada-object-id")
	p := fullProfile()
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	res, err := l.Link(ctx, before.ID, idp, p, t1)
	require.NoError(t, err)
	require.False(t, res.Created(), "Link reported a new user")
	requireSameUser(t, before, *res.Before)

	want := before
	want.Key = idp
	want.Profile = p
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, res.User)
	requireSameUser(t, want, lookup(t, s, idp))
	requireTime(t, t0, res.User.CreatedAt, "CreatedAt")

	// The local key no longer finds the user; there is still one user.
	_, err = s.Lookup(ctx, local)
	require.ErrorIs(t, err, userstore.ErrNotFound, "the old local key still finds the user")
	users := list(t, s)
	require.Len(t, users, 1, "Link created a user")
	requireSameUser(t, want, users[0])

	// The next sign-in with the IdP key updates the linked user.
	next := provision(t, s, idp, p, t1.Add(time.Hour))
	require.False(t, next.Created())
	require.Equal(t, before.ID, next.User.ID)
	require.Equal(t, []string{"admin"}, next.User.LocalRoles)

	// It is no longer a local account, so it cannot be linked again.
	_, err = l.Link(ctx, before.ID, key("someone-else"), p, t1.Add(2*time.Hour))
	require.ErrorIs(t, err, userstore.ErrNotLinkable, "a linked account was linked again")
	require.Equal(t, idp, lookup(t, s, idp).Key)
}

func testLinkKeepsSuspended(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	local := localKey("acct-7")
	created := provision(t, s, local, userstore.Profile{Email: "grace@example.com"}, epoch()).User
	require.NoError(t, s.Suspend(ctx, local))

	idp := key("grace")
	res, err := l.Link(ctx, created.ID, idp, fullProfile(), epoch().Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, userstore.Suspended, res.Before.Status)
	require.Equal(t, userstore.Suspended, res.User.Status, "Link reactivated a suspended account")
	require.Equal(t, userstore.Suspended, lookup(t, s, idp).Status, "Link reactivated a suspended account")
	require.Equal(t, created.ID, lookup(t, s, idp).ID)
}

func testLinkRefusesNonLocal(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	// Issuers are compared exactly: these are not the local issuer.
	for i, k := range []userstore.Key{
		key("bob"),
		{Issuer: userstore.LocalIssuer + " ", Subject: "bob"},
		{Issuer: "URN:SAMLJIT:LOCAL", Subject: "bob"},
	} {
		u := provision(t, s, k, userstore.Profile{Email: "bob@example.com"}, epoch()).User
		target := key(fmt.Sprint("bob-new-", i))
		_, err := l.Link(ctx, u.ID, target, fullProfile(), epoch().Add(time.Hour))
		require.ErrorIs(t, err, userstore.ErrNotLinkable, "Link of a user of issuer %q", k.Issuer)
		requireSameUser(t, u, lookup(t, s, k))
		_, err = s.Lookup(ctx, target)
		require.ErrorIs(t, err, userstore.ErrNotFound, "a refused Link wrote the new key")
	}
}

func testLinkRefusesTakenKey(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	local := provision(t, s, localKey("acct-1"), userstore.Profile{Email: "ada@example.com"}, epoch()).User
	taken := key("ada")
	owner := provision(t, s, taken, userstore.Profile{Email: "ada@example.com"}, epoch().Add(time.Minute)).User

	_, err := l.Link(ctx, local.ID, taken, fullProfile(), epoch().Add(time.Hour))
	require.ErrorIs(t, err, userstore.ErrNotLinkable, "Link to a key another user has")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	requireSameUser(t, owner, lookup(t, s, taken))
	require.Len(t, list(t, s), 2)

	// Another local account's key is taken too.
	other := provision(t, s, localKey("acct-2"), userstore.Profile{}, epoch()).User
	_, err = l.Link(ctx, local.ID, localKey("acct-2"), fullProfile(), epoch().Add(time.Hour))
	require.ErrorIs(t, err, userstore.ErrNotLinkable, "Link to another local account's key")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	requireSameUser(t, other, lookup(t, s, localKey("acct-2")))
}

func testLinkUnknownID(t *testing.T, s Store) {
	l := linker(t, s)
	ctx := t.Context()
	local := provision(t, s, localKey("acct-1"), userstore.Profile{}, epoch()).User
	k := key("ada")
	for _, id := range []string{"no-such-id", "", local.ID + "0"} {
		_, err := l.Link(ctx, id, k, fullProfile(), epoch().Add(time.Hour))
		require.ErrorIs(t, err, userstore.ErrNotFound, "Link(%q)", id)
	}
	for _, bad := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		_, err := l.Link(ctx, local.ID, bad, fullProfile(), epoch().Add(time.Hour))
		require.ErrorIs(t, err, userstore.ErrInvalidKey, "Link to %s", bad)
	}
	_, err := s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound, "a refused Link created a user")
	users := list(t, s)
	require.Len(t, users, 1)
	requireSameUser(t, local, users[0])
}

// signInStore returns s as a [userstore.SignInStore], or skips the test
// when it is not one.
func signInStore(t *testing.T, s Store) userstore.SignInStore {
	t.Helper()
	ss, ok := s.(userstore.SignInStore)
	if !ok {
		t.Skipf("%T does not implement userstore.SignInStore", s)
	}
	return ss
}

// decider is a decide function for SignIn that records the before images
// it is given.
type decider struct {
	mu      sync.Mutex
	befores []*userstore.User
	p       userstore.Profile
	err     error
}

func (d *decider) decide(before *userstore.User) (userstore.Profile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if before != nil {
		b := *before
		b.Profile = before.Profile.Clone()
		before = &b
	}
	d.befores = append(d.befores, before)
	return d.p, d.err
}

// calls returns how often decide was called.
func (d *decider) calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.befores)
}

// last returns the before image of decide's latest call.
func (d *decider) last(t *testing.T) *userstore.User {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	require.NotEmpty(t, d.befores, "decide was not called")
	return d.befores[len(d.befores)-1]
}

// mustNotDecide is a decide function that fails the test when called.
func mustNotDecide(t *testing.T) func(*userstore.User) (userstore.Profile, error) {
	return func(*userstore.User) (userstore.Profile, error) {
		t.Error("decide was called")
		return userstore.Profile{}, errors.New("decide must not be called")
	}
}

func testSignInCreatesThenUpdates(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	p := fullProfile()
	d := &decider{p: p}
	first, err := ss.SignIn(ctx, issuer, "_a1", t0.Add(5*time.Minute), k, t0, d.decide)
	require.NoError(t, err)
	require.Nil(t, d.last(t), "decide was given a user on the first sign-in")
	require.True(t, first.Created())
	u := first.User
	require.NotEmpty(t, u.ID)
	require.Equal(t, k, u.Key)
	require.Equal(t, p, u.Profile)
	require.Equal(t, userstore.Active, u.Status)
	require.Nil(t, u.LocalRoles)
	requireTime(t, t0, u.CreatedAt, "CreatedAt")
	requireTime(t, t0, u.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, u.LastSignInAt, "LastSignInAt")
	requireSameUser(t, u, lookup(t, s, k))
	// The assertion is recorded, in the replay cache the store shares.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", t0.Add(5*time.Minute), t0), userstore.ErrReplayed)

	// The store copied the profile decide returned.
	p.Groups[0] = "changed"
	p.Roles[0] = "changed"
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept decide's slices")

	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	stored := lookup(t, s, k)
	changed := userstore.Profile{Email: "ada.king@example.com", DisplayName: "Ada King", Roles: []string{}}
	d = &decider{p: changed}
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	second, err := ss.SignIn(ctx, issuer, "_a2", t1.Add(5*time.Minute), k, t1, d.decide)
	require.NoError(t, err)
	require.NotNil(t, d.last(t), "decide was not given the stored user")
	requireSameUser(t, stored, *d.last(t))
	require.False(t, second.Created())
	requireSameUser(t, stored, *second.Before)
	want := stored
	want.Profile = changed
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, second.User)
	requireSameUser(t, want, lookup(t, s, k))
	require.Len(t, list(t, s), 1)
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", t1.Add(5*time.Minute), t1), userstore.ErrReplayed)
}

func testSignInReplayed(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// An assertion consumed through the ReplayCache is used up for SignIn.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_used", exp, t0))
	_, err := ss.SignIn(ctx, issuer, "_used", exp, k, t0, mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound, "a replayed SignIn created the user")

	_, err = ss.SignIn(ctx, issuer, "_a1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err)
	stored := lookup(t, s, k)
	_, err = ss.SignIn(ctx, issuer, "_a1", exp, k, t0.Add(time.Minute), mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	requireSameUser(t, stored, lookup(t, s, k))

	// Assertion IDs are scoped by issuer.
	_, err = ss.SignIn(ctx, "https://other.example/", "_a1", exp, k, t0.Add(time.Minute), (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "the same ID from another issuer was refused")

	// After the record expires the ID is accepted again.
	later := exp.Add(time.Second)
	res, err := ss.SignIn(ctx, issuer, "_a1", later.Add(5*time.Minute), k, later, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "an expired record still refused the assertion")
	requireTime(t, later, res.User.LastSignInAt, "LastSignInAt")
}

func testSignInSuspended(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)
	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	require.NoError(t, s.Suspend(ctx, k))
	stored := lookup(t, s, k)

	t1 := t0.Add(time.Hour)
	res, err := ss.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	require.NoError(t, err, "a suspended user's SignIn is an outcome, not an error")
	require.Equal(t, userstore.Suspended, res.User.Status)
	requireSameUser(t, stored, res.User)
	// The call did not create the user (Provisioned.Before is nil only
	// then), and changed nothing.
	require.NotNil(t, res.Before, "a suspended user's SignIn reported a new user")
	requireSameUser(t, stored, *res.Before)
	requireSameUser(t, stored, lookup(t, s, k))

	// The assertion is used up.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_s1", t1.Add(5*time.Minute), t1), userstore.ErrReplayed)
	_, err = ss.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)

	// Unsuspended by an administrator, the user signs in again.
	require.NoError(t, s.Unsuspend(ctx, k))
	d := &decider{p: userstore.Profile{DisplayName: "back"}}
	res, err = ss.SignIn(ctx, issuer, "_s2", t1.Add(5*time.Minute), k, t1, d.decide)
	require.NoError(t, err)
	require.Equal(t, userstore.Active, res.User.Status)
	require.Equal(t, "back", lookup(t, s, k).Profile.DisplayName)
}

// refusal is an error type a decide function returns.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "refused: " + r.reason }

func testSignInDecideError(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// On a first sign-in: no user, no record of the assertion.
	want := &refusal{"not in a required group"}
	d := &decider{err: want}
	_, err := ss.SignIn(ctx, issuer, "_d1", exp, k, t0, d.decide)
	require.Error(t, err)
	require.Equal(t, 1, d.calls())
	require.ErrorIs(t, err, want, "errors.Is does not find decide's error")
	var got *refusal
	require.ErrorAs(t, err, &got, "errors.As does not find decide's error")
	require.Same(t, want, got)
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound, "decide's error did not stop the user's creation")
	require.Empty(t, list(t, s))

	// The same assertion can be used again.
	res, err := ss.SignIn(ctx, issuer, "_d1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "decide's error left the assertion recorded")
	require.True(t, res.Created())
	stored := lookup(t, s, k)

	// On a returning sign-in: the user is unchanged and the assertion
	// not recorded. A wrapped sentinel is found too.
	sentinel := errors.New("tenant not allowed")
	d = &decider{p: userstore.Profile{DisplayName: "must not be written"}, err: fmt.Errorf("policy: %w", sentinel)}
	_, err = ss.SignIn(ctx, issuer, "_d2", exp, k, t0.Add(time.Minute), d.decide)
	require.ErrorIs(t, err, sentinel)
	requireSameUser(t, stored, *d.last(t))
	requireSameUser(t, stored, lookup(t, s, k))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_d2", exp, t0), "decide's error left the assertion recorded")
}

func testSignInInvalidKey(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	t0 := epoch()
	for i, k := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		id := fmt.Sprint("_i", i)
		_, err := ss.SignIn(ctx, issuer, id, t0.Add(time.Minute), k, t0, mustNotDecide(t))
		require.ErrorIs(t, err, userstore.ErrInvalidKey, "SignIn(%s)", k)
		require.NoError(t, s.ConsumeAssertion(ctx, issuer, id, t0.Add(time.Minute), t0), "a failed SignIn recorded the assertion")
	}
	require.Empty(t, list(t, s))
}

func testSignInConcurrentFirst(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	// lastBefore[i] is what call i's decide last saw: decide may run
	// more than once when a store retries.
	lastBefore := make([]*userstore.User, concurrency)
	called := make([]bool, concurrency)
	concurrently(concurrency, func(i int) {
		p := userstore.Profile{DisplayName: fmt.Sprint(i), Groups: []string{fmt.Sprint(i)}}
		results[i], errs[i] = ss.SignIn(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), k, epoch().Add(time.Duration(i)*time.Second),
			func(before *userstore.User) (userstore.Profile, error) {
				called[i] = true
				lastBefore[i] = nil
				if before != nil {
					b := *before
					lastBefore[i] = &b
				}
				return p, nil
			})
	})
	created := 0
	befores := make(map[string]int)
	for i, err := range errs {
		require.NoError(t, err, "call %d", i)
		res := results[i]
		require.True(t, called[i], "call %d did not call decide", i)
		require.Equal(t, results[0].User.ID, res.User.ID, "call %d got another user", i)
		require.Equal(t, fmt.Sprint(i), res.User.Profile.DisplayName, "call %d", i)
		if res.Created() {
			created++
			require.Nil(t, lastBefore[i], "call %d created the user but decide saw one", i)
			continue
		}
		require.NotNil(t, lastBefore[i], "call %d updated the user but decide saw none", i)
		require.Equal(t, res.Before.Profile, lastBefore[i].Profile, "call %d: decide saw another user than the one it replaced", i)
		require.NotEqual(t, res.User.Profile.DisplayName, res.Before.Profile.DisplayName, "call %d saw its own write as before", i)
		befores[res.Before.Profile.DisplayName]++
	}
	require.Equal(t, 1, created, "want exactly one call to create the user")
	for name, n := range befores {
		require.Equal(t, 1, n, "profile %s was overwritten %d times", name, n)
	}
	require.Len(t, befores, concurrency-1)
	require.NotContains(t, befores, lookup(t, s, k).Profile.DisplayName, "the stored profile was overwritten")
	users := list(t, s)
	require.Len(t, users, 1, "concurrent first sign-ins created more than one user")
	for i := range concurrency {
		require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), epoch()), userstore.ErrReplayed,
			"call %d did not record its assertion", i)
	}
}

func testSignInConcurrentSameAssertion(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		_, errs[i] = ss.SignIn(ctx, issuer, "_captured", epoch().Add(time.Hour), key(fmt.Sprint("user-", i)), epoch(),
			(&decider{p: fullProfile()}).decide)
	})
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, userstore.ErrReplayed, "call %d", i)
	}
	require.Equal(t, 1, ok, "want exactly one successful SignIn of one assertion")
	require.Len(t, list(t, s), 1, "replayed SignIns created users")
}
