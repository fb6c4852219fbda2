package jit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// storedHarness is an app with one connection configured in code ("code")
// and a connection store, empty at first.
func storedHarness(t *testing.T, conns *memstore.Connections, configure ...func(*jit.Options)) *harness {
	return newHarness(t, harnessConfig{connections: []string{"code"}, configure: func(o *jit.Options) {
		o.ConnectionStore = conns
		o.ConnectionPollInterval = 50 * time.Millisecond
		o.Connections[0].Domains = []string{"code.example"}
		for _, f := range configure {
			f(o)
		}
	}})
}

// addIdP starts an IdP for the stored connection name, with one user, and
// returns the record that stores it.
func addIdP(t *testing.T, h *harness, name string, domains ...string) userstore.Connection {
	idp := jittest.New(t)
	idp.AddUser(person("p-"+name, "ada@"+name+".example", "Ada", name))
	h.idps[name] = idp
	rec := userstore.Connection{Name: name, IDPMetadata: idp.Metadata(), Preset: "generic", Enabled: true}
	for _, d := range domains {
		rec.Domains = append(rec.Domains, userstore.Domain{Name: d, Verified: true})
	}
	return rec
}

func hasSession(t *testing.T, h *harness, c *http.Client) bool {
	t.Helper()
	resp, _ := h.me(c)
	return resp.StatusCode == http.StatusOK
}

// TestStoredConnectionAddedWhileServing: a connection put while the
// middleware serves signs people in at once, beside the one configured in
// code, and its SP metadata is served.
func TestStoredConnectionAddedWhileServing(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	h.idp("code").AddUser(person("p-code", "ada@code.example", "Ada", "Code"))
	resp, _ := http.Get(h.app.URL + "/saml/contoso/metadata")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	stored, err := h.mw.PutConnection(context.Background(), addIdP(t, h, "contoso", "contoso.example"))
	require.NoError(t, err)
	assert.Positive(t, stored.Revision)
	assert.Equal(t, []string{"code", "contoso"}, h.mw.Connections())

	resp, err = http.Get(h.app.URL + "/saml/contoso/metadata")
	require.NoError(t, err)
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, h.app.URL+"/saml/contoso/acs")

	c := h.client()
	resp, body = h.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.True(t, hasSession(t, h, c))
	_, u := h.me(c)
	assert.Equal(t, h.idp("contoso").EntityID(), u.Key.Issuer)

	c2 := h.client()
	resp, body = h.signIn(c2, "code", "p-code")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.True(t, hasSession(t, h, c2), "the code-configured connection keeps working")
}

// TestStoredConnectionSeenByAnotherInstance: two instances share a
// connection store; one adds a connection and the other serves it within
// its poll interval, then stops serving it when it is removed.
func TestStoredConnectionSeenByAnotherInstance(t *testing.T) {
	conns := memstore.NewConnections()
	a := storedHarness(t, conns)
	b := storedHarness(t, conns)
	rec := addIdP(t, a, "contoso")
	b.idps["contoso"] = a.idps["contoso"]
	_, err := a.mw.PutConnection(context.Background(), rec)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := http.Get(b.app.URL + "/saml/contoso/metadata")
		return err == nil && readBody(t, resp) != "" && resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	c := b.client()
	resp, body := b.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.True(t, hasSession(t, b, c))

	require.NoError(t, a.mw.RemoveConnection(context.Background(), "contoso"))
	require.Eventually(t, func() bool {
		resp, err := http.Get(b.app.URL + "/saml/contoso/login")
		return err == nil && readBody(t, resp) != "x" && resp.StatusCode == http.StatusNotFound
	}, 10*time.Second, 20*time.Millisecond)
	assert.False(t, hasSession(t, b, c), "the session ends with its connection")
}

