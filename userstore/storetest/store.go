package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the Store suite: the contract of userstore.Store, which
// every store implements. What only another interface can show runs as a
// subtest that is skipped when the store does not implement it.

func testLookupUnknownKey(t *testing.T, s userstore.Store) {
	_, err := s.Lookup(t.Context(), key("nobody"))
	errorIs(t, err, userstore.ErrNotFound, "Lookup in an empty store")

	provision(t, s, key("somebody"), fullProfile(), epoch())
	_, err = s.Lookup(t.Context(), key("nobody"))
	errorIs(t, err, userstore.ErrNotFound, "Lookup of an unknown subject")
	_, err = s.Lookup(t.Context(), userstore.Key{Issuer: "https://other.example/", Subject: "somebody"})
	errorIs(t, err, userstore.ErrNotFound, "a subject of another issuer is another user")
}

func testInvalidKey(t *testing.T, s userstore.Store) {
	for _, k := range []userstore.Key{
		{Issuer: "", Subject: "subject"},
		{Issuer: issuer, Subject: ""},
		{},
	} {
		_, err := s.Lookup(t.Context(), k)
		errorIs(t, err, userstore.ErrInvalidKey, "Lookup(%s)", k)
		_, err = s.Provision(t.Context(), k, fullProfile(), epoch())
		errorIs(t, err, userstore.ErrInvalidKey, "Provision(%s)", k)
	}
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 0, len(list(t, a)), "a refused Provision wrote a user")
	})
}

func testProvisionCreatesThenUpdates(t *testing.T, s userstore.Store) {
	k := key("ada")
	t0 := epoch()
	first := provision(t, s, k, fullProfile(), t0)
	check(t, first.Created(), "first Provision did not create")
	check(t, first.Before == nil, "first Provision's Before is %+v, want nil", first.Before)
	u := first.User
	check(t, u.ID != "", "the new user has no ID")
	equal(t, k, u.Key, "Key")
	equal(t, fullProfile(), u.Profile, "Profile")
	equal(t, userstore.Active, u.Status, "Status")
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
	check(t, !second.Created(), "second Provision created again")
	check(t, second.Before != nil, "second Provision's Before is nil")
	requireSameUser(t, u, *second.Before)

	want := u
	want.Profile = changed
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, second.User)
	requireSameUser(t, want, lookup(t, s, k))

	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 1, len(users), "the user was created more than once")
		requireSameUser(t, want, users[0])
	})
}

func testProfileRoundTrip(t *testing.T, s userstore.Store) {
	k := key("ada")
	p := fullProfile()
	res := provision(t, s, k, p, epoch())
	equal(t, p, res.User.Profile, "Provision result")
	equal(t, p, lookup(t, s, k).Profile, "Lookup")
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 1, len(users), "number of users")
		equal(t, p, users[0].Profile, "List")
	})

	// An update replaces the whole profile, clearing fields left empty.
	res = provision(t, s, k, userstore.Profile{DisplayName: "Ada"}, epoch().Add(time.Minute))
	equal(t, p, res.Before.Profile, "Before")
	equal(t, userstore.Profile{DisplayName: "Ada"}, lookup(t, s, k).Profile, "Lookup after the update")
}

func testNilAndEmptyStayApart(t *testing.T, s userstore.Store) {
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
	check(t, got.Groups == nil, "nil Groups came back non-nil: %#v", got.Groups)
	check(t, got.Attributes == nil, "nil Attributes came back non-nil: %#v", got.Attributes)
	check(t, got.Roles == nil, "nil Roles came back non-nil: %#v", got.Roles)

	got = lookup(t, s, key("empty")).Profile
	equal(t, []string{}, got.Groups, "empty Groups")
	equal(t, map[string][]string{}, got.Attributes, "empty Attributes")
	equal(t, []string{}, got.Roles, "empty Roles")

	got = lookup(t, s, key("inner")).Profile
	equal(t, innerProfile, got, "Profile with nil and empty attribute values")
	check(t, got.Attributes["nil"] == nil, "a nil attribute value came back non-nil: %#v", got.Attributes["nil"])
	equal(t, []string{}, got.Attributes["empty"], "an empty attribute value")

	// Updates keep the distinction too, in both directions.
	res := provision(t, s, key("nil"), emptyProfile, epoch().Add(time.Second))
	equal(t, nilProfile, res.Before.Profile, "Before")
	check(t, res.Before.Profile.Groups == nil, "Before: nil Groups came back non-nil")
	equal(t, emptyProfile, lookup(t, s, key("nil")).Profile, "nil Groups updated to empty")
	check(t, lookup(t, s, key("nil")).Profile.Groups != nil, "nil Groups updated to empty came back nil")

	res = provision(t, s, key("empty"), nilProfile, epoch().Add(time.Second))
	check(t, res.Before.Profile.Groups != nil, "Before: empty Groups came back nil")
	check(t, res.Before.Profile.Attributes != nil, "Before: empty Attributes came back nil")
	got = lookup(t, s, key("empty")).Profile
	check(t, got.Groups == nil, "empty Groups updated to nil came back non-nil: %#v", got.Groups)
	check(t, got.Attributes == nil, "empty Attributes updated to nil came back non-nil: %#v", got.Attributes)
}

