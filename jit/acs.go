package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	key       userstore.Key
	profile   userstore.Profile
	expires   time.Time // when the replay record may be forgotten
	session   time.Time // when the session ends
	returnTo  string
	relay     string // RelayState naming this browser's request cookie
	solicited bool
}

// serveACS is the assertion consumer service of connection c.
func (m *Middleware) serveACS(w http.ResponseWriter, r *http.Request, c *connection) {
	s := &signIn{corr: newCorrelationID(), conn: c, idp: c.current(), now: m.now(), returnTo: m.afterSignIn}
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
	tracked, solicited := m.takeTracked(w, r, c, relay)
	s.relay, s.solicited = relay, solicited
	if solicited {
		s.returnTo = tracked.ReturnTo
	} else if c.allowIDPInit && isLocalPath(relay) {
		s.returnTo = relay
	}
	ctx := r.Context()
	if err := m.validate(s, r.PostForm.Get("SAMLResponse"), tracked.ID, solicited); err != nil {
		m.refuse(w, r, s, err)
		return
	}
	u, err := m.provision(ctx, s)
	if err != nil {
		m.refuse(w, r, s, err)
		return
	}
	if err := m.startSession(w, r, c, s.key, s.session); err != nil {
		// The record is written and consistent; only the cookie failed.
		m.refuse(w, r, s, fmt.Errorf("%w: save session: %w", ErrStoreUnavailable, err))
		return
	}
	kind := EventUpdated
	if u.Created() {
		kind = EventCreated
	}
	e := Event{Kind: kind, Time: s.now, CorrelationID: s.corr, Connection: c.name, Key: s.key, UserID: u.User.ID, After: &u.User.Profile}
	if !u.Created() {
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
		m.untrack(w, c, relay)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.returnTo, http.StatusSeeOther)
}

// validate runs every check on the posted response and maps its claims,
// filling s. Panics inside crewjam/saml become refusals.
func (m *Middleware) validate(s *signIn, b64, requestID string, solicited bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = invalid("SAML library panicked on the response: %v", p)
		}
	}()
	c := s.conn
	if err := c.checkFresh(s.idp, s.now); err != nil {
		return err
	}
	raw, err := decodeResponse(b64, m.maxBytes)
	if err != nil {
		return err
	}
	root, err := parseXML(raw, m.maxDepth)
	if err != nil {
		return err
	}
	if _, err := checkResponse(root, m.spKey, m.maxDepth, c.allowSHA1); err != nil {
		return err
	}
	var ids []string
	if solicited {
		ids = []string{requestID}
	}
	sp := s.idp.sp
	a, err := sp.ParseXMLResponse(raw, ids, sp.AcsURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidResponse, privateErr(err))
	}
	ck := checks{now: s.now, skew: m.skew, issuer: c.issuer, audience: c.entityID, acsURL: c.acsURL,
		requestID: requestID, solicited: solicited, unsolicitedAllowed: c.allowIDPInit}
	if s.expires, err = ck.checkAssertion(a); err != nil {
		return err
	}
	s.assertion = a
	id, err := claims.FromAssertion(a)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMapping, err)
	}
	if s.key, s.profile, err = c.mapper.Map(id); err != nil {
		return fmt.Errorf("%w: %w", ErrMapping, err)
	}
	if s.key.Issuer != c.issuer || s.key.IsZero() {
		return fmt.Errorf("%w: mapper returned key %s; its issuer must be the connection's IdP %q", ErrMapping, s.key, c.issuer)
	}
	s.session = s.now.Add(m.lifetime)
	if !id.SessionNotOnOrAfter.IsZero() && id.SessionNotOnOrAfter.Before(s.session) {
		s.session = id.SessionNotOnOrAfter
	}
	if !s.session.After(s.now) {
		return invalid("the IdP session ended at %s", id.SessionNotOnOrAfter.Format(time.RFC3339))
	}
	return nil
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

