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
	"sync"
	"testing"
	"time"

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

// testProvisionNeverChangesStatus stays in this file, not in store.go with
// the rest of the Store tests, because README.md and example/pages.go cite
// it here as the measure of "JIT never reverses a suspension".
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

// roles returns the local roles of the user with key.
func localRoles(t *testing.T, s Store, k userstore.Key) []string {
	t.Helper()
	return lookup(t, s, k).LocalRoles
}

// localKey returns the key of a local (brownfield) account.
func localKey(subject string) userstore.Key {
	return userstore.Key{Issuer: userstore.LocalIssuer, Subject: subject}
}
