package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the Directory and GroupDirectory suites: the contracts
// of userstore.Directory and userstore.GroupDirectory, for a store that
// implements them.

// otherIssuer is the issuer of a second connection, whose users and groups
// a directory of the test issuer must never see.
const otherIssuer = "https://idp.other.example/"

// putUser calls PutUser with a decide that returns name and p, and requires
// it to succeed.
func putUser(t *testing.T, d userstore.Directory, k userstore.Key, name string, p userstore.Profile, now time.Time) userstore.DirectoryPut {
	t.Helper()
	res, err := d.PutUser(t.Context(), k, now, func(*userstore.DirectoryUser) (string, userstore.Profile, error) { return name, p, nil })
	noError(t, err, "PutUser(%s, %q)", k, name)
	return res
}

// findUser calls FindUser and requires it to succeed.
func findUser(t *testing.T, d userstore.Directory, issuer string, attr userstore.UserAttr, value string) userstore.DirectoryUser {
	t.Helper()
	u, err := d.FindUser(t.Context(), issuer, attr, value)
	noError(t, err, "FindUser(%q, %s, %q)", issuer, attr, value)
	return u
}

func testDirectoryFindUser(t *testing.T, s directoryStore) {
	t0 := epoch()
	ada := putUser(t, s, key("ada-oid"), "Ada@Example.com", userstore.Profile{Email: "ada.l@example.com"}, t0).User
	other := putUser(t, s, userstore.Key{Issuer: otherIssuer, Subject: "ada-oid"}, "ada@example.com", userstore.Profile{Email: "ada.l@example.com"}, t0).User
	check(t, ada.ID != other.ID, "two issuers' users share an ID")

	for _, tc := range []struct {
		attr  userstore.UserAttr
		value string
	}{
		{userstore.UserByID, ada.ID},
		{userstore.UserBySubject, "ada-oid"},
		{userstore.UserByUserName, "Ada@Example.com"},
		{userstore.UserByUserName, " ADA@example.COM "},
		{userstore.UserByEmail, "Ada.L@example.com"},
	} {
		got := findUser(t, s, issuer, tc.attr, tc.value)
		equal(t, ada.ID, got.ID, "FindUser by %s %q", tc.attr, tc.value)
		equal(t, "Ada@Example.com", got.UserName, "UserName as given")
	}
	for _, tc := range []struct {
		attr  userstore.UserAttr
		value string
	}{
		{userstore.UserByID, other.ID},            // another issuer's user
		{userstore.UserBySubject, "ADA-OID"},      // subjects compare exactly
		{userstore.UserBySubject, "ada"},          // no prefix match
		{userstore.UserByUserName, ""},            // blank matches no one
		{userstore.UserByUserName, "ada@example"}, // no prefix match
		{userstore.UserByEmail, "  "},
		{userstore.UserByEmail, "ada.l@example.co"},
	} {
		_, err := s.FindUser(t.Context(), issuer, tc.attr, tc.value)
		errorIs(t, err, userstore.ErrNotFound, "FindUser by %s %q", tc.attr, tc.value)
	}
	equal(t, other.ID, findUser(t, s, otherIssuer, userstore.UserByID, other.ID).ID, "the other issuer's user by its own issuer")
}

func testDirectoryRefusesLocalAccounts(t *testing.T, s directoryStore) {
	local := provision(t, s, localKey("42"), userstore.Profile{Email: "ada@example.com"}, epoch()).User
	_, err := s.FindUser(t.Context(), userstore.LocalIssuer, userstore.UserByID, local.ID)
	errorIs(t, err, userstore.ErrLocalAccount, "FindUser of the local issuer")
	_, _, err = s.ListUsers(t.Context(), userstore.LocalIssuer, 0, 10)
	errorIs(t, err, userstore.ErrLocalAccount, "ListUsers of the local issuer")
	_, err = s.PutUser(t.Context(), localKey("42"), epoch(), func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		t.Error("decide called for a local account")
		return "", userstore.Profile{}, nil
	})
	errorIs(t, err, userstore.ErrLocalAccount, "PutUser of a local account")
	_, err = s.FindUser(t.Context(), issuer, userstore.UserByID, local.ID)
	errorIs(t, err, userstore.ErrNotFound, "FindUser of a local account's ID under an IdP issuer")
	_, err = s.FindUser(t.Context(), "", userstore.UserByID, local.ID)
	errorIs(t, err, userstore.ErrInvalidKey, "FindUser of an empty issuer")
	equal(t, local.Profile, lookup(t, s, localKey("42")).Profile, "the local account's profile")
}

