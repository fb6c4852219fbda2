package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the SignInWithStore suite: the contract of
// userstore.SignInWithStore, the sign-in that also reads the users
// holding the asserted email and records the session, in the same
// transaction as the assertion's record and the user's write.

// signInWithStore is what the SignInWithStore suite tests.
type signInWithStore interface {
	userstore.Store
	userstore.ReplayCache
	userstore.SignInWithStore
}

var signInWithTests = []test[signInWithStore]{
	{"SignInWithReadsEmailOnFirstSignIn", testSignInWithReadsEmail},
	{"SignInWithSession", testSignInWithSession},
	{"SignInWithSessionNotForSuspended", testSignInWithSessionNotForSuspended},
	{"SignInWithFailureWritesNothing", testSignInWithFailureWritesNothing},
	{"SignInWithConcurrentFirst", testSignInWithConcurrentFirst},
}

// stateDecider is a Decide function for SignInWith that records the
// states it is given.
type stateDecider struct {
	mu     sync.Mutex
	states []userstore.SignInState
	p      userstore.Profile
	err    error
}

func (d *stateDecider) decide(st userstore.SignInState) (userstore.Profile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.states = append(d.states, st)
	return d.p, d.err
}

// last returns the state of decide's latest call.
func (d *stateDecider) last(t *testing.T) userstore.SignInState {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	check(t, len(d.states) > 0, "Decide was not called")
	return d.states[len(d.states)-1]
}

// signInWith calls s.SignInWith for k with assertion id at t0, with the
// given email and session and d's Decide.
func signInWith(t *testing.T, s signInWithStore, id string, k userstore.Key, t0 time.Time, email string, sess *userstore.Session, d *stateDecider) (userstore.Provisioned, error) {
	t.Helper()
	return s.SignInWith(t.Context(), userstore.SignInRequest{Issuer: issuer, AssertionID: id, Expires: t0.Add(5 * time.Minute),
		Key: k, Now: t0, Email: email, Session: sess, Decide: d.decide})
}

// requireSameUsers requires got to be want, user by user, in order.
func requireSameUsers(t *testing.T, want, got []userstore.User) {
	t.Helper()
	equal(t, len(want), len(got), "number of users")
	for i := range min(len(want), len(got)) {
		requireSameUser(t, want[i], got[i])
	}
}

// testSignInWithReadsEmail: a first sign-in with an email is given the
// users holding it, as LookupEmail finds and orders them, whatever their
// issuer; a returning sign-in, and one with a blank email, read none.
func testSignInWithReadsEmail(t *testing.T, s signInWithStore) {
	t0 := epoch()
	provision(t, s, userstore.Key{Issuer: userstore.LocalIssuer, Subject: "ada-local"}, userstore.Profile{Email: "ada@example.com"}, t0)
	provision(t, s, userstore.Key{Issuer: "https://other.example/", Subject: "ada"}, userstore.Profile{Email: "ADA@example.com"}, t0.Add(time.Second))
	provision(t, s, key("grace"), userstore.Profile{Email: "grace@example.com"}, t0)
	holders := lookupEmail(t, s, "ada@example.com")
	equal(t, 2, len(holders), "users holding the email")

	d := &stateDecider{p: userstore.Profile{Email: "Ada@Example.com", DisplayName: "Ada"}}
	res, err := signInWith(t, s, "_w1", key("ada"), t0, " Ada@Example.COM ", nil, d)
	noError(t, err, "first SignInWith")
	check(t, res.Created(), "the first SignInWith did not create")
	st := d.last(t)
	check(t, st.Before == nil, "Decide was given a user on a first sign-in")
	check(t, st.EmailLooked, "the users holding the email were not read")
	requireSameUsers(t, holders, st.EmailUsers)
	errorIs(t, s.ConsumeAssertion(t.Context(), issuer, "_w1", t0.Add(5*time.Minute), t0), userstore.ErrReplayed,
		"ConsumeAssertion of the assertion SignInWith used")

	// Returning: Before is given, the email is not read.
	d = &stateDecider{p: userstore.Profile{Email: "ada@example.com", DisplayName: "Ada L."}}
	res, err = signInWith(t, s, "_w2", key("ada"), t0.Add(time.Minute), "ada@example.com", nil, d)
	noError(t, err, "returning SignInWith")
	check(t, !res.Created(), "the returning SignInWith created")
	st = d.last(t)
	check(t, st.Before != nil, "Decide was not given the stored user")
	check(t, !st.EmailLooked && st.EmailUsers == nil, "a returning sign-in read the email's users: %v", st.EmailUsers)
	equal(t, "Ada L.", lookup(t, s, key("ada")).Profile.DisplayName, "DisplayName written")

	// A blank email reads nothing; an email no one holds reads no one.
	for i, email := range []string{"", "  "} {
		d = &stateDecider{p: userstore.Profile{}}
		_, err = signInWith(t, s, fmt.Sprint("_b", i), key(fmt.Sprint("blank-", i)), t0, email, nil, d)
		noError(t, err, "SignInWith with email %q", email)
		st = d.last(t)
		check(t, !st.EmailLooked && st.EmailUsers == nil, "email %q: the store read users %v", email, st.EmailUsers)
	}
	d = &stateDecider{p: userstore.Profile{Email: "nobody@example.com"}}
	_, err = signInWith(t, s, "_n", key("nobody"), t0, "nobody@example.com", nil, d)
	noError(t, err, "SignInWith of an email no one holds")
	st = d.last(t)
	check(t, st.EmailLooked, "the users holding the email were not read")
	equal(t, 0, len(st.EmailUsers), "users holding an email no one holds")
}

