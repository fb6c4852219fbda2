package jit_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
)

func findCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSessionCookieFlagsAndLifetime(t *testing.T) {
	h := newHarness(t, harnessConfig{idpOptions: func(o *jittest.Options) { o.SessionLifetime = time.Hour }})
	h.idp().AddUser(person("p-k", "k@example.com", "K", "K"))
	resp, body := h.signIn(h.client(), "", "p-k")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	ck := findCookie(resp, jit.DefaultSessionName)
	require.NotNil(t, ck)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.False(t, ck.Secure, "plain http in this test")
	assert.Equal(t, "/", ck.Path)
	assert.LessOrEqual(t, ck.MaxAge, 3600, "never outlives SessionNotOnOrAfter")
	assert.Greater(t, ck.MaxAge, 3500)
}

func TestSessionDefaultLifetimeIsShort(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-k", "k@example.com", "K", "K"))
	resp, _ := h.signIn(h.client(), "", "p-k")
	ck := findCookie(resp, jit.DefaultSessionName)
	require.NotNil(t, ck)
	assert.Equal(t, int((8 * time.Hour).Seconds()), ck.MaxAge)
}

func TestSecureCookiesOverHTTPS(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("p-s", "s@example.com", "S", "S"))
	key, cert := spKeyPair()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example", Key: key, Certificate: cert,
		Store: newMem(), SessionKeys: [][]byte{make32()},
		Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), AllowIDPInitiated: true}},
	})
	require.NoError(t, err)

	// The request-tracking cookie must survive the IdP's cross-site POST.
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://app.example/saml/login", nil))
	require.Equal(t, http.StatusFound, rec.Code)
	// Over https the cookies carry the __Host- prefix: no sibling
	// subdomain can plant or overwrite them (login CSRF).
	track := findCookie(rec.Result(), "__Host-samljit_req")
	require.NotNil(t, track)
	assert.True(t, track.Secure)
	assert.True(t, track.HttpOnly)
	assert.Equal(t, http.SameSiteNoneMode, track.SameSite)
	assert.Equal(t, "/", track.Path, "__Host- requires Path=/")
	assert.Empty(t, track.Domain)

	f, err := idp.Unsolicited("https://app.example/saml/metadata", "https://app.example/saml/acs", "p-s", "/")
	require.NoError(t, err)
	rec = postForm(t, mw, f)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	assert.Nil(t, findCookie(rec.Result(), jit.DefaultSessionName))
	ck := findCookie(rec.Result(), "__Host-"+jit.DefaultSessionName)
	require.NotNil(t, ck)
	assert.Equal(t, "/", ck.Path)
	assert.Empty(t, ck.Domain)
	assert.True(t, ck.Secure)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
}

func TestSessionEndsAndDeletedUserMustSignInAgain(t *testing.T) {
	now := time.Now()
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Now = func() time.Time { return now }
		o.SessionLifetime = time.Hour
	}})
	h.idp().AddUser(person("p-l", "l@example.com", "L", "L"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-l")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	r, _ := h.me(c)
	require.Equal(t, http.StatusOK, r.StatusCode)

	now = now.Add(time.Hour + time.Second)
	r, _ = h.me(c)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "the session lifetime is the longest a removed person keeps access")

	now = now.Add(-time.Hour)
	r, _ = h.me(c)
	require.Equal(t, http.StatusOK, r.StatusCode)
	require.NoError(t, h.store.Delete(context.Background(), h.users()[0].Key))
	r, _ = h.me(c)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)

	// Deleting is not deprovisioning: the next sign-in recreates the user.
	resp, body = h.signIn(c, "", "p-l")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Len(t, h.users(), 1)
	assert.Equal(t, jit.EventCreated, h.lastEvent().Kind)
}