func testDirectoryListUsersPages(t *testing.T, s directoryStore) {
	t0 := epoch()
	var want []string
	for i := range 7 {
		// Created in an order that is not the subjects' order.
		u := putUser(t, s, key(fmt.Sprintf("u%d", 9-i)), "", userstore.Profile{}, t0.Add(time.Duration(i)*time.Minute)).User
		want = append(want, u.ID)
	}
	provision(t, s, userstore.Key{Issuer: otherIssuer, Subject: "x"}, userstore.Profile{}, t0)
	provision(t, s, localKey("y"), userstore.Profile{}, t0)

	for _, tc := range []struct{ offset, limit, from, to int }{
		{0, 100, 0, 7},
		{0, 3, 0, 3},
		{3, 3, 3, 6},
		{6, 3, 6, 7},
		{7, 3, 7, 7},
		{50, 3, 7, 7},
		{-4, 2, 0, 2},
		{0, 0, 0, 0},
		{2, -1, 2, 2},
	} {
		got, total, err := s.ListUsers(t.Context(), issuer, tc.offset, tc.limit)
		noError(t, err, "ListUsers(%d, %d)", tc.offset, tc.limit)
		equal(t, 7, total, "total of ListUsers(%d, %d)", tc.offset, tc.limit)
		gotIDs := make([]string, 0, len(got))
		for _, u := range got {
			gotIDs = append(gotIDs, u.ID)
		}
		equal(t, want[tc.from:tc.to], gotIDs, "ListUsers(%d, %d)", tc.offset, tc.limit)
	}
}

func testDirectoryPutUserCreatesThenChanges(t *testing.T, s directoryStore) {
	t0 := epoch()
	k := key("ada-oid")
	p := fullProfile()
	var sawBefore []*userstore.DirectoryUser
	res, err := s.PutUser(t.Context(), k, t0, func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		sawBefore = append(sawBefore, before)
		return "ada@example.com", p, nil
	})
	noError(t, err, "PutUser")
	check(t, res.Before == nil, "creation returned a Before")
	check(t, len(sawBefore) > 0 && sawBefore[0] == nil, "decide was not given nil on creation")
	created := res.User
	equal(t, "ada@example.com", created.UserName, "UserName")
	equal(t, k, created.Key, "Key")
	equal(t, p, created.Profile, "Profile")
	equal(t, userstore.Active, created.Status, "Status")
	requireTime(t, t0, created.CreatedAt, "CreatedAt")
	requireTime(t, t0, created.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, created.LastSignInAt, "LastSignInAt")
	requireSameUser(t, created.User, lookup(t, s, k))

	// A change is not a sign-in, and never touches status or local roles.
	if a, ok := any(s).(userstore.Admin); ok {
		noError(t, a.Suspend(t.Context(), k), "Suspend")
		noError(t, a.GrantRole(t.Context(), k, "auditor"), "GrantRole")
	}
	stored := lookup(t, s, k)
	t1 := t0.Add(time.Hour)
	changed := userstore.Profile{DisplayName: "Ada King", Groups: []string{}}
	sawBefore = nil
	res, err = s.PutUser(t.Context(), k, t1, func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		sawBefore = append(sawBefore, before)
		return "ada.king@example.com", changed, nil
	})
	noError(t, err, "PutUser")
	check(t, len(sawBefore) > 0 && sawBefore[0] != nil, "decide was given nil for a stored user")
	requireSameUser(t, stored, sawBefore[0].User)
	equal(t, "ada@example.com", sawBefore[0].UserName, "before's UserName")
	check(t, res.Before != nil, "a change returned no Before")
	requireSameUser(t, stored, res.Before.User)
	after := lookup(t, s, k)
	equal(t, created.ID, after.ID, "ID")
	equal(t, changed, after.Profile, "Profile")
	equal(t, stored.Status, after.Status, "PutUser changed Status")
	equal(t, stored.LocalRoles, after.LocalRoles, "PutUser changed LocalRoles")
	requireTime(t, t0, after.CreatedAt, "CreatedAt")
	requireTime(t, t1, after.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, after.LastSignInAt, "PutUser changed LastSignInAt")
	requireSameUser(t, after, res.User.User)
	equal(t, "ada.king@example.com", findUser(t, s, issuer, userstore.UserByID, after.ID).UserName, "UserName after the change")
	_, err = s.FindUser(t.Context(), issuer, userstore.UserByUserName, "ada@example.com")
	errorIs(t, err, userstore.ErrNotFound, "FindUser by the old user name")

	// decide's error writes nothing and is found by errors.Is.
	errVeto := errors.New("veto")
	_, err = s.PutUser(t.Context(), k, t1.Add(time.Hour), func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "x@example.com", userstore.Profile{DisplayName: "nope"}, errVeto
	})
	errorIs(t, err, errVeto, "PutUser with a failing decide")
	_, err = s.PutUser(t.Context(), key("nobody"), t1, func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "", userstore.Profile{}, errVeto
	})
	errorIs(t, err, errVeto, "PutUser creating with a failing decide")
	_, err = s.Lookup(t.Context(), key("nobody"))
	errorIs(t, err, userstore.ErrNotFound, "Lookup of a user whose creation decide refused")
	requireSameUser(t, after, lookup(t, s, k))

	_, err = s.PutUser(t.Context(), userstore.Key{Issuer: issuer}, t1, func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "", userstore.Profile{}, nil
	})
	errorIs(t, err, userstore.ErrInvalidKey, "PutUser with an empty subject")
}

