package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the Admin suite: the contract of userstore.Admin, local
// roles included, for a store that implements it.

func testDeleteThenProvisionCreatesAnew(t *testing.T, s adminStore) {
	// Deleting is not deprovisioning: the next sign-in creates the user
	// again, with a new ID. Suspend is the way to keep someone out.
	k := key("ada")
	first := provision(t, s, k, fullProfile(), epoch()).User
	noError(t, s.Suspend(t.Context(), k), "Suspend")
	noError(t, s.GrantRole(t.Context(), k, "admin"), "GrantRole")
	noError(t, s.Delete(t.Context(), k), "Delete")
	_, err := s.Lookup(t.Context(), k)
	errorIs(t, err, userstore.ErrNotFound, "Lookup after Delete")
	equal(t, 0, len(list(t, s)), "users listed after Delete")

	later := epoch().Add(24 * time.Hour)
	res := provision(t, s, k, fullProfile(), later)
	check(t, res.Created(), "Provision after Delete did not create")
	check(t, first.ID != res.User.ID, "the new record reused the deleted one's ID")
	equal(t, userstore.Active, res.User.Status, "the new record is not active")
	check(t, res.User.LocalRoles == nil, "the new record has the deleted one's local roles: %q", res.User.LocalRoles)
	check(t, localRoles(t, s, k) == nil, "the new record has the deleted one's local roles: %q", localRoles(t, s, k))
	requireTime(t, later, res.User.CreatedAt, "CreatedAt")
}

