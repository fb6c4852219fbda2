package jit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/samljit/samljit/userstore"
)

// Session values. The session holds only the user's key, the connection
// and the session's expiry, so the cookie stays small whatever the
// assertion carried.
const (
	sessIssuer  = "iss"
	sessSubject = "sub"
	sessConn    = "conn"
	sessExpires = "exp"
)

// cookieSerializer encodes the values of the middleware's own cookies as
// compact JSON in place of securecookie's default gob, whose decoder
// compiles the type description of every cookie afresh: decoding the
// session was three quarters of an authenticated request's cost. It knows
// the session's four values and the trackedRequest struct, and refuses
// anything else, so a session store built on it holds nothing but what the
// middleware puts there.
type cookieSerializer struct{}

// sessionValues is a session's content as serialized.
type sessionValues struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	Conn    string `json:"conn"`
	Expires int64  `json:"exp"`
}

// Serialize encodes a session's values or a trackedRequest.
func (cookieSerializer) Serialize(src any) ([]byte, error) {
	switch v := src.(type) {
	case map[any]any:
		var sv sessionValues
		for k, val := range v {
			var ok bool
			switch k {
			case sessIssuer:
				sv.Issuer, ok = val.(string)
			case sessSubject:
				sv.Subject, ok = val.(string)
			case sessConn:
				sv.Conn, ok = val.(string)
			case sessExpires:
				sv.Expires, ok = val.(int64)
			}
			if !ok {
				return nil, fmt.Errorf("jit: session value %v (%T) is not one the middleware sets", k, val)
			}
		}
		return json.Marshal(sv)
	case trackedRequest, *trackedRequest:
		return json.Marshal(v)
	default:
		return nil, fmt.Errorf("jit: cannot serialize %T into a cookie", src)
	}
}

// Deserialize decodes into a session's values or a trackedRequest.
func (cookieSerializer) Deserialize(src []byte, dst any) error {
	switch d := dst.(type) {
	case *map[any]any:
		var sv sessionValues
		if err := json.Unmarshal(src, &sv); err != nil {
			return err
		}
		if *d == nil {
			*d = make(map[any]any, 4)
		}
		(*d)[sessIssuer], (*d)[sessSubject], (*d)[sessConn], (*d)[sessExpires] = sv.Issuer, sv.Subject, sv.Conn, sv.Expires
		return nil
	case *trackedRequest:
		return json.Unmarshal(src, d)
	default:
		return fmt.Errorf("jit: cannot deserialize a cookie into %T", dst)
	}
}

// trackedRequest is an outstanding AuthnRequest, kept in a cookie bound to
// the browser that started it.
type trackedRequest struct {
	ID       string
	Conn     string
	ReturnTo string
	Expires  int64
}

const trackCookiePrefix = "samljit_req_"

// track sets the cookie recording an outstanding request. It is scoped to
// the connection's ACS path. Over https it is SameSite=None so that the
// IdP's cross-site POST carries it; over plain http (development) browsers
// refuse SameSite=None without Secure, so it is left to the browser's
// default.
func (m *Middleware) track(w http.ResponseWriter, c *connection, relay string, t trackedRequest) error {
	name := trackCookiePrefix + relay
	v, err := securecookie.EncodeMulti(name, t, m.codecs...)
	if err != nil {
		return err
	}
	ck := &http.Cookie{
		Name:     name,
		Value:    v,
		Path:     c.acsPath,
		MaxAge:   int(DefaultRequestLifetime / time.Second),
		HttpOnly: true,
		Secure:   m.secure,
	}
	if m.secure {
		ck.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, ck)
	return nil
}

// untrack clears the request cookie for relay.
func (m *Middleware) untrack(w http.ResponseWriter, c *connection, relay string) {
	http.SetCookie(w, &http.Cookie{Name: trackCookiePrefix + relay, Path: c.acsPath, MaxAge: -1, HttpOnly: true, Secure: m.secure})
}

// takeTracked reads the cookie for relay. ok is false when the
// browser holds no valid, unexpired request for this connection.
func (m *Middleware) takeTracked(w http.ResponseWriter, r *http.Request, c *connection, relay string) (trackedRequest, bool) {
	var t trackedRequest
	if len(relay) != 32 || strings.Trim(relay, "0123456789abcdef") != "" {
		return t, false
	}
	name := trackCookiePrefix + relay
	ck, err := r.Cookie(name)
	if err != nil {
		return t, false
	}
	if err := securecookie.DecodeMulti(name, ck.Value, &t, m.codecs...); err != nil {
		return t, false
	}
	if t.Conn != c.name || t.ID == "" || m.now().Unix() >= t.Expires {
		return t, false
	}
	return t, true
}

