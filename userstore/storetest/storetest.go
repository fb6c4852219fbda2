// Package storetest is a conformance suite for user stores: every
// implementation of [userstore.Store], [userstore.ReplayCache] and
// [userstore.Admin] in this module runs it, and so should any other.
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
// empty Groups and Attributes stay apart, times come back with nanosecond
// precision in UTC, and concurrent first sign-ins create exactly one user.
package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// Store is what the suite tests: a store for the sign-in path that is also a
// replay cache and has the administrative operations. Both stores of this
// module, memstore and sqlitestore, satisfy it.
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
	emptyProfile := userstore.Profile{DisplayName: "empty", Groups: []string{}, Attributes: map[string][]string{}}
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

	got = lookup(t, s, key("empty")).Profile
	require.NotNil(t, got.Groups, "empty Groups came back nil")
	require.Empty(t, got.Groups)
	require.NotNil(t, got.Attributes, "empty Attributes came back nil")
	require.Empty(t, got.Attributes)

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
	require.NoError(t, s.Delete(t.Context(), k))
	_, err := s.Lookup(t.Context(), k)
	require.ErrorIs(t, err, userstore.ErrNotFound)
	require.Empty(t, list(t, s))

	later := epoch().Add(24 * time.Hour)
	res := provision(t, s, k, fullProfile(), later)
	require.True(t, res.Created(), "Provision after Delete did not create")
	require.NotEqual(t, first.ID, res.User.ID, "the new record reused the deleted one's ID")
	require.Equal(t, userstore.Active, res.User.Status, "the new record is not active")
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
	tied := []string{d.ID, e.ID}
	if e.ID < d.ID {
		tied = []string{e.ID, d.ID}
	}

	users := list(t, s)
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
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept the caller's slices or map")

	// Nor does changing what came out.
	mutate := func(p *userstore.Profile) {
		p.Groups[0] = "changed"
		p.Groups = append(p.Groups, "appended")
		p.Attributes["department"][0] = "changed"
		p.Attributes["new"] = []string{"changed"}
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
}
