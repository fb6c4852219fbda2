package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"github.com/crewjam/saml"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// signIn is the state of one sign-in at the ACS.
type signIn struct {
	corr      string
	conn      *connection
	idp       *idpSnapshot // the connection's IdP metadata, read once
	now       time.Time
	assertion *saml.Assertion
	identity  *claims.Identity
	key       userstore.Key
	profile   userstore.Profile
	overage   bool      // the IdP omitted the groups and they were not resolved
	expires   time.Time // when the replay record may be forgotten
	session   time.Time // when the session ends
	returnTo  string
	relay     string // RelayState naming this browser's request cookie
	solicited bool
	trace     *Trace // set by Explain: every check is recorded

	// record is the session record written with the user, in the
	// sign-in's transaction, when the store could.
	record   *userstore.Session
	cookieID string // the session ID the cookie carries; record is kept under its hash
}

// step records the outcome of one check when the sign-in is traced, and
// returns err.
func (s *signIn) step(name string, err error) error {
	if s.trace != nil {
		st := Step{Name: name, OK: err == nil}
		if err != nil {
			st.Detail = err.Error()
		}
		s.trace.Steps = append(s.trace.Steps, st)
	}
	return err
}

// serveACS is the assertion consumer service of connection c.
func (m *Middleware) serveACS(w http.ResponseWriter, r *http.Request, c *connection) {
	s := &signIn{corr: newCorrelationID(), conn: c, idp: c.current(), now: m.now(), returnTo: m.afterSignIn}
	defer func() {
		// A panic past validation (a hook, the resolver, the store, the
		// event callback) still gets the person a page and the log a
		// reason, not a dropped connection.
		if p := recover(); p != nil {
			m.log.LogAttrs(r.Context(), slog.LevelError, "panic in sign-in",
				slog.String("correlation_id", s.corr), slog.String("connection", c.name),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			m.refuse(w, r, s, fmt.Errorf("%w: panic during the sign-in: %v", ErrInternal, p))
		}
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		m.refuse(w, r, s, fmt.Errorf("%w: %s", errMethod, r.Method))
		return
	}
	if !c.allowIDPInit && len(m.readTracked(r)) == 0 {
		// This browser started no sign-in, and nothing else may be
		// accepted: refuse without reading a body anyone can send.
		m.refuse(w, r, s, fmt.Errorf("%w: no outstanding request for this browser%s", ErrUnsolicited, noCookieHint))
		return
	}
	// Base64 inflates by 4/3 and form encoding may escape '+', '/' and '='.
	r.Body = http.MaxBytesReader(w, r.Body, int64(m.maxBytes)*2+4096)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			m.refuse(w, r, s, fmt.Errorf("%w: body over %d bytes", ErrResponseTooLarge, tooBig.Limit))
			return
		}
		m.refuse(w, r, s, invalid("cannot parse form: %v", err))
		return
	}
	relay := r.PostForm.Get("RelayState")
	tracked, solicited := m.takeTracked(r, c, relay)
	s.relay, s.solicited = relay, solicited
	if solicited {
		s.returnTo = tracked.ReturnTo
	} else if c.allowIDPInit && isLocalPath(relay) {
		s.returnTo = relay
	}
	if !solicited && !c.allowIDPInit {
		// Nothing could accept this post: refuse it before spending any
		// work on a body anyone can send.
		m.refuse(w, r, s, fmt.Errorf("%w: no outstanding request for this browser%s", ErrUnsolicited, noCookieHint))
		return
	}
	ctx := r.Context()
	if err := m.validate(ctx, s, r.PostForm.Get("SAMLResponse"), tracked.ID, solicited); err != nil {
		m.refuse(w, r, s, err)
		return
	}
	u, kind, err := m.provision(ctx, r, s)
	if err != nil {
		m.refuse(w, r, s, err)
		return
	}
	if err := m.startSession(w, r, s); err != nil {
		// The user's record is written and consistent; only the session
		// failed. The same response may be posted again.
		m.releaseOnStoreErr(ctx, s, &err)
		m.refuse(w, r, s, err)
		return
	}
	e := Event{Kind: kind, Time: s.now, CorrelationID: s.corr, Connection: c.name, Key: s.key, UserID: u.User.ID, After: &u.User.Profile}
	if u.Before != nil {
		e.Before = &u.Before.Profile
		e.Changed = Diff(u.Before.Profile, u.User.Profile)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "sign-in",
		slog.String("event", string(kind)),
		slog.String("correlation_id", s.corr),
		slog.String("connection", c.name),
		slog.String("user_id", u.User.ID),
		slog.String("issuer", s.key.Issuer),
		slog.String("subject", s.key.Subject),
		slog.Any("changed", e.Changed))
	m.emit(ctx, e)
	if solicited {
		m.untrack(w, r, relay)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.returnTo, http.StatusSeeOther)
}

