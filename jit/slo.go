package jit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/userstore"
)

// SAML Single Logout (SAML 2.0 Profiles §4.4), both ways, at one endpoint
// per connection (PathPrefix/<connection>/slo), listed in the SP metadata
// with the HTTP-Redirect and HTTP-POST bindings:
//
//   - SP-initiated: the logout endpoint ends the local session first, then,
//     when the IdP's metadata lists a SingleLogoutService, sends the IdP a
//     signed LogoutRequest naming the session's NameID and SessionIndex,
//     and tracks it in the browser's request cookie. The IdP's
//     LogoutResponse lands here and must answer that request.
//   - IdP-initiated: a LogoutRequest from the connection's IdP ends every
//     session it names, through the store, so on every instance, and is
//     answered with a signed LogoutResponse.
//
// crewjam/saml v0.6.3 verifies the signatures (and requires one, with
// either binding), the Issuer, Destination against SloURL, IssueInstant
// and NotOnOrAfter (by its own package-level skew), and InResponseTo
// against the IDs it is given. What this file adds: the replay record in
// the store (crewjam's is per process), a Destination that cannot be empty,
// NotOnOrAfter and IssueInstant judged with this middleware's ClockSkew,
// SPNameQualifier naming this SP, a bound on the message size, and the
// tie between a LogoutResponse and the browser that sent the request.

// logoutReplayPrefix keeps LogoutRequest IDs apart from assertion IDs in
// the replay record, as crewjam does; xs:ID values cannot contain a colon.
const logoutReplayPrefix = "LogoutRequest:"

// Second-level status codes a LogoutResponse of this SP may carry (SAML 2.0
// Core §3.2.2.2).
const (
	statusUnknownPrincipal = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
)

// enableSLO gives the connection its Single Logout endpoint at slo, signing
// logout messages with key (RSA-SHA256, or ECDSA-SHA256 for an ECDSA key:
// the profile requires them signed whatever Options.SignRequests says),
// and rebuilds the IdP snapshot with it.
func (c *connection) enableSLO(slo url.URL, key crypto.Signer) error {
	c.sloPath = slo.Path
	c.spBase.SloURL = slo
	c.spBase.LogoutBindings = []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding}
	c.spBase.LogoutSignatureMethod = dsig.RSASHA256SignatureMethod
	if _, ok := key.Public().(*ecdsa.PublicKey); ok {
		c.spBase.LogoutSignatureMethod = dsig.ECDSASHA256SignatureMethod
	}
	snap, err := c.newSnapshot(c.current().sp.IDPMetadata)
	if err != nil {
		return err
	}
	c.idp.Store(snap)
	return nil
}

// idpSLO finds the IdP's SingleLogoutService in md: HTTP-Redirect when it
// offers it, else HTTP-POST. loc receives LogoutRequests, respLoc
// LogoutResponses (its ResponseLocation, or loc). All are "" when the IdP
// has none.
func idpSLO(md *saml.EntityDescriptor) (binding, loc, respLoc string) {
	for _, b := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		for _, d := range md.IDPSSODescriptors {
			for _, e := range d.SingleLogoutServices {
				if e.Binding == b && e.Location != "" {
					respLoc = e.ResponseLocation
					if respLoc == "" {
						respLoc = e.Location
					}
					return b, e.Location, respLoc
				}
			}
		}
	}
	return "", "", ""
}

// sessionForLogout returns the live session record the browser's cookie
// names, and its connection; ok is false when there is none.
func (m *Middleware) sessionForLogout(r *http.Request) (userstore.Session, *connection, bool) {
	id, c, err := m.sessionID(r)
	if err != nil {
		return userstore.Session{}, nil, false
	}
	rec, _, err := m.records.LookupSession(r.Context(), id, m.now())
	if err != nil || rec.Connection != c.name {
		return userstore.Session{}, nil, false
	}
	return rec, c, true
}