// testDirectoryEmailChangeKeepsUserName: a change of the email alone,
// the user name kept, makes the user found by the new email and no longer
// by the old one, as a change of both does.
func testDirectoryEmailChangeKeepsUserName(t *testing.T, s directoryStore) {
	t0 := epoch()
	k := key("ada-oid")
	ada := putUser(t, s, k, "ada", userstore.Profile{Email: "ada@example.com", DisplayName: "Ada"}, t0).User
	equal(t, ada.ID, findUser(t, s, issuer, userstore.UserByEmail, "ada@example.com").ID, "FindUser by the email")

	putUser(t, s, k, "ada", userstore.Profile{Email: "Ada.King@example.com", DisplayName: "Ada"}, t0.Add(time.Hour))
	equal(t, ada.ID, findUser(t, s, issuer, userstore.UserByEmail, "ada.king@example.com").ID, "FindUser by the new email")
	_, err := s.FindUser(t.Context(), issuer, userstore.UserByEmail, "ada@example.com")
	errorIs(t, err, userstore.ErrNotFound, "FindUser by the old email")
	equal(t, ada.ID, findUser(t, s, issuer, userstore.UserByUserName, "ada").ID, "FindUser by the kept user name")
}

func testDirectoryAdoptsSignedInUser(t *testing.T, s directoryStore) {
	// A user a sign-in created is found by its subject and adopted: one
	// record, whichever path came first.
	t0 := epoch()
	k := key("ada-oid")
	jit := provision(t, s, k, userstore.Profile{Email: "ada@example.com", Groups: []string{"g1"}}, t0).User
	found := findUser(t, s, issuer, userstore.UserBySubject, "ada-oid")
	equal(t, jit.ID, found.ID, "ID")
	equal(t, "", found.UserName, "UserName of a user no directory named")
	res := putUser(t, s, k, "ada@example.com", userstore.Profile{Email: "ada@example.com", DisplayName: "Ada"}, t0.Add(time.Hour))
	equal(t, jit.ID, res.User.ID, "ID after adoption")
	check(t, res.Before != nil, "adoption created a user")
	// And the next sign-in writes the same record.
	signedIn := provision(t, s, k, userstore.Profile{Email: "ada@example.com"}, t0.Add(2*time.Hour))
	check(t, !signedIn.Created(), "the sign-in after adoption created a user")
	equal(t, jit.ID, signedIn.User.ID, "ID at the next sign-in")
	equal(t, "ada@example.com", findUser(t, s, issuer, userstore.UserByID, jit.ID).UserName, "a sign-in changed UserName")
}

func testDirectoryUniqueness(t *testing.T, s directoryStore) {
	t0 := epoch()
	putUser(t, s, key("a"), "Ada@Example.com", userstore.Profile{Email: "ada@example.com"}, t0)
	_, err := s.PutUser(t.Context(), key("b"), t0, func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "ADA@example.com", userstore.Profile{}, nil
	})
	errorIs(t, err, userstore.ErrUserNameInUse, "PutUser with another user's name")
	_, err = s.PutUser(t.Context(), key("b"), t0, func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "bob@example.com", userstore.Profile{Email: "ADA@example.com"}, nil
	})
	errorIs(t, err, userstore.ErrEmailInUse, "PutUser with another user's email")
	_, err = s.Lookup(t.Context(), key("b"))
	errorIs(t, err, userstore.ErrNotFound, "Lookup of a user whose creation was refused")

	b := putUser(t, s, key("b"), "bob@example.com", userstore.Profile{}, t0).User
	_, err = s.PutUser(t.Context(), key("b"), t0, func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "ada@example.com", userstore.Profile{}, nil
	})
	errorIs(t, err, userstore.ErrUserNameInUse, "renaming to another user's name")
	equal(t, "bob@example.com", findUser(t, s, issuer, userstore.UserByID, b.ID).UserName, "UserName after a refused rename")

	// A user keeps its own name; another issuer may use it; "" is no name.
	putUser(t, s, key("a"), "ada@example.com", userstore.Profile{Email: "ada@example.com"}, t0.Add(time.Minute))
	putUser(t, s, userstore.Key{Issuer: otherIssuer, Subject: "a"}, "ada@example.com", userstore.Profile{Email: "ada@example.com"}, t0)
	putUser(t, s, key("c"), "", userstore.Profile{}, t0)
	putUser(t, s, key("d"), "", userstore.Profile{}, t0)

	// A deleted user's name is free again.
	if a, ok := any(s).(userstore.Admin); ok {
		noError(t, a.Delete(t.Context(), key("a")), "Delete")
		putUser(t, s, key("e"), "ada@example.com", userstore.Profile{Email: "ada@example.com"}, t0)
	}
}

