package jit_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"sync"

	"github.com/samljit/samljit/jit"
)

// lastSeen is an application's record of its sessions' use, keyed by
// session ID. A real one is a table beside the users, upserted.
type lastSeen struct {
	mu   sync.Mutex
	byID map[string]jit.Activity
}

// SessionSeen keeps the latest report of each session.
func (l *lastSeen) SessionSeen(_ context.Context, a jit.Activity) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID[a.Session.ID] = a
	return nil
}

// An application that lists a person's sessions with their last use, IP
// address and browser opts in with Options.Activity, naming the proxies
// whose X-Forwarded-For it believes; a page then joins
// Middleware.Sessions with its record by session ID.
func ExampleActivityOptions() {
	seen := &lastSeen{byID: map[string]jit.Activity{}}
	opts := jit.Options{
		// RootURL, Key, Certificate, Store, SessionKeys and Connections
		// as in the example of New.
		Activity: jit.ActivityOptions{
			Recorder:       seen,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		},
	}
	fmt.Println(opts.Activity.Recorder != nil)
	// Output: true
}

// Behind a load balancer at 10.0.0.5, the client is the address the
// balancer appended last; what the client wrote itself, at the left, is
// not believed. Without trusted proxies the header is ignored.
func ExampleClientIP() {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.5:41000"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	fmt.Println(jit.ClientIP(r, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}))
	fmt.Println(jit.ClientIP(r, nil))
	// Output:
	// 203.0.113.7
	// 10.0.0.5
}