// startSingleLogout sends the browser to the IdP of c with a signed
// LogoutRequest for the session rec (already ended here), and tracks the
// request so that the IdP's answer can be tied to this browser. It
// reports false, having written nothing, when the IdP has no
// SingleLogoutService, the session has no NameID, or the request cannot
// be made: the logout is then local only.
func (m *Middleware) startSingleLogout(w http.ResponseWriter, r *http.Request, c *connection, rec userstore.Session) bool {
	idp := c.current()
	if idp.sloURL == "" || rec.NameID.IsZero() || c.checkFresh(idp, m.now()) != nil {
		return false
	}
	sp := idp.sp
	nameID := rec.NameID
	// The request repeats the assertion's NameID exactly (SAML 2.0 Core
	// §3.7.1), not crewjam's guess from the SP's configuration.
	sameNameID := func(req *saml.LogoutRequest) {
		req.NameID = &saml.NameID{Value: nameID.Value, Format: nameID.Format,
			NameQualifier: nameID.NameQualifier, SPNameQualifier: nameID.SPNameQualifier}
		notOnOrAfter := m.now().Add(requestLifetime).UTC()
		req.NotOnOrAfter = &notOnOrAfter
	}
	maker := sp
	if idp.sloBinding == saml.HTTPRedirectBinding {
		// The redirect carries a query-string signature, made below; an
		// enveloped one would be dropped, at the cost of an RSA signature.
		maker.LogoutSignatureMethod, maker.SignatureMethod = "", ""
	}
	req, err := maker.MakeLogoutRequest(idp.sloURL, nameID.Value, saml.WithSessionIndex(rec.SessionIndex), sameNameID)
	if err != nil {
		m.log.ErrorContext(r.Context(), "make LogoutRequest", "connection", c.name, "err", err)
		return false
	}
	relay := newID(16)
	if err := m.track(w, r, trackedRequest{Relay: relay, ID: req.ID, Conn: c.name, Logout: true,
		ReturnTo: m.afterLogout, Expires: m.now().Add(requestLifetime).Unix()}); err != nil {
		m.log.ErrorContext(r.Context(), "track LogoutRequest", "connection", c.name, "err", err)
		return false
	}
	m.log.LogAttrs(r.Context(), slog.LevelInfo, "single logout started",
		slog.String("connection", c.name), slog.String("request_id", req.ID), slog.String("binding", idp.sloBinding))
	w.Header().Set("Cache-Control", "no-store")
	if idp.sloBinding == saml.HTTPRedirectBinding {
		u, err := sp.RedirectLogoutRequestURL(req, relay)
		if err != nil {
			m.log.ErrorContext(r.Context(), "encode LogoutRequest", "connection", c.name, "err", err)
			return false
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return true
	}
	writePostForm(w, idp.sloURL, func(nonce string) []byte { return req.PostWithNonce(relay, nonce) })
	return true
}

// writePostForm writes an auto-submitting HTTP-POST binding page to dest
// whose script runs under a nonce, and whose form may go to dest's origin
// only.
func writePostForm(w http.ResponseWriter, dest string, page func(nonce string) []byte) {
	nonce := newID(16)
	action := "'none'"
	if u, err := url.Parse(dest); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		action = u.Scheme + "://" + u.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+action+"; referrer no-referrer;")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(page(nonce))
}

// serveSLO is the Single Logout endpoint of connection c: a LogoutRequest
// from its IdP, or the LogoutResponse to this browser's LogoutRequest,
// with the HTTP-Redirect (GET) or HTTP-POST binding. Anything else,
// including a GET that carries no signed message, changes nothing.
func (m *Middleware) serveSLO(w http.ResponseWriter, r *http.Request, c *connection) {
	corr := newCorrelationID()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		m.refuseLogout(w, r, corr, c, http.StatusMethodNotAllowed, fmt.Errorf("%w: %s", errMethod, r.Method))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, int64(m.maxBytes)*2+4096)
	if err := r.ParseForm(); err != nil {
		m.refuseLogout(w, r, corr, c, http.StatusBadRequest, invalid("cannot parse form: %v", err))
		return
	}
	msgs := r.Form // the query and, for a POST, the body
	req, resp := msgs.Get("SAMLRequest"), msgs.Get("SAMLResponse")
	switch {
	case len(req) > 2*m.maxBytes || len(resp) > 2*m.maxBytes:
		m.refuseLogout(w, r, corr, c, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: logout message over %d bytes", ErrResponseTooLarge, 2*m.maxBytes))
	case req != "" && resp == "":
		m.serveLogoutRequest(w, r, corr, c)
	case resp != "" && req == "":
		m.serveLogoutResponse(w, r, corr, c)
	default:
		m.refuseLogout(w, r, corr, c, http.StatusBadRequest, invalid("the Single Logout endpoint needs one SAMLRequest or one SAMLResponse"))
	}
}