// TestStoredConnectionDisabled: disabling a connection stops its sign-ins
// and its users' sessions at their next request, keeps the users, and
// re-enabling it does not bring the sessions back.
func TestStoredConnectionDisabled(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	ctx := context.Background()
	_, err := h.mw.PutConnection(ctx, addIdP(t, h, "contoso"))
	require.NoError(t, err)
	c := h.client()
	resp, body := h.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.True(t, hasSession(t, h, c))

	require.NoError(t, h.mw.SetConnectionEnabled(ctx, "contoso", false))
	assert.False(t, hasSession(t, h, c), "the session stops at the next request")
	resp, err = http.Get(h.app.URL + "/saml/contoso/login")
	require.NoError(t, err)
	readBody(t, resp)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, []string{"code"}, h.mw.Connections())
	key := userstore.Key{Issuer: h.idp("contoso").EntityID(), Subject: "p-contoso"}
	_, err = h.store.Lookup(ctx, key)
	require.NoError(t, err, "disabling a connection keeps its users")

	require.NoError(t, h.mw.SetConnectionEnabled(ctx, "contoso", true))
	assert.False(t, hasSession(t, h, c), "the ended session stays ended")
	resp, body = h.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.True(t, hasSession(t, h, c))

	require.NoError(t, h.mw.RemoveConnection(ctx, "contoso"))
	assert.False(t, hasSession(t, h, c))
	_, err = h.store.Lookup(ctx, key)
	require.NoError(t, err, "removing a connection keeps its users")
}

// TestStoredConnectionChangeKeepsSignInInFlight: a sign-in started before
// its connection changed (here, the IdP published a new signing
// certificate and the connection was updated with it) completes.
func TestStoredConnectionChangeKeepsSignInInFlight(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	ctx := context.Background()
	rec := addIdP(t, h, "contoso")
	_, err := h.mw.PutConnection(ctx, rec)
	require.NoError(t, err)
	c := h.client()
	form := h.respond(c, "contoso", "p-contoso")

	rec.DisplayName = "Contoso Ltd"
	_, err = h.mw.PutConnection(ctx, rec)
	require.NoError(t, err)
	other := addIdP(t, h, "fabrikam")
	_, err = h.mw.PutConnection(ctx, other)
	require.NoError(t, err)

	resp, body := h.post(c, form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.True(t, hasSession(t, h, c))
}

// TestStoredConnectionRefusedWhenStored: what cannot be served is refused
// by PutConnection with the reason, and nothing is stored.
func TestStoredConnectionRefusedWhenStored(t *testing.T) {
	conns := memstore.NewConnections()
	h := storedHarness(t, conns)
	ctx := context.Background()
	good := addIdP(t, h, "contoso", "contoso.example")
	_, err := h.mw.PutConnection(ctx, good)
	require.NoError(t, err)
	noSigning := strings.Replace(string(h.idp("code").Metadata()), `use="signing"`, `use="encryption"`, 1)

	for name, tc := range map[string]struct {
		mutate func(*userstore.Connection)
		is     error
		want   string
	}{
		"NotXML":          {func(c *userstore.Connection) { c.IDPMetadata = []byte("<html>hello</html>") }, userstore.ErrInvalidConnection, "metadata"},
		"NoSigningCert":   {func(c *userstore.Connection) { c.IDPMetadata = []byte(noSigning) }, userstore.ErrInvalidConnection, "signing certificate"},
		"SameIdPAsCode":   {func(c *userstore.Connection) { c.IDPMetadata = h.idp("code").Metadata() }, userstore.ErrInvalidConnection, "already trusts"},
		"SameIdPAsStored": {func(c *userstore.Connection) { c.IDPMetadata = good.IDPMetadata }, userstore.ErrInvalidConnection, "already trusts"},
		"NameOfCode":      {func(c *userstore.Connection) { c.Name = "code"; c.IDPMetadata = jittest.New(t).Metadata() }, userstore.ErrInvalidConnection, "configured in code"},
		"BadName":         {func(c *userstore.Connection) { c.Name = "Contoso Ltd" }, userstore.ErrInvalidConnection, "name"},
		"UnknownPreset":   {func(c *userstore.Connection) { c.Preset = "keycloak" }, userstore.ErrInvalidConnection, "preset"},
		"BadDomain":       {func(c *userstore.Connection) { c.Domains = []userstore.Domain{{Name: "Example.COM"}} }, userstore.ErrInvalidConnection, "domain"},
		"DomainOfCode":    {func(c *userstore.Connection) { c.Domains = []userstore.Domain{{Name: "code.example"}} }, userstore.ErrDomainTaken, "code.example"},
		"ExpiredMetadata": {func(c *userstore.Connection) {
			c.IDPMetadata = []byte(strings.Replace(string(c.IDPMetadata), "entityID=", `validUntil="2001-01-01T00:00:00Z" entityID=`, 1))
		}, jit.ErrMetadataExpired, "valid until"},
		"BothSources": {func(c *userstore.Connection) { c.IDPMetadataURL = "https://idp.example/metadata" }, userstore.ErrInvalidConnection, "one of them"},
		"HTTPMetadataURL": {func(c *userstore.Connection) {
			c.IDPMetadata, c.IDPMetadataURL = nil, "http://idp.example/metadata"
		}, jit.ErrInsecureMetadataURL, "https"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := addIdP(t, h, "fabrikam")
			tc.mutate(&rec)
			_, err := h.mw.PutConnection(ctx, rec)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.want)
			_, err = conns.GetConnection(ctx, rec.Name)
			if rec.Name != "contoso" {
				require.ErrorIs(t, err, userstore.ErrConnectionNotFound, "nothing is stored")
			}
		})
	}
	stored, err := conns.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.Equal(t, good.IDPMetadata, stored.IDPMetadata, "the good connection is untouched")
}

