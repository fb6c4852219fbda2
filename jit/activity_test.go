package jit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// activityLog is a SessionActivity that keeps every report, and fails
// while failing is set.
type activityLog struct {
	mu      sync.Mutex
	reports []jit.Activity
	failing atomic.Bool
}

func (l *activityLog) SessionSeen(_ context.Context, a jit.Activity) error {
	if l.failing.Load() {
		return errors.New("activity table unavailable")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports = append(l.reports, a)
	return nil
}

func (l *activityLog) all() []jit.Activity {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]jit.Activity(nil), l.reports...)
}

// stepClock is a clock a test moves forward.
type stepClock struct {
	start  time.Time
	offset atomic.Int64
}

func (c *stepClock) now() time.Time { return c.start.Add(time.Duration(c.offset.Load())) }

func (c *stepClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// activityHarness is an app reporting to a, with the clock now (nil for
// the real one), whose IdP knows alice.
func activityHarness(t *testing.T, a jit.ActivityOptions, now func() time.Time) *harness {
	t.Helper()
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Now = now
		o.Activity = a
	}})
	h.idp().AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	return h
}

// meAs fetches /me with browser c, a User-Agent and, when xff is not
// empty, an X-Forwarded-For header, and returns the status.
func meAs(t *testing.T, h *harness, c *http.Client, ua, xff string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", ua)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestActivityReportedOncePerInterval: with a Recorder, an authenticated
// request reports its session, its user, the time, the peer's address and
// the user agent; further requests of that session within the interval
// report nothing, the first one after it reports again; each device's
// session is reported on its own; the sign-in itself reports nothing.
func TestActivityReportedOncePerInterval(t *testing.T) {
	clock := &stepClock{start: time.Now()}
	log := &activityLog{}
	h := activityHarness(t, jit.ActivityOptions{Recorder: log}, clock.now)
	laptop := h.client()
	resp, body := h.signIn(laptop, "", "alice")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Empty(t, log.all(), "the sign-in reports nothing")

	require.Equal(t, http.StatusOK, meAs(t, h, laptop, "Laptop/1.0", ""))
	got := log.all()
	require.Len(t, got, 1)
	sessions := sessionsOf(t, h, "alice")
	require.Len(t, sessions, 1)
	users := h.users()
	require.Len(t, users, 1)
	a := got[0]
	assert.Equal(t, sessions[0].ID, a.Session.ID)
	assert.Equal(t, users[0].Key, a.Session.Key)
	assert.Equal(t, users[0].ID, a.UserID)
	assert.Equal(t, clock.now(), a.Time)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), a.IP)
	assert.Equal(t, "Laptop/1.0", a.UserAgent)

	clock.advance(59 * time.Second)
	require.Equal(t, http.StatusOK, meAs(t, h, laptop, "Laptop/1.0", ""))
	assert.Len(t, log.all(), 1, "within the minute: no report")

	// A second device's session is its own.
	phone := h.client()
	resp, body = h.signIn(phone, "", "alice")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, http.StatusOK, meAs(t, h, phone, "Phone/2.0", ""))
	got = log.all()
	require.Len(t, got, 2)
	assert.NotEqual(t, got[0].Session.ID, got[1].Session.ID)
	assert.Equal(t, "Phone/2.0", got[1].UserAgent)

	clock.advance(2 * time.Second)
	require.Equal(t, http.StatusOK, meAs(t, h, laptop, "Laptop/1.1", ""))
	got = log.all()
	require.Len(t, got, 3, "a minute after its last report, the laptop's session is reported again")
	assert.Equal(t, got[0].Session.ID, got[2].Session.ID)
	assert.Equal(t, "Laptop/1.1", got[2].UserAgent)

	// Many requests of one session at once: one report.
	clock.advance(time.Minute)
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = meAs(t, h, laptop, "Laptop/1.1", "")
		}()
	}
	wg.Wait()
	for _, c := range codes {
		assert.Equal(t, http.StatusOK, c)
	}
	assert.Len(t, log.all(), 4, "sixteen concurrent requests, one report")

	// A refused request reports nothing.
	clock.advance(time.Minute)
	_, err := h.mw.EndSessions(context.Background(), users[0].Key)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, meAs(t, h, laptop, "Laptop/1.1", ""))
	assert.Len(t, log.all(), 4)
}

