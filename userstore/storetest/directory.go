package storetest

import (
	"errors"
	"fmt"
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

// sync32 counts across goroutines.
type sync32 struct{ created atomic.Int32 }