// testSignInWithSession: the session is recorded with the user's write,
// on a creation and on an update, and is live with the user as written.
func testSignInWithSession(t *testing.T, s signInWithStore) {
	t0 := epoch()
	k := key("ada")
	sess := newSession(t, k, "idx-1", t0)
	res, err := signInWith(t, s, "_s1", k, t0, "ada@example.com", &sess, &stateDecider{p: fullProfile()})
	noError(t, err, "first SignInWith with a session")
	check(t, res.Created(), "the first SignInWith did not create")
	got, u, err := s.LookupSession(t.Context(), sess.ID, t0.Add(time.Minute))
	noError(t, err, "LookupSession of the session SignInWith recorded")
	equal(t, normalizeSessions([]userstore.Session{sess}), normalizeSessions([]userstore.Session{got}), "session")
	requireSameUser(t, res.User, u)

	t1 := t0.Add(time.Hour / 2)
	second := newSession(t, k, "idx-2", t1)
	res, err = signInWith(t, s, "_s2", k, t1, "ada@example.com", &second, &stateDecider{p: userstore.Profile{DisplayName: "Ada L."}})
	noError(t, err, "returning SignInWith with a session")
	check(t, !res.Created(), "the returning SignInWith created")
	live, err := s.ListSessions(t.Context(), k, t1.Add(time.Minute))
	noError(t, err, "ListSessions")
	equal(t, []string{sess.ID, second.ID}, sessionIDs(live), "sessions of the user")
	_, u, err = s.LookupSession(t.Context(), second.ID, t1.Add(time.Minute))
	noError(t, err, "LookupSession of the second session")
	equal(t, "Ada L.", u.Profile.DisplayName, "the session's user is the user as written")
}

// testSignInWithSessionNotForSuspended: a suspended user's sign-in
// records the assertion, calls no Decide and records no session.
func testSignInWithSessionNotForSuspended(t *testing.T, s signInWithStore) {
	a := skipUnless[userstore.Admin](t, s)
	t0 := epoch()
	k := key("ada")
	provision(t, s, k, fullProfile(), t0)
	noError(t, a.Suspend(t.Context(), k), "Suspend")
	sess := newSession(t, k, "", t0)
	res, err := s.SignInWith(t.Context(), userstore.SignInRequest{Issuer: issuer, AssertionID: "_x", Expires: t0.Add(5 * time.Minute),
		Key: k, Now: t0, Email: "ada@example.com", Session: &sess,
		Decide: func(userstore.SignInState) (userstore.Profile, error) {
			t.Error("Decide was called for a suspended user")
			return userstore.Profile{}, errors.New("must not be called")
		}})
	noError(t, err, "a suspended user's SignInWith is an outcome, not an error")
	equal(t, userstore.Suspended, res.User.Status, "Status")
	_, _, err = s.LookupSession(t.Context(), sess.ID, t0.Add(time.Minute))
	errorIs(t, err, userstore.ErrNotFound, "a suspended user's SignInWith recorded a session")
	noError(t, a.Unsuspend(t.Context(), k), "Unsuspend")
	_, _, err = s.LookupSession(t.Context(), sess.ID, t0.Add(time.Minute))
	errorIs(t, err, userstore.ErrNotFound, "the session appeared on unsuspension")
	errorIs(t, s.ConsumeAssertion(t.Context(), issuer, "_x", t0.Add(5*time.Minute), t0), userstore.ErrReplayed,
		"the suspended user's assertion was not recorded")
}