// TestStoredConnectionDomainOwnedOnce: the store refuses a domain another
// stored connection claims.
func TestStoredConnectionDomainOwnedOnce(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	ctx := context.Background()
	_, err := h.mw.PutConnection(ctx, addIdP(t, h, "contoso", "contoso.example"))
	require.NoError(t, err)
	_, err = h.mw.PutConnection(ctx, addIdP(t, h, "fabrikam", "contoso.example"))
	require.ErrorIs(t, err, userstore.ErrDomainTaken)
}

// TestConnectionStoreNeedsNamedConnections: an unnamed code connection
// would take the chooser's path.
func TestConnectionStoreNeedsNamedConnections(t *testing.T) {
	key, cert := spKeyPair()
	_, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(), SessionKeys: [][]byte{make32()},
		Connections:     []jit.Connection{{IDPMetadata: jittest.New(t).Metadata()}},
		ConnectionStore: memstore.NewConnections(),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a Name")
}

// TestConnectionStoreAlone: a middleware may start with stored
// connections only, and with none at all.
func TestConnectionStoreAlone(t *testing.T) {
	key, cert := spKeyPair()
	conns := memstore.NewConnections()
	idp := jittest.New(t)
	_, err := conns.PutConnection(context.Background(), userstore.Connection{Name: "acme", IDPMetadata: idp.Metadata(), Enabled: true}, time.Now())
	require.NoError(t, err)
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(), SessionKeys: [][]byte{make32()},
		ConnectionStore: conns,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	assert.Equal(t, []string{"acme"}, mw.Connections())
	u, ok := mw.MetadataURL("acme")
	require.True(t, ok)
	assert.Equal(t, "https://app.example.com/saml/acme/metadata", u)
}

