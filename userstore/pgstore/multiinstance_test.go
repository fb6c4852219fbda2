package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
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
	// app is the application_name of the instance's connections, which
	// picks out its backends in pg_stat_activity.
	app string

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
	t      *testing.T
	schema string // the database schema the instances share
	srv    *httptest.Server
	idp    *jittest.IdP
	inst   atomic.Pointer[[2]*instance]
	next   atomic.Uint64
	store  *pgstore.Store // for the test's own checks
}

// newCluster starts the cluster; configure, if given, adjusts each
// instance's options.
func newCluster(t *testing.T, configure ...func(o *jit.Options, st *pgstore.Store)) *cluster {
	t.Helper()
	schema := newSchema(t)
	c := &cluster{t: t, schema: schema}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	c.idp = jittest.New(t)

	key, cert := spKeyPair()
	sessionKeys := [][]byte{make([]byte, 32), make([]byte, 32)}
	for _, k := range sessionKeys {
		_, _ = rand.Read(k)
	}
	// The instances' logs are shown when the test fails: they say why a
	// sign-in was refused.
	logs := new(lockedBuffer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("instances' log:\n%s", logs.String())
		}
	})
	var insts [2]*instance
	for i := range insts {
		in := &instance{app: randomName(fmt.Sprintf("samljit_inst%d_", i))}
		db := openDB(t, schema, "application_name", in.app) // each instance has its own pool
		st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
		require.NoError(t, err)
		in.store = st
		opts := jit.Options{
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
			Logger:  slog.New(slog.NewTextHandler(logs, nil)).With("instance", i),
			OnEvent: in.record,
		}
		for _, f := range configure {
			f(&opts, st)
		}
		in.mw, err = jit.New(t.Context(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = in.mw.Close() })
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
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && strings.Contains(loc, "/saml/failed?") {
		// A refusal redirects to its page, which the cookie set with the
		// redirect opens, as in a browser.
		_ = resp.Body.Close()
		if req, err = http.NewRequest(http.MethodGet, c.srv.URL+loc, nil); err != nil {
			return nil, "", err
		}
		for _, ck := range resp.Cookies() {
			req.AddCookie(ck)
		}
		if i >= 0 {
			req.Header.Set(instanceHeader, fmt.Sprint(i))
		}
		if resp, err = client().Do(req); err != nil {
			return nil, "", err
		}
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

// Subjects of one IdP sharing an email, signing in at once on both
// instances: the unique index makes exactly one the email's user and the
// others are refused as identifier conflicts (the check in the decision
// alone ran outside the transaction, and let two through in one of two
// runs).
func TestMultiInstanceConcurrentSubjectsOneEmail(t *testing.T) {
	c := newCluster(t)
	const n = 16
	forms := make([]jittest.Form, n)
	for i := range forms {
		nameID := fmt.Sprint("twin-", i)
		c.idp.AddUser(jittest.User{NameID: nameID, Attributes: map[string][]string{"urn:oid:0.9.2342.19200300.100.1.3": {"twin@example.com"}}})
		forms[i] = c.unsolicited(nameID)
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, f := range forms {
		wg.Go(func() {
			<-gate
			if resp, _, err := c.post(f, i%2); err == nil {
				codes[i] = resp.StatusCode
			}
		})
	}
	close(gate)
	wg.Wait()
	created := 0
	for i, code := range codes {
		if code == http.StatusSeeOther {
			created++
			continue
		}
		require.Equal(t, http.StatusForbidden, code, "sign-in %d", i)
	}
	require.Equal(t, 1, created)
	require.Len(t, c.users(), 1, "one user holds the email")
	for k := range 2 {
		for _, e := range c.instance(k).allEvents() {
			if e.Kind == jit.EventRefused {
				require.ErrorIs(t, e.Err, jit.ErrIdentifierConflict)
			}
		}
	}
}

// A session cookie issued by one instance is accepted by the other, which
// also sees an administrator's suspension at once (it ended the session).
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

// TestMultiInstanceEndSessions: a person signed in on two devices through
// instance A; EndSessions on instance B ends both, and instance A refuses
// them at once. A logout on one instance ends the session on the other
// too, also for a copy of its cookie.
func TestMultiInstanceEndSessions(t *testing.T) {
	c := newCluster(t)
	c.addPerson("p-lin")
	signIn := func() []*http.Cookie {
		resp, body, err := c.post(c.unsolicited("p-lin"), 0)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		return resp.Cookies()
	}
	devices := [][]*http.Cookie{signIn(), signIn()}
	for i := range 2 {
		for d, cookies := range devices {
			r, _ := c.me(i, cookies)
			require.Equal(t, http.StatusOK, r.StatusCode, "instance %d refused device %d", i, d)
		}
	}
	key := c.users()[0].Key
	listed, err := c.instance(1).mw.Sessions(t.Context(), key)
	require.NoError(t, err)
	require.Len(t, listed, 2, "instance B lists the sessions instance A started")

	n, err := c.instance(1).mw.EndSessions(t.Context(), key)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for i := range 2 {
		for d, cookies := range devices {
			r, _ := c.me(i, cookies)
			assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "instance %d served device %d after EndSessions", i, d)
		}
	}

	// Logout through instance B, with a copy of the cookie kept.
	cookies := signIn()
	req, err := http.NewRequest(http.MethodPost, c.srv.URL+"/saml/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", c.srv.URL)
	req.Header.Set(instanceHeader, "1")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	r, _ := c.me(0, cookies)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "instance A served a session logged out on instance B")
}

// assertionID returns the ID of the assertion in f's response.
func assertionID(t *testing.T, f jittest.Form) string {
	t.Helper()
	raw, err := f.XML()
	require.NoError(t, err)
	d := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := d.Token()
		require.NoError(t, err, "the response holds no assertion")
		if el, ok := tok.(xml.StartElement); ok && el.Name.Space == samlAssertionNS && el.Name.Local == "Assertion" {
			for _, a := range el.Attr {
				if a.Name.Space == "" && a.Name.Local == "ID" && a.Value != "" {
					return a.Value
				}
			}
			t.Fatal("the assertion has no ID")
		}
	}
}

const samlAssertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"

// refusalReference finds the correlation id on the middleware's default
// refusal page.
var refusalReference = regexp.MustCompile(`Reference: <code>([0-9a-f]+)</code>`)

// replayRecords returns how many replay records the schema's replay table
// holds for the assertion id (0 for the empty id), and how many it holds
// in all.
func replayRecords(t *testing.T, db *sql.DB, id string) (forID, total int) {
	t.Helper()
	require.NoError(t, db.QueryRowContext(t.Context(),
		`SELECT count(*) FILTER (WHERE assertion_id = $1), count(*) FROM samljit_replay`, id).Scan(&forID, &total))
	return forID, total
}

// TestKilledConnectionMidSignIn terminates the database backend of a
// sign-in through the middleware while its transaction (the replay record
// and the user write together, as pgstore's SignIn does them) waits for a
// row lock another transaction holds. The person is refused with a 503 and
// a correlation id, and nothing is half-written: the user and the replay
// table are as before and no session is issued. Once the lock is released,
// the same response signs the person in, writing the user once, and then
// it is a replay. The instance's pool recovers from the lost connection.
func TestKilledConnectionMidSignIn(t *testing.T) {
	c := newCluster(t)
	ctx := t.Context()
	issuer := c.idp.EntityID()
	in := c.instance(0)
	// A pool of its own, not an instance's, holds the locks and kills.
	admin := openDB(t, c.schema)

	// killedSignIn posts f to instance 0 while hold's transaction blocks
	// the sign-in, terminates the sign-in's backend once it waits for the
	// lock, releases the lock by rolling hold's transaction back, and
	// returns the person's response.
	killedSignIn := func(t *testing.T, f jittest.Form, hold func(tx *sql.Tx)) (*http.Response, string) {
		t.Helper()
		tx, err := admin.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		hold(tx)

		type result struct {
			resp *http.Response
			body string
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, body, err := c.post(f, 0)
			done <- result{resp, body, err}
		}()
		pid := waitForLock(t, admin, in.app)
		var ok bool
		require.NoError(t, admin.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
		require.True(t, ok, "pg_terminate_backend(%d)", pid)
		var res result
		select {
		case res = <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the sign-in did not end after its connection was terminated")
		}
		require.NoError(t, tx.Rollback(), "release the lock")
		require.NoError(t, res.err)
		return res.resp, res.body
	}

	// checkRefused checks the killed sign-in of key was refused as a
	// store failure the person may retry, with no session.
	checkRefused := func(t *testing.T, resp *http.Response, body string, key userstore.Key) {
		t.Helper()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
		m := refusalReference.FindStringSubmatch(body)
		require.NotNil(t, m, "the refusal page shows no correlation id: %s", body)
		e := in.lastEvent()
		require.Equal(t, jit.EventRefused, e.Kind)
		require.Equal(t, m[1], e.CorrelationID, "the page's correlation id is not the event's")
		require.Equal(t, key, e.Key)
		require.ErrorIs(t, e.Err, jit.ErrStoreUnavailable)
		t.Logf("refused with: %v", e.Err)
		for _, ck := range resp.Cookies() {
			require.NotEqual(t, jit.DefaultSessionName, ck.Name, "a refused sign-in set a session cookie")
		}
	}

	// signInAgain posts f, the response of the killed sign-in, again: it
	// signs the person in with one write of the user (an event of kind,
	// the stored record being that sign-in's), and a third post, on the
	// other instance, is refused as a replay and writes nothing. It
	// returns the user as stored.
	signInAgain := func(t *testing.T, f jittest.Form, key userstore.Key, kind jit.EventKind) userstore.User {
		t.Helper()
		writes := func() int {
			n := 0
			for i := range 2 {
				for _, e := range c.instance(i).allEvents() {
					if e.Key == key && (e.Kind == jit.EventCreated || e.Kind == jit.EventUpdated) {
						n++
					}
				}
			}
			return n
		}
		writesBefore := writes()
		resp, body, err := c.post(f, 0)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the same response after the failure: %s", body)
		e := in.lastEvent()
		require.Equal(t, kind, e.Kind)
		require.NoError(t, e.Err)
		require.Equal(t, key, e.Key)
		require.Equal(t, writesBefore+1, writes(), "writes of the user")

		u, err := c.store.Lookup(ctx, key)
		require.NoError(t, err)
		require.Equal(t, e.UserID, u.ID)
		require.Equal(t, *e.After, u.Profile)
		require.True(t, u.UpdatedAt.Equal(e.Time), "UpdatedAt %s, the sign-in was at %s", u.UpdatedAt, e.Time)
		require.True(t, u.LastSignInAt.Equal(e.Time), "LastSignInAt %s, the sign-in was at %s", u.LastSignInAt, e.Time)
		n := 0
		for _, v := range c.users() {
			if v.Key == key {
				n++
			}
		}
		require.Equal(t, 1, n, "users with the key")
		forID, _ := replayRecords(t, admin, assertionID(t, f))
		require.Equal(t, 1, forID, "replay records of the assertion")

		// The session works, on both instances.
		cookies := resp.Cookies()
		for i := range 2 {
			r, me := c.me(i, cookies)
			require.Equal(t, http.StatusOK, r.StatusCode, "instance %d refused the session", i)
			require.Equal(t, u.ID, me.ID)
		}

		resp, body, err = c.post(f, 1)
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "a third post: %s", body)
		e = c.instance(1).lastEvent()
		require.Equal(t, jit.EventRefused, e.Kind)
		require.ErrorIs(t, e.Err, jit.ErrReplayed)
		for _, ck := range resp.Cookies() {
			require.NotEqual(t, jit.DefaultSessionName, ck.Name, "a replay set a session cookie")
		}
		again, err := c.store.Lookup(ctx, key)
		require.NoError(t, err)
		require.Equal(t, u, again, "the replay changed the user")
		require.Equal(t, writesBefore+1, writes(), "writes of the user")
		return u
	}

	t.Run("first sign-in", func(t *testing.T) {
		const nameID = "p-first"
		key := userstore.Key{Issuer: issuer, Subject: nameID}
		c.addPerson(nameID)
		f := c.unsolicited(nameID)
		id := assertionID(t, f)
		usersBefore := c.users()
		_, replayBefore := replayRecords(t, admin, id)

		resp, body := killedSignIn(t, f, func(tx *sql.Tx) {
			// An uncommitted row with the same key makes the sign-in's
			// insert wait for this transaction.
			_, err := tx.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
				groups, attributes, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
				VALUES ('held', $1, $2, '', '', '', '', 'null', 'null', now(), 0, now(), 0, now(), 0)`, key.Issuer, key.Subject)
			require.NoError(t, err)
		})
		checkRefused(t, resp, body, key)
		_, err := c.store.Lookup(ctx, key)
		require.ErrorIs(t, err, userstore.ErrNotFound, "the killed sign-in created the user")
		require.Equal(t, usersBefore, c.users(), "the killed sign-in changed the users")
		forID, total := replayRecords(t, admin, id)
		require.Zero(t, forID, "the killed sign-in recorded the assertion")
		require.Equal(t, replayBefore, total, "replay records")

		u := signInAgain(t, f, key, jit.EventCreated)
		require.Len(t, c.users(), len(usersBefore)+1)
		require.Equal(t, "Given p-first Family", u.Profile.DisplayName)
	})

	t.Run("returning user", func(t *testing.T) {
		const nameID = "p-returning"
		key := userstore.Key{Issuer: issuer, Subject: nameID}
		c.addPerson(nameID)
		resp, body, err := c.post(c.unsolicited(nameID), 0)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		before, err := c.store.Lookup(ctx, key)
		require.NoError(t, err)

		// The IdP now sends a new name, which the killed sign-in would
		// have written.
		p, ok := c.idp.User(nameID)
		require.True(t, ok)
		p.Attributes["urn:oid:2.16.840.1.113730.3.1.241"] = []string{"Renamed"}
		c.idp.AddUser(p)
		f := c.unsolicited(nameID)
		id := assertionID(t, f)
		usersBefore := c.users()
		_, replayBefore := replayRecords(t, admin, id)

		resp, body = killedSignIn(t, f, func(tx *sql.Tx) {
			_, err := tx.ExecContext(ctx, `SELECT 1 FROM samljit_users WHERE issuer = $1 AND subject = $2 FOR UPDATE`, key.Issuer, key.Subject)
			require.NoError(t, err)
		})
		checkRefused(t, resp, body, key)
		after, err := c.store.Lookup(ctx, key)
		require.NoError(t, err)
		require.Equal(t, before, after, "the killed sign-in changed the user")
		require.Equal(t, usersBefore, c.users(), "the killed sign-in changed the users")
		forID, total := replayRecords(t, admin, id)
		require.Zero(t, forID, "the killed sign-in recorded the assertion")
		require.Equal(t, replayBefore, total, "replay records")

		u := signInAgain(t, f, key, jit.EventUpdated)
		require.Equal(t, before.ID, u.ID)
		require.True(t, before.CreatedAt.Equal(u.CreatedAt), "CreatedAt changed")
		require.Equal(t, "Renamed", u.Profile.DisplayName)
		require.Len(t, c.users(), len(usersBefore))
	})

	// The pool of instance 0 recovers: its next sign-ins work.
	for _, nameID := range []string{"p-later", "p-returning"} {
		c.addPerson(nameID)
		resp, body, err := c.post(c.unsolicited(nameID), 0)
		require.NoError(t, err)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign-in of %s after the kills: %s", nameID, body)
		require.NoError(t, in.lastEvent().Err)
	}
}

// lockedBuffer is a bytes.Buffer that goroutines may write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
