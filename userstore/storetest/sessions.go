package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the Sessions suite: the contract of userstore.Sessions,
// for a store that implements it. What only an Admin can show (that
// Suspend and Delete end sessions, for good) runs as a subtest that is
// skipped when the store is not one.

// provisionAdaAndGrace creates the users ada and grace at the epoch and
// returns their keys.
func provisionAdaAndGrace(t *testing.T, s userstore.Store) (ada, grace userstore.Key) {
	t.Helper()
	ada, grace = key("ada"), key("grace")
	provision(t, s, ada, fullProfile(), epoch())
	gp := fullProfile()
	gp.Email = "grace@example.com"
	provision(t, s, grace, gp, epoch())
	return ada, grace
}

// newSession returns a session of key k created at t0, lasting an hour,
// with a new random ID.
func newSession(t *testing.T, k userstore.Key, index string, t0 time.Time) userstore.Session {
	t.Helper()
	id, err := userstore.NewSessionID()
	noError(t, err, "NewSessionID")
	return userstore.Session{ID: id, Key: k, Connection: "acme", SessionIndex: index, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

// createSession calls s.CreateSession and requires it to succeed.
func createSession(t *testing.T, s sessionsStore, sess userstore.Session) {
	t.Helper()
	noError(t, s.CreateSession(t.Context(), sess), "CreateSession(%s)", sess.Key)
}

// requireLive requires the session with id to be live at now and returns
// it with its user.
func requireLive(t *testing.T, s sessionsStore, id string, now time.Time) (userstore.Session, userstore.User) {
	t.Helper()
	sess, u, err := s.LookupSession(t.Context(), id, now)
	noError(t, err, "LookupSession")
	requireLazySame(t, s, id, now, sess, u)
	return sess, u
}

// requireLazySame requires, when s is a [userstore.LazySessions], that
// LookupSessionLazy of id at now finds sess, and a user whose ID, key and
// status are u's before decoding and who is u once decoded.
func requireLazySame(t *testing.T, s sessionsStore, id string, now time.Time, sess userstore.Session, u userstore.User) {
	t.Helper()
	lazy, ok := s.(userstore.LazySessions)
	if !ok {
		return
	}
	lsess, lu, err := lazy.LookupSessionLazy(t.Context(), id, now)
	noError(t, err, "LookupSessionLazy")
	if lu == nil {
		t.Fatal("LookupSessionLazy returned a nil user and no error")
	}
	equal(t, sess, lsess, "the session LookupSessionLazy returned")
	equal(t, u.ID, lu.ID(), "LazyUser.ID")
	equal(t, u.Key, lu.Key(), "LazyUser.Key")
	equal(t, u.Status, lu.Status(), "LazyUser.Status")
	for range 2 {
		got, err := lu.User()
		noError(t, err, "LazyUser.User")
		equal(t, u, got, "the user LookupSessionLazy decoded")
	}
}

// requireGone requires LookupSession of id at now to fail with
// ErrNotFound.
func requireGone(t *testing.T, s sessionsStore, id string, now time.Time, why string) {
	t.Helper()
	_, _, err := s.LookupSession(t.Context(), id, now)
	errorIs(t, err, userstore.ErrNotFound, "LookupSession of %s", why)
	if lazy, ok := s.(userstore.LazySessions); ok {
		_, lu, err := lazy.LookupSessionLazy(t.Context(), id, now)
		errorIs(t, err, userstore.ErrNotFound, "LookupSessionLazy of %s", why)
		if lu != nil {
			t.Fatalf("LookupSessionLazy of %s: returned a user with its error", why)
		}
	}
}

func testSessionLazyUserMatches(t *testing.T, s sessionsStore) {
	if _, ok := s.(userstore.LazySessions); !ok {
		t.Skipf("%T does not implement userstore.LazySessions", s)
	}
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprintf("3f2a9c1e-5b7d-4e8f-9a0b-%012d", i)
	}
	profiles := map[string]userstore.Profile{
		"full":  fullProfile(),
		"nil":   {},
		"empty": {Groups: []string{}, Attributes: map[string][]string{}, Roles: []string{}},
		"many":  {Email: "many@example.com", Groups: many, Roles: []string{"reader"}},
		"escapes": {Email: "esc@example.com", Groups: []string{`quote"d`, `back\slash`, "tab\tnew\nline", "Ünïcödé 日本語 😀", "", "a,b", "[x]", "\u2028"},
			Attributes: map[string][]string{"k": nil, "e": {}, "u": {"\x7f", "é"}}, Roles: []string{"a\"b"}},
	}
	t0 := epoch()
	for name, p := range profiles {
		k := key(name)
		provision(t, s, k, p, t0)
		if a, ok := s.(userstore.Admin); ok && name != "nil" {
			noError(t, a.GrantRole(t.Context(), k, "operator"), "GrantRole")
		}
		sess := newSession(t, k, "", t0)
		createSession(t, s, sess)
		_, u := requireLive(t, s, sess.ID, t0)
		requireSameUser(t, lookup(t, s, k), u)
	}
}

// sessionIDs returns the IDs of sessions, in order.
func sessionIDs(sessions []userstore.Session) []string {
	out := make([]string, len(sessions))
	for i, s := range sessions {
		out[i] = s.ID
	}
	return out
}

func testSessionLookupReturnsUser(t *testing.T, s sessionsStore) {
	k, grace := provisionAdaAndGrace(t, s)
	t0 := epoch()
	want := newSession(t, k, "_idx-1", t0.Add(time.Second))
	want.NameID = userstore.NameID{Value: "AAdzZWNyZXQx", Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		NameQualifier: issuer, SPNameQualifier: "https://sp.example/saml/metadata"}
	createSession(t, s, want)
	equal(t, normalizeSessions([]userstore.Session{want}), normalizeSessions(listSessions(t, s, k, t0.Add(time.Second))), "ListSessions: the session as created, NameID too")

	got, u := requireLive(t, s, want.ID, want.CreatedAt)
	requireSameUser(t, lookup(t, s, k), u)
	equal(t, want.ID, got.ID, "ID")
	equal(t, k, got.Key, "Key")
	equal(t, "acme", got.Connection, "Connection")
	equal(t, "_idx-1", got.SessionIndex, "SessionIndex")
	equal(t, want.NameID, got.NameID, "NameID")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")

	// The user is read anew at every lookup.
	changed := userstore.Profile{DisplayName: "Ada King"}
	provision(t, s, k, changed, t0.Add(time.Minute))
	_, u = requireLive(t, s, want.ID, t0.Add(2*time.Minute))
	equal(t, changed, u.Profile, "the profile LookupSession returned after a sign-in")

	// A session without a SessionIndex, and another user's.
	none := newSession(t, k, "", t0)
	createSession(t, s, none)
	got, _ = requireLive(t, s, none.ID, t0)
	equal(t, "", got.SessionIndex, "SessionIndex")
	equal(t, userstore.NameID{}, got.NameID, "NameID of a session created without one")
	other := newSession(t, grace, "", t0)
	createSession(t, s, other)
	_, u = requireLive(t, s, other.ID, t0)
	equal(t, grace, u.Key, "the other session's user")
}

func testSessionEndedOrExpiredNotFound(t *testing.T, s sessionsStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)
	sess := newSession(t, k, "", t0)
	createSession(t, s, sess)

	requireGone(t, s, "no-such-session", t0, "an unknown ID")
	requireGone(t, s, sess.ID+"x", t0, "an ID with a byte added")
	// An ID with a NUL, which some databases cannot hold, is just an
	// unknown ID: not found, and nothing to end.
	requireGone(t, s, "\x00"+sess.ID, t0, "an ID starting with a NUL")
	requireGone(t, s, sess.ID+"\x00", t0, "an ID ending with a NUL")
	noError(t, s.EndSession(ctx, "\x00"+sess.ID), "ending a session whose ID starts with a NUL")
	n, err := s.EndSessions(ctx, k, "\x00", t0)
	noError(t, err, "EndSessions of a SessionIndex with a NUL")
	equal(t, 0, n, "sessions ended with a SessionIndex of a NUL")
	n, err = s.EndSessionsByNameID(ctx, k.Issuer, "\x00"+k.Subject, "", t0)
	noError(t, err, "EndSessionsByNameID of a NameID with a NUL")
	equal(t, 0, n, "sessions ended by a NameID starting with a NUL")
	requireLive(t, s, sess.ID, t0)
	requireLive(t, s, sess.ID, sess.ExpiresAt.Add(-time.Nanosecond))
	requireGone(t, s, sess.ID, sess.ExpiresAt, "a session at its expiry")
	requireGone(t, s, sess.ID, sess.ExpiresAt.Add(time.Hour), "an expired session")
	// A session is live from its creation on; a clock behind does not
	// hide it.
	requireLive(t, s, sess.ID, t0.Add(-time.Minute))

	noError(t, s.EndSession(ctx, sess.ID), "EndSession")
	requireGone(t, s, sess.ID, t0, "an ended session")
	noError(t, s.EndSession(ctx, sess.ID), "ending an ended session")
	noError(t, s.EndSession(ctx, "no-such-session"), "ending an unknown session")
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions listed after EndSession")

	// Ending one session leaves the others.
	a, b := newSession(t, k, "", t0), newSession(t, k, "", t0)
	createSession(t, s, a)
	createSession(t, s, b)
	noError(t, s.EndSession(ctx, a.ID), "EndSession")
	requireGone(t, s, a.ID, t0, "an ended session")
	requireLive(t, s, b.ID, t0)
}