func testDirectoryConcurrentPut(t *testing.T, s directoryStore) {
	var ids sync32
	concurrently(concurrency, func(i int) {
		res, err := s.PutUser(t.Context(), key("ada-oid"), epoch(), func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
			return "ada@example.com", userstore.Profile{DisplayName: fmt.Sprint(i)}, nil
		})
		if err != nil {
			t.Errorf("PutUser %d: %v", i, err)
			return
		}
		if res.Before == nil {
			ids.created.Add(1)
		}
	})
	equal(t, int32(1), ids.created.Load(), "users created by concurrent PutUser of one key")
	_, total, err := s.ListUsers(t.Context(), issuer, 0, 10)
	noError(t, err, "ListUsers")
	equal(t, 1, total, "users")
}

// sync32 counts across goroutines.
type sync32 struct{ created atomic.Int32 }

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

// userTotal returns the total ListUsers gives for iss, requiring that it
// returns no user for a limit of 0.
func userTotal(t *testing.T, d userstore.Directory, iss string) int {
	t.Helper()
	got, total, err := d.ListUsers(t.Context(), iss, 0, 0)
	noError(t, err, "ListUsers(%q, 0, 0)", iss)
	equal(t, 0, len(got), "users ListUsers returned for a limit of 0")
	return total
}

