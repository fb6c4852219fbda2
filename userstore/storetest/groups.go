package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// The group directory's tests: membership, roles, scope, counts and pages.

// putGroup calls PutGroup with a decide that returns g, and requires it to
// succeed.
func putGroup(t *testing.T, d userstore.GroupDirectory, id string, g userstore.Group, now time.Time, roles userstore.RoleFunc) userstore.GroupChange {
	t.Helper()
	res, err := d.PutGroup(t.Context(), issuer, id, now, func(*userstore.Group) (userstore.Group, error) { return g, nil }, roles)
	noError(t, err, "PutGroup(%q)", id)
	return res
}

// adminRoles is a role mapping: "admins" grants admin, everyone is a
// member.
func adminRoles(groups []string) []string {
	roles := []string{"member"}
	if slices.Contains(groups, "admins-oid") {
		roles = append(roles, "admin")
	}
	return roles
}

// changedIDs returns the IDs of the users of a GroupChange.
func changedIDs(c userstore.GroupChange) []string {
	out := []string{}
	for _, p := range c.Users {
		out = append(out, p.User.ID)
	}
	return out
}

// sorted returns ids sorted.
func sorted(ids ...string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func testGroupMembershipDerivesRoles(t *testing.T, s groupStore) {
	t0 := epoch()
	ada := provision(t, s, key("ada"), userstore.Profile{Groups: []string{"jit-group"}}, t0).User
	bob := provision(t, s, key("bob"), userstore.Profile{}, t0).User
	cy := provision(t, s, key("cy"), userstore.Profile{Groups: []string{"admins-oid"}}, t0).User

	t1 := t0.Add(time.Hour)
	res := putGroup(t, s, "", userstore.Group{DisplayName: "Admins", ExternalID: "admins-oid", Members: []string{bob.ID, ada.ID, ada.ID, cy.ID}}, t1, adminRoles)
	g := res.Group
	check(t, g.ID != "", "created group has no ID")
	check(t, res.Before == nil, "creation returned a Before")
	equal(t, issuer, g.Issuer, "Issuer")
	equal(t, sorted(ada.ID, bob.ID, cy.ID), g.Members, "Members, sorted and unique")
	requireTime(t, t1, g.CreatedAt, "CreatedAt")
	requireTime(t, t1, g.UpdatedAt, "UpdatedAt")
	equal(t, sorted(ada.ID, bob.ID, cy.ID), changedIDs(res), "users changed")
	for _, p := range res.Users {
		requireSameUser(t, p.User, lookup(t, s, p.User.Key))
		check(t, p.Before != nil, "a changed user has no Before")
		requireTime(t, t1, p.User.UpdatedAt, "a member's UpdatedAt")
	}
	adaNow := lookup(t, s, key("ada"))
	equal(t, []string{"jit-group", "admins-oid"}, adaNow.Profile.Groups, "ada's groups")
	equal(t, []string{"member", "admin"}, adaNow.Profile.Roles, "ada's roles")
	requireTime(t, t0, adaNow.LastSignInAt, "a group change is not a sign-in")
	// cy already had the group (from a sign-in): it is there once.
	equal(t, []string{"admins-oid"}, lookup(t, s, key("cy")).Profile.Groups, "cy's groups")

	// Removing ada takes her admin role at once; nil roles leaves roles.
	t2 := t1.Add(time.Hour)
	res, err := s.PutGroup(t.Context(), issuer, g.ID, t2, func(before *userstore.Group) (userstore.Group, error) {
		equal(t, g.Members, before.Members, "before's members")
		b := before.Clone()
		b.Members = slices.DeleteFunc(b.Members, func(id string) bool { return id == ada.ID })
		return b, nil
	}, adminRoles)
	noError(t, err, "PutGroup")
	equal(t, []string{ada.ID}, changedIDs(res), "users changed by a removal")
	adaNow = lookup(t, s, key("ada"))
	equal(t, []string{"jit-group"}, adaNow.Profile.Groups, "ada's groups after removal")
	equal(t, []string{"member"}, adaNow.Profile.Roles, "ada's roles after removal")
	requireTime(t, t1, res.Group.CreatedAt, "CreatedAt after a change")
	requireTime(t, t2, res.Group.UpdatedAt, "UpdatedAt after a change")

	// A rename of the group's Name follows in every member's groups.
	res = putGroup(t, s, g.ID, userstore.Group{DisplayName: "Admins", ExternalID: "", Members: []string{bob.ID}}, t2, nil)
	equal(t, sorted(bob.ID, cy.ID), changedIDs(res), "users changed by a rename and a removal")
	equal(t, []string{"Admins"}, lookup(t, s, key("bob")).Profile.Groups, "bob's groups after the rename")
	equal(t, []string{"member", "admin"}, lookup(t, s, key("bob")).Profile.Roles, "nil roles changed bob's roles")
	equal(t, []string{}, lookup(t, s, key("cy")).Profile.Groups, "cy's groups after removal")

	// Deleting the group takes it from its members.
	res, err = s.DeleteGroup(t.Context(), issuer, g.ID, t2, adminRoles)
	noError(t, err, "DeleteGroup")
	check(t, res.Before != nil && res.Before.ID == g.ID, "DeleteGroup's Before is not the group")
	equal(t, []string{bob.ID}, changedIDs(res), "users changed by the deletion")
	equal(t, []string{}, lookup(t, s, key("bob")).Profile.Groups, "bob's groups after the deletion")
	equal(t, []string{"member"}, lookup(t, s, key("bob")).Profile.Roles, "bob's roles after the deletion")
	found, err := s.FindGroups(t.Context(), issuer, userstore.GroupByID, g.ID)
	noError(t, err, "FindGroups")
	equal(t, 0, len(found), "groups found after deletion")
	_, err = s.DeleteGroup(t.Context(), issuer, g.ID, t2, nil)
	errorIs(t, err, userstore.ErrNotFound, "DeleteGroup twice")
}

func testGroupScopedToIssuer(t *testing.T, s groupStore) {
	t0 := epoch()
	ada := provision(t, s, key("ada"), userstore.Profile{}, t0).User
	eve := provision(t, s, userstore.Key{Issuer: otherIssuer, Subject: "eve"}, userstore.Profile{}, t0).User
	local := provision(t, s, localKey("root"), userstore.Profile{}, t0).User

	for _, m := range []string{eve.ID, local.ID, "no-such-user"} {
		_, err := s.PutGroup(t.Context(), issuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
			return userstore.Group{DisplayName: "g", Members: []string{ada.ID, m}}, nil
		}, nil)
		errorIs(t, err, userstore.ErrNotMember, "PutGroup with member %q", m)
	}
	_, total, err := s.ListGroups(t.Context(), issuer, 0, 10)
	noError(t, err, "ListGroups")
	equal(t, 0, total, "groups after refused creations")
	equal(t, []string(nil), lookup(t, s, key("ada")).Profile.Groups, "a refused group write changed a member")

	other, err := s.PutGroup(t.Context(), otherIssuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "g", Members: []string{eve.ID}}, nil
	}, nil)
	noError(t, err, "PutGroup of the other issuer")
	_, err = s.PutGroup(t.Context(), issuer, other.Group.ID, t0, func(*userstore.Group) (userstore.Group, error) {
		t.Error("decide called for another issuer's group")
		return userstore.Group{}, nil
	}, nil)
	errorIs(t, err, userstore.ErrNotFound, "PutGroup of another issuer's group")
	_, err = s.DeleteGroup(t.Context(), issuer, other.Group.ID, t0, nil)
	errorIs(t, err, userstore.ErrNotFound, "DeleteGroup of another issuer's group")
	found, err := s.FindGroups(t.Context(), issuer, userstore.GroupByID, other.Group.ID)
	noError(t, err, "FindGroups")
	equal(t, 0, len(found), "another issuer's group found")
	_, err = s.PutGroup(t.Context(), userstore.LocalIssuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "g"}, nil
	}, nil)
	errorIs(t, err, userstore.ErrLocalAccount, "PutGroup of the local issuer")
	_, err = s.PutGroup(t.Context(), issuer, "no-such-group", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "g"}, nil
	}, nil)
	errorIs(t, err, userstore.ErrNotFound, "PutGroup of an unknown ID")
	errVeto := errors.New("veto")
	_, err = s.PutGroup(t.Context(), issuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "g", Members: []string{ada.ID}}, errVeto
	}, nil)
	errorIs(t, err, errVeto, "PutGroup with a failing decide")
	equal(t, []string(nil), lookup(t, s, key("ada")).Profile.Groups, "a vetoed group write changed a member")
}

