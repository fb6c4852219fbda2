package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the SignInStore suite: the contract of
// userstore.SignInStore, for a store that implements it and is its own
// userstore.ReplayCache. What only an Admin can show runs as a subtest
// that is skipped when the store is not one.

// decider is a decide function for SignIn that records the before images
// it is given.
type decider struct {
	mu      sync.Mutex
	befores []*userstore.User
	p       userstore.Profile
	err     error
}

func (d *decider) decide(before *userstore.User) (userstore.Profile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if before != nil {
		b := *before
		b.Profile = before.Profile.Clone()
		before = &b
	}
	d.befores = append(d.befores, before)
	return d.p, d.err
}

// calls returns how often decide was called.
func (d *decider) calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.befores)
}

// last returns the before image of decide's latest call.
func (d *decider) last(t *testing.T) *userstore.User {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	check(t, len(d.befores) > 0, "decide was not called")
	return d.befores[len(d.befores)-1]
}

// mustNotDecide is a decide function that fails the test when called.
func mustNotDecide(t *testing.T) func(*userstore.User) (userstore.Profile, error) {
	return func(*userstore.User) (userstore.Profile, error) {
		t.Error("decide was called")
		return userstore.Profile{}, errors.New("decide must not be called")
	}
}

func testSignInCreatesThenUpdates(t *testing.T, s signInStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	p := fullProfile()
	d := &decider{p: p}
	first, err := s.SignIn(ctx, issuer, "_a1", t0.Add(5*time.Minute), k, t0, d.decide)
	noError(t, err, "first SignIn")
	check(t, d.last(t) == nil, "decide was given a user on the first sign-in")
	check(t, first.Created(), "first SignIn did not create")
	u := first.User
	check(t, u.ID != "", "the new user has no ID")
	equal(t, k, u.Key, "Key")
	equal(t, p, u.Profile, "Profile")
	equal(t, userstore.Active, u.Status, "Status")
	check(t, u.LocalRoles == nil, "a new user has local roles: %#v", u.LocalRoles)
	requireTime(t, t0, u.CreatedAt, "CreatedAt")
	requireTime(t, t0, u.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, u.LastSignInAt, "LastSignInAt")
	requireSameUser(t, u, lookup(t, s, k))
	// The assertion is recorded, in the replay cache the store shares.
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", t0.Add(5*time.Minute), t0), userstore.ErrReplayed,
		"ConsumeAssertion of the assertion SignIn used")

	// The store copied the profile decide returned.
	p.Groups[0] = "changed"
	p.Roles[0] = "changed"
	equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept decide's slices")

	// decide must be given the stored user whole: with an Admin, local
	// roles included.
	checkWith(t, "GrantRole", s, func(t *testing.T, a userstore.Admin) {
		noError(t, a.GrantRole(ctx, k, "admin"), "GrantRole")
	})
	stored := lookup(t, s, k)
	changed := userstore.Profile{Email: "ada.king@example.com", DisplayName: "Ada King", Roles: []string{}}
	d = &decider{p: changed}
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	second, err := s.SignIn(ctx, issuer, "_a2", t1.Add(5*time.Minute), k, t1, d.decide)
	noError(t, err, "second SignIn")
	check(t, d.last(t) != nil, "decide was not given the stored user")
	requireSameUser(t, stored, *d.last(t))
	check(t, !second.Created(), "second SignIn created again")
	requireSameUser(t, stored, *second.Before)
	want := stored
	want.Profile = changed
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, second.User)
	requireSameUser(t, want, lookup(t, s, k))
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, []string{"admin"}, want.LocalRoles, "LocalRoles the second SignIn kept")
		equal(t, 1, len(list(t, a)), "number of users")
	})
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", t1.Add(5*time.Minute), t1), userstore.ErrReplayed,
		"ConsumeAssertion of the assertion the second SignIn used")
}