func testDirectoryCountsUsers(t *testing.T, s directoryStore) {
	ctx := t.Context()
	t0 := epoch()
	equal(t, 0, userTotal(t, s, issuer), "users of an issuer no one wrote")

	putUser(t, s, key("scim-1"), "one@example.com", userstore.Profile{}, t0)
	putUser(t, s, key("scim-2"), "two@example.com", userstore.Profile{}, t0)
	equal(t, 2, userTotal(t, s, issuer), "users after two directory creations")
	// A change is not a creation.
	putUser(t, s, key("scim-1"), "one@example.org", userstore.Profile{DisplayName: "One"}, t0.Add(time.Minute))
	equal(t, 2, userTotal(t, s, issuer), "users after a directory change")

	// Users a sign-in creates are the issuer's users too.
	provision(t, s, key("jit-1"), userstore.Profile{}, t0)
	provision(t, s, key("jit-1"), userstore.Profile{DisplayName: "again"}, t0.Add(time.Minute))
	equal(t, 3, userTotal(t, s, issuer), "users after a provisioned user and its update")
	if si, ok := any(s).(userstore.SignInStore); ok {
		decide := func(*userstore.User) (userstore.Profile, error) { return userstore.Profile{}, nil }
		_, err := si.SignIn(ctx, issuer, "_count-1", t0.Add(5*time.Minute), key("jit-2"), t0, decide)
		noError(t, err, "SignIn creating a user")
		_, err = si.SignIn(ctx, issuer, "_count-2", t0.Add(5*time.Minute), key("jit-2"), t0, decide)
		noError(t, err, "SignIn of that user again")
		equal(t, 4, userTotal(t, s, issuer), "users after a sign-in's creation and its second sign-in")
	} else {
		provision(t, s, key("jit-2"), userstore.Profile{}, t0)
	}

	// Another issuer's users and local accounts are not counted.
	other := userstore.Key{Issuer: otherIssuer, Subject: "x"}
	putUser(t, s, other, "", userstore.Profile{}, t0)
	provision(t, s, localKey("root"), userstore.Profile{}, t0)
	provision(t, s, localKey("ops"), userstore.Profile{}, t0)
	equal(t, 4, userTotal(t, s, issuer), "users after another issuer's and local accounts")
	equal(t, 1, userTotal(t, s, otherIssuer), "the other issuer's users")

	// Status does not count; deletion does.
	checkWith(t, "Suspend and Delete", s, func(t *testing.T, a userstore.Admin) {
		noError(t, a.Suspend(ctx, key("scim-2")), "Suspend")
		equal(t, 4, userTotal(t, s, issuer), "users after a suspension")
		noError(t, a.Delete(ctx, key("scim-2")), "Delete")
		equal(t, 3, userTotal(t, s, issuer), "users after a deletion")
		errorIs(t, a.Delete(ctx, key("scim-2")), userstore.ErrNotFound, "Delete twice")
		noError(t, a.Delete(ctx, other), "Delete of the other issuer's user")
		noError(t, a.Delete(ctx, localKey("ops")), "Delete of a local account")
		equal(t, 3, userTotal(t, s, issuer), "users after other deletions")
		equal(t, 0, userTotal(t, s, otherIssuer), "the other issuer's users after its deletion")
	})

	// A local account linked to the issuer becomes one of its users.
	if l, ok := any(s).(userstore.Linker); ok {
		root := lookup(t, s, localKey("root"))
		before := userTotal(t, s, issuer)
		_, err := l.Link(ctx, root.ID, key("root-oid"), userstore.Profile{}, t0.Add(time.Hour))
		noError(t, err, "Link")
		equal(t, before+1, userTotal(t, s, issuer), "users after linking a local account")
	}

	// The total is the number of users listed.
	all, total, err := s.ListUsers(ctx, issuer, 0, 100)
	noError(t, err, "ListUsers")
	equal(t, len(all), total, "total against the users listed")
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

func testDirectoryPagesByKey(t *testing.T, s directoryStore) {
	p, ok := any(s).(userstore.DirectoryPager)
	if !ok {
		t.Skip("the store is no userstore.DirectoryPager")
	}
	ctx := t.Context()
	t0 := epoch()
	for i := range 7 {
		// Three share a creation time, so that the ID orders them.
		at := t0.Add(time.Duration(max(i-2, 0)) * time.Minute)
		putUser(t, s, key(fmt.Sprintf("k%d", 9-i)), "", userstore.Profile{}, at)
	}
	provision(t, s, userstore.Key{Issuer: otherIssuer, Subject: "x"}, userstore.Profile{}, t0)
	provision(t, s, localKey("y"), userstore.Profile{}, t0)
	all, _, err := s.ListUsers(ctx, issuer, 0, 100)
	noError(t, err, "ListUsers")
	var want []string
	for _, u := range all {
		want = append(want, u.ID)
	}
	equal(t, 7, len(want), "users listed")

	walk := func(limit int) []string {
		t.Helper()
		var got []string
		after := userstore.PageKey{}
		for range 20 {
			page, err := p.ListUsersAfter(ctx, issuer, after, limit)
			noError(t, err, "ListUsersAfter(%v, %d)", after, limit)
			check(t, len(page) <= limit, "a page of %d users for a limit of %d", len(page), limit)
			if len(page) == 0 {
				return got
			}
			for _, u := range page {
				got = append(got, u.ID)
				equal(t, issuer, u.Key.Issuer, "the issuer of a listed user")
			}
			after = userstore.UserPageKey(page[len(page)-1])
		}
		t.Fatalf("ListUsersAfter with a limit of %d did not end", limit)
		return nil
	}
	for _, limit := range []int{1, 3, 7, 100} {
		equal(t, want, walk(limit), "the users paged by key with a limit of %d", limit)
	}
	page, err := p.ListUsersAfter(ctx, issuer, userstore.PageKey{}, 0)
	noError(t, err, "ListUsersAfter with a limit of 0")
	equal(t, 0, len(page), "users for a limit of 0")

	// A user created while a client pages comes at the end; one deleted
	// is not listed; none twice.
	first, err := p.ListUsersAfter(ctx, issuer, userstore.PageKey{}, 3)
	noError(t, err, "ListUsersAfter")
	late := putUser(t, s, key("late"), "", userstore.Profile{}, t0.Add(time.Hour)).User
	rest, err := p.ListUsersAfter(ctx, issuer, userstore.UserPageKey(first[2]), 100)
	noError(t, err, "ListUsersAfter")
	equal(t, 5, len(rest), "users after the first page")
	equal(t, late.ID, rest[len(rest)-1].ID, "the user created meanwhile, last")
	_, err = p.ListUsersAfter(ctx, userstore.LocalIssuer, userstore.PageKey{}, 10)
	errorIs(t, err, userstore.ErrLocalAccount, "ListUsersAfter of the local issuer")
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