// serveLogoutResponse accepts the IdP's answer to this browser's
// LogoutRequest and lands the person on AfterLogoutPath. The local session
// was ended before the request was sent, so a response that cannot be
// accepted ends nothing more: the person is told that the IdP did not
// confirm the logout.
func (m *Middleware) serveLogoutResponse(w http.ResponseWriter, r *http.Request, corr string, c *connection) {
	relay := r.Form.Get("RelayState")
	var tracked trackedRequest
	for _, t := range m.readTracked(r) {
		if t.Logout && t.Relay == relay && t.Conn == c.name && t.ID != "" {
			tracked = t
		}
	}
	if tracked.ID == "" {
		m.refuseLogout(w, r, corr, c, http.StatusForbidden, fmt.Errorf("%w: no outstanding LogoutRequest for this browser%s", ErrUnsolicited, noCookieHint))
		return
	}
	sp := c.current().sp
	resp, err := parseLogoutResponse(&sp, r, tracked.ID)
	if err == nil {
		err = m.checkLogoutTimes(resp.IssueInstant, nil)
	}
	if err != nil {
		// The request stays tracked: a forged answer someone else makes
		// this browser post cannot stop the IdP's genuine one.
		m.refuseLogout(w, r, corr, c, http.StatusForbidden, err)
		return
	}
	m.untrack(w, r, relay) // once
	m.log.LogAttrs(r.Context(), slog.LevelInfo, "single logout confirmed",
		slog.String("correlation_id", corr), slog.String("connection", c.name), slog.String("request_id", tracked.ID))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, tracked.ReturnTo, http.StatusSeeOther)
}

// parseLogoutResponse is crewjam's validation of a LogoutResponse
// (signature required, Destination, Issuer, IssueInstant, Success) that
// must answer requestID; panics become refusals.
func parseLogoutResponse(sp *saml.ServiceProvider, r *http.Request, requestID string) (resp *saml.LogoutResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, invalid("panic while validating the LogoutResponse: %v", p)
		}
	}()
	resp, err = sp.ParseLogoutResponse(r, []string{requestID})
	if err != nil {
		return nil, fmt.Errorf("%w: LogoutResponse: %w", ErrInvalidResponse, privateErr(err))
	}
	return resp, nil
}

// validateLogoutRequest is crewjam's validation of an IdP's LogoutRequest
// (signature required, Destination, Issuer, IssueInstant, NotOnOrAfter,
// a NameID or an EncryptedID it decrypts); panics become refusals.
func validateLogoutRequest(sp *saml.ServiceProvider, r *http.Request) (req *saml.LogoutRequest, err error) {
	defer func() {
		if p := recover(); p != nil {
			req, err = nil, invalid("panic while validating the LogoutRequest: %v", p)
		}
	}()
	req, err = sp.ValidateLogoutRequest(r)
	if err != nil {
		return nil, fmt.Errorf("%w: LogoutRequest: %w", ErrInvalidResponse, privateErr(err))
	}
	return req, nil
}

