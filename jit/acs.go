package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
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
	if err := m.startSession(w, r, c, s.key, s.session); err != nil {
		// The record is written and consistent; only the cookie failed.
		m.refuse(w, r, s, fmt.Errorf("%w: save session: %w", ErrStoreUnavailable, err))
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
	if hook := c.policy.AfterProvision; hook != nil {
		hook(ctx, e)
	}
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
			err = s.step(StepPanic, invalid("panic while validating or mapping the response: %v", p))
		}
	}()
	c := s.conn
	if err := s.step(StepMetadata, c.checkFresh(s.idp, s.now)); err != nil {
		return err
	}
	raw, err := decodeResponse(b64, m.maxBytes)
	if err := s.step(StepDecode, err); err != nil {
		return err
	}
	root, err := parseXML(raw, m.maxDepth)
	if err := s.step(StepParse, err); err != nil {
		return err
	}
	st, err := checkResponse(root, c.allowSHA1)
	if err == nil && st.encrypted != nil && len(m.decryptKeys) == 0 {
		err = invalid("the assertion is encrypted and this SP has no RSA key to decrypt it")
	}
	if err := s.step(StepStructure, err); err != nil {
		return err
	}
	var ids []string
	if solicited {
		ids = []string{requestID}
	}
	sp := s.idp.sp
	a, err := sp.ParseXMLResponse(raw, ids, sp.AcsURL)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrInvalidResponse, privateErr(err))
	}
	if err == nil && st.encrypted != nil {
		var weak bool
		weak, err = checkDecrypted(st.encrypted, m.decryptKeys, m.maxDepth, c.allowSHA1)
		st.sha1 = st.sha1 || weak
	}
	if err := s.step(StepProtocol, err); err != nil {
		return err
	}
	ck := checks{now: s.now, skew: m.skew, issuer: c.issuer, audience: c.entityID, acsURL: c.acsURL,
		requestID: requestID, solicited: solicited, unsolicitedAllowed: c.allowIDPInit}
	s.expires, err = ck.checkAssertion(a)
	if err := s.step(StepAssertion, err); err != nil {
		return err
	}
	s.assertion = a
	id, err := claims.FromAssertion(a)
	if err != nil {
		return s.step(StepMapping, fmt.Errorf("%w: %w", ErrMapping, err))
	}
	s.identity = id
	if s.key, s.profile, err = c.mapper.Map(id); err != nil {
		return s.step(StepMapping, fmt.Errorf("%w: %w", ErrMapping, err))
	}
	if s.key.Issuer != c.issuer || s.key.IsZero() {
		return s.step(StepMapping, fmt.Errorf("%w: mapper returned key %s; its issuer must be the connection's IdP %q", ErrMapping, s.key, c.issuer))
	}
	_ = s.step(StepMapping, nil)
	m.lintSignIn(ctx, s.corr, c, id, s.profile, st.sha1)
	s.session = s.now.Add(m.lifetime)
	if !id.SessionNotOnOrAfter.IsZero() && id.SessionNotOnOrAfter.Before(s.session) {
		s.session = id.SessionNotOnOrAfter
	}
	if !s.session.After(s.now) {
		return s.step(StepSession, invalid("the IdP session ended at %s", id.SessionNotOnOrAfter.Format(time.RFC3339)))
	}
	return s.step(StepSession, nil)
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

// provision applies the connection's policy and writes the user: it
// resolves an overage of groups, refuses suspended users before any write,
// runs the first-sign-in checks (creation allowed, brownfield email
// conflicts and links, the BeforeCreate hook), then consumes the assertion
// ID and creates or updates the user by the sync rules, atomically where
// the store can. When it fails for a reason of the store, the replay record
// is left unconsumed so the person can retry.
func (m *Middleware) provision(ctx context.Context, r *http.Request, s *signIn) (p userstore.Provisioned, kind EventKind, err error) {
	c := s.conn
	if err := m.resolveOverage(ctx, s); err != nil {
		return p, "", err
	}
	if m.signInStore == nil {
		return m.provisionGeneric(ctx, r, s)
	}
	// A returning user is one transaction: decide meets the stored record.
	// For a first sign-in decide stops the transaction, which then writes
	// nothing, so that the first-sign-in checks run outside it (they read
	// the store and call the application); then the sign-in runs again.
	checked := false
	for {
		p, err = m.signInStore.SignIn(ctx, c.issuer, s.assertion.ID, s.expires, s.key, s.now, func(before *userstore.User) (userstore.Profile, error) {
			if before == nil && !checked {
				return userstore.Profile{}, errFirstSignIn
			}
			return c.policy.apply(before, s.profile, s.overage)
		})
		if checked || !errors.Is(err, errFirstSignIn) {
			break
		}
		checked = true
		if p, linked, err := m.firstSignIn(ctx, r, s); linked || err != nil {
			return p, EventLinked, err
		}
	}
	switch {
	case errors.Is(err, userstore.ErrReplayed):
		return p, "", fmt.Errorf("%w: assertion %q: %w", ErrReplayed, s.assertion.ID, err)
	case err != nil && isDecideErr(err):
		return p, "", err
	case err != nil:
		return p, "", storeErr("record assertion and provision", err)
	}
	return outcome(p)
}