// TestActivityCurrentUserReports: CurrentUser, which pages that serve
// signed-in and anonymous people alike use, reports as RequireUser does.
func TestActivityCurrentUserReports(t *testing.T) {
	log := &activityLog{}
	h := activityHarness(t, jit.ActivityOptions{Recorder: log}, nil)
	signedIn(t, h, "alice") // one /me
	require.Len(t, log.all(), 1)
	c2 := h.client()
	resp, body := h.signIn(c2, "", "alice")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	req := httptest.NewRequest(http.MethodGet, h.app.URL+"/", nil)
	for _, ck := range c2.Jar.Cookies(mustURL(h.app.URL)) {
		req.AddCookie(ck)
	}
	req.Header.Set("User-Agent", "Tablet")
	u, err := h.mw.CurrentUser(req)
	require.NoError(t, err)
	got := log.all()
	require.Len(t, got, 2)
	assert.Equal(t, u.ID, got[1].UserID)
	assert.Equal(t, "Tablet", got[1].UserAgent)
	assert.Equal(t, netip.MustParseAddr("192.0.2.1"), got[1].IP, "httptest's RemoteAddr")
}

// TestActivityForwardedFor: X-Forwarded-For is ignored unless the peer is
// a trusted proxy, and then it is read from the right, so that an address
// a client writes at its left is not believed.
func TestActivityForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		xff     string
		want    string
	}{
		{"untrusted by default", nil, "203.0.113.9", "127.0.0.1"},
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "203.0.113.9", "203.0.113.9"},
		{"a spoofed hop on the left", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "198.51.100.66, 203.0.113.9", "203.0.113.9"},
		{"two trusted proxies", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}, "198.51.100.66, 203.0.113.9, 10.1.2.3", "203.0.113.9"},
		{"another peer is not trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "203.0.113.9", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &activityLog{}
			h := activityHarness(t, jit.ActivityOptions{Recorder: log, TrustedProxies: tc.proxies}, nil)
			c := h.client()
			resp, body := h.signIn(c, "", "alice")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			require.Equal(t, http.StatusOK, meAs(t, h, c, "UA", tc.xff))
			got := log.all()
			require.Len(t, got, 1)
			assert.Equal(t, tc.want, got[0].IP.String())
		})
	}
}

// TestActivityRecorderFailure: a failing Recorder never fails the
// request; it is logged.
func TestActivityRecorderFailure(t *testing.T) {
	log := &activityLog{}
	log.failing.Store(true)
	h := activityHarness(t, jit.ActivityOptions{Recorder: log}, nil)
	signedIn(t, h, "alice")
	assert.Empty(t, log.all())
	assert.Contains(t, h.logs.String(), "session activity not recorded")
	assert.Contains(t, h.logs.String(), "activity table unavailable")
}

