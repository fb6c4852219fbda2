// Package storetest is a conformance suite for user stores. A store for the
// sign-in path implements [userstore.Store], two methods, and may also
// implement [userstore.ReplayCache], [userstore.Admin], [userstore.Linker],
// [userstore.SignInStore] and [userstore.Sessions]. [Run] checks the Store
// contract, and the contract of each optional interface the store
// implements. The stores of this module, memstore, sqlitestore and
// pgstore, implement them all and pass; a store of your own should pass
// too.
//
// Call [Run] from a test of the store's package, with a function that
// returns a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) userstore.Store {
//			return mystore.New()
//		})
//	}
//
// Run's subtests form one suite per interface: Store, ReplayCache, Admin,
// Linker, SignInStore (for a store that is also its own ReplayCache, as
// the jit middleware requires before it calls SignIn), SignInWithStore,
// Sessions,
// Directory and GroupDirectory. It
// runs the Store suite always and each other suite only when the store
// implements its interface, and logs which suites it ran and which it
// skipped.
//
// Some checks can see what they check only through another interface:
// that a refused Provision wrote no user shows in [userstore.Admin.List],
// for instance. Such a check runs as a subtest named after the method it
// calls (TestConformance/Store/InvalidKey/List, say), skipped, saying why,
// when the store does not implement that method's interface.
//
// The package depends on the standard library and userstore only.
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
//
// For a [userstore.SignInWithStore] it checks that a first sign-in's
// Decide is given the users holding the email as LookupEmail finds them,
// and a returning one's none; that the session is recorded with the
// user's write, never for a suspended user; that every failure (Decide's
// refusal, an email in use, a session invalid, of another key or with a
// taken ID) writes nothing, neither user, assertion record nor session;
// and that concurrent first sign-ins with sessions create one user and
// keep every session.
//
// For [userstore.Sessions] it checks that LookupSession returns the
// session with its user as stored now, and refuses a session that is
// unknown, ended or expired (at its ExpiresAt exactly, too); that
// CreateSession refuses a session for no user or a suspended one, an
// invalid one and a taken ID; that EndSessions ends every live session of
// a key, or only those of one SessionIndex, and counts them; that Suspend
// and Delete end a user's sessions for good (unsuspending, or creating the
// user again, revives none); and that sessions created, read and ended at
// once, or created while the user is being suspended, keep these rules.
// For a [userstore.LazySessions] it checks, at every lookup the Sessions
// suite makes, that LookupSessionLazy finds the same session, user and
// errors as LookupSession, the user's lists (nil, empty, 150 groups,
// escaped and non-ASCII text) decoding to the same values.
//
// For a [userstore.Directory] and a [userstore.GroupDirectory] (what a
// SCIM endpoint writes through) it checks that every call is scoped to one
// issuer and refuses the local issuer, that user names and emails stay
// unique within an issuer, that a user a sign-in created is found by its
// subject and adopted rather than duplicated, that a directory's change is
// not a sign-in and never touches status or local roles, and that a change
// of a group's members or name rewrites the members' groups and roles at
// once, and nothing when it is refused.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Run runs the conformance suite as subtests of t. newStore must return a
// new, empty store each time it is called, always of the same type, and
// should register any clean-up with t.Cleanup. Run calls it once with t
// itself, to learn which optional interfaces the store implements, then
// once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) userstore.Store) {
	t.Helper()
	first := newStore(t)
	if first == nil {
		t.Fatal("storetest: newStore returned nil")
	}
	// notImplemented says why a suite does not run, or "" when it does.
	notImplemented := func(iface string, ok bool) string {
		if ok {
			return ""
		}
		return fmt.Sprintf("%T does not implement userstore.%s", first, iface)
	}
	_, isReplay := first.(userstore.ReplayCache)
	_, isAdmin := first.(userstore.Admin)
	_, isLinker := first.(userstore.Linker)
	_, isSignIn := first.(userstore.SignInStore)
	_, isSignInWith := first.(userstore.SignInWithStore)
	_, isSessions := first.(userstore.Sessions)
	_, isDirectory := first.(userstore.Directory)
	_, isGroups := first.(userstore.GroupDirectory)
	signInSkip := notImplemented("SignInStore", isSignIn)
	if isSignIn && !isReplay {
		signInSkip = fmt.Sprintf("%T implements userstore.SignInStore but not userstore.ReplayCache; "+
			"a SignInStore is its own replay cache, and the jit middleware calls SignIn only then", first)
	}
	signInWithSkip := notImplemented("SignInWithStore", isSignInWith)
	if isSignInWith && !isReplay {
		signInWithSkip = fmt.Sprintf("%T implements userstore.SignInWithStore but not userstore.ReplayCache", first)
	}
	suites := []struct {
		name string
		skip string
		run  func(t *testing.T)
	}{
		{"Store", "", func(t *testing.T) { runSuite(t, newStore, storeTests) }},
		{"ReplayCache", notImplemented("ReplayCache", isReplay), func(t *testing.T) { runSuite(t, newStore, replayTests) }},
		{"Admin", notImplemented("Admin", isAdmin), func(t *testing.T) { runSuite(t, newStore, adminTests) }},
		{"Linker", notImplemented("Linker", isLinker), func(t *testing.T) { runSuite(t, newStore, linkerTests) }},
		{"SignInStore", signInSkip, func(t *testing.T) { runSuite(t, newStore, signInTests) }},
		{"SignInWithStore", signInWithSkip, func(t *testing.T) { runSuite(t, newStore, signInWithTests) }},
		{"Sessions", notImplemented("Sessions", isSessions), func(t *testing.T) { runSuite(t, newStore, sessionsTests) }},
		{"Directory", notImplemented("Directory", isDirectory), func(t *testing.T) { runSuite(t, newStore, directoryTests) }},
		{"GroupDirectory", notImplemented("GroupDirectory", isGroups), func(t *testing.T) { runSuite(t, newStore, groupTests) }},
	}
	var running []string
	for _, suite := range suites {
		if suite.skip == "" {
			running = append(running, suite.name)
		}
	}
	t.Logf("storetest: %T: running suites %s", first, strings.Join(running, ", "))
	for _, suite := range suites {
		if suite.skip != "" {
			t.Logf("storetest: skipping suite %s: %s", suite.name, suite.skip)
		}
	}
	for _, suite := range suites {
		t.Run(suite.name, func(t *testing.T) {
			if suite.skip != "" {
				t.Skip(suite.skip)
			}
			suite.run(t)
		})
	}
}