// testSignInWithFailureWritesNothing: whatever fails, a refusal by
// Decide, an email another user of the issuer has, a session that is
// invalid, of another key or with a taken ID, nothing is written: no
// user, no change to one, no assertion record, no session.
func testSignInWithFailureWritesNothing(t *testing.T, s signInWithStore) {
	t0 := epoch()
	provision(t, s, key("grace"), userstore.Profile{Email: "grace@example.com"}, t0)
	taken := newSession(t, key("grace"), "", t0)
	noError(t, s.CreateSession(t.Context(), taken), "CreateSession")
	returning := key("returning")
	provision(t, s, returning, userstore.Profile{DisplayName: "before"}, t0)
	stored := lookup(t, s, returning)

	refused := &refusal{"not in a required group"}
	for _, k := range []userstore.Key{key("ada"), returning} {
		for _, tc := range []struct {
			name    string
			p       userstore.Profile
			decide  error
			session func(sess userstore.Session) userstore.Session
			want    error
		}{
			{name: "Decide refuses", p: userstore.Profile{DisplayName: "must not be written"}, decide: refused, want: refused},
			{name: "email in use", p: userstore.Profile{Email: "Grace@example.com"}, want: userstore.ErrEmailInUse},
			{name: "session expires at its creation", p: userstore.Profile{DisplayName: "must not be written"},
				session: func(sess userstore.Session) userstore.Session { sess.ExpiresAt = sess.CreatedAt; return sess }},
			{name: "session of another key", p: userstore.Profile{DisplayName: "must not be written"},
				session: func(sess userstore.Session) userstore.Session { sess.Key = key("grace"); return sess }},
			{name: "session ID taken", p: userstore.Profile{DisplayName: "must not be written"},
				session: func(sess userstore.Session) userstore.Session { sess.ID = taken.ID; return sess }},
		} {
			t.Run(k.Subject+"/"+tc.name, func(t *testing.T) {
				sess := newSession(t, k, "", t0)
				if tc.session != nil {
					sess = tc.session(sess)
				}
				id := "_f-" + k.Subject + "-" + tc.name
				_, err := signInWith(t, s, id, k, t0.Add(time.Minute), "grace@example.com", &sess, &stateDecider{p: tc.p, err: tc.decide})
				check(t, err != nil, "SignInWith succeeded")
				if tc.want != nil {
					errorIs(t, err, tc.want, "SignInWith")
				}
				if k == returning {
					requireSameUser(t, stored, lookup(t, s, k))
				} else {
					_, err = s.Lookup(t.Context(), k)
					errorIs(t, err, userstore.ErrNotFound, "the failed SignInWith created the user")
				}
				noError(t, s.ConsumeAssertion(t.Context(), issuer, id, t0.Add(5*time.Minute), t0), "the failed SignInWith recorded the assertion")
				live, err := s.ListSessions(t.Context(), k, t0.Add(2*time.Minute))
				noError(t, err, "ListSessions")
				equal(t, 0, len(live), "sessions recorded by the failed SignInWith")
				_, u, err := s.LookupSession(t.Context(), taken.ID, t0.Add(2*time.Minute))
				noError(t, err, "LookupSession of the session whose ID was taken")
				equal(t, key("grace"), u.Key, "the taken session's user")
			})
		}
	}
}

// testSignInWithConcurrentFirst: concurrent first sign-ins of one person,
// each with its session, create one user, and every session is live.
func testSignInWithConcurrentFirst(t *testing.T, s signInWithStore) {
	t0 := epoch()
	k := key("ada")
	sessions := make([]userstore.Session, concurrency)
	for i := range sessions {
		sessions[i] = newSession(t, k, fmt.Sprint(i), t0)
	}
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		results[i], errs[i] = s.SignInWith(t.Context(), userstore.SignInRequest{Issuer: issuer, AssertionID: fmt.Sprint("_c", i),
			Expires: t0.Add(time.Hour), Key: k, Now: t0, Email: "ada@example.com", Session: &sessions[i],
			Decide: func(st userstore.SignInState) (userstore.Profile, error) {
				return userstore.Profile{Email: "ada@example.com", DisplayName: fmt.Sprint(i)}, nil
			}})
	})
	created := 0
	for i, err := range errs {
		noError(t, err, "call %d", i)
		equal(t, results[0].User.ID, results[i].User.ID, "call %d got another user", i)
		if results[i].Created() {
			created++
		}
	}
	equal(t, 1, created, "want exactly one call to create the user")
	live, err := s.ListSessions(t.Context(), k, t0.Add(time.Minute))
	noError(t, err, "ListSessions")
	equal(t, concurrency, len(live), "sessions of the concurrent sign-ins")
}