// TestActivityOptionsChecked: New refuses a negative interval, an invalid
// proxy prefix, and proxies or an interval without a Recorder (a setting
// that would silently do nothing).
func TestActivityOptionsChecked(t *testing.T) {
	log := &activityLog{}
	for name, a := range map[string]jit.ActivityOptions{
		"negative interval": {Recorder: log, Interval: -time.Second},
		"invalid prefix":    {Recorder: log, TrustedProxies: []netip.Prefix{{}}},
		"no recorder":       {TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		t.Run(name, func(t *testing.T) {
			idp := newHarness(t, harnessConfig{}).idp()
			key, cert := spKeyPair()
			_, err := jit.New(context.Background(), jit.Options{
				RootURL: "http://127.0.0.1:1", Key: key, Certificate: cert, Store: newMem(),
				SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{{IDPMetadata: idp.Metadata()}},
				Activity: a,
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "Options.Activity")
		})
	}
}

// TestClientIP covers the derivation of the client's address.
func TestClientIP(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	for _, tc := range []struct {
		remote  string
		xff     []string
		proxies []netip.Prefix
		want    string
	}{
		{"192.0.2.7:4000", nil, nil, "192.0.2.7"},
		{"192.0.2.7:4000", []string{"203.0.113.1"}, nil, "192.0.2.7"},
		{"[2001:db8::5]:443", nil, nil, "2001:db8::5"},
		{"[::ffff:192.0.2.7]:443", nil, nil, "192.0.2.7"},
		{"192.0.2.7", nil, nil, "192.0.2.7"},
		{"@", nil, nil, "invalid IP"},
		{"10.0.0.1:80", nil, lb, "10.0.0.1"},
		{"10.0.0.1:80", []string{"203.0.113.1"}, lb, "203.0.113.1"},
		{"10.0.0.1:80", []string{"203.0.113.1:5555"}, lb, "203.0.113.1"},
		{"10.0.0.1:80", []string{"[2001:db8:2::9]:5555"}, lb, "2001:db8:2::9"},
		{"10.0.0.1:80", []string{"6.6.6.6, 203.0.113.1, 10.9.9.9"}, lb, "203.0.113.1"},
		{"10.0.0.1:80", []string{"6.6.6.6", "203.0.113.1", "10.9.9.9"}, lb, "203.0.113.1"},
		{"10.0.0.1:80", []string{"10.2.2.2, 10.3.3.3"}, lb, "10.2.2.2"},
		{"10.0.0.1:80", []string{"6.6.6.6, unknown, 10.3.3.3"}, lb, "10.3.3.3"},
		{"10.0.0.1:80", []string{"6.6.6.6, , 10.3.3.3"}, lb, "10.3.3.3"},
		{"10.0.0.1:80", []string{"garbage"}, lb, "10.0.0.1"},
		{"10.0.0.1:80", []string{"203.0.113.1, " + strings.Repeat("10.0.0.2, ", 20) + "10.0.0.3"}, lb, "10.0.0.2"},
		{"192.0.2.7:4000", []string{"203.0.113.1"}, lb, "192.0.2.7"},
		// Sixteen entries are read, the seventeenth is not.
		{"10.0.0.1:80", []string{"203.0.113.1, " + strings.Repeat("10.0.0.2, ", 14) + "10.0.0.3"}, lb, "203.0.113.1"},
		// Every comma separates entries, a leading one too.
		{"10.0.0.1:80", []string{",198.51.100.1"}, lb, "198.51.100.1"},
		// An address of up to 64 bytes is read, not one longer.
		{"[2001:db8::5%" + strings.Repeat("z", 46) + "]:443", nil, nil, "2001:db8::5"},
		{"[2001:db8::5%" + strings.Repeat("z", 47) + "]:443", nil, nil, "invalid IP"},
	} {
		t.Run(fmt.Sprint(tc.remote, tc.xff), func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tc.want, jit.ClientIP(r, tc.proxies).String())
		})
	}
}

// FuzzClientIP: whatever the header says, without trusted proxies the
// client is the peer, and with them it is the peer or an address the
// header names.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "203.0.113.1, 10.9.9.9")
	f.Add("10.0.0.1:80", "[2001:db8::1]:80,::ffff:1.2.3.4")
	f.Add("192.0.2.1:1", "")
	f.Add("[::1]:1", " , ,unknown")
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		peer := jit.ClientIP(r, nil)
		got := jit.ClientIP(r, lb)
		if got == peer {
			return
		}
		if !peer.IsValid() {
			t.Fatalf("no peer address in %q, yet %s", remote, got)
		}
		if !headerNames(xff, got) {
			t.Fatalf("ClientIP(%q, %q) = %s, in neither", remote, xff, got)
		}
	})
}

// headerNames reports whether one of the comma-separated entries of xff
// is the address ip, with or without a port, in any notation (an
// IPv4-mapped address counts as its IPv4 address, a zone is ignored).
func headerNames(xff string, ip netip.Addr) bool {
	for _, e := range strings.Split(xff, ",") {
		e = strings.TrimSpace(e)
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]"))
		if ap, perr := netip.ParseAddrPort(e); perr == nil {
			a, err = ap.Addr(), nil
		}
		if err == nil && a.Unmap().WithZone("") == ip {
			return true
		}
	}
	return false
}