// provision consumes the assertion ID, refuses suspended users before any
// write, and creates or updates the user. When it fails for a reason of the
// store, the replay record is released so the person can retry.
func (m *Middleware) provision(ctx context.Context, s *signIn) (p userstore.Provisioned, err error) {
	issuer := s.conn.issuer
	if m.signInStore != nil {
		return m.provisionAtOnce(ctx, s)
	}
	if err := m.replay.ConsumeAssertion(ctx, issuer, s.assertion.ID, s.expires, s.now); err != nil {
		if errors.Is(err, userstore.ErrReplayed) {
			return p, fmt.Errorf("%w: assertion %q: %w", ErrReplayed, s.assertion.ID, err)
		}
		return p, storeErr("record assertion", err)
	}
	defer func() {
		if errors.Is(err, ErrStoreUnavailable) {
			// A fresh context: the request's may be what failed.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := m.replay.ReleaseAssertion(rctx, issuer, s.assertion.ID); rerr != nil {
				m.log.LogAttrs(ctx, slog.LevelError, "release replay record",
					slog.String("correlation_id", s.corr), slog.String("err", rerr.Error()))
			}
		}
	}()
	before, err := m.store.Lookup(ctx, s.key)
	switch {
	case err == nil && before.Status == userstore.Suspended:
		return p, fmt.Errorf("%w: user %s", ErrSuspended, before.ID)
	case err != nil && !errors.Is(err, userstore.ErrNotFound):
		return p, storeErr("lookup", err)
	}
	p, err = m.store.Provision(ctx, s.key, s.profile, s.now)
	if err != nil {
		return p, storeErr("provision", err)
	}
	if p.User.Status == userstore.Suspended {
		// Suspended between Lookup and Provision: still refused.
		return p, fmt.Errorf("%w: user %s", ErrSuspended, p.User.ID)
	}
	return p, nil
}

// signInStore is a store that is also the replay cache and can record the
// assertion and provision the user in one transaction (one commit instead
// of two), with the outcomes of ConsumeAssertion, Lookup and Provision in
// turn: an error wrapping [userstore.ErrReplayed] for a used assertion; a
// suspended user returned unchanged, the assertion still recorded; and on
// any other error nothing written. sqlitestore.Store implements it.
type signInStore interface {
	SignIn(ctx context.Context, issuer, assertionID string, expires time.Time, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error)
}

// provisionAtOnce is provision on a signInStore.
func (m *Middleware) provisionAtOnce(ctx context.Context, s *signIn) (userstore.Provisioned, error) {
	p, err := m.signInStore.SignIn(ctx, s.conn.issuer, s.assertion.ID, s.expires, s.key, s.profile, s.now)
	switch {
	case errors.Is(err, userstore.ErrReplayed):
		return p, fmt.Errorf("%w: assertion %q: %w", ErrReplayed, s.assertion.ID, err)
	case err != nil:
		return p, storeErr("record assertion and provision", err)
	case p.User.Status == userstore.Suspended:
		return p, fmt.Errorf("%w: user %s", ErrSuspended, p.User.ID)
	}
	return p, nil
}

// refuse ends a sign-in: it logs the reason, emits a refused event and
// shows the person a plain page with the correlation id.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, s *signIn, err error) {
	// The request is used up unless the store failed: then the person
	// may retry the same response, and neither its request nor its
	// replay record is consumed.
	if s.solicited && !errors.Is(err, ErrStoreUnavailable) {
		m.untrack(w, s.conn, s.relay)
	}
	f := failure(err, s.corr, s.conn.name)
	m.fail(w, r, f)
	m.emit(r.Context(), Event{Kind: EventRefused, Time: s.now, CorrelationID: s.corr, Connection: s.conn.name, Key: s.key, Err: err})
}

func (m *Middleware) emit(ctx context.Context, e Event) {
	if m.onEvent != nil {
		m.onEvent(ctx, e)
	}
}