func TestBrowserIsSentToSignInAndBack(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-m", "m@example.com", "M", "M"))
	c := h.client()
	resp, err := c.Get(h.app.URL + "/me?tab=1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	login := resp.Header.Get("Location")
	assert.Equal(t, "/saml/login?return_to=%2Fme%3Ftab%3D1", login)

	resp, err = h.idp().SignIn(context.Background(), c, h.app.URL+login, "p-m")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "/me?tab=1", resp.Header.Get("Location"))

	for _, evil := range []string{"//evil.example/x", "/\\evil.example", "https://evil.example/", "https:evil", "javascript:alert(1)", "/\r\nSet-Cookie: x=1", "%2F%2Fevil.example", "/\t/evil.example", " /x"} {
		resp, err := h.idp().SignIn(context.Background(), h.client(), h.app.URL+"/saml/login?return_to="+urlQueryEscape(evil), "p-m")
		require.NoError(t, err)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		assert.Equal(t, "/", loc, "return_to %q", evil)
		assert.False(t, strings.HasPrefix(loc, "//"), loc)
	}
}

func TestLogoutEndsLocalSession(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-n", "n@example.com", "N", "N"))
	c := h.client()
	resp, _ := h.signIn(c, "", "p-n")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp = logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	r, _ := h.me(c)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
}

// logout sends a logout request with the given method and headers.
func logout(t *testing.T, h *harness, c *http.Client, method string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, h.app.URL+"/saml/logout", nil)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	readBody(t, resp)
	return resp
}

// TestLogoutOnlyBySameOriginPost: a GET (an <img> on any page) or a POST
// another site makes the browser send no longer signs the person out
// (logout CSRF); a POST from the application's own page does.
func TestLogoutOnlyBySameOriginPost(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-csrf", "csrf@example.com", "C", "S"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-csrf")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	for name, tc := range map[string]struct {
		method  string
		headers map[string]string
		status  int
	}{
		"GET":                      {http.MethodGet, nil, http.StatusMethodNotAllowed},
		"GET same-origin":          {http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusMethodNotAllowed},
		"POST from another site":   {http.MethodPost, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		"POST cross-site":          {http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": h.app.URL}, http.StatusForbidden},
		"POST same-site subdomain": {http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		"POST with no origin":      {http.MethodPost, nil, http.StatusForbidden},
	} {
		resp := logout(t, h, c, tc.method, tc.headers)
		assert.Equal(t, tc.status, resp.StatusCode, name)
		r, _ := h.me(c)
		require.Equal(t, http.StatusOK, r.StatusCode, "%s: still signed in", name)
	}
	resp = logout(t, h, c, http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin"})
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	r, _ := h.me(c)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
}

func TestNewRefusesUnsafeConfiguration(t *testing.T) {
	idp := jittest.New(t)
	key, cert := spKeyPair()
	base := func() jit.Options {
		return jit.Options{RootURL: "https://app.example", Key: key, Certificate: cert, Store: newMem(),
			SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{{IDPMetadata: idp.Metadata()}}}
	}
	cases := map[string]func(*jit.Options){
		"no store":          func(o *jit.Options) { o.Store = nil },
		"no session keys":   func(o *jit.Options) { o.SessionKeys = nil },
		"short session key": func(o *jit.Options) { o.SessionKeys = [][]byte{[]byte("short")} },
		"relative root":     func(o *jit.Options) { o.RootURL = "/app" },
		"root without host": func(o *jit.Options) { o.RootURL = "http://:8080" },
		"root on 0.0.0.0":   func(o *jit.Options) { o.RootURL = "http://0.0.0.0:8080" },
		"root on ::":        func(o *jit.Options) { o.RootURL = "http://[::]:8080" },
		"no connections":    func(o *jit.Options) { o.Connections = nil },
		"no SP key":         func(o *jit.Options) { o.Key = nil },
		"unnamed among many": func(o *jit.Options) {
			o.Connections = append(o.Connections, jit.Connection{Name: "b", IDPMetadata: idp.Metadata()})
		},
		"same IdP twice": func(o *jit.Options) {
			o.Connections = []jit.Connection{{Name: "a", IDPMetadata: idp.Metadata()}, {Name: "b", IDPMetadata: idp.Metadata()}}
		},
		"bad metadata":         func(o *jit.Options) { o.Connections[0].IDPMetadata = []byte("<nope/>") },
		"open redirect":        func(o *jit.Options) { o.AfterSignInPath = "//evil.example" },
		"store without replay": func(o *jit.Options) { o.Store = lookupOnly{newMem()} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := base()
			mutate(&o)
			_, err := jit.New(context.Background(), o)
			assert.Error(t, err)
		})
	}
	_, err := jit.New(context.Background(), base())
	assert.NoError(t, err)
}

// TestRemovedAtIdPKeepsAccessUntilSessionEnds is JIT's limit, measured: a
// person removed at the IdP keeps their record, and their session until it
// expires. SessionLifetime is the worst-case delay.
func TestRemovedAtIdPKeepsAccessUntilSessionEnds(t *testing.T) {
	now := time.Now()
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Now = func() time.Time { return now }
		o.SessionLifetime = 2 * time.Hour
	}})
	h.idp().AddUser(person("p-gone", "gone@example.com", "Gone", "Soon"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-gone")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	h.idp().RemoveUser("p-gone") // deleted at the IdP: nothing reaches the app
	now = now.Add(2*time.Hour - time.Minute)
	r, _ := h.me(c)
	assert.Equal(t, http.StatusOK, r.StatusCode, "still signed in: JIT cannot know")
	require.Len(t, h.users(), 1, "the record stays")
	assert.Equal(t, "active", h.users()[0].Status.String())

	now = now.Add(2 * time.Minute)
	r, _ = h.me(c)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "access ends with the session")
	_, err := h.idp().Respond(context.Background(), h.client(), h.loginURL(""), "p-gone")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown user", "and the IdP will not sign them in again")
	require.Len(t, h.users(), 1, "the record is still there: deprovision by suspending")
}