func testUnicodeValues(t *testing.T, s userstore.Store) {
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
	equal(t, p, res.User.Profile, "Provision result")
	u := lookup(t, s, k)
	equal(t, k, u.Key, "Key")
	equal(t, p, u.Profile, "Lookup")
}

func testKeysCompareExactly(t *testing.T, s userstore.Store) {
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
				check(t, res.Created(), "%s was taken for an existing user", k)
				prev, dup := seen[res.User.ID]
				check(t, !dup, "%s and %s share user %s", k, prev, res.User.ID)
				seen[res.User.ID] = k
			}
		}
	}
	for id, k := range seen {
		u := lookup(t, s, k)
		equal(t, id, u.ID, "Lookup(%s)", k)
		equal(t, k, u.Key, "Lookup(%s): Key", k)
		equal(t, k.String(), u.Profile.DisplayName, "Lookup(%s): DisplayName", k)
	}
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, len(seen), len(list(t, a)), "number of users")
	})
}

func testTimestampsRoundTrip(t *testing.T, s userstore.Store) {
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

// testProvisionNeverChangesStatus is in storetest.go.

func testConcurrentFirstSignIn(t *testing.T, s userstore.Store) {
	ctx := t.Context()
	k := key("ada")
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		p := userstore.Profile{DisplayName: fmt.Sprint(i), Groups: []string{fmt.Sprint(i)}}
		results[i], errs[i] = s.Provision(ctx, k, p, epoch().Add(time.Duration(i)*time.Second))
	})
	for i, err := range errs {
		noError(t, err, "call %d", i)
	}

	created := 0
	// befores counts how often each call's profile was seen as the one
	// before another call. Calls that are atomic per key form a chain:
	// every profile but the last is seen exactly once.
	befores := make(map[string]int)
	for i, res := range results {
		equal(t, results[0].User.ID, res.User.ID, "call %d got another user", i)
		equal(t, fmt.Sprint(i), res.User.Profile.DisplayName, "call %d", i)
		if res.Created() {
			created++
			continue
		}
		equal(t, res.User.ID, res.Before.ID, "call %d: Before.ID", i)
		check(t, res.User.Profile.DisplayName != res.Before.Profile.DisplayName, "call %d saw its own write as before", i)
		befores[res.Before.Profile.DisplayName]++
	}
	equal(t, 1, created, "want exactly one call to create the user")
	for name, n := range befores {
		equal(t, 1, n, "profile %s was overwritten %d times", name, n)
	}
	equal(t, concurrency-1, len(befores), "number of profiles overwritten")
	final := lookup(t, s, k)
	_, overwritten := befores[final.Profile.DisplayName]
	check(t, !overwritten, "the stored profile %s was overwritten", final.Profile.DisplayName)

	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 1, len(users), "concurrent first sign-ins created more than one user")
		equal(t, results[0].User.ID, users[0].ID, "the listed user")
	})
}

func testConcurrentDistinctKeys(t *testing.T, s userstore.Store) {
	ctx := t.Context()
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		p := fullProfile()
		p.Email = fmt.Sprintf("user-%d@example.com", i) // an email is one user's within an issuer
		results[i], errs[i] = s.Provision(ctx, key(fmt.Sprint("user-", i)), p, epoch())
	})
	seen := make(map[string]bool)
	for i, err := range errs {
		noError(t, err, "call %d", i)
		check(t, results[i].Created(), "call %d did not create its user", i)
		check(t, !seen[results[i].User.ID], "call %d reused an ID", i)
		seen[results[i].User.ID] = true
	}
	for i := range concurrency {
		equal(t, results[i].User.ID, lookup(t, s, key(fmt.Sprint("user-", i))).ID, "Lookup of call %d's user", i)
	}
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, concurrency, len(users), "number of users")
		for _, u := range users {
			check(t, seen[u.ID], "List returned unknown user %s", u.ID)
		}
	})
}

