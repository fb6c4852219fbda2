package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserRefusalTryAgainAndPhoneAdmin drives headless Chromium through
// a refused sign-in and the admin page on a phone-width screen. Grace's
// sign-in is refused (her browser lost the request cookie on the way): she
// lands on the failure page, whose reload shows it again, and its Try again
// link signs her in. Then Ada, an admin on a 375-pixel-wide screen, sees
// the users as cards with their action buttons on screen, and suspends
// Grace with them.
func TestBrowserRefusalTryAgainAndPhoneAdmin(t *testing.T) {
	chromium := findChromium(t)
	_, root := startApp(t, t.TempDir())

	alloc := newChromium(t, chromium)
	grace, cancelGrace := chromedp.NewContext(alloc)
	defer cancelGrace()

	// Grace starts a sign-in at acme; before she picks herself at the dev
	// IdP, the app's request cookie is gone, so the ACS refuses the
	// response as unsolicited.
	person := `[data-nameid="acme-0002"] .signin`
	require.NoError(t, chromedp.Do(grace,
		chromedp.Navigate(root+"/"),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.Click(chromedp.CSS(`a[href^="/saml/acme/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(person)),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, network.DeleteCookies, network.DeleteCookiesParams{Name: "samljit_req", URL: root + "/"})
			return err
		}),
		chromedp.Click(chromedp.CSS(person)),
		chromedp.WaitVisible(chromedp.CSS(`a.button`)),
	), "a refused sign-in")
	loc, err := chromedp.Run(grace, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc, root+"/saml/failed?ref="), "the browser is on the failure page, not the ACS: %s", loc)
	ref := strings.TrimPrefix(loc, root+"/saml/failed?ref=")
	body := text(t, grace, "body")
	assert.Contains(t, body, "We could not sign you in")
	assert.Contains(t, body, "Reference: "+ref)
	title, err := chromedp.Run(grace, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "Sign-in problem", title)

	// A reload shows the same page, with its status, and no resubmission.
	resp, err := chromedp.RunResponse(grace, chromedp.Reload())
	require.NoError(t, err)
	assert.EqualValues(t, 403, resp.Status)
	assert.Contains(t, text(t, grace, "body"), "Reference: "+ref)

	// Try again starts the same connection's sign-in; this time it works.
	href := attr(t, grace, `a.button`, "href")
	assert.Equal(t, "/saml/acme/login", href, "the sign-in that failed")
	require.NoError(t, chromedp.Do(grace,
		chromedp.Click(chromedp.CSS(`a.button`)),
		chromedp.WaitVisible(chromedp.CSS(person)),
		chromedp.Click(chromedp.CSS(person)),
		chromedp.WaitVisible(chromedp.CSS(`#groups`)),
	), "try again")
	assert.Equal(t, "Grace Hopper", text(t, grace, "#name"))

	// Ada, an admin, on a phone-width screen.
	ada, cancelAda := chromedp.NewContext(grace, chromedp.WithNewBrowserContext())
	defer cancelAda()
	require.NoError(t, chromedp.Do(ada,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(root+"/"),
	), "open the app as Ada on a phone")
	signInAs(t, ada, "acme", "acme-0001")
	graceRow := `#users tr[data-subject="acme-0002"]`
	require.NoError(t, chromedp.Do(ada, chromedp.Navigate(root+"/admin"), chromedp.WaitVisible(chromedp.CSS(graceRow))), "the admin page")
	title, err = chromedp.Run(ada, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "Admin · samljit example", title)
	for _, button := range []string{"button.suspend", "button.end-sessions"} {
		onScreen, err := chromedp.Run(ada, chromedp.Evaluate[bool](`(() => {
			const b = document.querySelector('`+graceRow+` `+button+`');
			const r = b.getBoundingClientRect();
			return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth;
		})()`))
		require.NoError(t, err)
		assert.True(t, onScreen, "%s is on screen at phone width", button)
	}
	scrolls, err := chromedp.Run(ada, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
	require.NoError(t, err)
	if scrolls {
		wide, _ := chromedp.Run(ada, chromedp.Evaluate[string](`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8).join('; ')`))
		t.Errorf("the page scrolls sideways; too wide: %s", wide)
	}
	require.NoError(t, chromedp.Do(ada,
		chromedp.Click(chromedp.CSS(graceRow+` button.suspend`)),
		chromedp.WaitVisible(chromedp.CSS(graceRow+` button.unsuspend`)),
	), "suspend Grace at phone width")
	assert.Equal(t, "suspended", text(t, ada, graceRow+` .status`))
}

// attr returns the attribute name of the first element matching sel.
func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	require.NoError(t, err, "%s of %s", name, sel)
	return v.Value
}