// TestReplayInProcessRefusedAsReplay: a response posted a second time to
// the same process is refused by the replay record itself (ErrReplayed),
// not merely because its request cookie was used up: the replayer here
// holds the request cookie too. The store is unchanged, to the sign-in
// time, and no session is issued.
func TestReplayInProcessRefusedAsReplay(t *testing.T) {
	t.Run("SP-initiated, request cookie replayed with the response", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		h.idp().AddUser(person("p-rex", "rex@example.com", "Rex", "Play"))
		victimBrowser := h.client()
		f := h.respond(victimBrowser, "", "p-rex")
		attacker := h.replayer(victimBrowser, f) // no session of its own
		restore := requestCookies(h.t, victimBrowser, f)

		resp, body := h.post(victimBrowser, f)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		before := h.users()
		require.Len(t, before, 1)

		resp, body = h.post(attacker, f)
		assertReplayRefused(t, h, attacker, resp, body, before)

		// The victim's own browser, its used-up request cookie restored.
		victimBrowser.Jar.SetCookies(mustURL(f.ACS), restore)
		resp, body = h.post(victimBrowser, f)
		assertReplayRefused(t, h, nil, resp, body, before)
	})
	t.Run("IdP-initiated", func(t *testing.T) {
		h := newHarness(t, harnessConfig{configure: allowIDPInit})
		h.idp().AddUser(person("p-rex", "rex@example.com", "Rex", "Play"))
		f, err := h.idp().Unsolicited(h.app.URL+"/saml/metadata", h.app.URL+"/saml/acs", "p-rex", "/")
		require.NoError(t, err)
		resp, body := h.post(h.client(), f)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		before := h.users()
		require.Len(t, before, 1)
		c := h.client()
		resp, body = h.post(c, f)
		assertReplayRefused(t, h, c, resp, body, before)
	})
}

