package main

// SAML Single Logout against SimpleSAMLphp 1.19: SP-initiated from the
// app's sign-out button, and IdP-initiated from SimpleSAMLphp's logout
// endpoint.

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInteropSimpleSAMLphpSingleLogout(t *testing.T) {
	php := requireSimpleSAMLphp(t)
	ctx, cancel := context.WithTimeout(context.Background(), ssphpTimeout)
	defer cancel()

	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	appRoot := "http://" + appLn.Addr().String()
	// The SP key pair is made first: SimpleSAMLphp checks the app's
	// logout signatures with its certificate.
	dataDir := t.TempDir()
	_, spCert, err := loadOrCreateKeyPair(filepath.Join(dataDir, "sp-key.pem"), filepath.Join(dataDir, "sp-cert.pem"), "samljit example SP")
	require.NoError(t, err)
	idp := startSimpleSAMLphp(ctx, t, php, appRoot+"/saml/metadata", appRoot+"/saml/acs", map[string]any{
		"SLO": appRoot + "/saml/slo", "SPCertData": base64.StdEncoding.EncodeToString(spCert.Raw),
	})
	ssphpStartApp(ctx, t, appLn, idp.metadataURL, dataDir)

	// apiStatus is the status of /api/me for browser c, or for a browser
	// holding only cookies.
	apiStatus := func(c *http.Client, cookies []*http.Cookie) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, appRoot+"/api/me", nil)
		require.NoError(t, err)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		if c == nil {
			c = &http.Client{Timeout: 5 * time.Second}
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	appURL, err := url.Parse(appRoot)
	require.NoError(t, err)

	t.Run("SP-initiated", func(t *testing.T) {
		c := ssphpBrowser(t)
		ssphpSignInWith(ctx, t, c, appRoot)
		copied := c.Jar.Cookies(appURL)
		require.Equal(t, http.StatusOK, apiStatus(nil, copied), "a copy of the cookie works before logout")
		// SimpleSAMLphp holds a session: a sign-in now asks for no password.
		page, _ := ssphpDo(ctx, t, c, http.MethodGet, appRoot+"/saml/login", nil)
		_, fields := ssphpParseForm(t, page, appRoot)
		require.NotEmpty(t, fields.Get("SAMLResponse"), "single sign-on without a password before logout:\n%s", page)
		_, _ = ssphpDo(ctx, t, c, http.MethodPost, appRoot+"/saml/acs", fields)
		copied = c.Jar.Cookies(appURL)

		// The sign-out button: app → SimpleSAMLphp (LogoutRequest) → app
		// (LogoutResponse) → the signed-out page.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, appRoot+"/saml/logout", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", appRoot)
		var hops []string
		c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
			hops = append(hops, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
			return nil
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, appRoot+"/", resp.Request.URL.String(), "landed on the signed-out page")
		require.NotEmpty(t, hops)
		assert.Equal(t, idp.baseURL+"saml2/idp/SingleLogoutService.php", hops[0], "the LogoutRequest went to SimpleSAMLphp")
		assert.Equal(t, []string{appRoot + "/saml/slo", appRoot + "/"}, hops[len(hops)-2:],
			"and its LogoutResponse came back to the app's SLO endpoint, which accepted it: %v", hops)
		assert.Equal(t, http.StatusUnauthorized, apiStatus(c, nil))
		assert.Equal(t, http.StatusUnauthorized, apiStatus(nil, copied), "a copy of the pre-logout cookie no longer works")

		// SimpleSAMLphp's session ended too: the next sign-in asks for the
		// password again.
		page, pageURL := ssphpDo(ctx, t, c, http.MethodGet, appRoot+"/saml/login", nil)
		_, fields = ssphpParseForm(t, page, pageURL)
		assert.Empty(t, fields.Get("SAMLResponse"), "no single sign-on after logout")
		assert.NotEmpty(t, fields.Get("AuthState"), "SimpleSAMLphp's login form")
		assert.Contains(t, page, `name="password"`)
	})

	t.Run("IdP-initiated", func(t *testing.T) {
		c := ssphpBrowser(t)
		ssphpSignInWith(ctx, t, c, appRoot)
		copied := c.Jar.Cookies(appURL)
		require.Equal(t, http.StatusOK, apiStatus(nil, copied))

		// SimpleSAMLphp's logout endpoint: it sends the app a
		// LogoutRequest, takes its LogoutResponse, then returns to ReturnTo.
		returnTo := idp.metadataURL
		var hops []string
		c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
			hops = append(hops, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
			return nil
		}
		body, final := ssphpDo(ctx, t, c, http.MethodGet, idp.baseURL+"saml2/idp/SingleLogoutService.php?ReturnTo="+url.QueryEscape(returnTo), nil)
		assert.Equal(t, returnTo, final, "SimpleSAMLphp completed the logout:\n%s", body)
		assert.Contains(t, hops, appRoot+"/saml/slo", "the LogoutRequest reached the app")
		assert.Equal(t, http.StatusUnauthorized, apiStatus(c, nil))
		assert.Equal(t, http.StatusUnauthorized, apiStatus(nil, copied), "a copy of the pre-logout cookie no longer works")
		assert.False(t, strings.Contains(body, "LogoutFailed"))
	})
}
