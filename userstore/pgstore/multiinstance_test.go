package pgstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
)

// instanceHeader pins a request to one instance of a cluster; requests
// without it are spread round-robin, as a load balancer would.
const instanceHeader = "X-Test-Instance"

// spKeyPair is generated once: RSA key generation dominates test time
// otherwise, and the SP key plays no part in what the tests check.
var spKeyPair = sync.OnceValues(func() (*rsa.PrivateKey, *x509.Certificate) {
	key, cert, err := jittest.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	return key, cert
})

// instance is one application instance: a middleware with its own
// connection pool and store.
type instance struct {
	mw      *jit.Middleware
	store   *pgstore.Store
	handler http.Handler

	mu     sync.Mutex
	events []jit.Event
}

func (in *instance) record(_ context.Context, e jit.Event) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.events = append(in.events, e)
}

func (in *instance) allEvents() []jit.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]jit.Event(nil), in.events...)
}

func (in *instance) lastEvent() jit.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.events) == 0 {
		return jit.Event{}
	}
	return in.events[len(in.events)-1]
}

// cluster is two instances of one application behind one URL, sharing a
// database, the SP key pair and the session keys, as a deployment behind a
// load balancer does.
type cluster struct {
	t     *testing.T
	srv   *httptest.Server
	idp   *jittest.IdP
	inst  atomic.Pointer[[2]*instance]
	next  atomic.Uint64
	store *pgstore.Store // for the test's own checks
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	schema := newSchema(t)
	c := &cluster{t: t}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	c.idp = jittest.New(t)

	key, cert := spKeyPair()
	sessionKeys := [][]byte{make([]byte, 32), make([]byte, 32)}
	for _, k := range sessionKeys {
		_, _ = rand.Read(k)
	}
	var insts [2]*instance
	for i := range insts {
		in := &instance{}
		db := openDB(t, schema) // each instance has its own pool
		st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
		require.NoError(t, err)
		in.store = st
		in.mw, err = jit.New(t.Context(), jit.Options{
			RootURL:     c.srv.URL, // one public URL for both, so the ACS URL matches
			Key:         key,
			Certificate: cert,
			Store:       st,
			SessionKeys: sessionKeys,
			Connections: []jit.Connection{{
				IDPMetadata:       c.idp.Metadata(),
				Mapper:            claims.Generic(),
				AllowIDPInitiated: true,
			}},
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnEvent: in.record,
		})
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("/saml/", in.mw)
		mux.Handle("/me", in.mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := jit.UserFromContext(r.Context())
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(u)
		})))
		in.handler = mux
		insts[i] = in
	}
	c.inst.Store(&insts)
	c.store = insts[0].store
	return c
}

// serve sends the request to the instance its header names, or to the
// next instance in turn.
func (c *cluster) serve(w http.ResponseWriter, r *http.Request) {
	insts := c.inst.Load()
	if insts == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	var i int
	switch r.Header.Get(instanceHeader) {
	case "0":
		i = 0
	case "1":
		i = 1
	default:
		i = int(c.next.Add(1) % 2)
	}
	insts[i].handler.ServeHTTP(w, r)
}

func (c *cluster) instance(i int) *instance { return c.inst.Load()[i] }

// unsolicited returns an IdP-initiated response for nameID, which the
// instances accept without any request cookie.
func (c *cluster) unsolicited(nameID string) jittest.Form {
	c.t.Helper()
	f, err := c.idp.Unsolicited(c.srv.URL+"/saml/metadata", c.srv.URL+"/saml/acs", nameID, "/me")
	require.NoError(c.t, err)
	return f
}

// client returns a client that does not follow redirects.
func client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// post posts f through the cluster's URL to instance i, or to the next
// instance in turn when i is negative, and returns the response with its
// body read.
func (c *cluster) post(f jittest.Form, i int) (*http.Response, string, error) {
	body := url.Values{"SAMLResponse": {f.SAMLResponse}, "RelayState": {f.RelayState}}.Encode()
	req, err := http.NewRequest(http.MethodPost, f.ACS, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.Origin)
	if i >= 0 {
		req.Header.Set(instanceHeader, fmt.Sprint(i))
	}
	resp, err := client().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// me fetches /me from instance i with the given cookies.
func (c *cluster) me(i int, cookies []*http.Cookie) (*http.Response, userstore.User) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.srv.URL+"/me", nil)
	require.NoError(c.t, err)
	req.Header.Set("Accept", "application/json")
	req.Header.Set(instanceHeader, fmt.Sprint(i))
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := client().Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var u userstore.User
	if resp.StatusCode == http.StatusOK {
		require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&u))
	}
	return resp, u
}