// adminStore, linkerStore, signInStore and sessionsStore are what the
// Admin, Linker, SignInStore and Sessions suites test.
type (
	adminStore interface {
		userstore.Store
		userstore.Admin
	}
	linkerStore interface {
		userstore.Store
		userstore.Linker
	}
	signInStore interface {
		userstore.Store
		userstore.ReplayCache
		userstore.SignInStore
	}
	sessionsStore interface {
		userstore.Store
		userstore.Sessions
	}
	directoryStore interface {
		userstore.Store
		userstore.Directory
	}
	groupStore interface {
		userstore.Store
		userstore.GroupDirectory
	}
)

// test is one subtest of a suite: fn is given a new store as an S.
type test[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

var storeTests = []test[userstore.Store]{
	{"LookupUnknownKey", testLookupUnknownKey},
	{"InvalidKey", testInvalidKey},
	{"ProvisionCreatesThenUpdates", testProvisionCreatesThenUpdates},
	{"ProfileRoundTrip", testProfileRoundTrip},
	{"NilAndEmptyStayApart", testNilAndEmptyStayApart},
	{"UnicodeValues", testUnicodeValues},
	{"KeysCompareExactly", testKeysCompareExactly},
	{"TimestampsRoundTrip", testTimestampsRoundTrip},
	{"ProvisionNeverChangesStatus", testProvisionNeverChangesStatus},
	{"ConcurrentFirstSignIn", testConcurrentFirstSignIn},
	{"ConcurrentDistinctKeys", testConcurrentDistinctKeys},
	{"ReturnedValuesAreCopies", testReturnedValuesAreCopies},
	{"ProfileRolesNilAndEmpty", testProfileRolesNilAndEmpty},
	{"EmailOneUserPerIssuer", testEmailOneUserPerIssuer},
	{"ConcurrentSameEmail", testConcurrentSameEmail},
}

var replayTests = []test[userstore.ReplayCache]{
	{"ReplayConsumeTwice", testReplayConsumeTwice},
	{"ReplayAfterExpiry", testReplayAfterExpiry},
	{"ReplayIssuersIndependent", testReplayIssuersIndependent},
	{"ReplayRelease", testReplayRelease},
	{"ReplayConcurrentConsume", testReplayConcurrentConsume},
}

var adminTests = []test[adminStore]{
	{"DeleteThenProvisionCreatesAnew", testDeleteThenProvisionCreatesAnew},
	{"ListOrder", testListOrder},
	{"NotSignedInSince", testNotSignedInSince},
	{"AdminUnknownKey", testAdminUnknownKey},
	{"ProvisionNeverChangesLocalRoles", testProvisionNeverChangesLocalRoles},
	{"GrantRevokeRole", testGrantRevokeRole},
	{"RoleAdminErrors", testRoleAdminErrors},
	{"ConcurrentGrantAndProvision", testConcurrentGrantAndProvision},
	{"EffectiveRoles", testEffectiveRoles},
}

var linkerTests = []test[linkerStore]{
	{"LookupEmailFoldsASCIIOnly", testLookupEmailFoldsASCIIOnly},
	{"LookupEmailOrder", testLookupEmailOrder},
	{"LookupEmailBlank", testLookupEmailBlank},
	{"LookupEmailFollowsWrites", testLookupEmailFollowsWrites},
	{"LinkLocalAccount", testLinkLocalAccount},
	{"LinkKeepsSuspended", testLinkKeepsSuspended},
	{"LinkRefusesNonLocal", testLinkRefusesNonLocal},
	{"LinkRefusesTakenKey", testLinkRefusesTakenKey},
	{"LinkUnknownID", testLinkUnknownID},
	{"LinkRefusesTakenEmail", testLinkRefusesTakenEmail},
}

var signInTests = []test[signInStore]{
	{"SignInCreatesThenUpdates", testSignInCreatesThenUpdates},
	{"SignInReplayed", testSignInReplayed},
	{"SignInSuspended", testSignInSuspended},
	{"SignInDecideError", testSignInDecideError},
	{"SignInInvalidKey", testSignInInvalidKey},
	{"SignInConcurrentFirst", testSignInConcurrentFirst},
	{"SignInConcurrentSameAssertion", testSignInConcurrentSameAssertion},
	{"SignInRefusesTakenEmail", testSignInRefusesTakenEmail},
}

var sessionsTests = []test[sessionsStore]{
	{"SessionLookupReturnsUser", testSessionLookupReturnsUser},
	{"SessionEndedOrExpiredNotFound", testSessionEndedOrExpiredNotFound},
	{"CreateSessionRefusals", testCreateSessionRefusals},
	{"EndSessionsByKeyAndIndex", testEndSessionsByKeyAndIndex},
	{"EndSessionsByNameID", testEndSessionsByNameID},
	{"SuspendEndsSessionsForGood", testSuspendEndsSessionsForGood},
	{"DeleteEndsSessions", testDeleteEndsSessions},
	{"ConcurrentSessions", testConcurrentSessions},
	{"SessionLazyUserMatches", testSessionLazyUserMatches},
}

var directoryTests = []test[directoryStore]{
	{"DirectoryFindUser", testDirectoryFindUser},
	{"DirectoryRefusesLocalAccounts", testDirectoryRefusesLocalAccounts},
	{"DirectoryListUsersPages", testDirectoryListUsersPages},
	{"DirectoryPutUserCreatesThenChanges", testDirectoryPutUserCreatesThenChanges},
	{"DirectoryEmailChangeKeepsUserName", testDirectoryEmailChangeKeepsUserName},
	{"DirectoryAdoptsSignedInUser", testDirectoryAdoptsSignedInUser},
	{"DirectoryUniqueness", testDirectoryUniqueness},
	{"DirectoryConcurrentPut", testDirectoryConcurrentPut},
	{"DirectoryCountsUsers", testDirectoryCountsUsers},
	{"DirectoryPagesByKey", testDirectoryPagesByKey},
}

var groupTests = []test[groupStore]{
	{"GroupMembershipDerivesRoles", testGroupMembershipDerivesRoles},
	{"GroupScopedToIssuer", testGroupScopedToIssuer},
	{"GroupFindAndList", testGroupFindAndList},
	{"GroupCounts", testGroupCounts},
	{"GroupPagesByKey", testGroupPagesByKey},
}

// runSuite runs each of tests as a subtest of t, on a new store.
func runSuite[S any](t *testing.T, newStore func(t *testing.T) userstore.Store, tests []test[S]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore(t)
			if st == nil {
				t.Fatal("newStore returned nil")
			}
			s, ok := any(st).(S)
			if !ok {
				t.Fatalf("newStore returned a %T, which is not a %v as the first store it returned was", st, reflect.TypeFor[S]())
			}
			tt.fn(t, s)
		})
	}
}