// checkLogoutTimes judges a logout message's IssueInstant and NotOnOrAfter
// with this middleware's clock and skew, on top of crewjam's judgement by
// its package-level ones.
func (m *Middleware) checkLogoutTimes(issued time.Time, notOnOrAfter *time.Time) error {
	now := m.now()
	switch {
	case issued.IsZero():
		return invalid("logout message has no IssueInstant")
	case now.After(issued.Add(MaxIssueDelay + m.skew)):
		return invalid("logout message issued at %s is too old", issued.UTC().Format(time.RFC3339))
	case issued.After(now.Add(m.skew)):
		return invalid("logout message issued at %s is in the future", issued.UTC().Format(time.RFC3339))
	case notOnOrAfter != nil && !now.Before(notOnOrAfter.Add(m.skew)):
		return invalid("LogoutRequest expired at %s", notOnOrAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// serveLogoutRequest handles an IdP-initiated logout: it validates the
// LogoutRequest, records its ID once, ends the sessions it names (by
// NameID, and SessionIndex when given) in the store, so on every instance,
// and answers the IdP with a signed LogoutResponse. A request that fails
// validation or replays one already seen gets no LogoutResponse and ends
// nothing.
func (m *Middleware) serveLogoutRequest(w http.ResponseWriter, r *http.Request, corr string, c *connection) {
	idp := c.current()
	sp := idp.sp
	now := m.now()
	err := c.checkFresh(idp, now)
	var req *saml.LogoutRequest
	if err == nil {
		req, err = validateLogoutRequest(&sp, r)
	}
	if err == nil {
		err = m.checkLogoutTimes(req.IssueInstant, req.NotOnOrAfter)
	}
	if err == nil {
		err = checkLogoutNameID(req, c)
	}
	if err != nil {
		m.refuseLogout(w, r, corr, c, http.StatusForbidden, err)
		return
	}
	ctx := r.Context()
	expires := req.IssueInstant.Add(MaxIssueDelay + m.skew)
	if req.NotOnOrAfter != nil && req.NotOnOrAfter.Add(m.skew).Before(expires) {
		expires = req.NotOnOrAfter.Add(m.skew)
	}
	if err := m.replay.ConsumeAssertion(ctx, c.issuer, logoutReplayPrefix+req.ID, expires, now); err != nil {
		if errors.Is(err, userstore.ErrReplayed) {
			m.refuseLogout(w, r, corr, c, http.StatusForbidden, fmt.Errorf("%w: LogoutRequest %q: %w", ErrReplayed, req.ID, err))
			return
		}
		m.refuseLogout(w, r, corr, c, http.StatusServiceUnavailable, storeErr("record LogoutRequest", err))
		return
	}
	n, err := m.endByNameID(ctx, c, req, now)
	status := saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}}
	switch {
	case err != nil:
		// Nothing may have been ended: let the IdP retry the same request.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if rerr := m.replay.ReleaseAssertion(rctx, c.issuer, logoutReplayPrefix+req.ID); rerr != nil {
			m.log.ErrorContext(ctx, "release LogoutRequest replay record", "correlation_id", corr, "err", rerr)
		}
		cancel()
		m.log.LogAttrs(ctx, slog.LevelError, "single logout failed", slog.String("correlation_id", corr),
			slog.String("connection", c.name), slog.String("err", err.Error()))
		status.StatusCode.Value = saml.StatusResponder
	case n == 0:
		// No live session has that NameID here (SAML 2.0 Core §3.2.2.2:
		// the responder does not recognize the principal).
		status.StatusCode = saml.StatusCode{Value: saml.StatusRequester, StatusCode: &saml.StatusCode{Value: statusUnknownPrincipal}}
		m.log.LogAttrs(ctx, slog.LevelWarn, "single logout named no live session", slog.String("correlation_id", corr),
			slog.String("connection", c.name), slog.String("request_id", req.ID))
	}
	m.clearSessionCookie(w, r)
	m.answerLogoutRequest(w, r, corr, c, idp, req.ID, status)
}

// checkLogoutNameID refuses a LogoutRequest that names no NameID, or one
// whose SPNameQualifier names another SP: such a NameID is another SP's
// name for the person.
func checkLogoutNameID(req *saml.LogoutRequest, c *connection) error {
	switch {
	case req.NameID == nil || req.NameID.Value == "":
		return invalid("LogoutRequest names no NameID")
	case req.NameID.SPNameQualifier != "" && req.NameID.SPNameQualifier != c.entityID:
		return invalid("LogoutRequest NameID is qualified for SP %q, not this SP %q", req.NameID.SPNameQualifier, c.entityID)
	}
	return nil
}

