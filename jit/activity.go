package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/samljit/samljit/userstore"
)

// DefaultActivityInterval is how often, at most, one instance reports the
// use of one session to [ActivityOptions.Recorder] when Interval is zero.
const DefaultActivityInterval = time.Minute

// Bounds on what an [Activity] carries from the request.
const (
	// MaxUserAgent bounds [Activity.UserAgent], in bytes; a longer one is
	// cut at a character boundary.
	MaxUserAgent = 512
	// maxForwardedHops bounds how many X-Forwarded-For entries ClientIP
	// reads, from the right.
	maxForwardedHops = 16
)

// ActivityOptions configure the reports of a session's use that an
// application may keep for a page listing a person's sessions (last seen,
// IP address, browser). The session records themselves
// ([userstore.Session]) hold none of these: the application that wants
// them opts in by setting Recorder and keeps them where it likes, keyed by
// the session ID. The zero value reports nothing.
type ActivityOptions struct {
	// Recorder, when set, is told of each authenticated request's session
	// (through [Middleware.RequireUser] or [Middleware.CurrentUser]), at
	// most once per Interval for one session on one instance. It is
	// called synchronously, after the session and its user have been
	// read and before the application's handler runs, and never by the
	// sign-in (ACS), so a sign-in's writes never wait for it: the first
	// request after a sign-in, normally the redirect that lands it, makes
	// the session's first report.
	Recorder SessionActivity

	// Interval is the least time between two reports of one session by
	// one instance. Default [DefaultActivityInterval] (a minute): a busy
	// session writes once a minute, not once a request.
	Interval time.Duration

	// TrustedProxies are the addresses of the reverse proxies in front of
	// the application whose X-Forwarded-For header is believed; see
	// [ClientIP]. Empty by default, and then the header is never read:
	// [Activity.IP] is the peer's address. List only proxies you run
	// (such as netip.MustParsePrefix("10.0.0.0/8") for a load balancer
	// on a private network): whoever connects from a listed address
	// chooses the IP that is recorded.
	TrustedProxies []netip.Prefix
}

// SessionActivity records what the middleware reports of a session's use.
// Implementations must be safe for concurrent use and should be quick: a
// report is one small write (an upsert keyed by [Activity.Session]'s ID).
type SessionActivity interface {
	// SessionSeen records a. An error is logged and otherwise ignored:
	// the request goes on, and the session is reported again after the
	// interval.
	SessionSeen(ctx context.Context, a Activity) error
}

// Activity is one report of a session's use.
type Activity struct {
	// Session is the session's record: its ID (the key to record under),
	// user key, connection, creation and expiry.
	Session userstore.Session
	// UserID is the ID of the session's user.
	UserID string
	// Time is when the request was served, by [Options.Now].
	Time time.Time
	// IP is the client's address as [ClientIP] derives it with
	// [ActivityOptions.TrustedProxies]; the zero Addr when the request's
	// RemoteAddr holds none.
	IP netip.Addr
	// UserAgent is the request's User-Agent header, at most
	// [MaxUserAgent] bytes, valid UTF-8. The browser chooses it: show it,
	// never trust it.
	UserAgent string
}

// activity is the middleware's side of ActivityOptions: the recorder, and
// when each session was last reported. Two generations of that record are
// kept, swapped every interval, so that it holds only the sessions seen
// in the last two intervals, whatever their number over time.
type activity struct {
	rec     SessionActivity
	every   time.Duration
	proxies []netip.Prefix

	mu        sync.Mutex
	cur, prev map[string]time.Time
	rotated   time.Time
}

