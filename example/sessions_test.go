package main

import (
	"context"
	"database/sql"
	"html"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// deviceTransport sends every request with a browser's User-Agent and,
// when set, an X-Forwarded-For header.
type deviceTransport struct{ ua, xff string }

func (d deviceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", d.ua)
	if d.xff != "" {
		r.Header.Set("X-Forwarded-For", d.xff)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// device is a browser (its own cookie jar) that sends ua, and xff as
// X-Forwarded-For when not empty.
func device(t *testing.T, ua, xff string) *http.Client {
	c := browser(t)
	c.Transport = deviceTransport{ua, xff}
	return c
}

// sessionLine is a line of a sessions page.
type sessionLine struct {
	Handle, Row string
	Current     bool
}

// sessionLines returns the lines of the sessions table of page.
func sessionLines(t *testing.T, page string) []sessionLine {
	t.Helper()
	var out []sessionLine
	for _, m := range regexp.MustCompile(`(?s)<tr data-session="([^"]*)"( class="current")?>(.*?)</tr>`).FindAllStringSubmatch(htmlTable(t, page, "sessions"), -1) {
		out = append(out, sessionLine{Handle: html.UnescapeString(m[1]), Current: m[2] != "", Row: m[3]})
	}
	return out
}

// lineWith returns the line whose browser cell is ua.
func lineWith(t *testing.T, lines []sessionLine, ua string) sessionLine {
	t.Helper()
	i := slices.IndexFunc(lines, func(l sessionLine) bool { return cellText(t, l.Row, "user-agent") == ua })
	require.GreaterOrEqual(t, i, 0, "no session with browser %q", ua)
	return lines[i]
}

// activityRows counts the activity table's rows of handle.
func activityRows(t *testing.T, a *app, handle string) int {
	t.Helper()
	var n int
	require.NoError(t, a.db.QueryRow(a.activity.rebind(`SELECT count(*) FROM example_session_activity WHERE session_hash = ?`), handle).Scan(&n))
	return n
}

// TestOwnSessions: Grace, signed in on a laptop and a phone, lists her
// sessions on the laptop (last seen, IP, browser, connection, this device
// marked), signs the phone out from it, whose next request is refused,
// then signs out everywhere. Another person's session cannot be named,
// and another site cannot post the forms.
func TestOwnSessions(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	laptop, phone := device(t, "Laptop Firefox/128", ""), device(t, "Phone Safari/17", "")
	frank := device(t, "Frank's Edge", "")
	signIn(t, a, laptop, root, "acme", "acme-0002")
	signIn(t, a, phone, root, "acme", "acme-0002")
	signIn(t, a, frank, root, "globex", "globex-0002")
	code, _ := get(t, phone, root+"/") // the phone's first page: its first report
	require.Equal(t, http.StatusOK, code)

	code, page := get(t, laptop, root+"/sessions")
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, "Your sessions")
	lines := sessionLines(t, page)
	require.Len(t, lines, 2)
	mine, other := lineWith(t, lines, "Laptop Firefox/128"), lineWith(t, lines, "Phone Safari/17")
	assert.True(t, mine.Current)
	assert.Contains(t, cellText(t, mine.Row, "issued"), "this device")
	assert.False(t, other.Current)
	assert.NotContains(t, other.Row, "this device")
	for _, l := range lines {
		assert.Equal(t, "127.0.0.1", cellText(t, l.Row, "ip"))
		assert.Equal(t, "acme", cellText(t, l.Row, "connection"))
		assert.NotEqual(t, "—", cellText(t, l.Row, "last-seen"))
		assert.NotEmpty(t, cellText(t, l.Row, "issued"))
	}
	assert.NotContains(t, mine.Row, "/end", "this device is signed out with Sign out, not from the list")
	end := formAction(t, other.Row)
	assert.Equal(t, "/sessions/"+other.Handle+"/end", end)
	assert.Equal(t, 1, activityRows(t, a, other.Handle))

	// Another site cannot make the laptop post it.
	req, err := http.NewRequest(http.MethodPost, root+end, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := laptop.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	code, _ = get(t, phone, root+"/api/me")
	require.Equal(t, http.StatusOK, code)

	// Frank's session is not Grace's to end: not found, and untouched.
	_, fpage := get(t, frank, root+"/sessions")
	flines := sessionLines(t, fpage)
	require.Len(t, flines, 1)
	code, _ = postAdminForm(t, laptop, root+"/sessions/"+flines[0].Handle+"/end", root)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = postAdminForm(t, laptop, root+"/sessions/not-a-handle/end", root)
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, frank, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "Frank is still signed in")

	// The laptop signs the phone out: the phone's next request is refused.
	code, loc := postAdminForm(t, laptop, root+end, root)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/sessions", loc)
	code, _ = get(t, phone, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code, "the phone is signed out")
	code, _ = get(t, laptop, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "the laptop is not")
	_, page = get(t, laptop, root+"/sessions")
	lines = sessionLines(t, page)
	require.Len(t, lines, 1)
	assert.True(t, lines[0].Current)
	assert.Equal(t, 0, activityRows(t, a, other.Handle), "the ended session's row is gone")
	trail, err := a.audit.Page(context.Background(), auditQuery{Limit: 5})
	require.NoError(t, err)
	require.NotEmpty(t, trail)
	assert.Equal(t, "session_ended", trail[0].Kind)
	assert.Equal(t, "acme-0002", trail[0].Key.Subject)

	// Sign out everywhere, from the laptop, with the phone signed in again.
	signIn(t, a, phone, root, "acme", "acme-0002")
	code, _ = get(t, phone, root+"/api/me")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `action="/sessions/end-all"`)
	code, loc = postAdminForm(t, laptop, root+"/sessions/end-all", root)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/", loc)
	for _, c := range []*http.Client{laptop, phone} {
		code, _ = get(t, c, root+"/api/me")
		assert.Equal(t, http.StatusUnauthorized, code, "every device is signed out")
	}
	_, home := get(t, laptop, root+"/")
	assert.Contains(t, home, `id="signin"`, "the laptop's cookie is gone: the landing page")
	code, _ = get(t, frank, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "someone else's sessions are untouched")

	// Without a session the page asks to sign in.
	code, _ = get(t, laptop, root+"/sessions")
	assert.Equal(t, http.StatusFound, code)
}

// TestAdminUserSessions: an administrator lists a person's sessions with
// the same details and signs them out everywhere; another tenant's
// person is not found, and the page is for administrators only.
func TestAdminUserSessions(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	ada := device(t, "Ada's Chrome", "")
	laptop, phone := device(t, "Laptop Firefox/128", ""), device(t, "Phone Safari/17", "")
	frank := device(t, "Frank's Edge", "")
	signIn(t, a, ada, root, "acme", "acme-0001")
	signIn(t, a, laptop, root, "acme", "acme-0002")
	signIn(t, a, phone, root, "acme", "acme-0002")
	signIn(t, a, frank, root, "globex", "globex-0002")
	for _, c := range []*http.Client{laptop, phone} {
		code, _ := get(t, c, root+"/api/me")
		require.Equal(t, http.StatusOK, code)
	}

	code, page := get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	link := regexpFind(t, userRow(t, page, "acme-0002"), `href="(/admin/users/[^"]+/sessions)"`)
	code, page = get(t, ada, root+link)
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, "Sessions of Grace Hopper")
	lines := sessionLines(t, page)
	require.Len(t, lines, 2)
	for _, ua := range []string{"Laptop Firefox/128", "Phone Safari/17"} {
		l := lineWith(t, lines, ua)
		assert.False(t, l.Current, "neither is the administrator's device")
		assert.Equal(t, "127.0.0.1", cellText(t, l.Row, "ip"))
		assert.Equal(t, "acme", cellText(t, l.Row, "connection"))
		assert.NotContains(t, l.Row, "<form", "an administrator signs a person out everywhere")
	}
	endAll := regexpFind(t, page, `<form method="post" action="(/admin/users/[^"]+/end-sessions)" class="inline"><button id="end-all"`)

	// Grace, not an administrator, cannot see it; Ada cannot see globex's
	// Frank.
	code, _ = get(t, laptop, root+link)
	assert.Equal(t, http.StatusForbidden, code)
	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.Key.Subject == "globex-0002" })
	require.GreaterOrEqual(t, i, 0)
	code, _ = get(t, ada, root+"/admin/users/"+users[i].ID+"/sessions")
	assert.Equal(t, http.StatusNotFound, code)

	code, loc := postAdminForm(t, ada, root+endAll, root)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/admin", loc)
	for _, c := range []*http.Client{laptop, phone} {
		code, _ = get(t, c, root+"/api/me")
		assert.Equal(t, http.StatusUnauthorized, code, "signed out everywhere")
	}
	code, _ = get(t, frank, root+"/api/me")
	assert.Equal(t, http.StatusOK, code)
	_, page = get(t, ada, root+link)
	assert.Empty(t, sessionLines(t, page))
	assert.Contains(t, htmlTable(t, page, "sessions"), "No live sessions.")
	for _, l := range lines {
		assert.Equal(t, 0, activityRows(t, a, l.Handle), "ended sessions' rows are gone")
	}
}