// endByNameID ends the live sessions the validated request req names on
// connection c: every session of the NameID, or those of each
// SessionIndex it lists. It returns how many it ended.
func (m *Middleware) endByNameID(ctx context.Context, c *connection, req *saml.LogoutRequest, now time.Time) (int, error) {
	indexes := []string{""}
	if all := req.AllSessionIndexes(); len(all) > 0 {
		indexes = indexes[:0]
		for _, si := range all {
			if si.Value != "" {
				indexes = append(indexes, si.Value)
			}
		}
		if len(indexes) == 0 {
			return 0, nil
		}
	}
	total := 0
	for _, si := range indexes {
		n, err := m.records.EndSessionsByNameID(ctx, c.issuer, req.NameID.Value, si, now)
		if err != nil {
			return total, storeErr("end sessions by NameID", err)
		}
		total += n
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "sessions ended",
		slog.String("reason", "idp logout"), slog.String("connection", c.name), slog.String("issuer", c.issuer),
		slog.String("request_id", req.ID), slog.Int("count", total))
	return total, nil
}

// clearSessionCookie deletes this browser's session cookie when the
// session it names has ended: the IdP's logout usually passes through the
// browser of the person it signs out.
func (m *Middleware) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	id, _, err := m.sessionID(r)
	if err != nil {
		return
	}
	if _, _, err := m.records.LookupSession(r.Context(), id, m.now()); !errors.Is(err, userstore.ErrNotFound) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: m.sessionName, Path: "/", MaxAge: -1, HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode})
}

// answerLogoutRequest sends the IdP a signed LogoutResponse to the request
// requestID, with status, at its SingleLogoutService's response location:
// HTTP-Redirect when it offers it, else HTTP-POST. RelayState goes back as
// it came.
func (m *Middleware) answerLogoutRequest(w http.ResponseWriter, r *http.Request, corr string, c *connection, idp *idpSnapshot, requestID string, status saml.Status) {
	relay := r.Form.Get("RelayState")
	if idp.sloRespURL == "" {
		// The sessions are ended; there is nowhere to say so.
		m.log.LogAttrs(r.Context(), slog.LevelWarn, "LogoutRequest not answered: the IdP metadata lists no SingleLogoutService",
			slog.String("correlation_id", corr), slog.String("connection", c.name))
		http.Redirect(w, r, m.afterLogout, http.StatusSeeOther)
		return
	}
	sp := idp.sp
	if idp.sloBinding == saml.HTTPRedirectBinding {
		// crewjam addresses a redirect LogoutResponse to the endpoint's
		// Location; give it one whose Location is the ResponseLocation.
		md := *sp.IDPMetadata
		md.IDPSSODescriptors = []saml.IDPSSODescriptor{{SSODescriptor: saml.SSODescriptor{
			SingleLogoutServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: idp.sloRespURL}}}}}
		sp.IDPMetadata = &md
		u, err := sp.MakeRedirectLogoutResponseWithStatus(requestID, relay, status)
		if err != nil {
			m.log.ErrorContext(r.Context(), "make LogoutResponse", "correlation_id", corr, "connection", c.name, "err", err)
			http.Error(w, "logout response unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	resp, err := sp.MakeLogoutResponseWithStatus(idp.sloRespURL, requestID, status)
	if err != nil {
		m.log.ErrorContext(r.Context(), "make LogoutResponse", "correlation_id", corr, "connection", c.name, "err", err)
		http.Error(w, "logout response unavailable", http.StatusInternalServerError)
		return
	}
	writePostForm(w, idp.sloRespURL, func(nonce string) []byte { return resp.PostWithNonce(relay, nonce) })
}

// refuseLogout logs why a logout message was refused and shows the person
// a plain page with the correlation id.
func (m *Middleware) refuseLogout(w http.ResponseWriter, r *http.Request, corr string, c *connection, status int, err error) {
	f := &Failure{Status: status, CorrelationID: corr, Connection: c.name, Err: err,
		Message: "Your identity provider's sign-out message could not be accepted. Your session in this application has ended if you signed out here; to be sure you are signed out of your organisation too, close the browser."}
	m.fail(w, r, f)
}