func testSignInReplayed(t *testing.T, s signInStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// An assertion consumed through the ReplayCache is used up for SignIn.
	noError(t, s.ConsumeAssertion(ctx, issuer, "_used", exp, t0), "ConsumeAssertion")
	_, err := s.SignIn(ctx, issuer, "_used", exp, k, t0, mustNotDecide(t))
	errorIs(t, err, userstore.ErrReplayed, "SignIn of a consumed assertion")
	_, err = s.Lookup(ctx, k)
	errorIs(t, err, userstore.ErrNotFound, "a replayed SignIn created the user")

	_, err = s.SignIn(ctx, issuer, "_a1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	noError(t, err, "SignIn")
	stored := lookup(t, s, k)
	_, err = s.SignIn(ctx, issuer, "_a1", exp, k, t0.Add(time.Minute), mustNotDecide(t))
	errorIs(t, err, userstore.ErrReplayed, "SignIn with the same assertion again")
	requireSameUser(t, stored, lookup(t, s, k))

	// Assertion IDs are scoped by issuer.
	_, err = s.SignIn(ctx, "https://other.example/", "_a1", exp, k, t0.Add(time.Minute), (&decider{p: fullProfile()}).decide)
	noError(t, err, "the same ID from another issuer was refused")

	// After the record expires the ID is accepted again.
	later := exp.Add(time.Second)
	res, err := s.SignIn(ctx, issuer, "_a1", later.Add(5*time.Minute), k, later, (&decider{p: fullProfile()}).decide)
	noError(t, err, "an expired record still refused the assertion")
	requireTime(t, later, res.User.LastSignInAt, "LastSignInAt")
}

func testSignInSuspended(t *testing.T, s signInStore) {
	a := skipUnless[userstore.Admin](t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)
	noError(t, a.GrantRole(ctx, k, "admin"), "GrantRole")
	noError(t, a.Suspend(ctx, k), "Suspend")
	stored := lookup(t, s, k)

	t1 := t0.Add(time.Hour)
	res, err := s.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	noError(t, err, "a suspended user's SignIn is an outcome, not an error")
	equal(t, userstore.Suspended, res.User.Status, "Status")
	requireSameUser(t, stored, res.User)
	// The call did not create the user (Provisioned.Before is nil only
	// then), and changed nothing.
	check(t, res.Before != nil, "a suspended user's SignIn reported a new user")
	requireSameUser(t, stored, *res.Before)
	requireSameUser(t, stored, lookup(t, s, k))

	// The assertion is used up.
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_s1", t1.Add(5*time.Minute), t1), userstore.ErrReplayed,
		"ConsumeAssertion of the suspended user's assertion")
	_, err = s.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	errorIs(t, err, userstore.ErrReplayed, "SignIn with the suspended user's assertion again")

	// Unsuspended by an administrator, the user signs in again.
	noError(t, a.Unsuspend(ctx, k), "Unsuspend")
	d := &decider{p: userstore.Profile{DisplayName: "back"}}
	res, err = s.SignIn(ctx, issuer, "_s2", t1.Add(5*time.Minute), k, t1, d.decide)
	noError(t, err, "SignIn after Unsuspend")
	equal(t, userstore.Active, res.User.Status, "Status after Unsuspend")
	equal(t, "back", lookup(t, s, k).Profile.DisplayName, "DisplayName after Unsuspend")
}

// refusal is an error type a decide function returns.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "refused: " + r.reason }

func testSignInDecideError(t *testing.T, s signInStore) {
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// On a first sign-in: no user, no record of the assertion.
	want := &refusal{"not in a required group"}
	d := &decider{err: want}
	_, err := s.SignIn(ctx, issuer, "_d1", exp, k, t0, d.decide)
	check(t, err != nil, "SignIn succeeded though decide failed")
	equal(t, 1, d.calls(), "calls of decide")
	check(t, errors.Is(err, want), "errors.Is does not find decide's error in %v", err)
	var got *refusal
	check(t, errors.As(err, &got), "errors.As does not find decide's error in %v", err)
	check(t, got == want, "errors.As found %p, not decide's error %p", got, want)
	_, err = s.Lookup(ctx, k)
	errorIs(t, err, userstore.ErrNotFound, "decide's error did not stop the user's creation")
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 0, len(list(t, a)), "users listed after decide's error")
	})

	// The same assertion can be used again.
	res, err := s.SignIn(ctx, issuer, "_d1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	noError(t, err, "decide's error left the assertion recorded")
	check(t, res.Created(), "SignIn after decide's error did not create")
	stored := lookup(t, s, k)

	// On a returning sign-in: the user is unchanged and the assertion
	// not recorded. A wrapped sentinel is found too.
	sentinel := errors.New("tenant not allowed")
	d = &decider{p: userstore.Profile{DisplayName: "must not be written"}, err: fmt.Errorf("policy: %w", sentinel)}
	_, err = s.SignIn(ctx, issuer, "_d2", exp, k, t0.Add(time.Minute), d.decide)
	errorIs(t, err, sentinel, "SignIn of a returning user decide refused")
	requireSameUser(t, stored, *d.last(t))
	requireSameUser(t, stored, lookup(t, s, k))
	noError(t, s.ConsumeAssertion(ctx, issuer, "_d2", exp, t0), "decide's error left the assertion recorded")
}

func testSignInInvalidKey(t *testing.T, s signInStore) {
	ctx := t.Context()
	t0 := epoch()
	for i, k := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		id := fmt.Sprint("_i", i)
		_, err := s.SignIn(ctx, issuer, id, t0.Add(time.Minute), k, t0, mustNotDecide(t))
		errorIs(t, err, userstore.ErrInvalidKey, "SignIn(%s)", k)
		noError(t, s.ConsumeAssertion(ctx, issuer, id, t0.Add(time.Minute), t0), "a failed SignIn recorded the assertion")
	}
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 0, len(list(t, a)), "a failed SignIn wrote a user")
	})
}