// newActivity checks o and returns the middleware's activity state, nil
// when o reports nothing.
func newActivity(o ActivityOptions) (*activity, error) {
	if o.Interval < 0 {
		return nil, fmt.Errorf("jit: Options.Activity.Interval %s is negative", o.Interval)
	}
	for i, p := range o.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("jit: Options.Activity.TrustedProxies[%d] is not a valid prefix", i)
		}
	}
	if o.Recorder == nil {
		if len(o.TrustedProxies) > 0 || o.Interval != 0 {
			return nil, errors.New("jit: Options.Activity sets Interval or TrustedProxies but no Recorder")
		}
		return nil, nil
	}
	proxies := make([]netip.Prefix, len(o.TrustedProxies))
	for i, p := range o.TrustedProxies {
		proxies[i] = p.Masked()
	}
	return &activity{
		rec:     o.Recorder,
		every:   orDefault(o.Interval, DefaultActivityInterval),
		proxies: proxies,
		cur:     map[string]time.Time{},
		prev:    map[string]time.Time{},
	}, nil
}

// due reports whether session id should be reported at now, and if so
// records now as its last report.
func (a *activity) due(id string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.rotated) >= a.every {
		a.prev, a.cur, a.rotated = a.cur, make(map[string]time.Time, len(a.cur)), now
	}
	last, ok := a.cur[id]
	if !ok {
		last, ok = a.prev[id]
	}
	if ok && now.Sub(last) < a.every {
		return false
	}
	a.cur[id] = now
	return true
}

// seen reports the request's session to the recorder when it is due.
func (m *Middleware) seen(r *http.Request, rec userstore.Session, userID string) {
	a := m.activity
	if a == nil {
		return
	}
	now := m.now()
	if !a.due(rec.ID, now) {
		return
	}
	act := Activity{Session: rec, UserID: userID, Time: now, IP: ClientIP(r, a.proxies),
		UserAgent: truncateUTF8(r.Header.Get("User-Agent"), MaxUserAgent)}
	if err := a.rec.SessionSeen(r.Context(), act); err != nil {
		m.log.LogAttrs(r.Context(), slog.LevelWarn, "session activity not recorded",
			slog.String("user_id", userID), slog.String("connection", rec.Connection), slog.String("err", err.Error()))
	}
}

// truncateUTF8 returns s with invalid UTF-8 replaced, cut to at most n
// bytes at a character boundary.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ClientIP returns the address of the client that sent r. It is the
// peer's address, r.RemoteAddr, unless that peer is one of
// trustedProxies: then X-Forwarded-For (every such header, in order) is
// read from the right, skipping the addresses of trusted proxies, and
// the first address that is not one is the client's. Each proxy appends
// the address it received the request from, so the entries to the right
// of that address were written by proxies you trust, and those to its
// left by whoever sent the request, which may be anyone. When every entry
// is a trusted proxy's, the leftmost is returned; when an entry is not an
// address, the last trusted one read is. With no trustedProxies the
// header is never read: a client can write anything in it. The zero
// Addr means RemoteAddr held no address. IPv4-mapped IPv6 addresses are
// returned as IPv4.
//
// Use it for display and records, such as [Activity.IP]; an access
// decision by IP address needs the proxies listed exactly.
func ClientIP(r *http.Request, trustedProxies []netip.Prefix) netip.Addr {
	peer := parseHostAddr(r.RemoteAddr)
	if !peer.IsValid() || !trusted(peer, trustedProxies) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	read := 0
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		for h != "" {
			var entry string
			if j := strings.LastIndexByte(h, ','); j >= 0 {
				h, entry = h[:j], h[j+1:]
			} else {
				h, entry = "", h
			}
			if read++; read > maxForwardedHops {
				return client
			}
			ip := parseHostAddr(strings.TrimSpace(entry))
			if !ip.IsValid() {
				return client
			}
			client = ip
			if !trusted(ip, trustedProxies) {
				return ip
			}
		}
	}
	return client
}

// trusted reports whether ip is in one of prefixes.
func trusted(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHostAddr parses an address with or without a port ("192.0.2.1",
// "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]:80"), unmapping an
// IPv4-mapped IPv6 address and dropping a zone. It returns the zero Addr
// for anything else.
func parseHostAddr(s string) netip.Addr {
	if len(s) > 64 {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return ip.Unmap().WithZone("")
	}
	return netip.Addr{}
}