// skipUnless returns s as an I, or skips the test when s is not one.
func skipUnless[I any](t *testing.T, s any) I {
	t.Helper()
	i, ok := s.(I)
	if !ok {
		t.Skipf("%T does not implement %v, which this test needs", s, reflect.TypeFor[I]())
	}
	return i
}

// checkWith runs fn, checks that need s as an I, as the subtest name of t.
// The subtest is skipped, saying why, when s is not an I.
func checkWith[I any](t *testing.T, name string, s any, fn func(t *testing.T, i I)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		fn(t, skipUnless[I](t, s))
	})
}

// noError stops the test when err is not nil.
func noError(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", fmt.Sprintf(format, args...), err)
	}
}

// errorIs stops the test unless err wraps target.
func errorIs(t *testing.T, err, target error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %q", fmt.Sprintf(format, args...), err, target)
	}
}

// equal stops the test unless got is deeply equal to want. As with
// reflect.DeepEqual, a nil slice or map is not equal to an empty one.
func equal[T any](t *testing.T, want, got T, format string, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: got %s, want %s", fmt.Sprintf(format, args...), show(got), show(want))
	}
}

// show formats v for a failure message: with its String method if it has
// one (a Status reads "suspended", not 1), else in Go syntax, which tells
// a nil slice or map from an empty one.
func show(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%#v", v)
}

