package jit

import (
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gorilla/sessions"
)

// CheckMetadataURL is checkMetadataURL, for the external tests.
var CheckMetadataURL = checkMetadataURL

// SessionCookie is the session cookie m would issue for a session whose
// cookie holds id, of connection conn, ending at exp.
func SessionCookie(m *Middleware, id, conn string, exp time.Time) (*http.Cookie, error) {
	gs := sessions.NewSession(m.sessions, m.sessionName)
	gs.IsNew = true
	gs.Values[sessID], gs.Values[sessConn], gs.Values[sessExpires] = id, conn, exp.Unix()
	gs.Options = m.cookieOptions(3600)
	w := httptest.NewRecorder()
	if err := m.sessions.Save(httptest.NewRequest(http.MethodGet, "/", nil), w, gs); err != nil {
		return nil, err
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == m.sessionName {
			return c, nil
		}
	}
	return nil, http.ErrNoCookie
}