// errFirstSignIn stops a SignIn transaction that met no stored user before
// the first-sign-in checks ran.
var errFirstSignIn = errors.New("jit: first sign-in checks pending")

// firstSignIn runs the checks of a first sign-in: the brownfield policy
// (which may refuse, or link a local account: linked), creation allowed by
// the policy, and the BeforeCreate hook.
func (m *Middleware) firstSignIn(ctx context.Context, r *http.Request, s *signIn) (p userstore.Provisioned, linked bool, err error) {
	c := s.conn
	if p, linked, err := m.brownfield(ctx, r, s); linked || err != nil {
		return p, linked, err
	}
	if _, err := c.policy.apply(nil, s.profile, s.overage); err != nil {
		return p, false, err
	}
	if hook := c.policy.BeforeCreate; hook != nil {
		if err := hook(ctx, NewUser{Connection: c.name, Key: s.key, Profile: s.profile.Clone(), Request: r}); err != nil {
			return p, false, hookErr("BeforeCreate", err)
		}
	}
	return p, false, nil
}

// outcome refuses a user suspended during the sign-in and names the event.
func outcome(p userstore.Provisioned) (userstore.Provisioned, EventKind, error) {
	switch {
	case p.User.Status == userstore.Suspended:
		return p, "", fmt.Errorf("%w: user %s", ErrSuspended, p.User.ID)
	case p.Created():
		return p, EventCreated, nil
	default:
		return p, EventUpdated, nil
	}
}

// provisionGeneric is provision on a store that is not a
// [userstore.SignInStore]: look the user up, run the first-sign-in checks
// when there is none, then write in separate steps.
func (m *Middleware) provisionGeneric(ctx context.Context, r *http.Request, s *signIn) (p userstore.Provisioned, kind EventKind, err error) {
	c := s.conn
	pre, err := m.store.Lookup(ctx, s.key)
	switch {
	case err == nil && pre.Status == userstore.Suspended:
		return p, "", fmt.Errorf("%w: user %s", ErrSuspended, pre.ID)
	case err == nil:
	case !errors.Is(err, userstore.ErrNotFound):
		return p, "", storeErr("lookup", err)
	default:
		if p, linked, err := m.firstSignIn(ctx, r, s); linked || err != nil {
			return p, EventLinked, err
		}
	}
	existed := err == nil
	p, err = m.provisionSteps(ctx, s, func(before *userstore.User) (userstore.Profile, error) {
		if before == nil && existed {
			// Deleted since the lookup: the first-sign-in checks did not run.
			return userstore.Profile{}, storeErr("provision", errors.New("the user was deleted during the sign-in; retry"))
		}
		return c.policy.apply(before, s.profile, s.overage)
	})
	if err != nil {
		return p, "", err
	}
	return outcome(p)
}