func testGroupFindAndList(t *testing.T, s groupStore) {
	t0 := epoch()
	ada := provision(t, s, key("ada"), userstore.Profile{}, t0).User
	var ids []string
	for i, name := range []string{"eng", "ops", "eng", "sales"} {
		g := putGroup(t, s, "", userstore.Group{DisplayName: name, ExternalID: "oid-" + fmt.Sprint(i), Members: []string{ada.ID}}, t0.Add(time.Duration(i)*time.Minute), nil).Group
		ids = append(ids, g.ID)
	}
	byName := func(attr userstore.GroupAttr, v string) []string {
		t.Helper()
		found, err := s.FindGroups(t.Context(), issuer, attr, v)
		noError(t, err, "FindGroups(%s, %q)", attr, v)
		out := []string{}
		for _, g := range found {
			out = append(out, g.ID)
		}
		return out
	}
	equal(t, []string{ids[0], ids[2]}, byName(userstore.GroupByDisplayName, "eng"), "groups named eng, by creation")
	equal(t, []string{}, byName(userstore.GroupByDisplayName, "ENG"), "display names compare exactly")
	equal(t, []string{ids[3]}, byName(userstore.GroupByExternalID, "oid-3"), "by external id")
	equal(t, []string{ids[1]}, byName(userstore.GroupByID, ids[1]), "by id")

	got, total, err := s.ListGroups(t.Context(), issuer, 1, 2)
	noError(t, err, "ListGroups")
	equal(t, 4, total, "total")
	equal(t, 2, len(got), "page length")
	equal(t, ids[1:3], []string{got[0].ID, got[1].ID}, "page")
	equal(t, []string{ada.ID}, got[0].Members, "members listed")

	// A deleted user is no longer a member.
	if a, ok := any(s).(userstore.Admin); ok {
		noError(t, a.Delete(t.Context(), key("ada")), "Delete")
		found, err := s.FindGroups(t.Context(), issuer, userstore.GroupByID, ids[0])
		noError(t, err, "FindGroups")
		equal(t, []string{}, found[0].Members, "members after the user's deletion")
	}
}

