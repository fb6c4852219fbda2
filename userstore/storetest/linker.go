package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the Linker suite: the contract of userstore.Linker, for
// a store that implements it. What only another interface can show runs as
// a subtest that is skipped when the store does not implement it.

// lookupEmail calls LookupEmail and requires it to succeed.
func lookupEmail(t *testing.T, l userstore.Linker, email string) []userstore.User {
	t.Helper()
	users, err := l.LookupEmail(t.Context(), email)
	noError(t, err, "LookupEmail(%q)", email)
	return users
}

func testLookupEmailFoldsASCIIOnly(t *testing.T, s linkerStore) {
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
		found := lookupEmail(t, s, tc.query)
		equal(t, tc.want, nilIfEmpty(subjects(found)), "LookupEmail(%q)", tc.query)
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

func testLookupEmailOrder(t *testing.T, s linkerStore) {
	t0 := epoch()
	const email = "shared@example.com"
	// An email is one user's within an issuer: the users sharing it here
	// come from several.
	at := func(subject string) userstore.Key {
		return userstore.Key{Issuer: "https://idp-" + subject + ".example/", Subject: subject}
	}
	provision(t, s, at("c"), userstore.Profile{Email: email}, t0)
	provision(t, s, at("a"), userstore.Profile{Email: email}, t0.Add(2*time.Hour))
	provision(t, s, localKey("b"), userstore.Profile{Email: "Shared@Example.com"}, t0.Add(time.Hour))
	provision(t, s, key("other"), userstore.Profile{Email: "other@example.com"}, t0.Add(30*time.Minute))
	// Signing in again does not move a user.
	provision(t, s, at("c"), userstore.Profile{Email: email}, t0.Add(3*time.Hour))
	// Two users created at one instant are ordered by ID.
	d := provision(t, s, at("d"), userstore.Profile{Email: email}, t0.Add(4*time.Hour)).User
	e := provision(t, s, at("e"), userstore.Profile{Email: email}, t0.Add(4*time.Hour)).User

	requireCreationOrder(t, lookupEmail(t, s, email), d, e)
}

func testLookupEmailBlank(t *testing.T, s linkerStore) {
	provision(t, s, key("empty"), userstore.Profile{}, epoch())
	provision(t, s, key("blank"), userstore.Profile{Email: "  \t"}, epoch())
	provision(t, s, key("ada"), userstore.Profile{Email: "ada@example.com"}, epoch())
	for _, q := range []string{"", " ", "\t\n", "  \t"} {
		equal(t, 0, len(lookupEmail(t, s, q)), "LookupEmail(%q) matched someone", q)
	}
}

func testLookupEmailFollowsWrites(t *testing.T, s linkerStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	id := provision(t, s, k, userstore.Profile{Email: "Ada@Example.com"}, t0).User.ID
	equal(t, []string{id}, ids(lookupEmail(t, s, "ada@example.com")), "LookupEmail after the first sign-in")

	// A sign-in that changes the email moves the user.
	provision(t, s, k, userstore.Profile{Email: "ada.king@example.com"}, t0.Add(time.Hour))
	equal(t, 0, len(lookupEmail(t, s, "ada@example.com")), "the old email still finds the user")
	equal(t, []string{id}, ids(lookupEmail(t, s, "ADA.KING@example.com")), "LookupEmail of the new email")
	provision(t, s, k, userstore.Profile{}, t0.Add(2*time.Hour))
	equal(t, 0, len(lookupEmail(t, s, "ada.king@example.com")), "a cleared email still finds the user")

	// So does a SignIn.
	checkWith(t, "SignIn", s, func(t *testing.T, ss userstore.SignInStore) {
		_, err := ss.SignIn(ctx, issuer, "_follow", t0.Add(4*time.Hour), k, t0.Add(3*time.Hour),
			func(*userstore.User) (userstore.Profile, error) {
				return userstore.Profile{Email: "countess@example.com"}, nil
			})
		noError(t, err, "SignIn")
		equal(t, []string{id}, ids(lookupEmail(t, s, "Countess@example.com")), "after SignIn")
	})

	// And a Link.
	local := provision(t, s, localKey("acct-1"), userstore.Profile{Email: "legacy@example.com"}, t0).User
	_, err := s.Link(ctx, local.ID, key("grace"), userstore.Profile{Email: "grace@example.com"}, t0.Add(time.Hour))
	noError(t, err, "Link")
	equal(t, 0, len(lookupEmail(t, s, "legacy@example.com")), "after Link, the local email still finds the user")
	found := lookupEmail(t, s, "grace@example.com")
	equal(t, []string{local.ID}, ids(found), "LookupEmail of the linked email")
	equal(t, key("grace"), found[0].Key, "Key of the linked user")

	// A deleted user is found no more.
	checkWith(t, "Delete", s, func(t *testing.T, a userstore.Admin) {
		noError(t, a.Delete(ctx, key("grace")), "Delete")
		equal(t, 0, len(lookupEmail(t, s, "grace@example.com")), "a deleted user is still found")
	})
}

func testLinkLocalAccount(t *testing.T, s linkerStore) {
	ctx := t.Context()
	t0 := epoch()
	local := localKey("acct-42")
	provision(t, s, local, userstore.Profile{Email: "ada@example.com", DisplayName: "Ada (local)", Roles: []string{"legacy"}}, t0)
	// Link must keep the account's local roles; with an Admin, it has one.
	checkWith(t, "GrantRole", s, func(t *testing.T, a userstore.Admin) {
		noError(t, a.GrantRole(ctx, local, "admin"), "GrantRole")
		equal(t, []string{"admin"}, localRoles(t, s, local), "LocalRoles")
	})
	before := lookup(t, s, local)

	idp := key("ada-object-id")
	p := fullProfile()
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	res, err := s.Link(ctx, before.ID, idp, p, t1)
	noError(t, err, "Link")
	check(t, !res.Created(), "Link reported a new user")
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
	errorIs(t, err, userstore.ErrNotFound, "the old local key still finds the user")
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 1, len(users), "Link created a user")
		requireSameUser(t, want, users[0])
	})

	// The next sign-in with the IdP key updates the linked user.
	next := provision(t, s, idp, p, t1.Add(time.Hour))
	check(t, !next.Created(), "the sign-in after Link created a user")
	equal(t, before.ID, next.User.ID, "ID after the next sign-in")
	equal(t, before.LocalRoles, next.User.LocalRoles, "LocalRoles after the next sign-in")

	// It is no longer a local account, so it cannot be linked again.
	_, err = s.Link(ctx, before.ID, key("someone-else"), p, t1.Add(2*time.Hour))
	errorIs(t, err, userstore.ErrNotLinkable, "a linked account was linked again")
	equal(t, idp, lookup(t, s, idp).Key, "Key after the refused Link")
}

