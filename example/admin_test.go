package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestAdminStaleAccountReport seeds the app's SQLite store with people last
// signed in at chosen times and checks the admin page's report lists
// exactly those not signed in for N days, oldest first, with their days.
func TestAdminStaleAccountReport(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	ada := browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001") // the admin, signed in now

	ctx := context.Background()
	now := time.Now()
	const day = 24 * time.Hour
	// Two hours either side of a day boundary: more than a DST shift, so
	// AddDate's calendar days and 24-hour days agree on every seed.
	seeds := []struct {
		subject string
		ago     time.Duration
	}{
		{"s-001", 1 * day},
		{"s-031", 31*day + 2*time.Hour},
		{"s-090", 90*day + 2*time.Hour},
		{"s-029", 30*day - 2*time.Hour},
		{"s-045", 45*day + 2*time.Hour},
		{"s-030", 30*day + 2*time.Hour},
	}
	issuer := a.dev.tenants[0].idp.EntityID()
	for _, s := range seeds {
		_, err := a.store.Provision(ctx, userstore.Key{Issuer: issuer, Subject: s.subject},
			userstore.Profile{Email: s.subject + "@acme.example", DisplayName: s.subject}, now.Add(-s.ago))
		require.NoError(t, err)
	}
	// A suspended account is still reported: the report is for review.
	require.NoError(t, a.store.Suspend(ctx, userstore.Key{Issuer: issuer, Subject: "s-045"}))

	type line struct {
		Subject string
		Days    int
		Status  string
	}
	report := func(t *testing.T, query string) (string, []line) {
		t.Helper()
		code, page := get(t, ada, root+"/admin"+query)
		require.Equal(t, http.StatusOK, code)
		subjects, rows := dataRows(t, page, "stale")
		var lines []line
		for i, s := range subjects {
			days, err := strconv.Atoi(cellText(t, rows[i], "days"))
			require.NoError(t, err)
			lines = append(lines, line{s, days, cellText(t, rows[i], "status")})
		}
		return page, lines
	}

	page, got := report(t, "?stale_days=30")
	assert.Contains(t, page, "Not signed in for 30 days")
	assert.Equal(t, []line{
		{"s-090", 90, "active"},
		{"s-045", 45, "suspended"},
		{"s-031", 31, "active"},
		{"s-030", 30, "active"},
	}, got, "exactly those not signed in for 30 days, oldest first")

	page, got = report(t, "?stale_days=60")
	assert.Contains(t, page, "Not signed in for 60 days")
	assert.Equal(t, []line{{"s-090", 90, "active"}}, got)

	page, got = report(t, "?stale_days=2")
	assert.Contains(t, page, "Not signed in for 2 days")
	assert.Len(t, got, 5, "everyone but Ada and s-001")
	assert.Equal(t, line{"s-029", 29, "active"}, got[len(got)-1])

	page, got = report(t, "?stale_days=365")
	assert.Contains(t, page, "Not signed in for 365 days")
	assert.Empty(t, got)
	assert.Contains(t, htmlTable(t, page, "stale"), "Nobody.")

	// Without a usable number, the default of 30 days.
	for _, q := range []string{"", "?stale_days=", "?stale_days=abc", "?stale_days=-1", "?stale_days=99999"} {
		page, got = report(t, q)
		assert.Contains(t, page, "Not signed in for 30 days", q)
		assert.Len(t, got, 4, q)
	}
}

// TestFeedSuspendEndsAccess is deprovisioning as an HR feed or a SCIM
// endpoint does it: outside any sign-in, it calls the store's Suspend when
// the IdP disables someone. The suspension ends their session, so their
// next request is not signed in, a new sign-in is refused as suspended,
// and the record stays, suspended.
func TestFeedSuspendEndsAccess(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	frank := browser(t)
	signIn(t, a, frank, root, "globex", "globex-0002")
	code, _ := get(t, frank, root+"/api/me")
	require.Equal(t, http.StatusOK, code)

	// The feed: userstore.Admin, which the sign-in path never accepts.
	var feed userstore.Admin = a.store
	users, err := feed.List(context.Background())
	require.NoError(t, err)
	require.Len(t, users, 1)
	require.NoError(t, feed.Suspend(context.Background(), users[0].Key))

	code, body := get(t, frank, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, body = get(t, frank, root+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `id="signin"`, "the landing page: the session is gone")

	resp, err := a.dev.tenants[1].idp.SignIn(context.Background(), frank, root+"/saml/globex/login", "globex-0002")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a sign-in never lifts a suspension")
	assert.Contains(t, string(b), "suspended")

	after, err := feed.List(context.Background())
	require.NoError(t, err)
	require.Len(t, after, 1, "the record stays")
	assert.Equal(t, userstore.Suspended, after[0].Status)
	assert.Equal(t, users[0].LastSignInAt, after[0].LastSignInAt, "the refused sign-in wrote nothing")
}

// TestAdminEndsSessions: an administrator ends a person's sessions on
// every device from the admin page, by a same-origin POST, for their own
// tenant's users only. The person is not suspended and signs in again.
func TestAdminEndsSessions(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	ada, laptop, phone, frank := browser(t), browser(t), browser(t), browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	signIn(t, a, laptop, root, "acme", "acme-0002")
	signIn(t, a, phone, root, "acme", "acme-0002")
	signIn(t, a, frank, root, "globex", "globex-0002")

	code, page := get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	row := userRow(t, page, "acme-0002")
	assert.Equal(t, "2", cellText(t, row, "sessions"), "Grace's two devices")
	graceEnd := regexp.MustCompile(`action="(/admin/users/[0-9a-f]+/end-sessions)"`).FindStringSubmatch(row)
	require.NotNil(t, graceEnd, "no end-sessions form in %s", row)

	// Another site cannot make Ada's browser post it.
	req, err := http.NewRequest(http.MethodPost, root+graceEnd[1], nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := ada.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Another tenant's user is not found, and keeps their session.
	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.Key.Subject == "globex-0002" })
	require.GreaterOrEqual(t, i, 0)
	code, _ = postAdminForm(t, ada, root+"/admin/users/"+users[i].ID+"/end-sessions", root)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, frank, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "another tenant's session is untouched")

	code, loc := postAdminForm(t, ada, root+graceEnd[1], root)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/admin", loc)
	for _, c := range []*http.Client{laptop, phone} {
		code, _ = get(t, c, root+"/api/me")
		assert.Equal(t, http.StatusUnauthorized, code, "every device is signed out")
	}
	code, _ = get(t, ada, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "the administrator's own session is untouched")
	_, page = get(t, ada, root+"/admin")
	row = userRow(t, page, "acme-0002")
	assert.Equal(t, "0", cellText(t, row, "sessions"))
	assert.Equal(t, "active", cellText(t, row, "status"), "ending sessions does not suspend")

	signIn(t, a, laptop, root, "acme", "acme-0002")
	code, _ = get(t, laptop, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "she may sign in again")
}
