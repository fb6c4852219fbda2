package jit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/sessions"

	"github.com/samljit/samljit/userstore"
)

// startSession records a new session for the sign-in s in Options.Sessions
// and issues a cookie holding its ID, replacing any session the browser
// held, so a session identifier planted before sign-in is never reused.
// When the record cannot be made (the store failed, or the user was
// suspended or deleted meanwhile), no cookie is set. The error wraps
// ErrStoreUnavailable.
func (m *Middleware) startSession(w http.ResponseWriter, r *http.Request, s *signIn) error {
	id, rec := s.cookieID, s.record
	if rec == nil {
		// Not recorded with the user in the sign-in's transaction.
		var made userstore.Session
		var err error
		if id, made, err = m.sessionRecord(s); err != nil {
			return err
		}
		if err := m.records.CreateSession(r.Context(), made); err != nil {
			return storeErr("create session", err)
		}
		rec = &made
	}
	gs := sessions.NewSession(m.sessions, m.sessionName)
	gs.IsNew = true
	gs.Values[sessID] = id
	gs.Values[sessConn] = s.conn.name
	gs.Values[sessExpires] = s.session.Unix()
	gs.Options = m.cookieOptions(int((s.session.Sub(m.now()) + time.Second - 1) / time.Second))
	if err := m.sessions.Save(r, w, gs); err != nil {
		// No browser holds the record: end it rather than leave it
		// live until it expires.
		if eerr := m.records.EndSession(context.WithoutCancel(r.Context()), rec.ID); eerr != nil {
			err = errors.Join(err, eerr)
		}
		return fmt.Errorf("%w: save session: %w", ErrStoreUnavailable, err)
	}
	return nil
}

// sessionRecord returns a new session ID for the sign-in s's cookie and
// the session's record, kept under recordID of it. Its error wraps
// ErrStoreUnavailable.
func (m *Middleware) sessionRecord(s *signIn) (string, userstore.Session, error) {
	id, err := userstore.NewSessionID()
	if err != nil {
		return "", userstore.Session{}, storeErr("create session", err)
	}
	idn := s.identity
	return id, userstore.Session{ID: recordID(id), Key: s.key, Connection: s.conn.name, SessionIndex: idn.SessionIndex,
		NameID:    userstore.NameID{Value: idn.NameID, Format: idn.NameIDFormat, NameQualifier: idn.NameQualifier, SPNameQualifier: idn.SPNameQualifier},
		CreatedAt: s.now, ExpiresAt: s.session}, nil
}

func (m *Middleware) cookieOptions(maxAge int) *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   m.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// Logout ends the browser's session: it ends the session's record in
// Options.Sessions, so that the session cookie is refused from then on,
// also a copy of it, on every instance, and deletes the cookie (and, with
// a server-side Options.SessionStore, what that store keeps for it, by
// saving the browser's own session with MaxAge -1). It does not sign the
// person out of the IdP, which may sign them straight back in: the logout
// endpoint (PathPrefix/logout) does, by SAML Single Logout, when the IdP
// offers it. The cookie
// is deleted even when ending the record fails; the error then wraps
// ErrStoreUnavailable.
func (m *Middleware) Logout(w http.ResponseWriter, r *http.Request) error {
	gs, _ := m.sessions.New(r, m.sessionName)
	if gs == nil {
		gs = sessions.NewSession(m.sessions, m.sessionName)
	}
	var err error
	if id, _ := gs.Values[sessID].(string); id != "" {
		err = m.endSession(r.Context(), recordID(id), "logout")
	}
	gs.Options = m.cookieOptions(-1)
	if serr := m.sessions.Save(r, w, gs); serr != nil {
		err = errors.Join(err, fmt.Errorf("delete session cookie: %w", serr))
	}
	return err
}

