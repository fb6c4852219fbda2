package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/samljit/samljit/userstore"
)

// provision decides what the sign-in does, by [decide], and does it: it
// resolves an overage of groups, then refuses, links, creates or updates,
// recording the assertion ID with the write (in one transaction where the
// store is a [userstore.SignInStore]). When it fails for a reason of the
// store, the replay record is left unconsumed so the person can retry.
func (m *Middleware) provision(ctx context.Context, r *http.Request, s *signIn) (userstore.Provisioned, EventKind, error) {
	if err := m.resolveOverage(ctx, s); err != nil {
		return userstore.Provisioned{}, "", err
	}
	f := m.facts(s)
	if m.signInStore != nil {
		return m.provisionAtOnce(ctx, r, s, f)
	}
	return m.provisionSteps(ctx, r, s, f)
}

// facts are the decision's facts once the sign-in is validated and its
// groups resolved: nothing read from the store yet.
func (m *Middleware) facts(s *signIn) *signInFacts {
	return &signInFacts{issuer: s.conn.issuer, key: s.key, profile: s.profile, overage: s.overage, linker: m.linker != nil}
}

// provisionAtOnce is provision on a [userstore.SignInStore].
//
// A returning user's sign-in is one transaction with no read before it:
// decide meets the stored user inside the transaction. So is a first
// sign-in whose decision needs nothing from outside, and, on a
// [userstore.SignInWithStore], one that needs only the users holding the
// email, which the store reads inside the transaction. When it needs
// something else (a hook's answer, or the email's users from a plain
// SignInStore), it cannot have it inside the transaction: SignIn's decide
// may not call the store, and the application's hooks run outside any
// transaction. decide's need then ends the transaction with
// errNeedFacts, which writes nothing; the facts
// are gathered outside and the transaction runs once more with them. A
// first sign-in the decision refuses ends it the same way and is refused
// outside, so that its reason reads alike on every store, not wrapped in
// the store's error.
// Learning earlier that a sign-in is first would take a Lookup before the
// transaction, which every returning sign-in would pay for.
func (m *Middleware) provisionAtOnce(ctx context.Context, r *http.Request, s *signIn, f *signInFacts) (userstore.Provisioned, EventKind, error) {
	p, err := m.signInTx(ctx, s, f)
	if errors.Is(err, errNeedFacts) {
		switch v := m.settle(ctx, r, s, f); v.action {
		case actionRefuse:
			return p, "", v.err
		case actionLink:
			return m.link(ctx, s, v)
		}
		p, err = m.signInTx(ctx, s, f)
	}
	var d *decided
	switch {
	case errors.Is(err, userstore.ErrReplayed):
		return p, "", fmt.Errorf("%w: assertion %q: %w", ErrReplayed, s.assertion.ID, err)
	case errors.As(err, &d):
		return p, "", err
	case errors.Is(err, errNeedFacts):
		return p, "", fmt.Errorf("%w: %w after the facts were gathered", ErrInternal, err)
	case err != nil:
		return p, "", writeErr("record assertion and provision", err)
	}
	return outcome(p)
}

// writeErr classifies a store's failure to write a user: an email another
// user of the connection's IdP has (which the store refuses atomically,
// so that concurrent sign-ins cannot both get it) is a refusal like the
// decision's; anything else is the store failing.
func writeErr(op string, err error) error {
	if errors.Is(err, userstore.ErrEmailInUse) {
		return fmt.Errorf("%w: another user of this IdP has the email: %w", ErrIdentifierConflict, err)
	}
	return storeErr(op, err)
}