func testReturnedValuesAreCopies(t *testing.T, s userstore.Store) {
	ctx := t.Context()
	k := key("ada")
	in := fullProfile()
	res := provision(t, s, k, in, epoch())

	// Changing what was passed in does not change the store.
	in.Groups[0] = "changed"
	in.Attributes["department"][0] = "changed"
	in.Attributes["new"] = []string{"changed"}
	in.Roles[0] = "changed"
	equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept the caller's slices or map")

	// Nor does changing what came out.
	mutate := func(p *userstore.Profile) {
		p.Groups[0] = "changed"
		p.Groups = append(p.Groups, "appended")
		p.Attributes["department"][0] = "changed"
		p.Attributes["new"] = []string{"changed"}
		p.Roles[0] = "changed"
	}
	mutate(&res.User.Profile)
	equal(t, fullProfile(), lookup(t, s, k).Profile, "Provision returned the stored slices or map")

	u := lookup(t, s, k)
	mutate(&u.Profile)
	equal(t, fullProfile(), lookup(t, s, k).Profile, "Lookup returned the stored slices or map")

	res = provision(t, s, k, fullProfile(), epoch().Add(time.Minute))
	mutate(&res.Before.Profile)
	mutate(&res.User.Profile)
	equal(t, fullProfile(), lookup(t, s, k).Profile, "Provision returned the stored slices or map")

	checkWith(t, "Admin", s, func(t *testing.T, a userstore.Admin) {
		users, err := a.List(ctx)
		noError(t, err, "List")
		equal(t, 1, len(users), "number of users")
		mutate(&users[0].Profile)
		equal(t, fullProfile(), lookup(t, s, k).Profile, "List returned the stored slices or map")

		stale, err := a.NotSignedInSince(ctx, epoch().Add(time.Hour))
		noError(t, err, "NotSignedInSince")
		equal(t, 1, len(stale), "number of stale users")
		mutate(&stale[0].Profile)
		equal(t, fullProfile(), lookup(t, s, k).Profile, "NotSignedInSince returned the stored slices or map")

		// Local roles likewise.
		noError(t, a.GrantRole(ctx, k, "admin"), "GrantRole")
		u := lookup(t, s, k)
		u.LocalRoles[0] = "changed"
		equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "Lookup returned the stored local roles")
		users, err = a.List(ctx)
		noError(t, err, "List")
		users[0].LocalRoles[0] = "changed"
		equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "List returned the stored local roles")
		res := provision(t, s, k, fullProfile(), epoch().Add(2*time.Minute))
		res.User.LocalRoles[0] = "changed"
		res.Before.LocalRoles[0] = "changed"
		equal(t, []string{"admin"}, lookup(t, s, k).LocalRoles, "Provision returned the stored local roles")
	})

	checkWith(t, "LookupEmail", s, func(t *testing.T, l userstore.Linker) {
		// The local role the Admin check granted, if the store is an Admin.
		wantRoles := lookup(t, s, k).LocalRoles
		found, err := l.LookupEmail(ctx, fullProfile().Email)
		noError(t, err, "LookupEmail")
		equal(t, 1, len(found), "number of users found")
		equal(t, wantRoles, found[0].LocalRoles, "LookupEmail's LocalRoles")
		mutate(&found[0].Profile)
		if len(found[0].LocalRoles) > 0 {
			found[0].LocalRoles[0] = "changed"
		}
		u := lookup(t, s, k)
		equal(t, fullProfile(), u.Profile, "LookupEmail returned the stored slices or map")
		equal(t, wantRoles, u.LocalRoles, "LookupEmail returned the stored local roles")
	})
}