// assertReplayRefused checks a refused replay: the reason is ErrReplayed,
// the store still holds exactly before, no session cookie was set and,
// when c is given, c has no session.
func assertReplayRefused(t *testing.T, h *harness, c *http.Client, resp *http.Response, body string, before []userstore.User) {
	t.Helper()
	assertRefused(t, h, resp, body, http.StatusForbidden, jit.ErrReplayed, "replayed", before)
	assert.Nil(t, findCookie(resp, jit.DefaultSessionName), "no session cookie")
	if c != nil {
		r, _ := h.me(c)
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "no session")
	}
}

// requestCookies returns the cookies c sends to f's ACS (its request
// cookie), ready to be set again, before f is posted and they are cleared.
func requestCookies(t testing.TB, c *http.Client, f jittest.Form) []*http.Cookie {
	t.Helper()
	acs := mustURL(f.ACS)
	cks := c.Jar.Cookies(acs)
	require.NotEmpty(t, cks, "the request cookie is sent to the ACS")
	for _, ck := range cks {
		ck.Path = acs.Path
	}
	return cks
}

// replayer returns a new browser that holds the request cookie c holds for
// f: someone who captured both the response and the cookie, so that only
// the replay record can tell a second post of f from the first. Call it
// before f is posted.
func (h *harness) replayer(c *http.Client, f jittest.Form) *http.Client {
	r := h.client()
	r.Jar.SetCookies(mustURL(f.ACS), requestCookies(h.t, c, f))
	return r
}

// TestRootURLWithPath: a RootURL with a path is served under it, where the
// SP metadata says the endpoints are, and also without it behind a proxy
// that strips the path; a sign-in works end to end.
func TestRootURLWithPath(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("p-path", "path@example.com", "Pa", "Th"))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	key, cert := spKeyPair()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: srv.URL + "/app", Key: key, Certificate: cert, Store: newMem(),
		SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{{IDPMetadata: idp.Metadata()}},
	})
	require.NoError(t, err)
	require.Equal(t, "/app/saml", mw.Prefix())
	mux.Handle(mw.Prefix()+"/", mw)
	md, ok := mw.MetadataURL("")
	require.True(t, ok)
	assert.Equal(t, srv.URL+"/app/saml/metadata", md)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := idp.SignIn(context.Background(), c, srv.URL+"/app/saml/login", "p-path")
	require.NoError(t, err)
	body := readBody(t, resp)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	// Behind a proxy that strips /app the same middleware answers.
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/saml/metadata", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
}

// TestResponseWithoutRequestCookieExplained: a sign-in started at another
// host name than RootURL's (localhost against 127.0.0.1) reaches the ACS
// without its request cookie; the log names the likely cause and the page
// offers to sign in again.
func TestResponseWithoutRequestCookieExplained(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-host", "host@example.com", "Ho", "St"))
	c := h.client()
	other := strings.Replace(h.app.URL, "127.0.0.1", "localhost", 1)
	resp, err := h.idp().SignIn(context.Background(), c, other+"/saml/login", "p-host")
	require.NoError(t, err)
	body := readBody(t, resp)
	corr := refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrUnsolicited)
	assert.True(t, h.logged(corr, "request refused", "host name other than Options.RootURL"), h.logs.String())
	assert.Contains(t, body, `<a class="button" href="/saml/login">Try again</a>`)
}