// signInTx is one SignIn transaction: it records the assertion and writes
// what decide decides about the stored user it meets. On a
// [userstore.SignInWithStore] the same transaction also reads the users
// holding the email of a first sign-in, for decide, and records the
// session when the store keeps the sessions too (s.record is then set).
func (m *Middleware) signInTx(ctx context.Context, s *signIn, f *signInFacts) (userstore.Provisioned, error) {
	decideIn := func(st userstore.SignInState) (userstore.Profile, error) {
		if st.EmailLooked {
			// Kept for the decision outside should this one stop.
			f.emailUsers, f.emailLooked = st.EmailUsers, true
		}
		g := *f
		g.stored = st.Before
		switch v := decide(&s.conn.policy, &g); v.action {
		case actionRefuse:
			if st.Before == nil {
				// A first sign-in's refusal is decided outside,
				// where its reason is not wrapped by the store.
				return userstore.Profile{}, errNeedFacts
			}
			return userstore.Profile{}, &decided{v.err}
		case actionCreate, actionUpdate:
			return v.profile, nil
		default:
			// A fact to gather outside the transaction, or a link,
			// which is not this write.
			return userstore.Profile{}, errNeedFacts
		}
	}
	if m.signInWith == nil {
		return m.signInStore.SignIn(ctx, s.conn.issuer, s.assertion.ID, s.expires, s.key, s.now, func(before *userstore.User) (userstore.Profile, error) {
			return decideIn(userstore.SignInState{Before: before})
		})
	}
	req := userstore.SignInRequest{Issuer: s.conn.issuer, AssertionID: s.assertion.ID, Expires: s.expires, Key: s.key, Now: s.now, Decide: decideIn}
	if f.linker && !f.emailLooked {
		req.Email = f.profile.Email
	}
	if m.sessionInTx {
		id, rec, err := m.sessionRecord(s)
		if err != nil {
			return userstore.Provisioned{}, err
		}
		req.Session = &rec
		s.cookieID = id
	}
	p, err := m.signInWith.SignInWith(ctx, req)
	if err == nil && req.Session != nil && p.User.Status == userstore.Active {
		s.record = req.Session
	}
	return p, err
}

// errNeedFacts ends a SignIn transaction, writing nothing, when the
// decision needs a fact that can only be had outside it (see
// provisionAtOnce).
var errNeedFacts = errors.New("jit: the sign-in decision needs facts from outside the transaction")

// decided marks decide's refusal as it passes through a store's SignIn, so
// that it is told from a failure of the store. It reads as the refusal.
type decided struct{ err error }

func (d *decided) Error() string { return d.err.Error() }
func (d *decided) Unwrap() error { return d.err }

// provisionSteps is provision on a store that is not a SignInStore: look
// the user up, decide (gathering what decide needs), then record the
// assertion, look the user up again and write, deciding again on what the
// second lookup found. The replay record is released when the store fails.
func (m *Middleware) provisionSteps(ctx context.Context, r *http.Request, s *signIn, f *signInFacts) (p userstore.Provisioned, kind EventKind, err error) {
	if err := m.lookupStored(ctx, s, f); err != nil {
		return p, "", err
	}
	switch v := m.settle(ctx, r, s, f); v.action {
	case actionRefuse:
		return p, "", v.err
	case actionLink:
		return m.link(ctx, s, v)
	}
	if err := m.consume(ctx, s); err != nil {
		return p, "", err
	}
	defer m.releaseOnStoreErr(ctx, s, &err)
	existed := f.stored != nil
	if err := m.lookupStored(ctx, s, f); err != nil {
		return p, "", err
	}
	if existed && f.stored == nil {
		// Deleted since the first lookup: its decision no longer holds.
		return p, "", storeErr("provision", errors.New("the user was deleted during the sign-in; retry"))
	}
	v := decide(&s.conn.policy, f)
	switch v.action {
	case actionRefuse:
		return p, "", v.err
	case actionCreate, actionUpdate:
	default:
		return p, "", fmt.Errorf("%w: %w after the facts were gathered", ErrInternal, errNeedFacts)
	}
	if p, err = m.store.Provision(ctx, s.key, v.profile, s.now); err != nil {
		return p, "", writeErr("provision", err)
	}
	return outcome(p)
}

// lookupStored reads the user under the sign-in's key into f.stored, nil
// when there is none.
func (m *Middleware) lookupStored(ctx context.Context, s *signIn, f *signInFacts) error {
	u, err := m.store.Lookup(ctx, s.key)
	switch {
	case err == nil:
		f.stored = &u
	case errors.Is(err, userstore.ErrNotFound):
		f.stored = nil
	default:
		return storeErr("lookup", err)
	}
	return nil
}

