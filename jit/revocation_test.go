package jit_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
)

// Sessions the store keeps: a logout, a suspension or EndSessions ends a
// session for good, on every instance sharing the store, whatever copy of
// its cookie is still about.

// copyBrowser returns a new browser holding the cookies c holds for h's
// application: someone who copied the session cookie.
func copyBrowser(h *harness, c *http.Client) *http.Client {
	cp := h.client()
	u := mustURL(h.app.URL)
	cp.Jar.SetCookies(u, c.Jar.Cookies(u))
	return cp
}

// signedIn signs nameID in with a new browser and requires /me to work.
func signedIn(t *testing.T, h *harness, nameID string) *http.Client {
	t.Helper()
	c := h.client()
	resp, body := h.signIn(c, "", nameID)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	r, _ := h.me(c)
	require.Equal(t, http.StatusOK, r.StatusCode, "signed in")
	return c
}

// status returns the status of /me for browser c on h.
func status(h *harness, c *http.Client) int {
	r, _ := h.me(c)
	return r.StatusCode
}

// TestLogoutRevokesCopiedCookie: a session cookie copied before logout
// (from a shared computer, a proxy log, malware) is refused after it: the
// logout ended the session record, not only the browser's copy. With the
// session in the cookie alone, the copy stayed valid until it expired.
func TestLogoutRevokesCopiedCookie(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-copy", "copy@example.com", "Co", "Py"))
	c := signedIn(t, h, "p-copy")
	stolen := copyBrowser(h, c)
	require.Equal(t, http.StatusOK, status(h, stolen), "the copy works before logout")

	resp := logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, http.StatusUnauthorized, status(h, c))
	assert.Equal(t, http.StatusUnauthorized, status(h, stolen), "a cookie copied before logout is refused after it")
	assert.Contains(t, h.logs.String(), `"msg":"session ended","reason":"logout"`)
	assert.Empty(t, sessionsOf(t, h, "p-copy"))
}

// sessionsOf lists the live sessions of the test IdP's nameID.
func sessionsOf(t *testing.T, h *harness, nameID string) []userstore.Session {
	t.Helper()
	list, err := h.mw.Sessions(context.Background(), userstore.Key{Issuer: h.idp().EntityID(), Subject: nameID})
	require.NoError(t, err)
	return list
}

// TestLogoutDeletesServerSideSession: with a server-side gorilla
// SessionStore, logout deletes what that store keeps for the browser
// (Logout once saved a fresh session with an empty ID, so the stored one
// was never deleted and a copied cookie still found it).
func TestLogoutDeletesServerSideSession(t *testing.T) {
	dir := t.TempDir()
	fs := sessions.NewFilesystemStore(dir, bytes.Repeat([]byte{5}, 32))
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) { o.SessionStore = fs }})
	h.idp().AddUser(person("p-fs", "fs@example.com", "Fi", "Le"))
	c := signedIn(t, h, "p-fs")
	stolen := copyBrowser(h, c)
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "the session is kept in the SessionStore")

	resp := logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	files, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, files, "logout deleted the stored session")
	assert.Equal(t, http.StatusUnauthorized, status(h, stolen), "a cookie copied before logout is refused after it")
}

// TestUnsuspendDoesNotReviveSessions: a session issued before a
// suspension stays dead after the user is unsuspended; the person signs
// in again. (When the session was the cookie and the store only said
// whether the user was suspended, unsuspending revived every old cookie.)
func TestUnsuspendDoesNotReviveSessions(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-sus", "sus@example.com", "Sus", "Pended"))
	c := signedIn(t, h, "p-sus")
	stolen := copyBrowser(h, c)
	key := userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-sus"}

	ctx := context.Background()
	require.NoError(t, h.store.Suspend(ctx, key))
	assert.NotEqual(t, http.StatusOK, status(h, c), "refused while suspended")
	require.NoError(t, h.store.Unsuspend(ctx, key))
	assert.Equal(t, http.StatusUnauthorized, status(h, c), "the session issued before the suspension stays ended")
	assert.Equal(t, http.StatusUnauthorized, status(h, stolen), "and so does any copy of it")

	c2 := signedIn(t, h, "p-sus")
	assert.Len(t, sessionsOf(t, h, "p-sus"), 1, "only the session of the sign-in after the suspension")
	assert.Equal(t, http.StatusOK, status(h, c2))
}

