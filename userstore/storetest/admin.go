package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

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