// endSession ends the session record id, logging why with its user when
// it is still live.
func (m *Middleware) endSession(ctx context.Context, id, reason string) error {
	attrs := []slog.Attr{slog.String("reason", reason)}
	if rec, u, err := m.records.LookupSession(ctx, id, m.now()); err == nil {
		attrs = append(attrs, slog.String("connection", rec.Connection), slog.String("user_id", u.ID),
			slog.String("issuer", rec.Key.Issuer), slog.String("subject", rec.Key.Subject))
	}
	if err := m.records.EndSession(ctx, id); err != nil {
		return storeErr("end session", err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "session ended", attrs...)
	return nil
}

// EndSessions ends every session of the user with key, on every device
// and on every instance sharing Options.Sessions: "sign out everywhere",
// or an administrator's revocation. Each of those sessions' next request
// is refused as not signed in ([ErrNotSignedIn]). It returns how many
// live sessions it ended, and logs one line saying so. It does not
// suspend the user, who may sign in again at once through their IdP: to
// keep someone out, suspend them ([userstore.Admin.Suspend]), which ends
// their sessions too. A store failure is an error wrapping
// [ErrStoreUnavailable].
func (m *Middleware) EndSessions(ctx context.Context, key userstore.Key) (int, error) {
	n, err := m.records.EndSessions(ctx, key, "", m.now())
	if err != nil {
		return 0, storeErr("end sessions", err)
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "sessions ended",
		slog.String("reason", "end sessions"), slog.String("issuer", key.Issuer), slog.String("subject", key.Subject),
		slog.Int("count", n))
	return n, nil
}

// EndSession ends one live session of the user with key, the one with
// the given ID (from [Middleware.Sessions]), on every instance: "sign out
// that device". A session of another user is left alone and, like an
// unknown or ended one, is reported as an error wrapping
// [userstore.ErrNotFound], so that a page listing a person's own sessions
// cannot end anyone else's. A store failure is an error wrapping
// [ErrStoreUnavailable].
func (m *Middleware) EndSession(ctx context.Context, key userstore.Key, id string) error {
	list, err := m.records.ListSessions(ctx, key, m.now())
	if err != nil {
		return storeErr("list sessions", err)
	}
	if !slices.ContainsFunc(list, func(s userstore.Session) bool { return s.ID == id }) {
		return fmt.Errorf("jit: end session: no live session of %s with that ID: %w", key, userstore.ErrNotFound)
	}
	return m.endSession(ctx, id, "end session")
}

// Sessions returns the live sessions of the user with key, oldest first:
// for a page where a person, or an administrator, reviews them before
// ending them with [Middleware.EndSessions]. A store failure is an error
// wrapping [ErrStoreUnavailable].
func (m *Middleware) Sessions(ctx context.Context, key userstore.Key) ([]userstore.Session, error) {
	list, err := m.records.ListSessions(ctx, key, m.now())
	if err != nil {
		return nil, storeErr("list sessions", err)
	}
	return list, nil
}

// serveLogout ends the local session on a same-origin POST, then, when the
// session's IdP offers Single Logout, sends the browser to it with a
// LogoutRequest (see slo.go); otherwise it lands on AfterLogoutPath. A
// GET, or a POST another site made the browser send, is refused: a
// cross-site logout is a nuisance attack (logout CSRF) and needs no token
// beyond the browser's own Origin and Sec-Fetch-Site headers.
func (m *Middleware) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed: sign out with a POST", http.StatusMethodNotAllowed)
		return
	}
	if !m.SameOrigin(r) {
		m.log.LogAttrs(r.Context(), slog.LevelWarn, "logout refused: not a same-origin request",
			slog.String("origin", truncate(r.Header.Get("Origin"), 200)),
			slog.String("sec_fetch_site", truncate(r.Header.Get("Sec-Fetch-Site"), 50)))
		http.Error(w, "forbidden: cross-site request", http.StatusForbidden)
		return
	}
	rec, c, live := m.sessionForLogout(r)
	if err := m.Logout(w, r); err != nil {
		m.log.ErrorContext(r.Context(), "logout", "err", err)
		live = false // the session may still be live: do not tell the IdP it ended
	}
	if live && m.startSingleLogout(w, r, c, rec) {
		return
	}
	http.Redirect(w, r, m.afterLogout, http.StatusSeeOther)
}

// SameOrigin reports whether a state-changing request comes from the
// application's own pages: the browser says so in Sec-Fetch-Site, or its
// Origin is RootURL's. A request with neither header does not count:
// every browser in use sends Origin on a POST. The logout endpoint checks
// it; use it to guard the application's own forms against cross-site
// requests (CSRF) without tokens.
func (m *Middleware) SameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	return origin != "" && origin == m.root.Scheme+"://"+m.root.Host
}