// addPerson adds a user with the generic preset's attributes to the IdP.
func (c *cluster) addPerson(nameID string) {
	c.idp.AddUser(jittest.User{
		NameID: nameID,
		Attributes: map[string][]string{
			"urn:oid:0.9.2342.19200300.100.1.3": {nameID + "@example.com"},
			"urn:oid:2.5.4.42":                  {"Given " + nameID},
			"urn:oid:2.5.4.4":                   {"Family"},
			"urn:oid:2.16.840.1.113730.3.1.241": {"Given " + nameID + " Family"},
			"urn:oid:1.3.6.1.4.1.5923.1.5.1.1":  {"staff"},
		},
	})
}

func (c *cluster) users() []userstore.User {
	c.t.Helper()
	us, err := c.store.List(context.Background())
	require.NoError(c.t, err)
	return us
}

// A response consumed on one instance is refused as a replay on the other.
func TestMultiInstanceReplayRefusedOnOtherInstance(t *testing.T) {
	c := newCluster(t)
	c.addPerson("p-ada")
	f := c.unsolicited("p-ada")

	resp, body, err := c.post(f, 0)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, jit.EventCreated, c.instance(0).lastEvent().Kind)

	resp, body, err = c.post(f, 1)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	e := c.instance(1).lastEvent()
	require.Equal(t, jit.EventRefused, e.Kind)
	require.True(t, errors.Is(e.Err, jit.ErrReplayed), "instance B refused with %v, want jit.ErrReplayed", e.Err)
	require.Len(t, c.users(), 1)
}

// Concurrent first sign-ins spread over both instances create exactly one
// user per person, without errors.
func TestMultiInstanceConcurrentFirstSignIns(t *testing.T) {
	c := newCluster(t)
	const persons, each = 8, 8
	forms := make([]jittest.Form, 0, persons*each)
	for p := range persons {
		nameID := fmt.Sprint("p-", p)
		c.addPerson(nameID)
		for range each {
			forms = append(forms, c.unsolicited(nameID))
		}
	}

	start := time.Now()
	codes := make([]int, len(forms))
	bodies := make([]string, len(forms))
	errs := make([]error, len(forms))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, f := range forms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			// Alternate instances, so each person's eight sign-ins
			// land on both.
			resp, body, err := c.post(f, i%2)
			errs[i], bodies[i] = err, body
			if resp != nil {
				codes[i] = resp.StatusCode
			}
		}()
	}
	close(gate)
	wg.Wait()
	t.Logf("%d concurrent sign-ins over 2 instances took %s", len(forms), time.Since(start))

	for i := range forms {
		require.NoError(t, errs[i], "sign-in %d", i)
		require.Equal(t, http.StatusSeeOther, codes[i], "sign-in %d: %s", i, bodies[i])
	}
	created := map[string]int{}
	signIns := map[string]int{}
	for n := range 2 {
		evs := c.instance(n).allEvents()
		require.NotEmpty(t, evs, "instance %d served no sign-in", n)
		for _, e := range evs {
			require.NoError(t, e.Err, "instance %d event %s", n, e.Kind)
			require.NotEqual(t, jit.EventRefused, e.Kind)
			signIns[e.Key.Subject]++
			if e.Kind == jit.EventCreated {
				created[e.Key.Subject]++
			}
		}
	}
	users := c.users()
	require.Len(t, users, persons, "want exactly one user per person")
	for _, u := range users {
		require.Equal(t, 1, created[u.Key.Subject], "creations of %s", u.Key.Subject)
		require.Equal(t, each, signIns[u.Key.Subject], "sign-ins of %s", u.Key.Subject)
	}
}

// A session cookie issued by one instance is accepted by the other, which
// also sees an administrator's suspension at once.
func TestMultiInstanceSessionAcrossInstances(t *testing.T) {
	c := newCluster(t)
	c.addPerson("p-grace")
	resp, body, err := c.post(c.unsolicited("p-grace"), 0)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	cookies := resp.Cookies()
	require.NotEmpty(t, cookies, "instance A set no session cookie")

	users := c.users()
	require.Len(t, users, 1)
	for i := range 2 {
		r, u := c.me(i, cookies)
		require.Equal(t, http.StatusOK, r.StatusCode, "instance %d refused the session", i)
		require.Equal(t, users[0].ID, u.ID)
	}
	r, _ := c.me(1, nil)
	require.NotEqual(t, http.StatusOK, r.StatusCode, "instance B served /me without a session")

	// Suspended through instance A's store: instance B refuses the session
	// on its next request.
	require.NoError(t, c.instance(0).store.Suspend(context.Background(), users[0].Key))
	r, _ = c.me(1, cookies)
	require.NotEqual(t, http.StatusOK, r.StatusCode, "instance B served a suspended user")
}
