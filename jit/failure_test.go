package jit_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
)

// noRedirects is a cookie-keeping client that follows no redirect, to see
// each step a browser takes.
func noRedirects(h *harness) *http.Client {
	c := h.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	return resp, readBody(t, resp)
}

// TestRefusalRedirectsToAReloadablePage: a refused sign-in answers the
// POST with a redirect to the failure page, whose URL holds only the
// correlation id; reloading it shows the same page, with the status, the
// message, the reference and a link to try the same sign-in again, back to
// the page it started from.
func TestRefusalRedirectsToAReloadablePage(t *testing.T) {
	h := newHarness(t, harnessConfig{connections: []string{"acme", "globex"}})
	u := person("p-t", "t@example.com", "T", "R")
	u.NameIDFormat = claims.NameIDFormatTransient
	h.idp("acme").AddUser(u)

	c := noRedirects(h)
	f, err := h.idp("acme").Respond(context.Background(), c, h.app.URL+"/saml/acme/login?return_to=%2Freports%3Fq%3D1", "p-t")
	require.NoError(t, err)
	resp, body := h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	corr := h.lastEvent().CorrelationID
	assert.Equal(t, "/saml/failed?ref="+corr, resp.Header.Get("Location"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "samljit_failure" {
			ck = k
		}
	}
	require.NotNil(t, ck, "the failure is sealed in a cookie")
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)
	assert.Equal(t, 10*60, ck.MaxAge)

	page := h.app.URL + resp.Header.Get("Location")
	for range 2 { // the page, then a reload
		resp, body = get(t, c, page)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Contains(t, body, "did not identify you in a way this application can use")
		assert.Contains(t, body, "Reference: <code>"+corr+"</code>")
		assert.Contains(t, body, `<a class="button" href="/saml/acme/login?return_to=%2Freports%3Fq%3D1">Try again</a>`)
		assert.Contains(t, body, `<meta name="viewport"`)
		assert.Contains(t, body, `<html lang="en">`)
		assert.Contains(t, body, "<main>")
	}
	assert.Len(t, h.eventsOf(jit.EventRefused), 1, "a reload refuses nothing again")

	// The try-again link starts the same connection's sign-in, back to
	// the same page.
	resp, _ = get(t, c, h.app.URL+"/saml/acme/login?return_to=%2Freports%3Fq%3D1")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Location"), h.idp("acme").URL())
}

// TestFailurePageShowsNothingItDidNotMake: another browser, a made-up or
// hostile ref, an expired failure: the page says the failure is gone, with
// no message from the refusal and no input reflected.
func TestFailurePageShowsNothingItDidNotMake(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	}})
	u := person("p-t", "t@example.com", "T", "R")
	u.NameIDFormat = claims.NameIDFormatTransient
	h.idp().AddUser(u)
	c := noRedirects(h)
	resp, body := h.post(c, h.respond(c, "", "p-t"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	page := h.app.URL + resp.Header.Get("Location")
	corr := h.lastEvent().CorrelationID

	gone := func(t *testing.T, c *http.Client, u string) string {
		t.Helper()
		resp, body := get(t, c, u)
		assert.Equal(t, http.StatusGone, resp.StatusCode)
		assert.Contains(t, body, "has expired or belongs to another browser")
		assert.NotContains(t, body, "identify you")
		assert.Contains(t, body, `<a class="button" href="/saml/login">Try again</a>`)
		return body
	}
	t.Run("AnotherBrowser", func(t *testing.T) {
		body := gone(t, noRedirects(h), page)
		assert.Contains(t, body, "Reference: <code>"+corr+"</code>", "the reference is a well-formed id")
	})
	t.Run("AnotherRef", func(t *testing.T) {
		gone(t, c, h.app.URL+"/saml/failed?ref=0123456789abcdef")
	})
	t.Run("HostileRef", func(t *testing.T) {
		for _, ref := range []string{`<script>alert(1)</script>`, "https://evil.example/", corr + "x", "//evil", ""} {
			body := gone(t, c, h.app.URL+"/saml/failed?ref="+url.QueryEscape(ref))
			assert.NotContains(t, body, "Reference:", "a ref that is not an id is not shown: %q", ref)
			assert.NotContains(t, body, "evil")
			assert.NotContains(t, body, "<script>")
		}
	})
	t.Run("TamperedCookie", func(t *testing.T) {
		other := noRedirects(h)
		other.Jar.SetCookies(mustURL(h.app.URL), []*http.Cookie{{Name: "samljit_failure", Value: "forged", Path: "/"}})
		gone(t, other, page)
	})
	t.Run("Post", func(t *testing.T) {
		resp, err := c.PostForm(page, url.Values{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
	t.Run("Expired", func(t *testing.T) {
		mu.Lock()
		now = now.Add(11 * time.Minute)
		mu.Unlock()
		gone(t, c, page)
	})
}

// TestFailurePageKeepsTheReasonsKind: a RenderError of the application's
// own still tells refusals apart with errors.Is on the failure page, and
// gets no detail.
func TestFailurePageKeepsTheReasonsKind(t *testing.T) {
	var mu sync.Mutex
	var seen []*jit.Failure
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.RenderError = func(w http.ResponseWriter, _ *http.Request, f *jit.Failure) {
			mu.Lock()
			seen = append(seen, f)
			mu.Unlock()
			w.WriteHeader(f.Status)
		}
	}})
	u := person("p-t", "t@example.com", "T", "R")
	u.NameIDFormat = claims.NameIDFormatTransient
	h.idp().AddUser(u)
	resp, _ := h.signIn(h.client(), "", "p-t")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1)
	f := seen[0]
	assert.ErrorIs(t, f.Err, jit.ErrMapping)
	assert.ErrorIs(t, f.Err, claims.ErrTransientNameID)
	assert.False(t, errors.Is(f.Err, jit.ErrSuspended))
	assert.NotContains(t, f.Err.Error(), "p-t", "the detail stays in the log")
	assert.Equal(t, h.lastEvent().CorrelationID, f.CorrelationID)
	assert.Equal(t, "/saml/login", f.SignInURL)
}

// TestSuspendedRefusalOffersNoRetry: another attempt cannot succeed.
func TestSuspendedRefusalOffersNoRetry(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-s", "s@example.com", "S", "U"))
	resp, body := h.signIn(h.client(), "", "p-s")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.NoError(t, h.store.Suspend(context.Background(), h.lastEvent().Key))
	resp, body = h.signIn(h.client(), "", "p-s")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	assert.Contains(t, body, "suspended")
	assert.NotRegexp(t, regexp.MustCompile(`Try again`), body)
}

// TestChooserPage: the default chooser asks for an email, styled like
// the other pages, keeps where the person was going, and lists no
// connection.
func TestChooserPage(t *testing.T) {
	h := newHarness(t, harnessConfig{connections: []string{"acme", "globex"}})
	resp, body := get(t, h.client(), h.app.URL+"/saml/login?return_to=%2Fx")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<label for="email">`)
	assert.Contains(t, body, `<input type="hidden" name="return_to" value="/x">`)
	assert.NotContains(t, body, "acme", "the chooser lists no customer")
	assert.NotContains(t, body, "globex", "the chooser lists no customer")
	assert.Contains(t, body, `<meta name="viewport"`)
	assert.Contains(t, body, "<style>")
}