// truncate shortens s to at most n bytes for a log line, at a character
// boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// recordID is the ID under which the store keeps the session whose
// cookie holds id: its SHA-256, in hex. The cookie's ID is the secret;
// the store holds only its hash, so that a copy of the database (a
// backup, a read replica, a leaked dump) holds nothing that opens a
// session.
func recordID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sessionID returns the ID of the request's session record and the
// connection its cookie names, without reading the store. An expired
// cookie is ErrSessionExpired.
func (m *Middleware) sessionID(r *http.Request) (string, *connection, error) {
	s, err := m.sessions.New(r, m.sessionName)
	if err != nil || s == nil || s.IsNew {
		return "", nil, ErrNotSignedIn
	}
	id, _ := s.Values[sessID].(string)
	if id == "" {
		return "", nil, ErrNotSignedIn
	}
	id = recordID(id)
	conn, _ := s.Values[sessConn].(string)
	exp, _ := s.Values[sessExpires].(int64)
	c, ok := m.connection(conn)
	if !ok {
		c, ok = m.unservedSession(r.Context(), id, conn)
	}
	switch {
	case !ok:
		return "", nil, ErrNotSignedIn
	case m.now().Unix() >= exp:
		return "", nil, ErrSessionExpired
	}
	return id, c, nil
}

type userCtxKey struct{}

// requestUser is the user RequireUser puts in a request's context: read
// with the session, its lists decoded on the first call of
// [UserFromContext], and kept for that request only.
type requestUser struct {
	lazy *userstore.LazyUser
	log  *slog.Logger
}

// UserFromContext returns the signed-in user that [Middleware.RequireUser]
// put in the request's context. RequireUser reads the user's ID, key and
// status at once and decodes the rest (groups, attributes, roles) at the
// first call in the request, so a handler that never asks pays nothing
// for a long list of groups. When that decoding fails (the user's stored
// record is damaged) it fails closed: it returns false, as for a request
// without a user, and logs the error.
func UserFromContext(ctx context.Context) (userstore.User, bool) {
	switch v := ctx.Value(userCtxKey{}).(type) {
	case userstore.User:
		return v, true
	case *requestUser:
		u, err := v.lazy.User()
		if err != nil {
			v.log.LogAttrs(ctx, slog.LevelError, "signed-in user not readable",
				slog.String("user_id", v.lazy.ID()), slog.String("err", err.Error()))
			return userstore.User{}, false
		}
		return u, true
	}
	return userstore.User{}, false
}

// ContextWithUser returns a copy of ctx carrying u, as RequireUser does.
// It is meant for tests of handlers that call [UserFromContext].
func ContextWithUser(ctx context.Context, u userstore.User) context.Context {
	return context.WithValue(ctx, userCtxKey{}, u)
}

// CurrentUser reads the request's session record and the user behind it,
// in one store call ([userstore.Sessions.LookupSession]), without
// redirecting. It returns an error wrapping [ErrNotSignedIn] or
// [ErrSessionExpired] when there is no usable session: none, one that was
// ended (by a logout, [Middleware.EndSessions], or the user's suspension
// or deletion), one that has expired, or one whose connection no longer
// trusts its user's IdP. It returns [ErrSuspended] when the user is
// suspended and [ErrStoreUnavailable] when the store fails or the user's
// record cannot be read. A usable session is reported to
// [Options.Activity] as RequireUser reports it.
func (m *Middleware) CurrentUser(r *http.Request) (userstore.User, error) {
	rec, lu, err := m.current(r)
	if lu == nil {
		return userstore.User{}, err
	}
	u, derr := lu.User()
	if derr != nil {
		return userstore.User{}, storeErr("lookup session", derr)
	}
	if err == nil {
		m.seen(r, rec, u.ID)
	}
	return u, err
}

