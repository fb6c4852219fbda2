package jit_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

var correlationRE = regexp.MustCompile(`Reference: <code>([0-9a-f]{16})</code>`)

// refusal checks that a response is the plain refusal page and returns its
// correlation id.
// signInLinkRE matches the refusal page's link to start again, whose path
// is the middleware's own (/saml/login) and no protocol detail.
var signInLinkRE = regexp.MustCompile(`<a class="button" href="[^"]*">Try again</a>`)

func refusal(t *testing.T, resp *http.Response, body string, status int) string {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, body)
	m := correlationRE.FindStringSubmatch(body)
	require.NotNil(t, m, "refusal page has a correlation id: %s", body)
	assert.NotContains(t, signInLinkRE.ReplaceAllString(body, ""), "saml", "no protocol internals on the page")
	return m[1]
}

func TestFirstSignInCreatesUser(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-alice", "alice@example.com", "Alice", "Liddell", "staff", "admins"))
	c := h.client()

	resp, body := h.signIn(c, "", "p-alice")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "/", resp.Header.Get("Location"))

	us := h.users()
	require.Len(t, us, 1)
	u := us[0]
	assert.Equal(t, userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-alice"}, u.Key)
	assert.Equal(t, "alice@example.com", u.Profile.Email)
	assert.Equal(t, "Alice Liddell", u.Profile.DisplayName)
	assert.Equal(t, []string{"staff", "admins"}, u.Profile.Groups)
	assert.Equal(t, userstore.Active, u.Status)

	e := h.lastEvent()
	assert.Equal(t, jit.EventCreated, e.Kind)
	assert.Equal(t, u.ID, e.UserID)

	// The session is small and holds only the key.
	for _, ck := range c.Jar.Cookies(mustURL(h.app.URL)) {
		if ck.Name == jit.DefaultSessionName {
			assert.Less(t, len(ck.Value), 1024)
		}
	}
	meResp, me := h.me(c)
	require.Equal(t, http.StatusOK, meResp.StatusCode)
	assert.Equal(t, u.ID, me.ID)
	assert.Equal(t, "Alice", me.Profile.GivenName)
}

func TestReturningSignInUpdatesAndReportsChanges(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) { o.Now = clock }})
	h.idp().AddUser(person("p-bob", "bob@example.com", "Bob", "Builder", "staff"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-bob")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	first := h.users()[0]

	now = now.Add(30 * time.Second)
	h.idp().AddUser(person("p-bob", "bob@new.example.com", "Bob", "Builder", "staff", "ops"))
	resp, body = h.signIn(h.client(), "", "p-bob")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	us := h.users()
	require.Len(t, us, 1, "an update, not a second user")
	u := us[0]
	assert.Equal(t, first.ID, u.ID)
	assert.Equal(t, "bob@new.example.com", u.Profile.Email)
	assert.Equal(t, []string{"staff", "ops"}, u.Profile.Groups)
	assert.True(t, u.CreatedAt.Equal(first.CreatedAt))
	assert.True(t, u.LastSignInAt.Equal(now), "last sign-in stamped with the injected clock")

	e := h.lastEvent()
	assert.Equal(t, jit.EventUpdated, e.Kind)
	assert.Equal(t, []string{"email", "groups"}, e.Changed)
	require.NotNil(t, e.Before)
	assert.Equal(t, "bob@example.com", e.Before.Email)
	assert.Equal(t, "bob@new.example.com", e.After.Email)
}

func TestSuspendedUserRefusedAtACSAndMidSession(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-carol", "carol@example.com", "Carol", "Danvers"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-carol")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	key := h.users()[0].Key

	// Mid-session, suspended by a write that leaves the session record
	// alone (an SQL feed): the very next request is refused as suspended.
	_, db := openSQLite(t, h.dbPath)
	_, err := db.ExecContext(context.Background(), `UPDATE users SET status = 1 WHERE subject = 'p-carol'`)
	require.NoError(t, err)
	meResp, _ := h.me(c)
	assert.Equal(t, http.StatusForbidden, meResp.StatusCode)

	// Suspended by the store's Suspend, which ends the sessions too: the
	// very next request has no session at all.
	require.NoError(t, h.store.Suspend(context.Background(), key))
	meResp, _ = h.me(c)
	assert.Equal(t, http.StatusUnauthorized, meResp.StatusCode)

	// At the ACS: refused before any write, even with changed claims.
	before := h.users()[0]
	h.idp().AddUser(person("p-carol", "carol@elsewhere.example", "Carol", "Danvers"))
	resp, body = h.signIn(h.client(), "", "p-carol")
	corr := refusal(t, resp, body, http.StatusForbidden)
	assert.Contains(t, body, "suspended")
	after := h.users()[0]
	assert.Equal(t, before, after, "nothing written for a suspended user")
	assert.Equal(t, userstore.Suspended, after.Status, "a sign-in never reactivates")
	e := h.lastEvent()
	assert.Equal(t, jit.EventRefused, e.Kind)
	assert.ErrorIs(t, e.Err, jit.ErrSuspended)
	assert.True(t, h.logged(corr, "suspended"), h.logs.String())
}