// TestStoredConnectionSingleLogout: a stored connection serves its Single
// Logout endpoint, listed in its SP metadata, while it is served.
func TestStoredConnectionSingleLogout(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	ctx := context.Background()
	_, err := h.mw.PutConnection(ctx, addIdP(t, h, "contoso"))
	require.NoError(t, err)
	resp, err := http.Get(h.app.URL + "/saml/contoso/metadata")
	require.NoError(t, err)
	assert.Contains(t, readBody(t, resp), `Location="`+h.app.URL+`/saml/contoso/slo"`)
	resp, err = http.Get(h.app.URL + "/saml/contoso/slo")
	require.NoError(t, err)
	readBody(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "served, and refusing a request without a message")
	require.NoError(t, h.mw.RemoveConnection(ctx, "contoso"))
	resp, err = http.Get(h.app.URL + "/saml/contoso/slo")
	require.NoError(t, err)
	readBody(t, resp)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// unreadableConnections is a connection store whose version cannot be
// read once failing is set.
type unreadableConnections struct {
	*memstore.Connections
	failing atomic.Bool
}

func (u *unreadableConnections) ConnectionsVersion(ctx context.Context) (int64, error) {
	if u.failing.Load() {
		return 0, errors.New("connection store: disk I/O error")
	}
	return u.Connections.ConnectionsVersion(ctx)
}

// TestUnreadableConnectionStoreIsLogged: when the poll cannot read the
// connection store, the middleware keeps serving the connections it last
// read and says so in the log, once a poll.
func TestUnreadableConnectionStoreIsLogged(t *testing.T) {
	conns := &unreadableConnections{Connections: memstore.NewConnections()}
	h := newHarness(t, harnessConfig{connections: []string{"code"}, configure: func(o *jit.Options) {
		o.ConnectionStore = conns
		o.ConnectionPollInterval = 20 * time.Millisecond
	}})
	conns.failing.Store(true)
	require.Eventually(t, func() bool {
		return strings.Contains(h.logs.String(), "connection store unreadable; serving the connections last read")
	}, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, h.logs.String(), "disk I/O error")
}

// TestStoredConnectionKeptAcrossPolls: a poll that finds a stored
// connection unchanged keeps the connection it serves, with its health,
// rather than building it again; and ConfigureConnection is applied to
// every stored connection the middleware builds.
func TestStoredConnectionKeptAcrossPolls(t *testing.T) {
	var configured atomic.Int32
	h := storedHarness(t, memstore.NewConnections(), func(o *jit.Options) {
		o.ConfigureConnection = func(_ context.Context, stored userstore.Connection, c *jit.Connection) error {
			if stored.Name == "contoso" {
				configured.Add(1)
			}
			c.Policy.Roles.DefaultRoles = []string{"configured"}
			return nil
		}
	})
	_, err := h.mw.PutConnection(context.Background(), addIdP(t, h, "contoso", "contoso.example"))
	require.NoError(t, err)
	c := h.client()
	resp, body := h.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	_, u := h.me(c)
	assert.Equal(t, []string{"configured"}, u.Profile.Roles, "ConfigureConnection's policy applies to the stored connection")

	built := configured.Load()
	time.Sleep(10 * 50 * time.Millisecond) // ten polls
	require.NoError(t, h.mw.SyncConnections(context.Background()))
	assert.Equal(t, built, configured.Load(), "an unchanged stored connection was built again")
	// Another connection's change moves the store's version: that one is
	// built, not contoso again.
	_, err = h.mw.PutConnection(context.Background(), addIdP(t, h, "fabrikam", "fabrikam.example"))
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(context.Background()))
	assert.Equal(t, built, configured.Load(), "a change of another connection built an unchanged one again")
	hl, ok := h.mw.ConnectionHealth("contoso")
	require.True(t, ok)
	assert.False(t, hl.LastSignIn.IsZero(), "the health of the served connection survives the polls")
}

// TestStoredMetadataURLFetchedWhenDue: a stored connection whose metadata
// comes from a URL is fetched when stored and then when its refresh is
// due, not at every poll of the connection store.
func TestStoredMetadataURLFetchedWhenDue(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	rec := addIdP(t, h, "contoso", "contoso.example")
	fetches := serveMetadataOf(t, &rec)
	_, err := h.mw.PutConnection(context.Background(), rec)
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(context.Background()))
	after := fetches.Load()
	require.Positive(t, after)
	time.Sleep(10 * 50 * time.Millisecond) // ten polls
	assert.Equal(t, after, fetches.Load(), "the metadata was fetched again before its refresh was due")
	c := h.client()
	resp, body := h.signIn(c, "contoso", "p-contoso")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
}