// lookupSession reads the session record id and its user, with the
// user's lists left undecoded when the store can ([userstore.LazySessions]).
func (m *Middleware) lookupSession(ctx context.Context, id string) (userstore.Session, *userstore.LazyUser, error) {
	if m.lazy != nil {
		return m.lazy.LookupSessionLazy(ctx, id, m.now())
	}
	rec, u, err := m.records.LookupSession(ctx, id, m.now())
	if err != nil {
		return rec, nil, err
	}
	return rec, userstore.NewLazyUser(u, nil), nil
}

// current reads the request's session record and its user. The user is
// nil when the error is not ErrSuspended.
func (m *Middleware) current(r *http.Request) (userstore.Session, *userstore.LazyUser, error) {
	id, c, err := m.sessionID(r)
	if err != nil {
		return userstore.Session{}, nil, err
	}
	rec, u, err := m.lookupSession(r.Context(), id)
	switch {
	case errors.Is(err, userstore.ErrNotFound):
		return userstore.Session{}, nil, fmt.Errorf("%w: the session was ended or has expired, or its user no longer exists", ErrNotSignedIn)
	case err != nil:
		return userstore.Session{}, nil, storeErr("lookup session", err)
	case rec.Connection != c.name || rec.Key.Issuer != c.issuer:
		return userstore.Session{}, nil, fmt.Errorf("%w: connection %q does not trust the session's IdP", ErrNotSignedIn, rec.Connection)
	case u.Status() == userstore.Suspended:
		return rec, u, ErrSuspended
	}
	return rec, u, nil
}

type sessionCtxKey struct{}

// SessionFromContext returns the session record of the request that
// [Middleware.RequireUser] let through: its ID, connection, creation and
// expiry. A page listing a person's sessions ([Middleware.Sessions]) marks
// "this device" with it; an application that wants a last-seen time, an IP
// address or a user agent per session records them itself, keyed by this
// ID (the store keeps none of them), from the reports of
// [Options.Activity].
func SessionFromContext(ctx context.Context) (userstore.Session, bool) {
	s, ok := ctx.Value(sessionCtxKey{}).(userstore.Session)
	return s, ok
}

// RequireUser protects next: every request re-reads the session record and
// the user behind it, so a logout, [Middleware.EndSessions] or a
// suspension takes effect on the next request, on every instance sharing
// the store. Without a usable session a GET or HEAD from a browser is
// redirected to sign in and other requests get 401 (a store's Suspend ends
// the user's sessions, so a suspended user's next request is one of
// these, and their next sign-in is refused); a suspended user whose
// session is still live (suspended by other means) gets 403; a store
// failure gets 503. next finds the user with [UserFromContext] and the
// session with [SessionFromContext]. With [Options.Activity] set, a
// session let through is reported to its Recorder first, at most once an
// interval.
func (m *Middleware) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, u, err := m.current(r)
		switch {
		case err == nil:
			m.seen(r, rec, u.ID())
			ctx := context.WithValue(context.WithValue(r.Context(), userCtxKey{}, &requestUser{lazy: u, log: m.log}), sessionCtxKey{}, rec)
			next.ServeHTTP(w, r.WithContext(ctx))
		case errors.Is(err, ErrNotSignedIn), errors.Is(err, ErrSessionExpired):
			if wantsRedirect(r) {
				http.Redirect(w, r, m.LoginURL(r.URL.RequestURI()), http.StatusFound)
				return
			}
			w.Header().Set("WWW-Authenticate", `SAML realm="`+m.root.Host+`"`)
			http.Error(w, "not signed in", http.StatusUnauthorized)
		default:
			corr := newCorrelationID()
			f := failure(err, corr, "")
			if errors.Is(err, ErrSuspended) {
				m.log.LogAttrs(r.Context(), slog.LevelWarn, "suspended user refused",
					slog.String("correlation_id", corr), slog.String("user_id", u.ID()),
					slog.String("issuer", u.Key().Issuer), slog.String("subject", u.Key().Subject))
				m.renderError(w, r, f)
				return
			}
			m.fail(w, r, f)
		}
	})
}

// wantsRedirect reports whether the request looks like a browser page
// load, which can be sent to the IdP, rather than an API call.
func wantsRedirect(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	accept := r.Header.Get("Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*") && !strings.Contains(accept, "application/json")
}