func testCreateSessionRefusals(t *testing.T, s sessionsStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	errorIs(t, s.CreateSession(ctx, newSession(t, k, "", t0)), userstore.ErrNotFound, "CreateSession for no user")

	provision(t, s, k, fullProfile(), t0)
	sess := newSession(t, k, "", t0)
	for name, mutate := range map[string]func(*userstore.Session){
		"an empty ID":          func(s *userstore.Session) { s.ID = "" },
		"an ID over 128 bytes": func(s *userstore.Session) { s.ID = fmt.Sprintf("%0129d", 7) },
		"an empty issuer":      func(s *userstore.Session) { s.Key.Issuer = "" },
		"an empty subject":     func(s *userstore.Session) { s.Key.Subject = "" },
		"no expiry":            func(s *userstore.Session) { s.ExpiresAt = time.Time{} },
		"expiry at creation":   func(s *userstore.Session) { s.ExpiresAt = s.CreatedAt },
	} {
		bad := sess
		mutate(&bad)
		check(t, s.CreateSession(ctx, bad) != nil, "CreateSession of a session with %s succeeded", name)
	}
	// Keys compare exactly: another case is another (unknown) user.
	upper := newSession(t, key("ADA"), "", t0)
	errorIs(t, s.CreateSession(ctx, upper), userstore.ErrNotFound, "CreateSession for another case of the key")
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions after refused creations")

	// A NUL, which some databases cannot hold, is kept exactly or the
	// session is refused with nothing recorded.
	for name, mutate := range map[string]func(*userstore.Session){
		"ID":           func(s *userstore.Session) { s.ID = "\x00" + s.ID[1:] },
		"connection":   func(s *userstore.Session) { s.Connection = "\x00acme" },
		"SessionIndex": func(s *userstore.Session) { s.SessionIndex = "_i\x00" },
		"NameID":       func(s *userstore.Session) { s.NameID.Value = "\x00nid" },
	} {
		nul := newSession(t, k, "", t0)
		mutate(&nul)
		if err := s.CreateSession(ctx, nul); err != nil {
			requireGone(t, s, nul.ID, t0, "a session with a NUL in its "+name+", refused")
			continue
		}
		got, _ := requireLive(t, s, nul.ID, t0)
		equal(t, normalizeSessions([]userstore.Session{nul}), normalizeSessions([]userstore.Session{got}), "a session with a NUL in its %s", name)
		noError(t, s.EndSession(ctx, nul.ID), "EndSession")
	}
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions after the sessions with a NUL")

	createSession(t, s, sess)
	dup := newSession(t, k, "_other", t0.Add(time.Minute))
	dup.ID = sess.ID
	check(t, s.CreateSession(ctx, dup) != nil, "CreateSession with a taken ID succeeded")
	got, _ := requireLive(t, s, sess.ID, t0)
	equal(t, "", got.SessionIndex, "the first session's SessionIndex after a refused duplicate")
	requireTime(t, sess.CreatedAt, got.CreatedAt, "CreatedAt")

	checkWith(t, "Suspend", s, func(t *testing.T, a userstore.Admin) {
		noError(t, a.Suspend(ctx, k), "Suspend")
		errorIs(t, s.CreateSession(ctx, newSession(t, k, "", t0)), userstore.ErrNotFound, "CreateSession for a suspended user")
		noError(t, a.Unsuspend(ctx, k), "Unsuspend")
		createSession(t, s, newSession(t, k, "", t0))
	})
}