func testProfileRolesNilAndEmpty(t *testing.T, s userstore.Store) {
	nilRoles := userstore.Profile{DisplayName: "nil"}
	emptyRoles := userstore.Profile{DisplayName: "empty", Roles: []string{}}
	someRoles := userstore.Profile{DisplayName: "some", Roles: []string{"z", "a", "z", "管理者", "e\u0301", ""}}

	for _, tc := range []struct {
		subject string
		p       userstore.Profile
	}{{"nil", nilRoles}, {"empty", emptyRoles}, {"some", someRoles}} {
		res := provision(t, s, key(tc.subject), tc.p, epoch())
		equal(t, tc.p, res.User.Profile, "Provision result for %s roles", tc.subject)
		equal(t, tc.p, lookup(t, s, key(tc.subject)).Profile, "Lookup of %s roles", tc.subject)
	}
	got := lookup(t, s, key("nil")).Profile.Roles
	check(t, got == nil, "nil Roles came back non-nil: %#v", got)
	equal(t, []string{}, lookup(t, s, key("empty")).Profile.Roles, "empty Roles")
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 3, len(users), "number of users")
		for _, u := range users {
			switch u.Key.Subject {
			case "nil":
				check(t, u.Profile.Roles == nil, "List: nil Roles came back non-nil: %#v", u.Profile.Roles)
			case "empty":
				check(t, u.Profile.Roles != nil, "List: empty Roles came back nil")
			case "some":
				equal(t, someRoles.Roles, u.Profile.Roles, "List")
			}
		}
	})

	// Every sign-in writes the roles, in both directions.
	res := provision(t, s, key("nil"), emptyRoles, epoch().Add(time.Second))
	check(t, res.Before.Profile.Roles == nil, "Before: nil Roles came back non-nil: %#v", res.Before.Profile.Roles)
	check(t, res.User.Profile.Roles != nil, "nil Roles updated to empty came back nil in Provision's result")
	check(t, lookup(t, s, key("nil")).Profile.Roles != nil, "nil Roles updated to empty came back nil")
	res = provision(t, s, key("empty"), nilRoles, epoch().Add(time.Second))
	check(t, res.Before.Profile.Roles != nil, "Before: empty Roles came back nil")
	got = lookup(t, s, key("empty")).Profile.Roles
	check(t, got == nil, "empty Roles updated to nil came back non-nil: %#v", got)
	res = provision(t, s, key("some"), userstore.Profile{DisplayName: "some", Roles: []string{"b"}}, epoch().Add(time.Second))
	equal(t, someRoles.Roles, res.Before.Profile.Roles, "Before")
	equal(t, []string{"b"}, lookup(t, s, key("some")).Profile.Roles, "a role whose group disappeared is still there")
}

// testEmailOneUserPerIssuer: within one issuer an email, as NormalizeEmail
// folds it, belongs to one user; a write that would give it to a second is
// refused with ErrEmailInUse and writes nothing. Other issuers, local
// accounts and empty emails are not bound by it.
func testEmailOneUserPerIssuer(t *testing.T, s userstore.Store) {
	ctx := t.Context()
	t0 := epoch()
	ada := provision(t, s, key("ada"), userstore.Profile{Email: "ada@example.com"}, t0).User

	_, err := s.Provision(ctx, key("impostor"), userstore.Profile{Email: " ADA@Example.COM "}, t0)
	errorIs(t, err, userstore.ErrEmailInUse, "a second subject of the issuer with the same email")
	_, err = s.Lookup(ctx, key("impostor"))
	errorIs(t, err, userstore.ErrNotFound, "the refused user was created")

	grace := provision(t, s, key("grace"), userstore.Profile{Email: "grace@example.com"}, t0).User
	_, err = s.Provision(ctx, key("grace"), userstore.Profile{Email: "ada@example.com", DisplayName: "Grace"}, t0.Add(time.Hour))
	errorIs(t, err, userstore.ErrEmailInUse, "a returning user taking another's email")
	requireSameUser(t, grace, lookup(t, s, key("grace")))

	// The owner may write it again, in any case.
	provision(t, s, key("ada"), userstore.Profile{Email: "Ada@example.com"}, t0.Add(time.Hour))
	// Another issuer's user, local accounts and empty emails share freely.
	provision(t, s, userstore.Key{Issuer: "https://idp.other.example/", Subject: "ada"}, userstore.Profile{Email: "ada@example.com"}, t0)
	provision(t, s, localKey("acct-1"), userstore.Profile{Email: "ada@example.com"}, t0)
	provision(t, s, localKey("acct-2"), userstore.Profile{Email: "ada@example.com"}, t0)
	provision(t, s, key("blank-1"), userstore.Profile{}, t0)
	provision(t, s, key("blank-2"), userstore.Profile{Email: "  "}, t0)
	// Once the owner gives the email up, it is free.
	provision(t, s, key("ada"), userstore.Profile{Email: "ada.king@example.com"}, t0.Add(2*time.Hour))
	provision(t, s, key("grace"), userstore.Profile{Email: "ada@example.com"}, t0.Add(2*time.Hour))
	equal(t, ada.ID, lookup(t, s, key("ada")).ID, "ID")
}

// testConcurrentSameEmail: subjects of one issuer provisioned at once with
// one email: exactly one gets it, every other call is refused with
// ErrEmailInUse, and only that one user exists.
func testConcurrentSameEmail(t *testing.T, s userstore.Store) {
	ctx := t.Context()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		_, errs[i] = s.Provision(ctx, key(fmt.Sprint("twin-", i)), userstore.Profile{Email: "twin@example.com"}, epoch())
	})
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			continue
		}
		errorIs(t, err, userstore.ErrEmailInUse, "call %d", i)
	}
	equal(t, 1, won, "calls that got the email")
	found := 0
	for i := range concurrency {
		if _, err := s.Lookup(ctx, key(fmt.Sprint("twin-", i))); err == nil {
			found++
		}
	}
	equal(t, 1, found, "users created")
}