// validate runs every check on the posted response and maps its claims,
// filling s. Panics inside crewjam/saml become refusals.
func (m *Middleware) validate(ctx context.Context, s *signIn, b64, requestID string, solicited bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.step(stepPanic, invalid("panic while validating or mapping the response: %v", p))
		}
	}()
	c := s.conn
	if err := s.step(stepMetadata, c.checkFresh(s.idp, s.now)); err != nil {
		return err
	}
	raw, err := decodeResponse(b64, m.maxBytes)
	if err := s.step(stepDecode, err); err != nil {
		return err
	}
	root, err := parseXML(raw, m.maxDepth)
	if err := s.step(stepParse, err); err != nil {
		return err
	}
	st, err := checkResponse(root, c.allowSHA1)
	if err == nil && st.encrypted != nil && len(m.decryptKeys) == 0 {
		err = invalid("the assertion is encrypted and this SP has no RSA key to decrypt it")
	}
	if err := s.step(stepStructure, err); err != nil {
		return err
	}
	var ids []string
	if solicited {
		ids = []string{requestID}
	}
	if m.crossCheck != nil {
		m.crossCheck(s, raw, root, st, ids)
	}
	ck := checks{now: s.now, skew: m.skew, issuer: c.issuer, audience: c.entityID, acsURL: c.acsURL,
		requestID: requestID, solicited: solicited, unsolicitedAllowed: c.allowIDPInit}
	// The fast path accepts, or declines and crewjam decides.
	a, err := s.idp.fast.fastAssertion(root, st, ck)
	if err != nil {
		a, err = m.crewjamAssertion(s, raw, &st, ids)
	}
	if err := s.step(stepProtocol, err); err != nil {
		return err
	}
	s.expires, err = ck.checkAssertion(a)
	if err := s.step(stepAssertion, err); err != nil {
		return err
	}
	s.assertion = a
	id, err := claims.FromAssertion(a)
	if err != nil {
		return s.step(stepMapping, fmt.Errorf("%w: %w", ErrMapping, err))
	}
	s.identity = id
	if s.key, s.profile, err = c.mapper.Map(id); err != nil {
		return m.mappingRefused(s, s.step(stepMapping, fmt.Errorf("%w: %w", ErrMapping, err)))
	}
	if s.key.Issuer != c.issuer || s.key.IsZero() {
		return m.mappingRefused(s, s.step(stepMapping, fmt.Errorf("%w: mapper returned key %s; its issuer must be the connection's IdP %q", ErrMapping, s.key, c.issuer)))
	}
	_ = s.step(stepMapping, nil)
	m.lintSignIn(ctx, s.corr, c, id, s.profile, st.sha1)
	s.session = s.now.Add(m.lifetime)
	if !id.SessionNotOnOrAfter.IsZero() && id.SessionNotOnOrAfter.Before(s.session) {
		s.session = id.SessionNotOnOrAfter
	}
	if !s.session.After(s.now) {
		return s.step(stepSession, invalid("the IdP session ended at %s", id.SessionNotOnOrAfter.Format(time.RFC3339)))
	}
	return s.step(stepSession, nil)
}

// crewjamAssertion verifies the response raw (of shape st) with crewjam's
// ParseXMLResponse, then checks the decrypted copy of an encrypted
// assertion as a plain one. It is the path of every response the fast path
// declines, and the fast path's oracle in tests.
func (m *Middleware) crewjamAssertion(s *signIn, raw []byte, st *structure, ids []string) (*saml.Assertion, error) {
	sp := s.idp.sp
	a, err := sp.ParseXMLResponse(raw, ids, sp.AcsURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidResponse, privateErr(err))
	}
	if st.encrypted != nil {
		weak, err := checkDecrypted(st.encrypted, m.decryptKeys, m.maxDepth, s.conn.allowSHA1)
		if err != nil {
			return nil, err
		}
		st.sha1 = st.sha1 || weak
	}
	return a, nil
}

// privateErr unwraps crewjam's InvalidResponseError, whose Error method
// hides the cause, so the log can say why.
func privateErr(err error) error {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr
	}
	return err
}

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