// listSessions calls s.ListSessions and requires it to succeed.
func listSessions(t *testing.T, s sessionsStore, k userstore.Key, now time.Time) []userstore.Session {
	t.Helper()
	sessions, err := s.ListSessions(t.Context(), k, now)
	noError(t, err, "ListSessions(%s)", k)
	return sessions
}

// endSessions calls s.EndSessions and requires it to succeed.
func endSessions(t *testing.T, s sessionsStore, k userstore.Key, index string, now time.Time) int {
	t.Helper()
	n, err := s.EndSessions(t.Context(), k, index, now)
	noError(t, err, "EndSessions(%s, %q)", k, index)
	return n
}

func testEndSessionsByKeyAndIndex(t *testing.T, s sessionsStore) {
	k, other := provisionAdaAndGrace(t, s)
	t0 := epoch()

	s1a := newSession(t, k, "_s1", t0.Add(1*time.Second))
	s2 := newSession(t, k, "_s2", t0.Add(2*time.Second))
	s1b := newSession(t, k, "_s1", t0.Add(3*time.Second))
	none := newSession(t, k, "", t0.Add(4*time.Second))
	expired := newSession(t, k, "_s1", t0.Add(-2*time.Hour))
	theirs := newSession(t, other, "_s1", t0)
	for _, sess := range []userstore.Session{s1a, s2, s1b, none, expired, theirs} {
		createSession(t, s, sess)
	}
	now := t0.Add(5 * time.Second)
	equal(t, []string{s1a.ID, s2.ID, s1b.ID, none.ID}, sessionIDs(listSessions(t, s, k, now)), "ListSessions: live sessions, oldest first")
	equal(t, 0, len(listSessions(t, s, key("ADA"), now)), "sessions of another case of the key")

	equal(t, 2, endSessions(t, s, k, "_s1", now), "sessions with SessionIndex _s1 ended (not the expired one)")
	requireGone(t, s, s1a.ID, now, "a session of the ended SessionIndex")
	requireGone(t, s, s1b.ID, now, "a session of the ended SessionIndex")
	requireLive(t, s, s2.ID, now)
	requireLive(t, s, none.ID, now)
	requireLive(t, s, theirs.ID, now)
	equal(t, []string{s2.ID, none.ID}, sessionIDs(listSessions(t, s, k, now)), "ListSessions after ending one SessionIndex")
	equal(t, 0, endSessions(t, s, k, "_s1", now), "ending the same SessionIndex again")
	equal(t, 0, endSessions(t, s, k, "_S2", now), "SessionIndex compares exactly")

	equal(t, 2, endSessions(t, s, k, "", now), "every session of the key ended")
	requireGone(t, s, s2.ID, now, "a session of the key")
	requireGone(t, s, none.ID, now, "a session of the key")
	equal(t, 0, len(listSessions(t, s, k, now)), "sessions listed after EndSessions")
	requireLive(t, s, theirs.ID, now)
	equal(t, 0, endSessions(t, s, k, "", now), "ending every session again")
	equal(t, 0, endSessions(t, s, key("nobody"), "", now), "ending the sessions of a key with none")

	_, err := s.EndSessions(t.Context(), userstore.Key{Issuer: issuer}, "", now)
	errorIs(t, err, userstore.ErrInvalidKey, "EndSessions with an empty subject")
	_, err = s.ListSessions(t.Context(), userstore.Key{Subject: "ada"}, now)
	errorIs(t, err, userstore.ErrInvalidKey, "ListSessions with an empty issuer")
}

