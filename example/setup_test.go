package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
)

// TestBrowserSetUpSSO drives headless Chromium through the Set up SSO
// page. Ada, an administrator of acme by her IdP's "admins" group, is
// refused the page until the operator grants her account the local role
// sso-admin:contoso. Then she reads the SP's entity ID and ACS, has bad
// metadata refused with the reason, saves her IdP's metadata URL (checked
// on the spot: its entity ID and signing certificate shown, saved
// disabled, nothing served), tests a sign-in as Kim at that IdP and sees
// the trace, with no account and no session made by the test, and enables
// the connection, whose sign-in then works for Kim in another browser and
// shows in the page's connection health.
func TestBrowserSetUpSSO(t *testing.T) {
	chromium := findChromium(t)
	a, root := startApp(t, t.TempDir())
	idp := jittest.New(t)
	idp.AddUser(jittest.User{NameID: "kim", Attributes: map[string][]string{
		claims.OIDMail: {"kim@contoso.example"}, claims.OIDGivenName: {"Kim"}, claims.OIDSurname: {"Lee"}, claims.OIDDisplayName: {"Kim Lee"},
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alloc := newChromium(t, chromium)
	ada, cancelAda := chromedp.NewContext(alloc)
	defer cancelAda()
	require.NoError(t, chromedp.Do(ada, chromedp.Navigate(root+"/")), "start Chromium and open the app")
	signInAs(t, ada, "acme", "acme-0001")
	require.Contains(t, text(t, ada, "#groups"), "admins")
	assert.NotContains(t, text(t, ada, "header"), "Set up SSO", "no link without the role")

	// An IdP group named admins is not enough.
	resp, err := chromedp.Run(ada, chromedp.NavigateResponse(root+"/setup-sso"))
	require.NoError(t, err)
	assert.EqualValues(t, http.StatusForbidden, resp.Status)
	assert.Contains(t, text(t, ada, "body"), "sso-admin:")

	users, err := a.store.List(ctx)
	require.NoError(t, err)
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.Profile.Email == "ada@acme.example" })
	require.GreaterOrEqual(t, i, 0)
	require.NoError(t, a.store.GrantRole(ctx, users[i].Key, "sso-admin:contoso"), "the operator grants Ada the setup of contoso")

	require.NoError(t, chromedp.Do(ada,
		chromedp.Navigate(root+"/"),
		chromedp.Click(chromedp.CSS(`#setup-sso-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#sp-acs`)),
	), "open Set up SSO from the home page")
	assert.Equal(t, "contoso", text(t, ada, "#conn-name"))
	assert.Equal(t, root+"/saml/contoso/metadata", text(t, ada, "#sp-entity-id"))
	assert.Equal(t, root+"/saml/contoso/acs", text(t, ada, "#sp-acs"))
	assert.Equal(t, "Not set up", text(t, ada, "#state"))

	// Bad metadata is refused with its reason.
	require.NoError(t, chromedp.Do(ada,
		chromedp.SetValue(chromedp.CSS(`#metadata_xml`), "<html>not metadata</html>"),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#check-error`)),
	))
	assert.Contains(t, text(t, ada, "#check-error"), "not identity provider metadata")
	_, err = a.store.GetConnection(ctx, "contoso")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound, "nothing stored")

	// Good metadata is checked on the spot and saved, disabled.
	require.NoError(t, chromedp.Do(ada,
		chromedp.SetValue(chromedp.CSS(`#metadata_url`), idp.MetadataURL()),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#saved`)),
	))
	assert.Equal(t, idp.EntityID(), text(t, ada, "#idp-entity-id"))
	assert.Contains(t, text(t, ada, "#health"), "until")
	assert.Equal(t, "Saved, not enabled", text(t, ada, "#state"))
	rec, err := a.store.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.False(t, rec.Enabled)
	assert.Equal(t, http.StatusNotFound, httpStatus(t, root+"/saml/contoso/login"), "a saved connection is not served")
	enableDisabled, err := chromedp.Run(ada, chromedp.JavascriptAttribute[bool](chromedp.CSS(`#enable`), "disabled"))
	require.NoError(t, err)
	assert.True(t, enableDisabled, "enabling waits for a passed test")

	// The test sign-in: Kim at the new IdP; the trace is shown, nothing is
	// written and Ada's own session is untouched.
	before, err := a.store.List(ctx)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ada,
		chromedp.Click(chromedp.CSS(`#test`)),
		chromedp.WaitVisible(`//a[text()="kim"]`),
		chromedp.Click(`//a[text()="kim"]`),
		chromedp.WaitVisible(chromedp.CSS(`#test-verdict`)),
	), "test a sign-in as Kim")
	assert.Contains(t, text(t, ada, "#test-verdict"), "Passed: the sign-in would create")
	assert.Equal(t, "kim@contoso.example", text(t, ada, "#test-email"))
	assert.Contains(t, text(t, ada, "#trace"), "protocol: ok")
	after, err := a.store.List(ctx)
	require.NoError(t, err)
	assert.Len(t, after, len(before), "the test created no account")
	require.NoError(t, chromedp.Do(ada, chromedp.Navigate(root+"/"), chromedp.WaitVisible(chromedp.CSS(`#name`))))
	assert.Equal(t, "Ada Lovelace", text(t, ada, "#name"), "Ada is still herself: the test made no session")

	// Enable, and Kim signs in through the connection for real.
	require.NoError(t, chromedp.Do(ada,
		chromedp.Navigate(root+"/setup-sso"),
		chromedp.WaitEnabled(chromedp.CSS(`#enable`)),
		chromedp.Click(chromedp.CSS(`#enable`)),
		chromedp.WaitVisible(chromedp.CSS(`#enabled`)),
	), "enable")
	assert.Equal(t, "Enabled", text(t, ada, "#state"))
	assert.Equal(t, http.StatusOK, httpStatus(t, root+"/saml/contoso/metadata"))

	kim, cancelKim := chromedp.NewContext(ada, chromedp.WithNewBrowserContext())
	defer cancelKim()
	require.NoError(t, chromedp.Do(kim,
		chromedp.Navigate(root+"/saml/contoso/login"),
		chromedp.WaitVisible(`//a[text()="kim"]`),
		chromedp.Click(`//a[text()="kim"]`),
		chromedp.WaitVisible(chromedp.CSS(`#name`)),
	), "Kim signs in through the enabled connection")
	assert.Equal(t, "Kim Lee", text(t, kim, "#name"))
	require.NoError(t, chromedp.Do(ada, chromedp.Navigate(root+"/setup-sso"), chromedp.WaitVisible(chromedp.CSS(`#health`))))
	assert.NotEqual(t, "—", text(t, ada, "#last-sign-in"), "the health shows Kim's sign-in")
}