// TestSessionsTrustedProxy: the IP shown is the peer's, whatever
// X-Forwarded-For says, unless the peer is a -trusted-proxy; then it is
// the rightmost address not a trusted proxy's, so an address the client
// wrote at the left is not believed.
func TestSessionsTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no trusted proxy", nil, "127.0.0.1"},
		{"loopback trusted", []string{"-trusted-proxy", "127.0.0.1"}, "203.0.113.9"},
		{"another proxy trusted", []string{"-trusted-proxy", "10.0.0.0/8"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, root := startAppArgs(t, append([]string{"-data", t.TempDir()}, tc.args...)...)
			c := device(t, "Proxied", "198.51.100.66, 203.0.113.9")
			signIn(t, a, c, root, "acme", "acme-0002")
			code, page := get(t, c, root+"/sessions")
			require.Equal(t, http.StatusOK, code)
			lines := sessionLines(t, page)
			require.Len(t, lines, 1)
			assert.Equal(t, tc.want, cellText(t, lines[0].Row, "ip"))
		})
	}
	_, err := parseFlags([]string{"-trusted-proxy", "proxy.internal"}, io.Discard)
	assert.ErrorContains(t, err, "-trusted-proxy")
}

// TestSessionActivityPurge: the rows of expired sessions are purged in
// bounded batches, on SQLite and on PostgreSQL; live sessions' rows stay.
func TestSessionActivityPurge(t *testing.T) {
	check := func(t *testing.T, s *sessionActivity) {
		ctx := context.Background()
		now := time.Now()
		key := userstore.Key{Issuer: "https://idp.example/", Subject: "s"}
		report := func(id string, expires time.Time) {
			require.NoError(t, s.SessionSeen(ctx, jit.Activity{
				Session: userstore.Session{ID: id, Key: key, CreatedAt: now.Add(-9 * time.Hour), ExpiresAt: expires},
				Time:    now.Add(-2 * time.Hour), UserAgent: "UA"}))
		}
		for i := range 1234 {
			report("expired-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), now.Add(-time.Duration(i+1)*time.Second))
		}
		for _, id := range []string{"live-1", "live-2", "live-3"} {
			report(id, now.Add(time.Hour))
		}
		count := func() int {
			var n int
			require.NoError(t, s.db.QueryRow(`SELECT count(*) FROM example_session_activity`).Scan(&n))
			return n
		}
		require.Equal(t, 1237, count())

		n, err := s.purge(ctx, now, 500, 2)
		require.NoError(t, err)
		assert.Equal(t, 1000, n, "two batches of 500, no more")
		n, err = s.purge(ctx, now, 500, 20)
		require.NoError(t, err)
		assert.Equal(t, 234, n)
		assert.Equal(t, 3, count(), "live sessions' rows stay")
		seen, err := s.lookup(ctx, []string{sessionHandle("live-1"), sessionHandle("live-2"), sessionHandle("expired-a")})
		require.NoError(t, err)
		assert.Len(t, seen, 2)
		assert.Equal(t, "UA", seen[sessionHandle("live-1")].UserAgent)
		assert.Empty(t, seen[sessionHandle("live-1")].IP, "no address reported")

		// A later report updates the row.
		require.NoError(t, s.SessionSeen(ctx, jit.Activity{Session: userstore.Session{ID: "live-1", Key: key, ExpiresAt: now.Add(time.Hour)}, Time: now, UserAgent: "UA 2"}))
		seen, err = s.lookup(ctx, []string{sessionHandle("live-1")})
		require.NoError(t, err)
		assert.Equal(t, "UA 2", seen[sessionHandle("live-1")].UserAgent)
		assert.Equal(t, now.UnixMilli(), seen[sessionHandle("live-1")].LastSeen.UnixMilli())
		assert.Equal(t, now.Add(-2*time.Hour).UnixMilli(), seen[sessionHandle("live-1")].FirstSeen.UnixMilli())

		// Forgetting ended sessions keeps the live ones named.
		require.NoError(t, s.forgetEnded(ctx, key, []string{sessionHandle("live-2")}, now))
		assert.Equal(t, 1, count())
	}
	t.Run("sqlite", func(t *testing.T) {
		a := newTestApp(t, "-data", t.TempDir())
		check(t, a.activity)
	})
	t.Run("postgres", func(t *testing.T) {
		_, _, scoped := postgresSchema(t)
		db, err := sql.Open("pgx", scoped)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		s, err := openSessionActivity(context.Background(), db, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.NoError(t, err)
		t.Cleanup(s.Close)
		check(t, s)
	})
}