// TestEndSessionsOnEveryInstance: two instances of an application on one
// SQLite file; the user signs in on two devices, each session works on
// both instances, and EndSessions on one instance ends both on both. The
// user is not suspended: a new sign-in works.
func TestEndSessionsOnEveryInstance(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-two", "two@example.com", "Two", "Devices"))
	st, _ := openSQLite(t, h.dbPath)
	h2 := newHarness(t, harnessConfig{store: st, configure: func(o *jit.Options) {
		o.Connections[0].IDPMetadata = h.idp().Metadata()
		o.RootURL = h.app.URL
	}})
	laptop, phone := signedIn(t, h, "p-two"), signedIn(t, h, "p-two")
	for _, inst := range []*harness{h, h2} {
		for _, dev := range []*http.Client{laptop, phone} {
			require.Equal(t, http.StatusOK, status(inst, dev), "each session works on each instance")
		}
	}
	key := userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-two"}
	list, err := h2.mw.Sessions(context.Background(), key)
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, s := range list {
		assert.Equal(t, key, s.Key)
		assert.NotEmpty(t, s.SessionIndex, "the IdP's SessionIndex is kept")
		assert.True(t, s.ExpiresAt.After(s.CreatedAt))
	}

	n, err := h2.mw.EndSessions(context.Background(), key)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Contains(t, h2.logs.String(), `"msg":"sessions ended","reason":"end sessions"`)
	assert.Contains(t, h2.logs.String(), `"count":2`)
	for _, inst := range []*harness{h, h2} {
		for _, dev := range []*http.Client{laptop, phone} {
			assert.Equal(t, http.StatusUnauthorized, status(inst, dev), "an ended session is refused on every instance")
		}
	}
	assert.Empty(t, sessionsOf(t, h, "p-two"))
	n, err = h.mw.EndSessions(context.Background(), key)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to end")
	signedIn(t, h, "p-two")
}

// TestExpiredSessionRecordRefused: the store's expiry of a session is
// judged on every request, whatever the cookie says: a record whose
// expiry has passed is refused though its cookie has not expired.
func TestExpiredSessionRecordRefused(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-exp", "exp@example.com", "Ex", "Pired"))
	c := signedIn(t, h, "p-exp")
	_, db := openSQLite(t, h.dbPath)
	r, err := db.ExecContext(context.Background(), `UPDATE sessions SET expires_at = ?`, time.Now().Add(-time.Second).UnixNano())
	require.NoError(t, err)
	n, err := r.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "one session record")
	assert.Equal(t, http.StatusUnauthorized, status(h, c), "an expired session record is refused")
}

// TestSessionRecordFailureRefusesSignIn: when the session cannot be
// recorded the sign-in is refused with a 503 and no cookie, the log says
// why, and the same response, re-posted once the store is back, signs the
// person in. A store failure reading the session on a later request is a
// 503 too, not a sign-out.
func TestSessionRecordFailureRefusesSignIn(t *testing.T) {
	h, fs := newFaultHarness(t)
	c := h.client()
	f := h.respond(c, "", victim)
	fs.set("CreateSession", func(context.Context) error { return errors.New("disk I/O error") })
	resp, body := h.post(c, f)
	corr := refusal(t, resp, body, http.StatusServiceUnavailable)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrStoreUnavailable)
	assert.True(t, h.logged(corr, "request refused", "create session", "disk I/O error"))
	assert.Empty(t, sessionCookie(c, h), "no session cookie without a session record")

	fs.set("", nil)
	resp, body = h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, http.StatusOK, status(h, c))

	fs.set("LookupSession", func(context.Context) error { return errors.New("disk I/O error") })
	assert.Equal(t, http.StatusServiceUnavailable, status(h, c))
	fs.set("", nil)
	assert.Equal(t, http.StatusOK, status(h, c), "the session outlived the store's failure")
}