// startSession issues a new session for key, replacing any the browser
// held, so a session identifier planted before sign-in is never reused.
func (m *Middleware) startSession(w http.ResponseWriter, r *http.Request, c *connection, key userstore.Key, expires time.Time) error {
	s := sessions.NewSession(m.sessions, m.sessionName)
	s.IsNew = true
	s.Values[sessIssuer] = key.Issuer
	s.Values[sessSubject] = key.Subject
	s.Values[sessConn] = c.name
	s.Values[sessExpires] = expires.Unix()
	s.Options = m.cookieOptions(int((expires.Sub(m.now()) + time.Second - 1) / time.Second))
	return m.sessions.Save(r, w, s)
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

// Logout ends the local session by clearing its cookie. It does not sign
// the person out of the IdP, which may sign them straight back in.
func (m *Middleware) Logout(w http.ResponseWriter, r *http.Request) error {
	s := sessions.NewSession(m.sessions, m.sessionName)
	s.Options = m.cookieOptions(-1)
	return m.sessions.Save(r, w, s)
}

func (m *Middleware) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := m.Logout(w, r); err != nil {
		m.log.ErrorContext(r.Context(), "logout", "err", err)
	}
	http.Redirect(w, r, m.afterSignIn, http.StatusSeeOther)
}

// sessionKey returns the key and connection of the request's session.
func (m *Middleware) sessionKey(r *http.Request) (userstore.Key, *connection, error) {
	s, err := m.sessions.New(r, m.sessionName)
	if err != nil || s.IsNew {
		return userstore.Key{}, nil, ErrNotSignedIn
	}
	iss, _ := s.Values[sessIssuer].(string)
	sub, _ := s.Values[sessSubject].(string)
	conn, _ := s.Values[sessConn].(string)
	exp, _ := s.Values[sessExpires].(int64)
	c, ok := m.byName[conn]
	key := userstore.Key{Issuer: iss, Subject: sub}
	switch {
	case !ok || key.IsZero() || iss != c.issuer:
		return userstore.Key{}, nil, ErrNotSignedIn
	case m.now().Unix() >= exp:
		return userstore.Key{}, nil, ErrSessionExpired
	}
	return key, c, nil
}

type userCtxKey struct{}

// UserFromContext returns the signed-in user that [Middleware.RequireUser]
// put in the request's context.
func UserFromContext(ctx context.Context) (userstore.User, bool) {
	u, ok := ctx.Value(userCtxKey{}).(userstore.User)
	return u, ok
}

// ContextWithUser returns a copy of ctx carrying u, as RequireUser does.
// It is meant for tests of handlers that call [UserFromContext].
func ContextWithUser(ctx context.Context, u userstore.User) context.Context {
	return context.WithValue(ctx, userCtxKey{}, u)
}

// CurrentUser reads the request's session and the user record behind it,
// without redirecting. It returns an error wrapping [ErrNotSignedIn] or
// [ErrSessionExpired] when there is no usable session or the user no longer
// exists, [ErrSuspended] when the user is suspended, and
// [ErrStoreUnavailable] when the store fails.
func (m *Middleware) CurrentUser(r *http.Request) (userstore.User, error) {
	key, _, err := m.sessionKey(r)
	if err != nil {
		return userstore.User{}, err
	}
	u, err := m.store.Lookup(r.Context(), key)
	switch {
	case errors.Is(err, userstore.ErrNotFound):
		return userstore.User{}, fmt.Errorf("%w: user %s no longer exists", ErrNotSignedIn, key)
	case err != nil:
		return userstore.User{}, storeErr("lookup", err)
	case u.Status == userstore.Suspended:
		return u, ErrSuspended
	}
	return u, nil
}

// RequireUser protects next: every request re-reads the user behind its
// session, so a suspension takes effect on the next request. Without a
// usable session a GET or HEAD from a browser is redirected to sign in and
// other requests get 401; a suspended user gets 403; a store failure gets
// 503. next finds the user with [UserFromContext].
func (m *Middleware) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := m.CurrentUser(r)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userCtxKey{}, u)))
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
					slog.String("correlation_id", corr), slog.String("user_id", u.ID),
					slog.String("issuer", u.Key.Issuer), slog.String("subject", u.Key.Subject))
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