// provisionSteps is provision on a store that cannot record the assertion
// and write the user in one transaction: consume, look up, decide,
// provision, releasing the replay record when the store fails.
func (m *Middleware) provisionSteps(ctx context.Context, s *signIn, decide func(*userstore.User) (userstore.Profile, error)) (p userstore.Provisioned, err error) {
	if err := m.consume(ctx, s); err != nil {
		return p, err
	}
	defer m.releaseOnStoreErr(ctx, s, &err)
	var before *userstore.User
	u, err := m.store.Lookup(ctx, s.key)
	switch {
	case err == nil && u.Status == userstore.Suspended:
		return p, fmt.Errorf("%w: user %s", ErrSuspended, u.ID)
	case err == nil:
		before = &u
	case !errors.Is(err, userstore.ErrNotFound):
		return p, storeErr("lookup", err)
	}
	profile, err := decide(before)
	if err != nil {
		return p, err
	}
	p, err = m.store.Provision(ctx, s.key, profile, s.now)
	if err != nil {
		return p, storeErr("provision", err)
	}
	return p, nil
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

// isDecideErr reports whether err is one the decide function of provision
// returns (a refusal by the connection's policy, or a store error already
// classified), rather than a failure of the store to be wrapped.
func isDecideErr(err error) bool {
	for _, e := range []error{ErrUnknownUser, ErrNotAuthorized, ErrGroupsOverage, ErrStoreUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
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
		m.log.LogAttrs(ctx, slog.LevelWarn, "groups overage: the IdP omitted the groups and no GroupResolver is configured; stored groups and roles are kept",
			slog.String("correlation_id", s.corr), slog.String("connection", c.name),
			slog.String("issuer", s.key.Issuer), slog.String("subject", s.key.Subject))
		m.emit(ctx, e)
		return nil
	}
	groups, err := c.policy.GroupResolver.ResolveGroups(ctx, GroupsQuery{Connection: c.name, Key: s.key, Identity: s.identity, Link: link})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGroupsUnavailable, err)
	}
	if len(groups) > claims.DefaultMaxValues {
		return fmt.Errorf("%w: the resolver returned %d groups, over %d", ErrGroupsUnavailable, len(groups), claims.DefaultMaxValues)
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

// brownfield runs the connection's brownfield policy for a first sign-in:
// when the email belongs to existing users it refuses, or links the one
// local account the policy allows. linked reports a link was made.
func (m *Middleware) brownfield(ctx context.Context, r *http.Request, s *signIn) (p userstore.Provisioned, linked bool, err error) {
	existing, profile, err := m.brownfieldMatch(ctx, r, s)
	if existing == nil || err != nil {
		return p, false, err
	}
	c := s.conn
	if err := m.consume(ctx, s); err != nil {
		return p, false, err
	}
	defer m.releaseOnStoreErr(ctx, s, &err)
	p, err = m.linker.Link(ctx, existing.ID, s.key, profile, s.now)
	if err != nil {
		return p, false, storeErr("link", err)
	}
	if p.User.Status == userstore.Suspended {
		return p, false, fmt.Errorf("%w: user %s", ErrSuspended, p.User.ID)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "brownfield account linked",
		slog.String("correlation_id", s.corr), slog.String("connection", c.name),
		slog.String("user_id", p.User.ID), slog.String("mode", fmt.Sprint(c.policy.Brownfield.Mode)))
	return p, true, nil
}

// brownfieldMatch decides, without writing, what the brownfield policy
// makes of a first sign-in: nothing to do (nil user, nil error), a refusal,
// or the local account to link and the profile it would get. With r nil
// (Explain), a Prove hook is not run and counts as not proven.
func (m *Middleware) brownfieldMatch(ctx context.Context, r *http.Request, s *signIn) (*userstore.User, userstore.Profile, error) {
	var p userstore.Profile
	email := s.profile.Email
	if m.linker == nil || strings.TrimSpace(email) == "" {
		return nil, p, nil
	}
	c := s.conn
	users, err := m.linker.LookupEmail(ctx, email)
	if err != nil {
		return nil, p, storeErr("lookup email", err)
	}
	if len(users) == 0 {
		return nil, p, nil
	}
	var local []userstore.User
	for _, u := range users {
		if u.Key == s.key {
			// Created by a concurrent sign-in of the same person since
			// the lookup: no conflict, the write will be an update.
			continue
		}
		switch u.Key.Issuer {
		case userstore.LocalIssuer:
			local = append(local, u)
		case c.issuer:
			return nil, p, fmt.Errorf("%w: user %s has this email under subject %q; the sign-in is for subject %q", ErrIdentifierConflict, u.ID, u.Key.Subject, s.key.Subject)
		default:
			return nil, p, fmt.Errorf("%w: user %s of IdP %q has this email; users are never linked across connections", ErrEmailConflict, u.ID, u.Key.Issuer)
		}
	}
	if len(local) == 0 {
		return nil, p, nil
	}
	b := &c.policy.Brownfield
	switch {
	case b.Mode == BrownfieldDeny:
		return nil, p, fmt.Errorf("%w: local account %s has this email and the brownfield policy is deny", ErrEmailConflict, local[0].ID)
	case len(local) > 1:
		return nil, p, fmt.Errorf("%w: %d local accounts have this email", ErrEmailConflict, len(local))
	case b.Mode == BrownfieldLinkVerifiedDomains && !b.domainVerified(email):
		return nil, p, fmt.Errorf("%w: local account %s has this email, whose domain is not verified for the connection", ErrEmailConflict, local[0].ID)
	case b.Mode == BrownfieldLinkAfterProof && r == nil:
		return nil, p, fmt.Errorf("%w: local account %s has this email; linking needs the person to prove it (the Prove hook is not run here)", ErrProofRequired, local[0].ID)
	case b.Mode == BrownfieldLinkAfterProof:
		if err := b.Prove(r, local[0], s.key, s.profile.Clone()); err != nil {
			if errors.Is(err, ErrVetoed) {
				return nil, p, fmt.Errorf("%w: %w", ErrProofRequired, err)
			}
			return nil, p, fmt.Errorf("%w: local account %s: %w", ErrProofRequired, local[0].ID, err)
		}
	}
	existing := local[0]
	if existing.Status == userstore.Suspended {
		return nil, p, fmt.Errorf("%w: local account %s", ErrSuspended, existing.ID)
	}
	profile, err := c.policy.apply(&existing, s.profile, s.overage)
	if err != nil {
		return nil, p, err
	}
	return &existing, profile, nil
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
	if retryable(err) {
		f.SignInURL = m.LoginURL("")
	}
	m.logFailure(r.Context(), f)
	// The event is emitted before the page is written, so that whoever
	// reads the page can already find the event.
	m.emit(r.Context(), Event{Kind: EventRefused, Time: s.now, CorrelationID: s.corr, Connection: s.conn.name, Key: s.key, Err: err})
	m.renderError(w, r, f)
}

func (m *Middleware) emit(ctx context.Context, e Event) {
	if m.onEvent != nil {
		m.onEvent(ctx, e)
	}
}