func testLinkKeepsSuspended(t *testing.T, s linkerStore) {
	a := skipUnless[userstore.Admin](t, s)
	ctx := t.Context()
	local := localKey("acct-7")
	created := provision(t, s, local, userstore.Profile{Email: "grace@example.com"}, epoch()).User
	noError(t, a.Suspend(ctx, local), "Suspend")

	idp := key("grace")
	res, err := s.Link(ctx, created.ID, idp, fullProfile(), epoch().Add(time.Hour))
	noError(t, err, "Link")
	equal(t, userstore.Suspended, res.Before.Status, "Before.Status")
	equal(t, userstore.Suspended, res.User.Status, "Link reactivated a suspended account")
	equal(t, userstore.Suspended, lookup(t, s, idp).Status, "Link reactivated a suspended account")
	equal(t, created.ID, lookup(t, s, idp).ID, "ID")
}

func testLinkRefusesNonLocal(t *testing.T, s linkerStore) {
	ctx := t.Context()
	// Issuers are compared exactly: these are not the local issuer.
	for i, k := range []userstore.Key{
		key("bob"),
		{Issuer: userstore.LocalIssuer + " ", Subject: "bob"},
		{Issuer: "URN:SAMLJIT:LOCAL", Subject: "bob"},
	} {
		u := provision(t, s, k, userstore.Profile{Email: "bob@example.com"}, epoch()).User
		target := key(fmt.Sprint("bob-new-", i))
		_, err := s.Link(ctx, u.ID, target, fullProfile(), epoch().Add(time.Hour))
		errorIs(t, err, userstore.ErrNotLinkable, "Link of a user of issuer %q", k.Issuer)
		requireSameUser(t, u, lookup(t, s, k))
		_, err = s.Lookup(ctx, target)
		errorIs(t, err, userstore.ErrNotFound, "a refused Link wrote the new key")
	}
}

