package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserDevSCIMDisable drives headless Chromium through what the
// README tells a newcomer to try: Grace signs in, the development IdP
// disables her over SCIM from /dev-idp, her next page load finds her
// signed out and her sign-in refused; it re-enables her, she signs in,
// and /jit-vs-scim shows what SCIM did beside what JIT did.
func TestBrowserDevSCIMDisable(t *testing.T) {
	chromium := findChromium(t)
	_, root := startApp(t, t.TempDir())

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	defer cancelAlloc()
	grace, cancelGrace := chromedp.NewContext(alloc)
	defer cancelGrace()

	require.NoError(t, chromedp.Do(grace, chromedp.Navigate(root+"/")), "start Chromium and open the app")
	signInAs(t, grace, "acme", "acme-0002")
	push := func(button string) string {
		t.Helper()
		require.NoError(t, chromedp.Do(grace,
			chromedp.Navigate(root+"/dev-idp"),
			chromedp.Click(chromedp.CSS(`tr[data-nameid="acme-0002"] button.`+button)),
			chromedp.WaitVisible(chromedp.CSS(`#flash`)),
		), "click %s", button)
		return text(t, grace, "#flash")
	}
	assert.Contains(t, push("scim-disable"), "disabled Grace Hopper over SCIM")
	require.NoError(t, chromedp.Do(grace,
		chromedp.Navigate(root+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)),
	), "the disabled person's session ended")
	pickPerson(t, grace, "acme", "acme-0002")
	require.NoError(t, chromedp.Do(grace, chromedp.WaitVisible(chromedp.CSS(`h1`))), "the refusal page")
	assert.Contains(t, text(t, grace, "body"), "Your account has been suspended")

	assert.Contains(t, push("scim-enable"), "re-enabled Grace Hopper")
	require.NoError(t, chromedp.Do(grace, chromedp.Navigate(root+"/")))
	signInAs(t, grace, "acme", "acme-0002")
	require.NoError(t, chromedp.Do(grace,
		chromedp.Navigate(root+"/jit-vs-scim"),
		chromedp.WaitVisible(chromedp.CSS(`#live-scim`)),
	))
	assert.Contains(t, text(t, grace, "#live-scim"), "scim user.suspended")
	assert.Contains(t, text(t, grace, "#live-scim"), "scim user.reactivated")
	assert.Contains(t, text(t, grace, "#live-jit"), "created")
}