// normalizeSessions returns sessions with their times in UTC and without
// monotonic readings, so that they compare with ==.
func normalizeSessions(sessions []userstore.Session) []userstore.Session {
	for i := range sessions {
		sessions[i].CreatedAt = sessions[i].CreatedAt.UTC().Round(0)
		sessions[i].ExpiresAt = sessions[i].ExpiresAt.UTC().Round(0)
	}
	return sessions
}

// endByNameID calls s.EndSessionsByNameID and requires it to succeed.
func endByNameID(t *testing.T, s sessionsStore, iss, nameID, index string, now time.Time) int {
	t.Helper()
	n, err := s.EndSessionsByNameID(t.Context(), iss, nameID, index, now)
	noError(t, err, "EndSessionsByNameID(%q, %q, %q)", iss, nameID, index)
	return n
}

func testEndSessionsByNameID(t *testing.T, s sessionsStore) {
	k, grace := provisionAdaAndGrace(t, s)
	otherIssuer := userstore.Key{Issuer: "https://idp.other.example/", Subject: "ada"}
	provision(t, s, otherIssuer, userstore.Profile{}, epoch())
	t0 := epoch()
	withNameID := func(sess userstore.Session, value string) userstore.Session {
		sess.NameID = userstore.NameID{Value: value, Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"}
		return sess
	}
	// Ada's NameID is not her key's subject: the connection keys users
	// on an attribute.
	s1a := withNameID(newSession(t, k, "_s1", t0.Add(1*time.Second)), "nid-ada")
	s2 := withNameID(newSession(t, k, "_s2", t0.Add(2*time.Second)), "nid-ada")
	s1b := withNameID(newSession(t, k, "_s1", t0.Add(3*time.Second)), "nid-ada")
	expired := withNameID(newSession(t, k, "_s1", t0.Add(-2*time.Hour)), "nid-ada")
	graces := withNameID(newSession(t, grace, "_s1", t0), "nid-grace")
	// The same NameID value from another IdP names someone else.
	elsewhere := withNameID(newSession(t, otherIssuer, "_s1", t0), "nid-ada")
	noNameID := newSession(t, k, "_s1", t0)
	for _, sess := range []userstore.Session{s1a, s2, s1b, expired, graces, elsewhere, noNameID} {
		createSession(t, s, sess)
	}
	now := t0.Add(5 * time.Second)

	equal(t, 0, endByNameID(t, s, issuer, "NID-ADA", "", now), "NameIDs compare exactly")
	equal(t, 0, endByNameID(t, s, issuer, "nid-ada", "_S1", now), "SessionIndex compares exactly")
	equal(t, 0, endByNameID(t, s, "", "nid-ada", "", now), "a blank issuer")
	equal(t, 0, endByNameID(t, s, issuer, "", "", now), "a blank NameID, though a session has none")
	equal(t, 0, endByNameID(t, s, issuer+"x", "nid-ada", "", now), "another issuer's NameID")
	requireLive(t, s, noNameID.ID, now)

	equal(t, 2, endByNameID(t, s, issuer, "nid-ada", "_s1", now), "the sessions of NameID and SessionIndex _s1 (not the expired one)")
	requireGone(t, s, s1a.ID, now, "a session of the ended NameID and SessionIndex")
	requireGone(t, s, s1b.ID, now, "a session of the ended NameID and SessionIndex")
	for _, live := range []userstore.Session{s2, graces, elsewhere, noNameID} {
		requireLive(t, s, live.ID, now)
	}
	equal(t, 1, endByNameID(t, s, issuer, "nid-ada", "", now), "every remaining session of the NameID")
	requireGone(t, s, s2.ID, now, "a session of the ended NameID")
	for _, live := range []userstore.Session{graces, elsewhere, noNameID} {
		requireLive(t, s, live.ID, now)
	}
	equal(t, 0, endByNameID(t, s, issuer, "nid-ada", "", now), "ending the NameID's sessions again")
}

func testSuspendEndsSessionsForGood(t *testing.T, s sessionsStore) {
	a := skipUnless[userstore.Admin](t, s)
	k, grace := provisionAdaAndGrace(t, s)
	ctx, t0 := t.Context(), epoch()
	before := []userstore.Session{newSession(t, k, "_s1", t0), newSession(t, k, "", t0)}
	for _, sess := range before {
		createSession(t, s, sess)
	}
	theirs := newSession(t, grace, "", t0)
	createSession(t, s, theirs)

	noError(t, a.Suspend(ctx, k), "Suspend")
	for _, sess := range before {
		requireGone(t, s, sess.ID, t0, "a session of a suspended user")
	}
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions listed after Suspend")
	requireLive(t, s, theirs.ID, t0)

	noError(t, a.Unsuspend(ctx, k), "Unsuspend")
	for _, sess := range before {
		requireGone(t, s, sess.ID, t0, "a session ended by a suspension, after Unsuspend")
	}
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions listed after Unsuspend")
	equal(t, userstore.Active, lookup(t, s, k).Status, "Status after Unsuspend")

	// A sign-in after the suspension is lifted starts a session that
	// works.
	after := newSession(t, k, "", t0.Add(time.Minute))
	createSession(t, s, after)
	requireLive(t, s, after.ID, t0.Add(time.Minute))
}

func testDeleteEndsSessions(t *testing.T, s sessionsStore) {
	a := skipUnless[userstore.Admin](t, s)
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)
	sess := newSession(t, k, "", t0)
	createSession(t, s, sess)

	noError(t, a.Delete(t.Context(), k), "Delete")
	requireGone(t, s, sess.ID, t0, "a session of a deleted user")
	// The next sign-in creates the user again; the old session stays
	// ended.
	provision(t, s, k, fullProfile(), t0.Add(time.Minute))
	requireGone(t, s, sess.ID, t0.Add(time.Minute), "a session of a deleted user, after the user is created again")
	equal(t, 0, len(listSessions(t, s, k, t0)), "sessions listed after Delete")
}