// hookErr classifies an application hook's error: a veto keeps its reason
// for the person; anything else is a temporary failure.
func hookErr(hook string, err error) error {
	if errors.Is(err, ErrVetoed) {
		return fmt.Errorf("%s: %w", hook, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrHook, hook, err)
}

// resolveOverage handles an IdP that omitted the groups: the connection's
// GroupResolver supplies them, or s.overage is set so that the stored
// groups and roles are kept. Either way an EventGroupsOverage is emitted.
func (m *Middleware) resolveOverage(ctx context.Context, s *signIn) error {
	link, ok := s.identity.GroupsOverage()
	if !ok {
		return nil
	}
	c := s.conn
	e := Event{Kind: EventGroupsOverage, Time: s.now, CorrelationID: s.corr, Connection: c.name, Key: s.key}
	if c.policy.GroupResolver == nil {
		s.overage = true
		m.log.LogAttrs(ctx, slog.LevelWarn, "groups overage: the IdP omitted the groups and no GroupResolver is configured; group-derived roles are dropped (or the sign-in refused when groups decide admission)",
			slog.String("correlation_id", s.corr), slog.String("connection", c.name),
			slog.String("issuer", s.key.Issuer), slog.String("subject", s.key.Subject))
		m.warnCorr(ctx, s.corr, c, WarnGroupsOverage, "the IdP omitted a user's groups (too many to send) and no GroupResolver is configured: such users get only the DefaultRoles, or are refused when RequiredGroups decide admission. Configure a GroupResolver, or have the IdP send only the groups assigned to the application.")
		m.emit(ctx, e)
		return nil
	}
	groups, err := c.policy.GroupResolver.ResolveGroups(ctx, GroupsQuery{Connection: c.name, Key: s.key, Identity: s.identity, Link: link})
	if err != nil {
		var w interface{ Warning() string }
		if errors.As(err, &w) {
			m.warnCorr(ctx, s.corr, c, WarnGroupResolver, "%s", w.Warning())
		}
		e.Err = fmt.Errorf("%w: %w", ErrGroupsUnavailable, err)
		m.emit(ctx, e)
		return e.Err
	}
	if len(groups) > claims.DefaultMaxValues {
		e.Err = fmt.Errorf("%w: the resolver returned %d groups, over %d", ErrGroupsUnavailable, len(groups), claims.DefaultMaxValues)
		m.emit(ctx, e)
		return e.Err
	}
	out := []string{}
	for _, g := range groups {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	s.profile.Groups = out
	e.Resolved = true
	m.emit(ctx, e)
	return nil
}

// refuse ends a sign-in: it logs the reason, emits a refused event and
// shows the person a plain page with the correlation id.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, s *signIn, err error) {
	// The request is used up unless the store failed: then the person
	// may retry the same response, and neither its request nor its
	// replay record is consumed.
	if s.solicited && !errors.Is(err, ErrStoreUnavailable) {
		m.untrack(w, r, s.relay)
	}
	f := failure(err, s.corr, s.conn.name)
	_, f.fix = mappingFix(err, s.identity)
	if !errors.Is(err, ErrSuspended) {
		returnTo := s.returnTo
		if returnTo == m.afterSignIn {
			returnTo = ""
		}
		f.SignInURL = withReturnTo(s.conn.loginPath, returnTo)
	}
	m.logFailure(r.Context(), f)
	// The event is emitted before the page is written, so that whoever
	// reads the page can already find the event.
	m.emit(r.Context(), Event{Kind: EventRefused, Time: s.now, CorrelationID: s.corr, Connection: s.conn.name, Key: s.key, Err: err})
	if r.Method != http.MethodPost {
		m.renderError(w, r, f)
		return
	}
	m.redirectFailure(w, r, f)
}

// mappingRefused records a mapping refusal as a warning naming its fix,
// and returns err. The warning is not logged on its own: the refusal's log
// record carries the same fix.
func (m *Middleware) mappingRefused(s *signIn, err error) error {
	kind, fix := mappingFix(err, s.identity)
	s.conn.lint.record(Warning{Connection: s.conn.name, Code: WarnMappingRefused, Message: "a sign-in was refused: " + fix}, WarnMappingRefused+"/"+kind)
	return err
}

func (m *Middleware) emit(ctx context.Context, e Event) {
	m.recordOutcome(e)
	if m.onEvent != nil {
		m.onEvent(ctx, e)
	}
}
