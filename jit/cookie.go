package jit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// Session values. The session holds only the ID of its record in
// Options.Sessions, the connection and the session's expiry, so the cookie
// stays small whatever the assertion carried, and the session ends when
// its record does.
const (
	sessID      = "sid"
	sessConn    = "conn"
	sessExpires = "exp"
)

// cookieSerializer encodes the values of the middleware's own cookies as
// compact JSON in place of securecookie's default gob, whose decoder
// compiles the type description of every cookie afresh: decoding the
// session was three quarters of an authenticated request's cost. It knows
// the session's three values, the trackedRequest and sealedFailure structs, and refuses
// anything else, so a session store built on it holds nothing but what the
// middleware puts there.
type cookieSerializer struct{}

// sessionValues is a session's content as serialized. A cookie of an
// earlier version (which held the user's key) decodes with an empty ID,
// which is no session.
type sessionValues struct {
	ID      string `json:"sid"`
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
			case sessID:
				sv.ID, ok = val.(string)
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
	case trackedRequests, *trackedRequests, sealedFailure, *sealedFailure:
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
			*d = make(map[any]any, 3)
		}
		(*d)[sessID], (*d)[sessConn], (*d)[sessExpires] = sv.ID, sv.Conn, sv.Expires
		return nil
	case *trackedRequests, *sealedFailure:
		return json.Unmarshal(src, d)
	default:
		return fmt.Errorf("jit: cannot deserialize a cookie into %T", dst)
	}
}

// trackedRequest is an outstanding AuthnRequest or LogoutRequest of this
// browser, found by the RelayState the IdP echoes.
type trackedRequest struct {
	Relay    string `json:"relay"`
	ID       string `json:"id"`
	Logout   bool   `json:"logout,omitempty"` // a LogoutRequest, never answered by a sign-in
	Conn     string `json:"conn"`
	ReturnTo string `json:"return_to"`
	Expires  int64  `json:"exp"`
}

// trackedRequests are a browser's outstanding requests, newest last, all
// in one cookie.
type trackedRequests []trackedRequest

const (
	trackCookieName = "samljit_req"
	// maxTracked bounds the outstanding requests one browser keeps: a
	// sign-in started in a fifth tab pushes out the oldest. Each login
	// once added a cookie of its own, and twenty of them made the next
	// request's headers too large for the server.
	maxTracked = 4
	// maxReturnTo bounds the return path a request remembers; a longer one
	// is replaced by AfterSignInPath.
	maxReturnTo = 256
)

// cookieName is name as the middleware sets it: with the __Host- prefix
// over https, so that no sibling subdomain can plant or overwrite it
// (browsers accept such a cookie only from this host, Secure, Path=/).
func (m *Middleware) cookieName(name string) string {
	if m.secure && !strings.HasPrefix(name, "__Host-") {
		return "__Host-" + name
	}
	return name
}

// readTracked returns the browser's unexpired outstanding requests.
func (m *Middleware) readTracked(r *http.Request) trackedRequests {
	name := m.cookieName(trackCookieName)
	ck, err := r.Cookie(name)
	if err != nil {
		return nil
	}
	var all trackedRequests
	if err := securecookie.DecodeMulti(name, ck.Value, &all, m.codecs...); err != nil {
		return nil
	}
	now := m.now().Unix()
	live := all[:0]
	for _, t := range all {
		if now < t.Expires {
			live = append(live, t)
		}
	}
	return live
}

// writeTracked sets the request cookie to ts, or clears it when ts is
// empty. It is sent with every request to the site (Path=/, as __Host-
// requires) and holds at most maxTracked small entries. Over https it is
// SameSite=None so that the IdP's cross-site POST carries it; over plain
// http (development) browsers refuse SameSite=None without Secure, so it
// is left to the browser's default.
func (m *Middleware) writeTracked(w http.ResponseWriter, ts trackedRequests) error {
	name := m.cookieName(trackCookieName)
	ck := &http.Cookie{Name: name, Path: "/", HttpOnly: true, Secure: m.secure, MaxAge: -1}
	if len(ts) > 0 {
		v, err := securecookie.EncodeMulti(name, ts, m.codecs...)
		if err != nil {
			return err
		}
		ck.Value, ck.MaxAge = v, int(requestLifetime/time.Second)
	}
	if m.secure {
		ck.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, ck)
	return nil
}

// track records an outstanding request, keeping the newest maxTracked.
func (m *Middleware) track(w http.ResponseWriter, r *http.Request, t trackedRequest) error {
	ts := append(m.readTracked(r), t)
	if len(ts) > maxTracked {
		ts = ts[len(ts)-maxTracked:]
	}
	return m.writeTracked(w, ts)
}

// untrack forgets the outstanding request for relay.
func (m *Middleware) untrack(w http.ResponseWriter, r *http.Request, relay string) {
	ts := m.readTracked(r)
	rest := make(trackedRequests, 0, len(ts))
	for _, t := range ts {
		if t.Relay != relay {
			rest = append(rest, t)
		}
	}
	if err := m.writeTracked(w, rest); err != nil {
		m.log.ErrorContext(r.Context(), "untrack request", "err", err)
	}
}

// takeTracked finds the outstanding request for relay. ok is false when
// the browser holds no valid, unexpired request for this connection.
func (m *Middleware) takeTracked(r *http.Request, c *connection, relay string) (trackedRequest, bool) {
	if len(relay) != 32 || strings.Trim(relay, "0123456789abcdef") != "" {
		return trackedRequest{}, false
	}
	for _, t := range m.readTracked(r) {
		if t.Relay == relay && t.Conn == c.name && t.ID != "" && !t.Logout {
			return t, true
		}
	}
	return trackedRequest{}, false
}
