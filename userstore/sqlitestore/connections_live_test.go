package sqlitestore_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// TestStoredConnectionsLive: two instances of an application (each its own
// pool, as two processes would have) share one SQLite file as user store
// and connection store, polling it at the default interval, behind one URL.
// A connection added through A while both serve is served by B within
// 10 seconds, and a person signs in through it on B from their email;
// disabling it through A ends that session at the next request on both.
func TestStoredConnectionsLive(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	spKey, spCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	sessionKey := make([]byte, 32)
	_, _ = rand.Read(sessionKey)

	var handlers [2]http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := 0
		if r.Header.Get("X-Instance") == "1" {
			i = 1
		}
		handlers[i].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var mws [2]*jit.Middleware
	for i := range mws {
		st := openStore(t, openDB(t, sqlitestore.DSN(path)))
		mw, err := jit.New(ctx, jit.Options{
			RootURL: srv.URL, Key: spKey, Certificate: spCert, SessionKeys: [][]byte{sessionKey},
			Store: st, ConnectionStore: st,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = mw.Close() })
		mux := http.NewServeMux()
		mux.Handle("/saml/", mw)
		mux.Handle("/me", mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := jit.UserFromContext(r.Context())
			_, _ = io.WriteString(w, u.Profile.Email)
		})))
		mws[i], handlers[i] = mw, mux
	}
	client := func(i string) *http.Client {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: instance(i),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	status := func(c *http.Client, path string) int {
		resp, err := c.Get(srv.URL + path)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	idp := jittest.New(t)
	idp.AddUser(jittest.User{NameID: "p-ada", Attributes: map[string][]string{"urn:oid:0.9.2342.19200300.100.1.3": {"ada@contoso.example"}}})
	_, err = mws[0].PutConnection(ctx, userstore.Connection{Name: "contoso", IDPMetadata: idp.Metadata(), Enabled: true,
		Domains: []userstore.Domain{{Name: "contoso.example", Verified: true}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return status(client("1"), "/saml/contoso/metadata") == http.StatusOK },
		10*time.Second, 50*time.Millisecond, "instance B serves the connection within 10 s")

	b := client("1")
	resp, err := idp.SignIn(ctx, b, srv.URL+"/saml/login?email=ada@contoso.example", "p-ada")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	cookies := b.Jar.Cookies(u)
	for _, i := range []string{"0", "1"} {
		c := client(i)
		c.Jar.SetCookies(u, cookies)
		assert.Equal(t, http.StatusOK, status(c, "/me"), "instance %s", i)
	}

	require.NoError(t, mws[0].SetConnectionEnabled(ctx, "contoso", false))
	for _, i := range []string{"1", "0"} {
		c := client(i)
		c.Jar.SetCookies(u, cookies)
		c.Transport = acceptHTML{instance(i)}
		assert.Equal(t, http.StatusFound, status(c, "/me"), "instance %s served the session of a disabled connection; a browser is sent to sign in", i)
	}
}

// instance is a transport that sends requests to one instance.
type instance string

// RoundTrip sends r to the instance.
func (i instance) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Instance", string(i))
	return http.DefaultTransport.RoundTrip(r)
}

// acceptHTML asks for a page, as a browser does.
type acceptHTML struct{ next http.RoundTripper }

// RoundTrip sends r with Accept: text/html.
func (a acceptHTML) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", "text/html")
	return a.next.RoundTrip(r)
}
