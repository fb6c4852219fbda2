package pgstore_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
)

// pinTo is a transport that sends every request to one instance of a
// cluster.
type pinTo string

// RoundTrip sends r with the instance's header.
func (p pinTo) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(instanceHeader, string(p))
	return http.DefaultTransport.RoundTrip(r)
}

// TestMultiInstanceStoredConnection: two instances share a PostgreSQL
// database as their user store and connection store, polling it at the
// default interval. A connection added through instance A is served by
// instance B within 10 seconds, and a person signs in through it on B
// from their email address; the session holds on both instances.
// Disabling the connection through A ends that session at the very next
// request on both (the store ends the sessions with the change, so an
// instance that has not polled it yet refuses them too), and keeps the
// user; B stops serving the connection within 10 seconds.
func TestMultiInstanceStoredConnection(t *testing.T) {
	c := newCluster(t, func(o *jit.Options, st *pgstore.Store) {
		o.Connections[0].Name = "code"
		o.ConnectionStore = st
	})
	ctx := t.Context()
	idp := jittest.New(t)
	idp.AddUser(jittest.User{NameID: "p-ada", Attributes: map[string][]string{
		"urn:oid:0.9.2342.19200300.100.1.3": {"ada@contoso.example"},
		"urn:oid:2.16.840.1.113730.3.1.241": {"Ada Lovelace"},
	}})
	pinned := func(i string) (*http.Client, *cookiejar.Jar) {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		return &http.Client{Jar: jar, Transport: pinTo(i), Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, jar
	}
	status := func(i, path string) int {
		cl, _ := pinned(i)
		resp, err := cl.Get(c.srv.URL + path)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNotFound, status("1", "/saml/contoso/metadata"))

	_, err := c.instance(0).mw.PutConnection(ctx, userstore.Connection{Name: "contoso", IDPMetadata: idp.Metadata(), Preset: "generic",
		Enabled: true, Domains: []userstore.Domain{{Name: "contoso.example", Verified: true}}})
	require.NoError(t, err)
	added := time.Now()
	require.Equal(t, http.StatusOK, status("0", "/saml/contoso/metadata"), "the instance that added it serves it at once")
	require.Eventually(t, func() bool { return status("1", "/saml/contoso/metadata") == http.StatusOK }, 10*time.Second, 50*time.Millisecond,
		"the other instance serves the connection within 10 s")
	t.Logf("the other instance served the new connection after %s", time.Since(added).Round(time.Millisecond))

	b, jar := pinned("1")
	resp, err := idp.SignIn(ctx, b, c.srv.URL+"/saml/login?email=ada@contoso.example", "p-ada")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	u, err := url.Parse(c.srv.URL)
	require.NoError(t, err)
	cookies := jar.Cookies(u)
	for i := range 2 {
		r, user := c.me(i, cookies)
		require.Equal(t, http.StatusOK, r.StatusCode, "instance %d", i)
		assert.Equal(t, idp.EntityID(), user.Key.Issuer)
		assert.Equal(t, "ada@contoso.example", user.Profile.Email)
	}

	require.NoError(t, c.instance(0).mw.SetConnectionEnabled(ctx, "contoso", false))
	for _, i := range []int{1, 0} {
		r, _ := c.me(i, cookies)
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "instance %d served the session of a disabled connection", i)
	}
	users, err := c.store.LookupEmail(ctx, "ada@contoso.example")
	require.NoError(t, err)
	require.Len(t, users, 1, "the user is kept")
	assert.Equal(t, http.StatusNotFound, status("0", "/saml/contoso/login"))
	require.Eventually(t, func() bool { return status("1", "/saml/contoso/login") == http.StatusNotFound }, 10*time.Second, 50*time.Millisecond)
}