func testListOrder(t *testing.T, s adminStore) {
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

func testNotSignedInSince(t *testing.T, s adminStore) {
	t0 := epoch()
	a := provision(t, s, key("a"), userstore.Profile{}, t0).User
	b := provision(t, s, key("b"), userstore.Profile{}, t0.Add(1*time.Hour)).User
	c := provision(t, s, key("c"), userstore.Profile{}, t0.Add(2*time.Hour)).User
	provision(t, s, key("d"), userstore.Profile{}, t0.Add(3*time.Hour))
	// a signs in again, so it is now the most recent.
	provision(t, s, key("a"), userstore.Profile{}, t0.Add(4*time.Hour))
	noError(t, s.Suspend(t.Context(), key("c")), "Suspend")

	stale, err := s.NotSignedInSince(t.Context(), t0.Add(2*time.Hour+30*time.Minute))
	noError(t, err, "NotSignedInSince")
	equal(t, []string{b.ID, c.ID}, ids(stale), "want b then c, oldest first")
	requireTime(t, t0.Add(time.Hour), stale[0].LastSignInAt, "LastSignInAt")
	equal(t, userstore.Suspended, stale[1].Status, "the suspended user's Status")

	// The bound is exclusive: a sign-in exactly at t is not stale.
	stale, err = s.NotSignedInSince(t.Context(), t0.Add(2*time.Hour))
	noError(t, err, "NotSignedInSince")
	equal(t, []string{b.ID}, ids(stale), "a sign-in exactly at the bound is stale")

	stale, err = s.NotSignedInSince(t.Context(), t0)
	noError(t, err, "NotSignedInSince")
	equal(t, 0, len(stale), "users stale before the first sign-in")

	stale, err = s.NotSignedInSince(t.Context(), t0.Add(5*time.Hour))
	noError(t, err, "NotSignedInSince")
	equal(t, 4, len(stale), "users stale after every sign-in")
	equal(t, a.ID, stale[3].ID, "the most recent sign-in is not last")
}

func testAdminUnknownKey(t *testing.T, s adminStore) {
	provision(t, s, key("somebody"), fullProfile(), epoch())
	k := key("nobody")
	ctx := t.Context()
	errorIs(t, s.Suspend(ctx, k), userstore.ErrNotFound, "Suspend")
	errorIs(t, s.Unsuspend(ctx, k), userstore.ErrNotFound, "Unsuspend")
	errorIs(t, s.Delete(ctx, k), userstore.ErrNotFound, "Delete")
	errorIs(t, s.GrantRole(ctx, k, "admin"), userstore.ErrNotFound, "GrantRole")
	errorIs(t, s.RevokeRole(ctx, k, "admin"), userstore.ErrNotFound, "RevokeRole")

	check(t, s.Suspend(ctx, userstore.Key{Subject: "somebody"}) != nil, "Suspend with an empty issuer succeeded")
	check(t, s.Delete(ctx, userstore.Key{Issuer: issuer}) != nil, "Delete with an empty subject succeeded")

	users := list(t, s)
	equal(t, 1, len(users), "number of users")
	equal(t, userstore.Active, users[0].Status, "Status")
}

func testProvisionNeverChangesLocalRoles(t *testing.T, s adminStore) {
	ctx := t.Context()
	k := key("ada")
	res := provision(t, s, k, fullProfile(), epoch())
	check(t, res.User.LocalRoles == nil, "a new user has local roles: %#v", res.User.LocalRoles)
	check(t, localRoles(t, s, k) == nil, "LocalRoles of a user never granted one is not nil: %#v", localRoles(t, s, k))
	check(t, list(t, s)[0].LocalRoles == nil, "List: LocalRoles of a user never granted one is not nil")

	noError(t, s.GrantRole(ctx, k, "auditor"), "GrantRole(auditor)")
	noError(t, s.GrantRole(ctx, k, "admin"), "GrantRole(admin)")
	want := []string{"admin", "auditor"}
	for i, p := range []userstore.Profile{
		{DisplayName: "no roles"},
		{DisplayName: "empty roles", Roles: []string{}},
		// An IdP role with the name of a local role is still only an
		// IdP role.
		{DisplayName: "other roles", Roles: []string{"admin", "owner"}},
	} {
		res := provision(t, s, k, p, epoch().Add(time.Duration(i+1)*time.Hour))
		equal(t, want, res.Before.LocalRoles, "Provision's Before")
		equal(t, want, res.User.LocalRoles, "Provision changed LocalRoles")
		u := lookup(t, s, k)
		equal(t, want, u.LocalRoles, "Provision changed LocalRoles")
		equal(t, p, u.Profile, "Profile")
	}

	// Revoking a local role that is also an IdP role leaves the IdP role.
	noError(t, s.RevokeRole(ctx, k, "admin"), "RevokeRole")
	u := lookup(t, s, k)
	equal(t, []string{"auditor"}, u.LocalRoles, "LocalRoles after RevokeRole")
	equal(t, []string{"admin", "owner"}, u.Profile.Roles, "RevokeRole changed the IdP-granted roles")
}

func testGrantRevokeRole(t *testing.T, s adminStore) {
	ctx := t.Context()
	k := key("ada")
	created := provision(t, s, k, fullProfile(), epoch()).User

	for _, role := range []string{"writer", "admin", "reader", "admin", "writer"} {
		noError(t, s.GrantRole(ctx, k, role), "GrantRole(%q)", role)
	}
	equal(t, []string{"admin", "reader", "writer"}, localRoles(t, s, k), "LocalRoles not sorted and unique")

	// Roles are compared exactly and sorted as Go sorts strings (byte
	// by byte), not by any locale.
	for _, role := range []string{"Admin", " admin", "émigré", "Zeta", "admin "} {
		noError(t, s.GrantRole(ctx, k, role), "GrantRole(%q)", role)
	}
	equal(t, []string{" admin", "Admin", "Zeta", "admin", "admin ", "reader", "writer", "émigré"}, localRoles(t, s, k), "LocalRoles")

	// Granting changes nothing else.
	u := lookup(t, s, k)
	equal(t, created.Profile, u.Profile, "GrantRole changed the Profile")
	equal(t, created.Status, u.Status, "GrantRole changed the Status")
	requireTime(t, created.UpdatedAt, u.UpdatedAt, "UpdatedAt")
	requireTime(t, created.LastSignInAt, u.LastSignInAt, "LastSignInAt")

	noError(t, s.RevokeRole(ctx, k, "reader"), "RevokeRole(reader)")
	noError(t, s.RevokeRole(ctx, k, "reader"), "revoking a role twice")
	noError(t, s.RevokeRole(ctx, k, "nobody-has-this"), "revoking a role the user does not have")
	equal(t, []string{" admin", "Admin", "Zeta", "admin", "admin ", "writer", "émigré"}, localRoles(t, s, k), "LocalRoles after RevokeRole")
	equal(t, fullProfile().Roles, lookup(t, s, k).Profile.Roles, "RevokeRole changed the IdP-granted roles")

	for _, role := range []string{" admin", "Admin", "Zeta", "admin", "admin ", "writer", "émigré"} {
		noError(t, s.RevokeRole(ctx, k, role), "RevokeRole(%q)", role)
	}
	// Nil or empty: the contract only says nil when none was ever
	// granted.
	equal(t, 0, len(localRoles(t, s, k)), "number of LocalRoles after revoking every role")
	noError(t, s.RevokeRole(ctx, k, "admin"), "revoking from a user with no local roles")
	equal(t, 0, len(localRoles(t, s, k)), "number of LocalRoles after revoking from a user with none")

	noError(t, s.GrantRole(ctx, k, "admin"), "GrantRole after revoking every role")
	equal(t, []string{"admin"}, localRoles(t, s, k), "LocalRoles")

	// Other users are unaffected.
	gp := fullProfile()
	gp.Email = "grace@example.com"
	other := provision(t, s, key("grace"), gp, epoch()).User
	check(t, other.LocalRoles == nil, "another user has local roles: %#v", other.LocalRoles)
	check(t, localRoles(t, s, key("grace")) == nil, "another user has local roles: %#v", localRoles(t, s, key("grace")))
}

func testRoleAdminErrors(t *testing.T, s adminStore) {
	ctx := t.Context()
	k := key("ada")
	provision(t, s, k, fullProfile(), epoch())

	for _, bad := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		errorIs(t, s.GrantRole(ctx, bad, "admin"), userstore.ErrInvalidKey, "GrantRole(%s)", bad)
		errorIs(t, s.RevokeRole(ctx, bad, "admin"), userstore.ErrInvalidKey, "RevokeRole(%s)", bad)
	}
	for _, nobody := range []userstore.Key{key("nobody"), {Issuer: "https://other.example/", Subject: "ada"}, key("ADA")} {
		errorIs(t, s.GrantRole(ctx, nobody, "admin"), userstore.ErrNotFound, "GrantRole(%s)", nobody)
		errorIs(t, s.RevokeRole(ctx, nobody, "admin"), userstore.ErrNotFound, "RevokeRole(%s)", nobody)
	}

	check(t, s.GrantRole(ctx, k, "") != nil, "GrantRole of an empty role succeeded")
	check(t, localRoles(t, s, k) == nil, "a refused GrantRole wrote local roles: %#v", localRoles(t, s, k))
	noError(t, s.GrantRole(ctx, k, "admin"), "GrantRole")
	check(t, s.RevokeRole(ctx, k, "") != nil, "RevokeRole of an empty role succeeded")
	equal(t, []string{"admin"}, localRoles(t, s, k), "LocalRoles")

	equal(t, 1, len(list(t, s)), "a role change created a user")
}