func testSignInConcurrentFirst(t *testing.T, s signInStore) {
	ctx := t.Context()
	k := key("ada")
	results := make([]userstore.Provisioned, concurrency)
	errs := make([]error, concurrency)
	// lastBefore[i] is what call i's decide last saw: decide may run
	// more than once when a store retries.
	lastBefore := make([]*userstore.User, concurrency)
	called := make([]bool, concurrency)
	concurrently(concurrency, func(i int) {
		p := userstore.Profile{DisplayName: fmt.Sprint(i), Groups: []string{fmt.Sprint(i)}}
		results[i], errs[i] = s.SignIn(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), k, epoch().Add(time.Duration(i)*time.Second),
			func(before *userstore.User) (userstore.Profile, error) {
				called[i] = true
				lastBefore[i] = nil
				if before != nil {
					b := *before
					lastBefore[i] = &b
				}
				return p, nil
			})
	})
	created := 0
	befores := make(map[string]int)
	for i, err := range errs {
		noError(t, err, "call %d", i)
		res := results[i]
		check(t, called[i], "call %d did not call decide", i)
		equal(t, results[0].User.ID, res.User.ID, "call %d got another user", i)
		equal(t, fmt.Sprint(i), res.User.Profile.DisplayName, "call %d", i)
		if res.Created() {
			created++
			check(t, lastBefore[i] == nil, "call %d created the user but decide saw one", i)
			continue
		}
		check(t, lastBefore[i] != nil, "call %d updated the user but decide saw none", i)
		equal(t, res.Before.Profile, lastBefore[i].Profile, "call %d: decide saw another user than the one it replaced", i)
		check(t, res.User.Profile.DisplayName != res.Before.Profile.DisplayName, "call %d saw its own write as before", i)
		befores[res.Before.Profile.DisplayName]++
	}
	equal(t, 1, created, "want exactly one call to create the user")
	for name, n := range befores {
		equal(t, 1, n, "profile %s was overwritten %d times", name, n)
	}
	equal(t, concurrency-1, len(befores), "number of profiles overwritten")
	final := lookup(t, s, k).Profile.DisplayName
	_, overwritten := befores[final]
	check(t, !overwritten, "the stored profile %s was overwritten", final)
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 1, len(list(t, a)), "concurrent first sign-ins created more than one user")
	})
	for i := range concurrency {
		errorIs(t, s.ConsumeAssertion(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), epoch()), userstore.ErrReplayed,
			"call %d did not record its assertion", i)
	}
}

func testSignInConcurrentSameAssertion(t *testing.T, s signInStore) {
	ctx := t.Context()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		_, errs[i] = s.SignIn(ctx, issuer, "_captured", epoch().Add(time.Hour), key(fmt.Sprint("user-", i)), epoch(),
			(&decider{p: fullProfile()}).decide)
	})
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		if !errors.Is(err, userstore.ErrReplayed) {
			t.Errorf("call %d: got error %v, want one wrapping %q", i, err, userstore.ErrReplayed)
		}
	}
	equal(t, 1, ok, "want exactly one successful SignIn of one assertion")
	// Only the call that succeeded created its user.
	for i, err := range errs {
		_, lookupErr := s.Lookup(ctx, key(fmt.Sprint("user-", i)))
		if err == nil {
			noError(t, lookupErr, "Lookup of the user of the successful call %d", i)
		} else {
			errorIs(t, lookupErr, userstore.ErrNotFound, "a replayed SignIn (call %d) created its user", i)
		}
	}
	checkWith(t, "List", s, func(t *testing.T, a userstore.Admin) {
		equal(t, 1, len(list(t, a)), "replayed SignIns created users")
	})
}

// testSignInRefusesTakenEmail: a sign-in whose decided profile has the
// email of another user of the issuer is refused with ErrEmailInUse, and
// writes nothing: no user, no record of the assertion.
func testSignInRefusesTakenEmail(t *testing.T, s signInStore) {
	ctx := t.Context()
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)
	provision(t, s, key("ada"), userstore.Profile{Email: "ada@example.com"}, t0)
	_, err := s.SignIn(ctx, issuer, "_e1", exp, key("impostor"), t0, (&decider{p: userstore.Profile{Email: "Ada@Example.com"}}).decide)
	errorIs(t, err, userstore.ErrEmailInUse, "a first sign-in with another user's email")
	_, err = s.Lookup(ctx, key("impostor"))
	errorIs(t, err, userstore.ErrNotFound, "the refused sign-in created the user")
	_, err = s.SignIn(ctx, issuer, "_e1", exp, key("impostor"), t0, (&decider{p: userstore.Profile{Email: "impostor@example.com"}}).decide)
	noError(t, err, "the refused sign-in left its assertion recorded")
}
