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
	response, relay, err := readACSForm(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			m.refuse(w, r, s, fmt.Errorf("%w: body over %d bytes", ErrResponseTooLarge, tooBig.Limit))
			return
		}
		m.refuse(w, r, s, invalid("cannot parse form: %v", err))
		return
	}
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
	if err := m.validate(ctx, s, response, tracked.ID, solicited); err != nil {
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