// check stops the test, saying what failed, when ok is false.
func check(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

// concurrency is how many goroutines the concurrency tests start at once.
const concurrency = 64

const issuer = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/"

// key returns a key of the test issuer.
func key(subject string) userstore.Key {
	return userstore.Key{Issuer: issuer, Subject: subject}
}

// localKey returns the key of a local (brownfield) account.
func localKey(subject string) userstore.Key {
	return userstore.Key{Issuer: userstore.LocalIssuer, Subject: subject}
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
func provision(t *testing.T, s userstore.Store, k userstore.Key, p userstore.Profile, now time.Time) userstore.Provisioned {
	t.Helper()
	res, err := s.Provision(t.Context(), k, p, now)
	noError(t, err, "Provision(%s)", k)
	return res
}

// lookup calls s.Lookup and requires it to succeed.
func lookup(t *testing.T, s userstore.Store, k userstore.Key) userstore.User {
	t.Helper()
	u, err := s.Lookup(t.Context(), k)
	noError(t, err, "Lookup(%s)", k)
	return u
}

// list calls a.List and requires it to succeed.
func list(t *testing.T, a userstore.Admin) []userstore.User {
	t.Helper()
	users, err := a.List(t.Context())
	noError(t, err, "List")
	return users
}

// localRoles returns the local roles of the user with key k.
func localRoles(t *testing.T, s userstore.Store, k userstore.Key) []string {
	t.Helper()
	return lookup(t, s, k).LocalRoles
}

// requireTime requires got to be the same instant as want and in UTC.
func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	check(t, want.Equal(got), "%s = %s, want %s", field, got, want)
	check(t, got.Location() == time.UTC, "%s is in %s, want UTC", field, got.Location())
}

// requireSameUser requires got to be want, comparing times as instants and
// requiring them in UTC.
func requireSameUser(t *testing.T, want, got userstore.User) {
	t.Helper()
	equal(t, want.ID, got.ID, "ID")
	equal(t, want.Key, got.Key, "Key")
	equal(t, want.Profile, got.Profile, "Profile")
	equal(t, want.Status, got.Status, "Status")
	equal(t, want.LocalRoles, got.LocalRoles, "LocalRoles")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
	requireTime(t, want.LastSignInAt, got.LastSignInAt, "LastSignInAt")
}

// requireCreationOrder checks the users c, b, a (created in that order)
// then d and e (created at one instant, so ordered by ID).
func requireCreationOrder(t *testing.T, users []userstore.User, d, e userstore.User) {
	t.Helper()
	tied := []string{d.ID, e.ID}
	if e.ID < d.ID {
		tied = []string{e.ID, d.ID}
	}
	equal(t, 5, len(users), "number of users")
	var subjects []string
	for _, u := range users {
		subjects = append(subjects, u.Key.Subject)
	}
	equal(t, []string{"c", "b", "a"}, subjects[:3], "the users created one after another")
	equal(t, tied, ids(users[3:]), "the users created at one instant")
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

// testProvisionNeverChangesStatus is in this file, not in store.go with
// the rest of the Store suite, because README.md and example/pages.go cite
// it here as the measure of "JIT never reverses a suspension".
func testProvisionNeverChangesStatus(t *testing.T, s userstore.Store) {
	a := skipUnless[userstore.Admin](t, s)
	k := key("ada")
	created := provision(t, s, k, fullProfile(), epoch()).User
	noError(t, a.Suspend(t.Context(), k), "Suspend")
	equal(t, userstore.Suspended, lookup(t, s, k).Status, "Status after Suspend")

	changed := userstore.Profile{DisplayName: "Ada King", Groups: []string{"admins"}}
	res := provision(t, s, k, changed, epoch().Add(time.Hour))
	check(t, !res.Created(), "Provision of a suspended user created a user")
	equal(t, userstore.Suspended, res.Before.Status, "Before.Status")
	equal(t, userstore.Suspended, res.User.Status, "Provision reactivated a suspended user")
	equal(t, created.ID, res.User.ID, "ID")
	u := lookup(t, s, k)
	equal(t, userstore.Suspended, u.Status, "Provision reactivated a suspended user")
	equal(t, changed, u.Profile, "Provision of a suspended user did not write the profile")

	noError(t, a.Unsuspend(t.Context(), k), "Unsuspend")
	equal(t, userstore.Active, lookup(t, s, k).Status, "Status after Unsuspend")
	res = provision(t, s, k, changed, epoch().Add(2*time.Hour))
	equal(t, userstore.Active, res.User.Status, "Status after Provision of an unsuspended user")
}
