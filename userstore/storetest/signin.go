package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// signInStore returns s as a [userstore.SignInStore], or skips the test
// when it is not one.
func signInStore(t *testing.T, s Store) userstore.SignInStore {
	t.Helper()
	ss, ok := s.(userstore.SignInStore)
	if !ok {
		t.Skipf("%T does not implement userstore.SignInStore", s)
	}
	return ss
}

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
	require.NotEmpty(t, d.befores, "decide was not called")
	return d.befores[len(d.befores)-1]
}

// mustNotDecide is a decide function that fails the test when called.
func mustNotDecide(t *testing.T) func(*userstore.User) (userstore.Profile, error) {
	return func(*userstore.User) (userstore.Profile, error) {
		t.Error("decide was called")
		return userstore.Profile{}, errors.New("decide must not be called")
	}
}

func testSignInCreatesThenUpdates(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	p := fullProfile()
	d := &decider{p: p}
	first, err := ss.SignIn(ctx, issuer, "_a1", t0.Add(5*time.Minute), k, t0, d.decide)
	require.NoError(t, err)
	require.Nil(t, d.last(t), "decide was given a user on the first sign-in")
	require.True(t, first.Created())
	u := first.User
	require.NotEmpty(t, u.ID)
	require.Equal(t, k, u.Key)
	require.Equal(t, p, u.Profile)
	require.Equal(t, userstore.Active, u.Status)
	require.Nil(t, u.LocalRoles)
	requireTime(t, t0, u.CreatedAt, "CreatedAt")
	requireTime(t, t0, u.UpdatedAt, "UpdatedAt")
	requireTime(t, t0, u.LastSignInAt, "LastSignInAt")
	requireSameUser(t, u, lookup(t, s, k))
	// The assertion is recorded, in the replay cache the store shares.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", t0.Add(5*time.Minute), t0), userstore.ErrReplayed)

	// The store copied the profile decide returned.
	p.Groups[0] = "changed"
	p.Roles[0] = "changed"
	require.Equal(t, fullProfile(), lookup(t, s, k).Profile, "the store kept decide's slices")

	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	stored := lookup(t, s, k)
	changed := userstore.Profile{Email: "ada.king@example.com", DisplayName: "Ada King", Roles: []string{}}
	d = &decider{p: changed}
	t1 := t0.Add(36*time.Hour + 7*time.Nanosecond)
	second, err := ss.SignIn(ctx, issuer, "_a2", t1.Add(5*time.Minute), k, t1, d.decide)
	require.NoError(t, err)
	require.NotNil(t, d.last(t), "decide was not given the stored user")
	requireSameUser(t, stored, *d.last(t))
	require.False(t, second.Created())
	requireSameUser(t, stored, *second.Before)
	want := stored
	want.Profile = changed
	want.UpdatedAt = t1
	want.LastSignInAt = t1
	requireSameUser(t, want, second.User)
	requireSameUser(t, want, lookup(t, s, k))
	require.Len(t, list(t, s), 1)
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", t1.Add(5*time.Minute), t1), userstore.ErrReplayed)
}