func testConcurrentGrantAndProvision(t *testing.T, s adminStore) {
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
		noError(t, err, "call %d", i)
		if i%2 == 0 {
			want = append(want, fmt.Sprintf("role-%02d", i))
		}
	}
	equal(t, want, localRoles(t, s, k), "a concurrent grant was lost")
}

func testEffectiveRoles(t *testing.T, s adminStore) {
	ctx := t.Context()
	k := key("ada")
	provision(t, s, k, userstore.Profile{Roles: []string{"writer", "reader", "writer"}}, epoch())
	noError(t, s.GrantRole(ctx, k, "reader"), "GrantRole(reader)")
	noError(t, s.GrantRole(ctx, k, "admin"), "GrantRole(admin)")

	u := lookup(t, s, k)
	equal(t, []string{"admin", "reader", "writer"}, u.Roles(), "Roles")
	for _, role := range []string{"admin", "reader", "writer"} {
		check(t, u.HasRole(role), "HasRole(%q) = false", role)
	}
	check(t, !u.HasRole("owner"), "HasRole(owner) = true")
	check(t, !u.HasRole("Admin"), "HasRole(Admin) = true")

	// The IdP takes a role away at the next sign-in; the local grant of
	// the same role keeps it.
	res := provision(t, s, k, userstore.Profile{Roles: []string{"writer"}}, epoch().Add(time.Hour))
	equal(t, []string{"admin", "reader", "writer"}, res.User.Roles(), "Roles after the IdP took reader away")
	res = provision(t, s, k, userstore.Profile{}, epoch().Add(2*time.Hour))
	equal(t, []string{"admin", "reader"}, res.User.Roles(), "Roles after the IdP took every role away")
	check(t, !res.User.HasRole("writer"), "HasRole(writer) = true after the IdP took it away")
	noError(t, s.RevokeRole(ctx, k, "reader"), "RevokeRole(reader)")
	equal(t, []string{"admin"}, lookup(t, s, k).Roles(), "Roles after RevokeRole")
}