// TestStoredConnectionFailedBuildWaitsForRetry: a stored connection that
// could not be built (its metadata URL failing) is tried again after its
// retry delay, not at every change of another connection; a new revision
// of it is tried at once.
func TestStoredConnectionFailedBuildWaitsForRetry(t *testing.T) {
	conns := memstore.NewConnections()
	h := storedHarness(t, conns, func(o *jit.Options) { o.ConnectionPollInterval = time.Hour })
	rec := addIdP(t, h, "contoso", "contoso.example")
	md := rec.IDPMetadata
	var fetches atomic.Int32
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(md)
	}))
	t.Cleanup(srv.Close)
	rec.IDPMetadata, rec.IDPMetadataURL = nil, srv.URL+"/metadata"
	ctx := context.Background()
	// Stored directly: the middleware's PutConnection would refuse an
	// unreachable URL before storing it.
	_, err := conns.PutConnection(ctx, rec, time.Now())
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(ctx))
	tried := fetches.Load()
	require.Positive(t, tried, "the stored connection was tried")
	assert.Equal(t, http.StatusNotFound, metadataStatus(t, h, "contoso"), "a connection that could not be built is not served")

	// Another connection changes, twice: contoso waits for its retry.
	for range 2 {
		_, err = conns.PutConnection(ctx, addIdP(t, h, "fabrikam", "fabrikam.example"), time.Now())
		require.NoError(t, err)
		require.NoError(t, h.mw.SyncConnections(ctx))
	}
	assert.Equal(t, tried, fetches.Load(), "a failed connection was tried again before its retry delay, at another connection's change")

	// A new revision of contoso is tried at once, and served.
	failing.Store(false)
	rec.DisplayName = "Contoso"
	_, err = conns.PutConnection(ctx, rec, time.Now())
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(ctx))
	assert.Greater(t, fetches.Load(), tried, "a changed record is built without waiting")
	assert.Equal(t, http.StatusOK, metadataStatus(t, h, "contoso"), "the new revision is served")
}

// metadataStatus is the status of connection name's SP metadata endpoint:
// 200 when the connection is served, 404 when not.
func metadataStatus(t *testing.T, h *harness, name string) int {
	t.Helper()
	resp, err := http.Get(h.app.URL + "/saml/" + name + "/metadata")
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestStoredConnectionRefreshDueKeptAcrossChanges: a URL-backed stored
// connection that is not rebuilt keeps its refresh schedule when other
// connections change: a stream of changes elsewhere, each sooner than its
// refresh interval, does not put its refresh off for ever.
func TestStoredConnectionRefreshDueKeptAcrossChanges(t *testing.T) {
	const every = 300 * time.Millisecond
	conns := memstore.NewConnections()
	h := storedHarness(t, conns, func(o *jit.Options) { o.MetadataRefreshInterval = every })
	rec := addIdP(t, h, "contoso", "contoso.example")
	fetches := serveMetadataOf(t, &rec)
	ctx := context.Background()
	_, err := h.mw.PutConnection(ctx, rec)
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(ctx))
	before := fetches.Load()

	other := addIdP(t, h, "fabrikam", "fabrikam.example")
	deadline := time.Now().Add(5 * every)
	for time.Now().Before(deadline) {
		other.DisplayName = time.Now().String()
		_, err = conns.PutConnection(ctx, other, time.Now())
		require.NoError(t, err)
		require.NoError(t, h.mw.SyncConnections(ctx))
		time.Sleep(every / 4)
	}
	assert.Greater(t, fetches.Load(), before, "contoso's metadata was not refreshed while another connection kept changing")
}

// serveMetadataOf serves rec's metadata on 127.0.0.1 and makes rec take
// it from there. It returns the count of the fetches.
func serveMetadataOf(t *testing.T, rec *userstore.Connection) *atomic.Int32 {
	t.Helper()
	var fetches atomic.Int32
	md := rec.IDPMetadata
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(md)
	}))
	t.Cleanup(srv.Close)
	rec.IDPMetadata, rec.IDPMetadataURL = nil, srv.URL+"/metadata"
	return &fetches
}