func testSignInReplayed(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// An assertion consumed through the ReplayCache is used up for SignIn.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_used", exp, t0))
	_, err := ss.SignIn(ctx, issuer, "_used", exp, k, t0, mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound, "a replayed SignIn created the user")

	_, err = ss.SignIn(ctx, issuer, "_a1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err)
	stored := lookup(t, s, k)
	_, err = ss.SignIn(ctx, issuer, "_a1", exp, k, t0.Add(time.Minute), mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	requireSameUser(t, stored, lookup(t, s, k))

	// Assertion IDs are scoped by issuer.
	_, err = ss.SignIn(ctx, "https://other.example/", "_a1", exp, k, t0.Add(time.Minute), (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "the same ID from another issuer was refused")

	// After the record expires the ID is accepted again.
	later := exp.Add(time.Second)
	res, err := ss.SignIn(ctx, issuer, "_a1", later.Add(5*time.Minute), k, later, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "an expired record still refused the assertion")
	requireTime(t, later, res.User.LastSignInAt, "LastSignInAt")
}

func testSignInSuspended(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	provision(t, s, k, fullProfile(), t0)
	require.NoError(t, s.GrantRole(ctx, k, "admin"))
	require.NoError(t, s.Suspend(ctx, k))
	stored := lookup(t, s, k)

	t1 := t0.Add(time.Hour)
	res, err := ss.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	require.NoError(t, err, "a suspended user's SignIn is an outcome, not an error")
	require.Equal(t, userstore.Suspended, res.User.Status)
	requireSameUser(t, stored, res.User)
	// The call did not create the user (Provisioned.Before is nil only
	// then), and changed nothing.
	require.NotNil(t, res.Before, "a suspended user's SignIn reported a new user")
	requireSameUser(t, stored, *res.Before)
	requireSameUser(t, stored, lookup(t, s, k))

	// The assertion is used up.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_s1", t1.Add(5*time.Minute), t1), userstore.ErrReplayed)
	_, err = ss.SignIn(ctx, issuer, "_s1", t1.Add(5*time.Minute), k, t1, mustNotDecide(t))
	require.ErrorIs(t, err, userstore.ErrReplayed)

	// Unsuspended by an administrator, the user signs in again.
	require.NoError(t, s.Unsuspend(ctx, k))
	d := &decider{p: userstore.Profile{DisplayName: "back"}}
	res, err = ss.SignIn(ctx, issuer, "_s2", t1.Add(5*time.Minute), k, t1, d.decide)
	require.NoError(t, err)
	require.Equal(t, userstore.Active, res.User.Status)
	require.Equal(t, "back", lookup(t, s, k).Profile.DisplayName)
}

// refusal is an error type a decide function returns.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "refused: " + r.reason }

func testSignInDecideError(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	k := key("ada")
	t0 := epoch()
	exp := t0.Add(5 * time.Minute)

	// On a first sign-in: no user, no record of the assertion.
	want := &refusal{"not in a required group"}
	d := &decider{err: want}
	_, err := ss.SignIn(ctx, issuer, "_d1", exp, k, t0, d.decide)
	require.Error(t, err)
	require.Equal(t, 1, d.calls())
	require.ErrorIs(t, err, want, "errors.Is does not find decide's error")
	var got *refusal
	require.ErrorAs(t, err, &got, "errors.As does not find decide's error")
	require.Same(t, want, got)
	_, err = s.Lookup(ctx, k)
	require.ErrorIs(t, err, userstore.ErrNotFound, "decide's error did not stop the user's creation")
	require.Empty(t, list(t, s))

	// The same assertion can be used again.
	res, err := ss.SignIn(ctx, issuer, "_d1", exp, k, t0, (&decider{p: fullProfile()}).decide)
	require.NoError(t, err, "decide's error left the assertion recorded")
	require.True(t, res.Created())
	stored := lookup(t, s, k)

	// On a returning sign-in: the user is unchanged and the assertion
	// not recorded. A wrapped sentinel is found too.
	sentinel := errors.New("tenant not allowed")
	d = &decider{p: userstore.Profile{DisplayName: "must not be written"}, err: fmt.Errorf("policy: %w", sentinel)}
	_, err = ss.SignIn(ctx, issuer, "_d2", exp, k, t0.Add(time.Minute), d.decide)
	require.ErrorIs(t, err, sentinel)
	requireSameUser(t, stored, *d.last(t))
	requireSameUser(t, stored, lookup(t, s, k))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_d2", exp, t0), "decide's error left the assertion recorded")
}

func testSignInInvalidKey(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	t0 := epoch()
	for i, k := range []userstore.Key{{Issuer: issuer}, {Subject: "ada"}, {}} {
		id := fmt.Sprint("_i", i)
		_, err := ss.SignIn(ctx, issuer, id, t0.Add(time.Minute), k, t0, mustNotDecide(t))
		require.ErrorIs(t, err, userstore.ErrInvalidKey, "SignIn(%s)", k)
		require.NoError(t, s.ConsumeAssertion(ctx, issuer, id, t0.Add(time.Minute), t0), "a failed SignIn recorded the assertion")
	}
	require.Empty(t, list(t, s))
}

func testSignInConcurrentFirst(t *testing.T, s Store) {
	ss := signInStore(t, s)
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
		results[i], errs[i] = ss.SignIn(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), k, epoch().Add(time.Duration(i)*time.Second),
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
		require.NoError(t, err, "call %d", i)
		res := results[i]
		require.True(t, called[i], "call %d did not call decide", i)
		require.Equal(t, results[0].User.ID, res.User.ID, "call %d got another user", i)
		require.Equal(t, fmt.Sprint(i), res.User.Profile.DisplayName, "call %d", i)
		if res.Created() {
			created++
			require.Nil(t, lastBefore[i], "call %d created the user but decide saw one", i)
			continue
		}
		require.NotNil(t, lastBefore[i], "call %d updated the user but decide saw none", i)
		require.Equal(t, res.Before.Profile, lastBefore[i].Profile, "call %d: decide saw another user than the one it replaced", i)
		require.NotEqual(t, res.User.Profile.DisplayName, res.Before.Profile.DisplayName, "call %d saw its own write as before", i)
		befores[res.Before.Profile.DisplayName]++
	}
	require.Equal(t, 1, created, "want exactly one call to create the user")
	for name, n := range befores {
		require.Equal(t, 1, n, "profile %s was overwritten %d times", name, n)
	}
	require.Len(t, befores, concurrency-1)
	require.NotContains(t, befores, lookup(t, s, k).Profile.DisplayName, "the stored profile was overwritten")
	users := list(t, s)
	require.Len(t, users, 1, "concurrent first sign-ins created more than one user")
	for i := range concurrency {
		require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, fmt.Sprint("_c", i), epoch().Add(time.Hour), epoch()), userstore.ErrReplayed,
			"call %d did not record its assertion", i)
	}
}

func testSignInConcurrentSameAssertion(t *testing.T, s Store) {
	ss := signInStore(t, s)
	ctx := t.Context()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		_, errs[i] = ss.SignIn(ctx, issuer, "_captured", epoch().Add(time.Hour), key(fmt.Sprint("user-", i)), epoch(),
			(&decider{p: fullProfile()}).decide)
	})
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, userstore.ErrReplayed, "call %d", i)
	}
	require.Equal(t, 1, ok, "want exactly one successful SignIn of one assertion")
	require.Len(t, list(t, s), 1, "replayed SignIns created users")
}