// groupTotal returns the total ListGroups gives for iss.
func groupTotal(t *testing.T, d userstore.GroupDirectory, iss string) int {
	t.Helper()
	got, total, err := d.ListGroups(t.Context(), iss, 0, 0)
	noError(t, err, "ListGroups(%q, 0, 0)", iss)
	equal(t, 0, len(got), "groups ListGroups returned for a limit of 0")
	return total
}

func testGroupCounts(t *testing.T, s groupStore) {
	t0 := epoch()
	ada := provision(t, s, key("ada"), userstore.Profile{}, t0).User
	equal(t, 0, groupTotal(t, s, issuer), "groups of an issuer with none")
	a := putGroup(t, s, "", userstore.Group{DisplayName: "a", Members: []string{ada.ID}}, t0, nil).Group
	b := putGroup(t, s, "", userstore.Group{DisplayName: "b"}, t0, nil).Group
	putGroup(t, s, a.ID, userstore.Group{DisplayName: "a2"}, t0.Add(time.Minute), nil)
	equal(t, 2, groupTotal(t, s, issuer), "groups after two creations and a change")
	_, err := s.PutGroup(t.Context(), otherIssuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "a"}, nil
	}, nil)
	noError(t, err, "PutGroup of the other issuer")
	equal(t, 2, groupTotal(t, s, issuer), "groups after another issuer's creation")
	equal(t, 1, groupTotal(t, s, otherIssuer), "the other issuer's groups")
	_, err = s.PutGroup(t.Context(), issuer, "", t0, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "refused", Members: []string{"no-such-user"}}, nil
	}, nil)
	errorIs(t, err, userstore.ErrNotMember, "PutGroup with an unknown member")
	equal(t, 2, groupTotal(t, s, issuer), "groups after a refused creation")
	_, err = s.DeleteGroup(t.Context(), issuer, b.ID, t0, nil)
	noError(t, err, "DeleteGroup")
	equal(t, 1, groupTotal(t, s, issuer), "groups after a deletion")
	_, err = s.DeleteGroup(t.Context(), issuer, b.ID, t0, nil)
	errorIs(t, err, userstore.ErrNotFound, "DeleteGroup twice")
	equal(t, 1, groupTotal(t, s, issuer), "groups after a second deletion")
	// A user's deletion leaves the groups as many.
	checkWith(t, "Delete", s, func(t *testing.T, adm userstore.Admin) {
		noError(t, adm.Delete(t.Context(), key("ada")), "Delete")
		equal(t, 1, groupTotal(t, s, issuer), "groups after a member's deletion")
	})
}

func testGroupPagesByKey(t *testing.T, s groupStore) {
	p, ok := any(s).(userstore.DirectoryPager)
	if !ok {
		t.Skip("the store is no userstore.DirectoryPager")
	}
	ctx := t.Context()
	t0 := epoch()
	for i := range 5 {
		putGroup(t, s, "", userstore.Group{DisplayName: fmt.Sprint("g", i)}, t0.Add(time.Duration(i/2)*time.Minute), nil)
	}
	all, _, err := s.ListGroups(ctx, issuer, 0, 100)
	noError(t, err, "ListGroups")
	var want, got []string
	for _, g := range all {
		want = append(want, g.ID)
	}
	after := userstore.PageKey{}
	for range 10 {
		page, err := p.ListGroupsAfter(ctx, issuer, after, 2)
		noError(t, err, "ListGroupsAfter")
		if len(page) == 0 {
			break
		}
		for _, g := range page {
			got = append(got, g.ID)
		}
		after = userstore.GroupPageKey(page[len(page)-1])
	}
	equal(t, want, got, "the groups paged by key")
	_, err = p.ListGroupsAfter(ctx, userstore.LocalIssuer, userstore.PageKey{}, 10)
	errorIs(t, err, userstore.ErrLocalAccount, "ListGroupsAfter of the local issuer")
}
