package pgstore_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

// TestMultiInstanceIdPInitiatedLogout: a person signed in through instance
// A; the IdP's LogoutRequest reaches instance B, which ends the session in
// the shared database, so instance A refuses the session (and a copy of
// its cookie) at once; the same LogoutRequest replayed to instance A is
// refused by the shared replay record and ends nothing.
func TestMultiInstanceIdPInitiatedLogout(t *testing.T) {
	c := newCluster(t)
	c.addPerson("p-slo")
	resp, err := client().Get(c.srv.URL + "/saml/metadata")
	require.NoError(t, err)
	md, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.NoError(t, c.idp.AddServiceProvider(md))

	signIn := func() []*http.Cookie {
		resp, body, err := c.post(c.unsolicited("p-slo"), 0)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		return resp.Cookies()
	}
	cookies := signIn()
	for i := range 2 {
		r, _ := c.me(i, cookies)
		require.Equal(t, http.StatusOK, r.StatusCode, "instance %d", i)
	}

	msg, err := c.idp.LogoutRequestFor(jittest.LogoutRequest{SPEntityID: c.srv.URL + "/saml/metadata", NameID: "p-slo"})
	require.NoError(t, err)
	deliver := func(i string) *http.Response {
		req, err := http.NewRequest(msg.Method, msg.URL, nil)
		require.NoError(t, err)
		req.Header.Set(instanceHeader, i)
		resp, err := client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp = deliver("1")
	// The cluster's IdP lists no SingleLogoutService to answer at: the
	// sessions end and the browser lands on the app.
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for i := range 2 {
		r, _ := c.me(i, cookies)
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "instance %d served a session the IdP ended through the other", i)
	}

	again := signIn()
	resp = deliver("0")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the LogoutRequest replayed to the other instance is refused")
	for i := range 2 {
		r, _ := c.me(i, again)
		assert.Equal(t, http.StatusOK, r.StatusCode, "the replay ended nothing (instance %d)", i)
	}
}