// httpStatus returns the status of a GET of u, redirects not followed.
func httpStatus(t *testing.T, u string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// postForm posts vals to target from origin with browser c, and returns
// the status and Location.
func postForm(t *testing.T, c *http.Client, target, origin string, vals url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(vals.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// grant gives the user of email the local role.
func grant(t *testing.T, a *app, email, role string) {
	t.Helper()
	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.Profile.Email == email })
	require.GreaterOrEqual(t, i, 0, email)
	require.NoError(t, a.store.GrantRole(context.Background(), users[i].Key, role))
}

// TestSetUpSSOTestSignIn holds the test sign-in to what the page says: it
// answers one AuthnRequest of the page's, once, writes no account and sets
// no cookie; its trace is shown to the administrator who started it only;
// a response to another request fails the test; enabling needs a passed
// test; the page's forms refuse cross-origin posts.
func TestSetUpSSOTestSignIn(t *testing.T) {
	ctx := context.Background()
	a, root := startApp(t, t.TempDir())
	idp := jittest.New(t)
	idp.AddUser(jittest.User{NameID: "kim", Attributes: map[string][]string{claims.OIDMail: {"kim@contoso.example"}}})
	ada, grace := browser(t), browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	signIn(t, a, grace, root, "acme", "acme-0002")
	grant(t, a, "ada@acme.example", "sso-admin:contoso")
	grant(t, a, "grace@acme.example", "sso-admin:contoso")

	code, _ := postForm(t, ada, root+"/setup-sso/save", "https://evil.example", url.Values{"metadata_url": {idp.MetadataURL()}})
	assert.Equal(t, http.StatusForbidden, code, "cross-origin")
	code, _ = postForm(t, ada, root+"/setup-sso/save", root, url.Values{"metadata_url": {idp.MetadataURL()}, "preset": {"generic"}})
	require.Equal(t, http.StatusOK, code)
	code, _ = postForm(t, ada, root+"/setup-sso/enable", root, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, code, "enabling needs a passed test")

	start := func() jittest.Form {
		code, loc := postForm(t, ada, root+"/setup-sso/test", root, nil)
		require.Equal(t, http.StatusSeeOther, code)
		require.True(t, strings.HasPrefix(loc, idp.SSOURL()), loc)
		f, err := idp.Respond(ctx, ada, loc, "kim")
		require.NoError(t, err)
		require.Equal(t, root+"/saml/contoso/acs", f.ACS)
		return f
	}
	f := start()
	forged := f
	forged.RelayState = "setup-00000000000000000000000000000000"
	resp, err := forged.Post(ctx, http.DefaultClient)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "an unknown RelayState goes to the middleware, which serves no disabled connection")

	before, err := a.store.List(ctx)
	require.NoError(t, err)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = f.Post(ctx, noRedirect)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Empty(t, resp.Cookies(), "the test sets no cookie: no session")
	result := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(result, "/setup-sso?test="), result)
	after, err := a.store.List(ctx)
	require.NoError(t, err)
	assert.Len(t, after, len(before), "the test writes no account")
	resp, err = f.Post(ctx, noRedirect)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a test's answer is judged once")

	_, page := get(t, ada, root+result)
	assert.Contains(t, page, "Passed: the sign-in would create")
	_, page = get(t, grace, root+result)
	assert.NotContains(t, page, "test-result", "another administrator does not see Ada's test")
	assert.NotContains(t, page, "kim@contoso.example")

	// A response that answers no request of this test fails it.
	code, loc := postForm(t, ada, root+"/setup-sso/test", root, nil)
	require.Equal(t, http.StatusSeeOther, code)
	u, err := url.Parse(loc)
	require.NoError(t, err)
	unsolicited, err := idp.Unsolicited(root+"/saml/contoso/metadata", root+"/saml/contoso/acs", "kim", u.Query().Get("RelayState"))
	require.NoError(t, err)
	resp, err = unsolicited.Post(ctx, noRedirect)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = get(t, ada, root+resp.Header.Get("Location"))
	assert.Contains(t, page, "Test failed: the response answers request")

	code, _ = postForm(t, ada, root+"/setup-sso/enable", root, nil)
	require.Equal(t, http.StatusSeeOther, code, "the earlier passed test of this revision enables it")
	rec, err := a.store.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.True(t, rec.Enabled)

	// Saving again stores it disabled, and the old test no longer counts.
	code, _ = postForm(t, ada, root+"/setup-sso/save", root, url.Values{"metadata_xml": {string(idp.Metadata())}, "preset": {"generic"}})
	require.Equal(t, http.StatusOK, code)
	code, _ = postForm(t, ada, root+"/setup-sso/enable", root, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
}