func testLinkRefusesTakenKey(t *testing.T, s linkerStore) {
	ctx := t.Context()
	local := provision(t, s, localKey("acct-1"), userstore.Profile{Email: "ada@example.com"}, epoch()).User
	taken := key("ada")
	owner := provision(t, s, taken, userstore.Profile{Email: "ada@example.com"}, epoch().Add(time.Minute)).User

	_, err := s.Link(ctx, local.ID, taken, fullProfile(), epoch().Add(time.Hour))
	errorIs(t, err, userstore.ErrNotLinkable, "Link to a key another user has")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	requireSameUser(t, owner, lookup(t, s, taken))
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 2, len(list(t, a)), "number of users after the refused Link")
	})

	// Another local account's key is taken too.
	other := provision(t, s, localKey("acct-2"), userstore.Profile{}, epoch()).User
	_, err = s.Link(ctx, local.ID, localKey("acct-2"), fullProfile(), epoch().Add(time.Hour))
	errorIs(t, err, userstore.ErrNotLinkable, "Link to another local account's key")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	requireSameUser(t, other, lookup(t, s, localKey("acct-2")))
}

func testLinkUnknownID(t *testing.T, s linkerStore) {
	ctx := t.Context()
	local := provision(t, s, localKey("acct-1"), userstore.Profile{}, epoch()).User
	k := key("ada")
	for _, id := range []string{"no-such-id", "", local.ID + "0"} {
		_, err := s.Link(ctx, id, k, fullProfile(), epoch().Add(time.Hour))
		errorIs(t, err, userstore.ErrNotFound, "Link(%q)", id)
	}
	for _, bad := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		_, err := s.Link(ctx, local.ID, bad, fullProfile(), epoch().Add(time.Hour))
		errorIs(t, err, userstore.ErrInvalidKey, "Link to %s", bad)
	}
	_, err := s.Lookup(ctx, k)
	errorIs(t, err, userstore.ErrNotFound, "a refused Link created a user")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		users := list(t, a)
		equal(t, 1, len(users), "number of users after the refused Links")
		requireSameUser(t, local, users[0])
	})
}

// testLinkRefusesTakenEmail: linking a local account to a key of an issuer
// one of whose users has the account's new email is refused with
// ErrEmailInUse, and nothing changes.
func testLinkRefusesTakenEmail(t *testing.T, s linkerStore) {
	ctx := t.Context()
	local := provision(t, s, localKey("acct-1"), userstore.Profile{Email: "ada@example.com"}, epoch()).User
	owner := provision(t, s, key("ada"), userstore.Profile{Email: "ada@example.com"}, epoch()).User
	_, err := s.Link(ctx, local.ID, key("ada-2"), userstore.Profile{Email: "ADA@example.com"}, epoch().Add(time.Hour))
	errorIs(t, err, userstore.ErrEmailInUse, "Link giving the account an email another user of the issuer has")
	requireSameUser(t, local, lookup(t, s, localKey("acct-1")))
	requireSameUser(t, owner, lookup(t, s, key("ada")))
	_, err = s.Lookup(ctx, key("ada-2"))
	errorIs(t, err, userstore.ErrNotFound, "the refused link bound the key")
}
