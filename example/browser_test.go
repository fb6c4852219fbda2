package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotEnv, set to 1, makes TestBrowserDevSignInEditSuspend write the
// home page screenshot to docs/home.png for the README.
const screenshotEnv = "SAMLJIT_WRITE_SCREENSHOT"

// findChromium returns the Chromium binary, skipping the test when there is
// none, except in CI, which must never pass by skipping.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	testenv.Need(t, "Chromium is not installed (not at "+chromiumPath+" nor on PATH)", "apt-get install -y chromium, or bash .ci/run")
	return ""
}

// newChromium starts headless Chromium at path for t, with the flags this
// machine needs, a new profile and a 1200×900 window, and returns the
// allocator its browser contexts come from. It stops when the test ends,
// or after 90 s.
func newChromium(t *testing.T, path string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
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
	t.Cleanup(func() {
		cancelAlloc()
		cancel()
	})
	return alloc
}

// TestBrowserDevSignInEditSuspend drives headless Chromium through the
// example with its development IdP: Grace signs in and sees her name and
// groups, a group is added to her at the dev IdP and her next sign-in shows
// it, then Ada, an admin in another browser context, suspends her through
// the admin page, which ends her session: her next page load finds her
// signed out, and her sign-in is refused.
func TestBrowserDevSignInEditSuspend(t *testing.T) {
	chromium := findChromium(t)
	_, root := startApp(t, t.TempDir())

	alloc := newChromium(t, chromium)
	grace, cancelGrace := chromedp.NewContext(alloc)
	defer cancelGrace()

	// Grace signs in: Sign in, the tenant chooser, the dev IdP's picker.
	require.NoError(t, chromedp.Do(grace, chromedp.Navigate(root+"/")), "start Chromium and open the app")
	banner := signInAs(t, grace, "acme", "acme-0002")
	assert.Contains(t, banner, "never use in production")
	assert.Equal(t, "Grace Hopper", text(t, grace, "#name"))
	assert.Equal(t, "engineering", text(t, grace, "#groups"))

	// Add a group to Grace at the dev IdP, sign out and in again.
	require.NoError(t, chromedp.Do(grace,
		chromedp.Navigate(root+"/dev-idp"),
		chromedp.Click(chromedp.CSS(`tr[data-nameid="acme-0002"] a.edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#groups-input`)),
		chromedp.SetValue(chromedp.CSS(`#groups-input`), "engineering, navy"),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash`)),
	), "edit Grace at the dev IdP")
	assert.Contains(t, text(t, grace, `tr[data-nameid="acme-0002"]`), "navy", "the directory shows the edit")
	require.NoError(t, chromedp.Do(grace,
		chromedp.Navigate(root+"/"),
		chromedp.Click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)),
	), "sign out")
	signInAs(t, grace, "acme", "acme-0002")
	assert.Equal(t, "Grace Hopper", text(t, grace, "#name"))
	assert.Contains(t, text(t, grace, "#groups"), "navy", "JIT updated the groups at sign-in")
	assert.Contains(t, text(t, grace, "#groups"), "engineering")

	png, err := chromedp.Run(grace, chromedp.FullScreenshot(100))
	require.NoError(t, err, "screenshot")
	shot := filepath.Join(t.TempDir(), "home.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	if os.Getenv(screenshotEnv) == "1" {
		require.NoError(t, os.MkdirAll("../docs", 0o755))
		require.NoError(t, os.WriteFile("../docs/home.png", png, 0o644))
		t.Logf("wrote ../docs/home.png (%d bytes)", len(png))
	}

	// Ada, an admin, signs in in another browser context (her own cookies)
	// and suspends Grace through the admin page.
	ada, cancelAda := chromedp.NewContext(grace, chromedp.WithNewBrowserContext())
	defer cancelAda()
	require.NoError(t, chromedp.Do(ada, chromedp.Navigate(root+"/")), "open the app as Ada")
	signInAs(t, ada, "acme", "acme-0001")
	assert.Contains(t, text(t, ada, "#groups"), "admins")
	graceRow := `#users tr[data-subject="acme-0002"]`
	require.NoError(t, chromedp.Do(ada,
		chromedp.Navigate(root+"/admin"),
		chromedp.Click(chromedp.CSS(graceRow+` button.suspend`)),
		chromedp.WaitVisible(chromedp.CSS(graceRow+` button.unsuspend`)),
	), "suspend Grace")
	assert.Equal(t, "suspended", text(t, ada, graceRow+` .status`))
	assert.Contains(t, text(t, ada, "#audit"), "groups", "the audit trail names the changed field")

	// The suspension ended Grace's session: her next page load finds her
	// signed out, and signing in again is refused.
	resp, err := chromedp.Run(grace, chromedp.NavigateResponse(root+"/"))
	require.NoError(t, err)
	assert.EqualValues(t, http.StatusOK, resp.Status)
	pickPerson(t, grace, "acme", "acme-0002")
	require.NoError(t, chromedp.Do(grace, chromedp.WaitVisible(chromedp.CSS(`h1`))), "the refusal page")
	assert.Contains(t, text(t, grace, "body"), "Your account has been suspended")
}

// signInAs signs in from the app's landing page in the browser of ctx:
// Sign in, the tenant on the chooser, the person on the dev IdP's picker. It
// returns the picker's banner text once the home page shows.
func signInAs(t *testing.T, ctx context.Context, tenant, nameID string) string {
	t.Helper()
	banner := pickPerson(t, ctx, tenant, nameID)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#groups`))), "sign in as %s at %s", nameID, tenant)
	return banner
}

// pickPerson starts a sign-in from the app's landing page in the browser
// of ctx and picks the person on the dev IdP's picker, returning the
// picker's banner text; what the app answers is the caller's to check.
func pickPerson(t *testing.T, ctx context.Context, tenant, nameID string) string {
	t.Helper()
	person := `[data-nameid="` + nameID + `"] .signin`
	var banner string
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.Click(chromedp.CSS(`a[href^="/saml/`+tenant+`/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(person)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			banner, err = chromedp.Text(chromedp.CSS(`.banner`))(ctx, tg)
			return err
		}),
		chromedp.Click(chromedp.CSS(person)),
	), "pick %s at %s", nameID, tenant)
	return banner
}

// text returns the visible text of the first element matching the CSS
// selector sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, "text of %s", sel)
	return s
}