func TestNoSessionFixation(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))
	h.idp().AddUser(person("p-mallory", "m@example.com", "Mal", "Lory"))
	// The attacker's own, valid session cookie, planted in the victim's
	// browser, and a made-up one.
	mallory := h.client()
	resp, body := h.signIn(mallory, "", "p-mallory")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	planted := sessionCookie(mallory, h)
	require.NotEmpty(t, planted)
	for name, value := range map[string]string{"attacker's valid session": planted, "made-up value": "fixated-session-id"} {
		t.Run(name, func(t *testing.T) {
			c := h.client()
			c.Jar.SetCookies(mustURL(h.app.URL), []*http.Cookie{{Name: jit.DefaultSessionName, Value: value, Path: "/"}})
			resp, body := h.signIn(c, "", victim)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			ck := findCookie(resp, jit.DefaultSessionName)
			require.NotNil(t, ck, "a session cookie is issued at sign-in")
			assert.NotEqual(t, value, ck.Value)
			r, u := h.me(c)
			require.Equal(t, http.StatusOK, r.StatusCode)
			assert.Equal(t, victim, u.Key.Subject)
		})
	}
}

func TestRequestCookieFlags(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	resp, err := h.client().Get(h.loginURL(""))
	require.NoError(t, err)
	readBody(t, resp)
	ck := findCookie(resp, "samljit_req")
	require.NotNil(t, ck, "login sets the request cookie")
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, "/", ck.Path)
	assert.Positive(t, ck.MaxAge)
	assert.LessOrEqual(t, ck.MaxAge, int((10*time.Minute)/time.Second))
}

// TestRequestTrackingBounded: every login GET once added a cookie of its
// own (up to about 3.9 KB with a long return_to) for ten minutes, and
// twenty of them made the next genuine sign-in fail with 431. Now one
// cookie holds the newest four requests, a long return_to is dropped, and
// the sign-in after twenty abandoned logins works.
func TestRequestTrackingBounded(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-many", "many@example.com", "Ma", "Ny"))
	c := h.client()
	long := "/" + strings.Repeat("x", 3000)
	for range 20 {
		resp, err := c.Get(h.loginURL("") + "?return_to=" + url.QueryEscape(long))
		require.NoError(t, err)
		readBody(t, resp)
		require.Equal(t, http.StatusFound, resp.StatusCode)
	}
	cookies := c.Jar.Cookies(mustURL(h.app.URL + "/saml/acs"))
	require.Len(t, cookies, 1, "one request cookie, not one per login")
	assert.Less(t, len(cookies[0].Value), 2500, "four entries without the long return_to")

	resp, body := h.signIn(c, "", "p-many")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "/", resp.Header.Get("Location"), "the over-long return_to was not kept")
	// The older outstanding requests are still tracked, up to four.
	assert.Len(t, c.Jar.Cookies(mustURL(h.app.URL+"/saml/acs")), 2, "the session and the request cookie")
}

// TestOnlyFourRequestsTracked: a sign-in started in a fifth tab pushes out
// the oldest outstanding request; the four newest still complete.
func TestOnlyFourRequestsTracked(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-tabs", "tabs@example.com", "Ta", "Bs"))
	c := h.client()
	var forms []jittest.Form
	for range 5 {
		forms = append(forms, h.respond(c, "", "p-tabs"))
	}
	resp, body := h.post(c, forms[0])
	refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrUnsolicited, "the oldest request is no longer tracked")
	for _, f := range forms[1:] {
		resp, body := h.post(c, f)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	}
}

// TestSessionExpiresAtItsSecond: a session is current up to the second
// before its end and expired from that second on, by the injected clock.
func TestSessionExpiresAtItsSecond(t *testing.T) {
	var clock atomic.Int64
	start := time.Now().Truncate(time.Second)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	h := newHarness(t, harnessConfig{
		idpOptions: func(o *jittest.Options) { o.Now = now },
		configure: func(o *jit.Options) {
			o.Now = now
			o.SessionLifetime = time.Hour
		},
	})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	cookie := sessionCookie(c, h)
	current := func(at time.Time) error {
		clock.Store(at.UnixNano())
		req, err := http.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: jit.DefaultSessionName, Value: cookie})
		_, err = h.mw.CurrentUser(req)
		return err
	}
	end := start.Add(time.Hour)
	require.NoError(t, current(end.Add(-time.Second)))
	require.ErrorIs(t, current(end), jit.ErrSessionExpired)
}