func TestMissingRequiredClaimRefusedNothingStored(t *testing.T) {
	m := claims.Generic()
	m.Email.Required = true
	h := newHarness(t, harnessConfig{mapper: m})
	u := person("p-dan", "", "Dan", "Dare")
	delete(u.Attributes, "urn:oid:0.9.2342.19200300.100.1.3")
	h.idp().AddUser(u)

	resp, body := h.signIn(h.client(), "", "p-dan")
	corr := refusal(t, resp, body, http.StatusForbidden)
	assert.Contains(t, body, "did not send the email")
	assert.Empty(t, h.users())
	e := h.lastEvent()
	assert.ErrorIs(t, e.Err, claims.ErrMissingAttribute)
	assert.True(t, h.logged(corr, "urn:oid:0.9.2342.19200300.100.1.3"), "the log names the attributes tried")
}

func TestTransientNameIDRefused(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	u := person("_transient-1234", "eve@example.com", "Eve", "Transient")
	u.NameIDFormat = jittest.NameIDFormatTransient
	h.idp().AddUser(u)
	resp, body := h.signIn(h.client(), "", "_transient-1234")
	refusal(t, resp, body, http.StatusForbidden)
	assert.Empty(t, h.users())
	assert.ErrorIs(t, h.lastEvent().Err, claims.ErrTransientNameID)
}

func TestReplayedResponseRefused(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-fay", "fay@example.com", "Fay", "Wray"))
	c := h.client()
	f := h.respond(c, "", "p-fay")

	resp, body := h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	// The same browser re-posts the same response: its request was used up.
	resp, body = h.post(c, f)
	refusal(t, resp, body, http.StatusForbidden)

	// Another browser replays it (the request cookie is gone either way).
	resp, body = h.post(h.client(), f)
	refusal(t, resp, body, http.StatusForbidden)
	require.Len(t, h.users(), 1)
}

func TestReplayRefusedAfterRestart(t *testing.T) {
	// IdP-initiated sign-in is allowed here so that the replay record, not
	// the request cookie, is what refuses the second post.
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) { o.Connections[0].AllowIDPInitiated = true }})
	h.idp().AddUser(person("p-gil", "gil@example.com", "Gil", "Scott"))
	acs := h.app.URL + "/saml/acs"
	entityID := h.app.URL + "/saml/metadata"
	f, err := h.idp().Unsolicited(entityID, acs, "p-gil", "/docs")
	require.NoError(t, err)
	resp, body := h.post(h.client(), f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "/docs", resp.Header.Get("Location"))

	// Restart: a new store on the same file, a new middleware.
	st, _ := openSQLite(t, h.dbPath)
	h2 := newHarness(t, harnessConfig{store: st, configure: func(o *jit.Options) {
		o.Connections[0].AllowIDPInitiated = true
		o.Connections[0].IDPMetadata = h.idp().Metadata()
		o.RootURL = h.app.URL
	}})
	rec := postForm(t, h2.mw, f)
	assert.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	assert.ErrorIs(t, h2.lastEvent().Err, jit.ErrReplayed)
	require.Len(t, h2.users(), 1)
}

func TestTenantsAreSeparate(t *testing.T) {
	h := newHarness(t, harnessConfig{connections: []string{"acme", "globex"}})
	// The same NameID at two IdPs is two people.
	h.idp("acme").AddUser(person("p-1", "one@acme.example", "One", "Acme"))
	h.idp("globex").AddUser(person("p-1", "one@globex.example", "One", "Globex"))

	resp, body := h.signIn(h.client(), "acme", "p-1")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, body = h.signIn(h.client(), "globex", "p-1")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	us := h.users()
	require.Len(t, us, 2)
	assert.NotEqual(t, us[0].Key, us[1].Key)

	// A valid acme response posted at globex's ACS is refused: globex
	// has no request outstanding in this browser.
	c := h.client()
	f := h.respond(c, "acme", "p-1")
	f.ACS = h.app.URL + "/saml/globex/acs"
	resp, body = h.post(c, f)
	refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrUnsolicited)

	// Even with globex's request cookie in the browser: acme is not
	// globex's IdP.
	c = h.client()
	fa := h.respond(c, "acme", "p-1")
	fg := h.respond(c, "globex", "p-1")
	fa.ACS, fa.RelayState = fg.ACS, fg.RelayState
	resp, body = h.post(c, fa)
	refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrInvalidResponse)
	require.Len(t, h.users(), 2)
}

