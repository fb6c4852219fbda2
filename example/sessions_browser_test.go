package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserSignOutOtherDevice drives headless Chromium: Grace, signed in
// in two browser contexts (a laptop and a phone), opens Your sessions on
// the laptop, finds both, this device marked, and signs the phone out
// with its button; the phone's next page load finds her signed out.
func TestBrowserSignOutOtherDevice(t *testing.T) {
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
	laptop, cancelLaptop := chromedp.NewContext(alloc)
	defer cancelLaptop()
	require.NoError(t, chromedp.Do(laptop, chromedp.Navigate(root+"/")), "start Chromium and open the app")
	signInAs(t, laptop, "acme", "acme-0002")
	phone, cancelPhone := chromedp.NewContext(laptop, chromedp.WithNewBrowserContext())
	defer cancelPhone()
	require.NoError(t, chromedp.Do(phone, chromedp.Navigate(root+"/")), "open the app on the phone")
	signInAs(t, phone, "acme", "acme-0002")

	require.NoError(t, chromedp.Do(laptop,
		chromedp.Click(chromedp.CSS(`#your-sessions`)),
		chromedp.WaitVisible(chromedp.CSS(`#sessions tr.current`)),
	), "open Your sessions")
	require.Equal(t, 2, sessionRowCount(t, laptop))
	assert.Contains(t, text(t, laptop, `#sessions tr.current`), "this device")
	assert.Contains(t, text(t, laptop, `#sessions tr.current .ip`), "127.0.0.1")
	assert.Contains(t, text(t, laptop, `#sessions tr.current .user-agent`), "Chrome")

	require.NoError(t, chromedp.Do(laptop,
		chromedp.Click(chromedp.CSS(`#sessions tr:not(.current) button.end-session`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#sessions button.end-session`)),
	), "sign the phone out")
	assert.Equal(t, 1, sessionRowCount(t, laptop), "only this device is left")

	require.NoError(t, chromedp.Do(phone,
		chromedp.Navigate(root+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin`)),
	), "the phone is signed out")
	require.NoError(t, chromedp.Do(laptop,
		chromedp.Navigate(root+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#groups`)),
	), "the laptop is not")
}

// sessionRowCount is the number of sessions the page of ctx lists.
func sessionRowCount(t *testing.T, ctx context.Context) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sessions tr[data-session]").length`))
	require.NoError(t, err)
	return n
}
