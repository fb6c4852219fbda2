package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

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