// TestNewRequiresRevocableSessions: a store that keeps no sessions is
// refused, saying why, unless Options.Sessions keeps them.
func TestNewRequiresRevocableSessions(t *testing.T) {
	idp := jittest.New(t).Metadata()
	key, cert := spKeyPair()
	mem := newMem()
	opts := jit.Options{RootURL: "https://app.example", Key: key, Certificate: cert,
		Store: lookupOnly{mem}, Replay: mem, SessionKeys: [][]byte{make32()},
		Connections: []jit.Connection{{IDPMetadata: idp}}}
	_, err := jit.New(context.Background(), opts)
	require.ErrorContains(t, err, "Options.Sessions is required")
	opts.Sessions = mem
	_, err = jit.New(context.Background(), opts)
	require.NoError(t, err)
}

// TestSessionRecordHoldsOnlyItsID: the cookie carries the session
// record's ID, not the user's key: with the record gone, the cookie names
// no one.
func TestSessionRecordHoldsOnlyItsID(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-id", "id@example.com", "I", "D"))
	c := signedIn(t, h, "p-id")
	_, db := openSQLite(t, h.dbPath)
	_, err := db.ExecContext(context.Background(), `DELETE FROM sessions`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status(h, c))
}

// TestSessionRecordsNameID: the session a sign-in records keeps the
// assertion's NameID and SessionIndex, by which the IdP's Single Logout
// messages name it.
func TestSessionRecordsNameID(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-nid", "nid@example.com", "Ni", "D"))
	signedIn(t, h, "p-nid")
	list := sessionsOf(t, h, "p-nid")
	require.Len(t, list, 1)
	assert.Equal(t, "p-nid", list[0].NameID.Value)
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", list[0].NameID.Format)
	assert.NotEmpty(t, list[0].SessionIndex)
	n, err := h.store.EndSessionsByNameID(context.Background(), h.idp().EntityID(), "p-nid", list[0].SessionIndex, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Empty(t, sessionsOf(t, h, "p-nid"))
}

// TestSessionEndLoggedWithItsUser: the log line of an ended session names
// the connection and the user it belonged to.
func TestSessionEndLoggedWithItsUser(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-log", "log@example.com", "Lo", "G"))
	c := signedIn(t, h, "p-log")
	_, u := h.me(c)
	require.NotEmpty(t, u.ID)
	resp := logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var line string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"session ended"`) {
			line = l
		}
	}
	require.NotEmpty(t, line, "no session ended line")
	assert.Contains(t, line, `"user_id":"`+u.ID+`"`)
	assert.Contains(t, line, `"subject":"p-log"`)
}

// TestStoredSessionIDOpensNoSession: the store keeps a session under the
// SHA-256 of the ID its cookie holds, so an ID read from the database (a
// backup, a replica, a leaked dump) opens no session, even in a cookie
// sealed with the application's own keys; the genuine cookie does.
func TestStoredSessionIDOpensNoSession(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-leak", "leak@example.com", "Le", "Ak"))
	c := signedIn(t, h, "p-leak")
	list := sessionsOf(t, h, "p-leak")
	require.Len(t, list, 1)
	stored := list[0]
	assert.Regexp(t, `^[0-9a-f]{64}$`, stored.ID, "the store holds a hash")
	assert.Equal(t, http.StatusOK, status(h, c))

	forged, err := jit.SessionCookie(h.mw, stored.ID, stored.Connection, stored.ExpiresAt)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
	require.NoError(t, err)
	req.AddCookie(forged)
	_, err = h.mw.CurrentUser(req)
	require.ErrorIs(t, err, jit.ErrNotSignedIn, "a stored ID opens no session")
	assert.Equal(t, http.StatusOK, status(h, c), "and ends none")
}