func testConcurrentSessions(t *testing.T, s sessionsStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)

	// Sessions created at once are all kept, and found at once.
	sessions := make([]userstore.Session, concurrency)
	for i := range sessions {
		sessions[i] = newSession(t, k, fmt.Sprint("_s", i%4), t0.Add(time.Duration(i)))
	}
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) { errs[i] = s.CreateSession(ctx, sessions[i]) })
	for i, err := range errs {
		noError(t, err, "CreateSession %d", i)
	}
	equal(t, concurrency, len(listSessions(t, s, k, t0)), "sessions after concurrent creations")
	concurrently(concurrency, func(i int) {
		if i%2 == 0 {
			_, _, errs[i] = s.LookupSession(ctx, sessions[i].ID, t0)
			return
		}
		_, errs[i] = s.EndSessions(ctx, k, fmt.Sprint("_s", i%4), t0)
	})
	for i, err := range errs {
		// The lookups are of sessions _s0 and _s2, which no EndSessions
		// names.
		noError(t, err, "call %d", i)
	}
	// Sessions _s1 and _s3 were ended; _s0 and _s2 were never asked to.
	equal(t, concurrency/2, len(listSessions(t, s, k, t0)), "sessions left after concurrent EndSessions")

	checkWith(t, "Suspend", s, func(t *testing.T, a userstore.Admin) {
		// Sign-ins racing with a suspension: every session created
		// before it is ended with it, and none is created after, so
		// that unsuspending revives none.
		created := make([]error, concurrency)
		fresh := make([]userstore.Session, concurrency)
		for i := range fresh {
			fresh[i] = newSession(t, k, "", t0)
		}
		var suspendErr error
		concurrently(concurrency+1, func(i int) {
			if i == concurrency {
				suspendErr = a.Suspend(ctx, k)
				return
			}
			created[i] = s.CreateSession(ctx, fresh[i])
		})
		noError(t, suspendErr, "Suspend")
		noError(t, a.Unsuspend(ctx, k), "Unsuspend")
		for i, err := range created {
			if err != nil && !errors.Is(err, userstore.ErrNotFound) {
				t.Fatalf("CreateSession %d racing with Suspend: %v", i, err)
			}
			requireGone(t, s, fresh[i].ID, t0, fmt.Sprintf("session %d, created as the user was suspended, after Unsuspend", i))
		}
		equal(t, 0, len(listSessions(t, s, k, t0)), "sessions left after the suspension")
	})
}