// settle asks decide until it has decided, gathering each fact decide
// needs: the users holding the email from the store, and the answers of
// the application's hooks (Brownfield.Prove, BeforeCreate), which a traced
// sign-in (Explain) does not run. It runs outside any store transaction.
func (m *Middleware) settle(ctx context.Context, r *http.Request, s *signIn, f *signInFacts) verdict {
	c := s.conn
	for range 4 { // one round per fact at most
		v := decide(&c.policy, f)
		switch v.need {
		case needNothing:
			return v
		case needEmailUsers:
			users, err := m.linker.LookupEmail(ctx, f.profile.Email)
			if err != nil {
				return refusal(storeErr("lookup email", err))
			}
			f.emailUsers, f.emailLooked = users, true
		case needProof:
			f.proof = s.ask(func() error { return c.policy.Brownfield.Prove(r, *v.user, s.key, s.profile.Clone()) })
		case needApproval:
			f.approval = s.ask(func() error {
				return c.policy.BeforeCreate(ctx, NewUser{Connection: c.name, Key: s.key, Profile: s.profile.Clone(), Request: r})
			})
			if f.approval.notRun {
				s.trace.Notes = append(s.trace.Notes, "BeforeCreate hook: not run")
			}
		}
	}
	return refusal(fmt.Errorf("%w: the sign-in decision did not settle", ErrInternal))
}

// ask runs an application hook and returns its answer; a traced sign-in
// (Explain) runs no hook.
func (s *signIn) ask(hook func() error) answer {
	if s.trace != nil {
		return answer{asked: true, notRun: true}
	}
	return answer{asked: true, err: hook()}
}

// link binds the local account v.user to the sign-in's key with
// v.profile, as decide decided, recording the assertion first and
// releasing it when the store fails.
func (m *Middleware) link(ctx context.Context, s *signIn, v verdict) (p userstore.Provisioned, kind EventKind, err error) {
	if err := m.consume(ctx, s); err != nil {
		return p, "", err
	}
	defer m.releaseOnStoreErr(ctx, s, &err)
	if p, err = m.linker.Link(ctx, v.user.ID, s.key, v.profile, s.now); err != nil {
		return p, "", writeErr("link", err)
	}
	if err := suspended(&p.User); err != nil {
		return p, "", err
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "brownfield account linked",
		slog.String("correlation_id", s.corr), slog.String("connection", s.conn.name),
		slog.String("user_id", p.User.ID), slog.String("mode", fmt.Sprint(s.conn.policy.Brownfield.Mode)))
	return p, EventLinked, nil
}

// outcome names the event of a write, refusing a user suspended while the
// sign-in ran.
func outcome(p userstore.Provisioned) (userstore.Provisioned, EventKind, error) {
	if err := suspended(&p.User); err != nil {
		return p, "", err
	}
	if p.Created() {
		return p, EventCreated, nil
	}
	return p, EventUpdated, nil
}

// consume records the assertion ID in the replay cache.
func (m *Middleware) consume(ctx context.Context, s *signIn) error {
	if err := m.replay.ConsumeAssertion(ctx, s.conn.issuer, s.assertion.ID, s.expires, s.now); err != nil {
		if errors.Is(err, userstore.ErrReplayed) {
			return fmt.Errorf("%w: assertion %q: %w", ErrReplayed, s.assertion.ID, err)
		}
		return storeErr("record assertion", err)
	}
	return nil
}

// releaseOnStoreErr forgets the assertion's replay record when *err is a
// store failure, so that the person can retry the same response.
func (m *Middleware) releaseOnStoreErr(ctx context.Context, s *signIn, err *error) {
	if !errors.Is(*err, ErrStoreUnavailable) {
		return
	}
	// A fresh context: the request's may be what failed.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rerr := m.replay.ReleaseAssertion(rctx, s.conn.issuer, s.assertion.ID); rerr != nil {
		m.log.LogAttrs(ctx, slog.LevelError, "release replay record",
			slog.String("correlation_id", s.corr), slog.String("err", rerr.Error()))
	}
}