func TestConcurrentFirstSignInsMakeOneUser(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-many", "many@example.com", "Many", "Hands"))
	const n = 64
	forms := make([]jittest.Form, n)
	clients := make([]*http.Client, n)
	for i := range forms {
		clients[i] = h.client()
		forms[i] = h.respond(clients[i], "", "p-many")
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	start := make(chan struct{})
	for i := range forms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := forms[i].Post(context.Background(), clients[i])
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, code := range codes {
		assert.Equal(t, http.StatusSeeOther, code, "sign-in %d", i)
	}
	require.Len(t, h.users(), 1)
	assert.Len(t, h.eventsOf(jit.EventCreated), 1)
	assert.Len(t, h.eventsOf(jit.EventUpdated), n-1)
}

// failingStore fails Provision while fail is set.
type failingStore struct {
	*memstore.Store
	mu   sync.Mutex
	fail error
}

func (f *failingStore) Provision(ctx context.Context, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	return f.Store.Provision(ctx, k, p, now)
}

// SignIn fails like Provision, for memstore's one-step sign-in.
func (f *failingStore) SignIn(ctx context.Context, issuer, id string, expires time.Time, k userstore.Key, now time.Time, decide func(*userstore.User) (userstore.Profile, error)) (userstore.Provisioned, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	return f.Store.SignIn(ctx, issuer, id, expires, k, now, decide)
}

// SignInWith fails like Provision, for memstore's one-transaction sign-in.
func (f *failingStore) SignInWith(ctx context.Context, r userstore.SignInRequest) (userstore.Provisioned, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	return f.Store.SignInWith(ctx, r)
}

func TestStoreErrorGives503AndNothingStored(t *testing.T) {
	st := &failingStore{Store: memstore.New(), fail: errors.New("disk I/O error")}
	h := newHarness(t, harnessConfig{store: st})
	h.idp().AddUser(person("p-hal", "hal@example.com", "Hal", "Jordan"))
	c := h.client()
	f := h.respond(c, "", "p-hal")
	resp, body := h.post(c, f)
	corr := refusal(t, resp, body, http.StatusServiceUnavailable)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.NotContains(t, body, "disk I/O")
	assert.True(t, h.logged(corr, "disk I/O error"))
	assert.Empty(t, h.users())
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrStoreUnavailable)
	assert.Empty(t, sessionCookie(c, h), "no session for a failed sign-in")

	// Neither the request nor the replay record was consumed: once the
	// store recovers, re-posting the same response (the browser's retry)
	// signs the person in.
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	resp, body = h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Len(t, h.users(), 1)
}

func sessionCookie(c *http.Client, h *harness) string {
	for _, ck := range c.Jar.Cookies(mustURL(h.app.URL)) {
		if ck.Name == jit.DefaultSessionName {
			return ck.Value
		}
	}
	return ""
}

// TestLoggedReasonBounded: a reason quotes parts of the posted response,
// which an unauthenticated poster chooses; a 200 KB namespace URI once made
// a 200 KB log line. The log line is bounded; the refusal is the same.
func TestLoggedReasonBounded(t *testing.T) {
	h := newHarness(t, harnessConfig{configure: allowIDPInit})
	ns := "urn:x:" + strings.Repeat("é", 100_000)
	doc := `<r:Response xmlns:r="` + ns + `"/>`
	f := jittest.Form{ACS: h.app.URL + "/saml/acs", SAMLResponse: b64(doc)}
	resp, body := h.post(h.client(), f)
	corr := refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrInvalidResponse)
	var line string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, corr) {
			line = l
		}
	}
	require.NotEmpty(t, line)
	assert.Less(t, len(line), 2048, "the log line is bounded")
	assert.Contains(t, line, "root element is")
	assert.Contains(t, line, "…", "the cut is marked")
}

// TestUnsolicitedRefusedBeforeDecoding: with IdP-initiated sign-in off, a
// post that answers no request of this browser cannot be accepted, so it
// is refused before its body is decoded or parsed: anyone can send one,
// and a 250 KiB one once cost 116 ms of CPU. (BenchmarkACSRefusal
// measures the cost.)
func TestUnsolicitedRefusedBeforeDecoding(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	f := jittest.Form{ACS: h.app.URL + "/saml/acs", SAMLResponse: strings.Repeat("A", 250<<10) + "!"}
	resp, body := h.post(h.client(), f)
	refusal(t, resp, body, http.StatusForbidden)
	err := h.lastEvent().Err
	assert.ErrorIs(t, err, jit.ErrUnsolicited)
	assert.NotErrorIs(t, err, jit.ErrInvalidResponse, "not decoded: the body is not even base64")
}
