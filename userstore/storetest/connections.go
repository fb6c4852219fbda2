package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// RunConnections runs the conformance suite of [userstore.ConnectionAdmin]
// (connections kept as data) against stores made by newStore, a fresh,
// empty one per test.
func RunConnections(t *testing.T, newStore func(t *testing.T) userstore.ConnectionAdmin) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s userstore.ConnectionAdmin)
	}{
		{"PutGetList", testConnPutGetList},
		{"VersionAndRevision", testConnVersionAndRevision},
		{"DomainBelongsToOne", testConnDomainBelongsToOne},
		{"ConcurrentDomainClaims", testConnConcurrentDomainClaims},
		{"Invalid", testConnInvalid},
		{"NotFound", testConnNotFound},
		{"Copies", testConnCopies},
		{"EndsSessions", testConnEndsSessions},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

var connNow = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func sampleConnection(name string, domains ...string) userstore.Connection {
	c := userstore.Connection{Name: name, DisplayName: "Tenant " + name, IDPMetadata: []byte("<md:EntityDescriptor entityID=\"https://idp." + name + ".example/\"/>\n"),
		Preset: "entra", EntityID: "https://app.example/saml/" + name + "/metadata", Enabled: true}
	for i, d := range domains {
		c.Domains = append(c.Domains, userstore.Domain{Name: d, Verified: i == 0})
	}
	return c
}

func testConnPutGetList(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	list, _, err := s.ListConnections(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	want := sampleConnection("globex", "globex.example", "globex.test")
	got, err := s.PutConnection(ctx, want, connNow)
	require.NoError(t, err)
	byURL := userstore.Connection{Name: "acme", IDPMetadataURL: "https://idp.acme.example/metadata?tenant=1"}
	_, err = s.PutConnection(ctx, byURL, connNow)
	require.NoError(t, err)

	read, err := s.GetConnection(ctx, "globex")
	require.NoError(t, err)
	for _, c := range []userstore.Connection{got, read} {
		assert.Equal(t, want.Name, c.Name)
		assert.Equal(t, want.DisplayName, c.DisplayName)
		assert.True(t, bytes.Equal(want.IDPMetadata, c.IDPMetadata), "the metadata is kept byte for byte")
		assert.Empty(t, c.IDPMetadataURL)
		assert.Equal(t, want.Preset, c.Preset)
		assert.Equal(t, want.EntityID, c.EntityID)
		assert.ElementsMatch(t, want.Domains, c.Domains)
		assert.True(t, c.Enabled)
		assert.True(t, connNow.Equal(c.UpdatedAt), "UpdatedAt %s", c.UpdatedAt)
		assert.Positive(t, c.Revision)
	}
	list, v, err := s.ListConnections(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "acme", list[0].Name, "ordered by name")
	assert.Equal(t, byURL.IDPMetadataURL, list[0].IDPMetadataURL)
	assert.Empty(t, list[0].IDPMetadata)
	assert.False(t, list[0].Enabled)
	assert.Equal(t, "globex", list[1].Name)
	cur, err := s.ConnectionsVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, cur, v)
}

func testConnVersionAndRevision(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	version := func() int64 {
		v, err := s.ConnectionsVersion(ctx)
		require.NoError(t, err)
		return v
	}
	v0 := version()
	a, err := s.PutConnection(ctx, sampleConnection("acme"), connNow)
	require.NoError(t, err)
	v1 := version()
	assert.Greater(t, v1, v0)
	assert.Greater(t, a.Revision, v0)
	assert.LessOrEqual(t, a.Revision, v1)

	b, err := s.PutConnection(ctx, sampleConnection("globex"), connNow)
	require.NoError(t, err)
	assert.Greater(t, version(), v1)
	assert.Greater(t, b.Revision, a.Revision)

	later := connNow.Add(time.Hour)
	v2 := version()
	require.NoError(t, s.SetConnectionEnabled(ctx, "acme", false, later))
	assert.Greater(t, version(), v2)
	a2, err := s.GetConnection(ctx, "acme")
	require.NoError(t, err)
	assert.False(t, a2.Enabled)
	assert.Greater(t, a2.Revision, b.Revision)
	assert.True(t, later.Equal(a2.UpdatedAt))
	g, err := s.GetConnection(ctx, "globex")
	require.NoError(t, err)
	assert.Equal(t, b.Revision, g.Revision, "another connection's revision is unchanged")

	v3 := version()
	require.NoError(t, s.RemoveConnection(ctx, "acme"))
	assert.Greater(t, version(), v3, "a removal is a change")

	// With every connection removed, the list is empty and its version
	// is the store's current one, not zero: a poller must not take the
	// removals for no change.
	require.NoError(t, s.RemoveConnection(ctx, "globex"))
	list, v, err := s.ListConnections(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Equal(t, version(), v)
	assert.Greater(t, v, v3)
}

func testConnDomainBelongsToOne(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	_, err := s.PutConnection(ctx, sampleConnection("acme", "acme.example", "shared.example"), connNow)
	require.NoError(t, err)
	_, err = s.PutConnection(ctx, sampleConnection("globex", "shared.example"), connNow)
	require.ErrorIs(t, err, userstore.ErrDomainTaken)
	_, err = s.GetConnection(ctx, "globex")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound, "nothing stored")

	// Re-putting the owner with its domains is no conflict; dropping one
	// frees it.
	_, err = s.PutConnection(ctx, sampleConnection("acme", "acme.example", "shared.example"), connNow)
	require.NoError(t, err)
	_, err = s.PutConnection(ctx, sampleConnection("acme", "acme.example"), connNow)
	require.NoError(t, err)
	_, err = s.PutConnection(ctx, sampleConnection("globex", "shared.example"), connNow)
	require.NoError(t, err)
	require.NoError(t, s.RemoveConnection(ctx, "acme"))
	_, err = s.PutConnection(ctx, sampleConnection("initech", "acme.example"), connNow)
	require.NoError(t, err, "a removed connection's domains are free")
}

func testConnConcurrentDomainClaims(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.PutConnection(ctx, sampleConnection(fmt.Sprintf("t%d", i), "contested.example"), connNow)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			require.ErrorIs(t, err, userstore.ErrDomainTaken)
		}
	}
	assert.Equal(t, 1, won, "exactly one connection gets the domain")
	list, _, err := s.ListConnections(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

func testConnInvalid(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	for name, c := range map[string]userstore.Connection{
		"NoName":       {IDPMetadataURL: "https://idp.example/md"},
		"UpperName":    {Name: "Acme", IDPMetadataURL: "https://idp.example/md"},
		"NoMetadata":   {Name: "acme"},
		"BothSources":  {Name: "acme", IDPMetadataURL: "https://idp.example/md", IDPMetadata: []byte("<x/>")},
		"BadDomain":    {Name: "acme", IDPMetadataURL: "https://idp.example/md", Domains: []userstore.Domain{{Name: "localhost"}}},
		"TwiceDomain":  {Name: "acme", IDPMetadataURL: "https://idp.example/md", Domains: []userstore.Domain{{Name: "a.example"}, {Name: "a.example"}}},
		"UpperDomain":  {Name: "acme", IDPMetadataURL: "https://idp.example/md", Domains: []userstore.Domain{{Name: "A.example"}}},
		"SpacedDomain": {Name: "acme", IDPMetadataURL: "https://idp.example/md", Domains: []userstore.Domain{{Name: "a .example"}}},
	} {
		_, err := s.PutConnection(ctx, c, connNow)
		require.ErrorIs(t, err, userstore.ErrInvalidConnection, name)
	}
	list, _, err := s.ListConnections(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func testConnNotFound(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	_, err := s.GetConnection(ctx, "acme")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound)
	require.ErrorIs(t, s.SetConnectionEnabled(ctx, "acme", true, connNow), userstore.ErrConnectionNotFound)
	require.ErrorIs(t, s.RemoveConnection(ctx, "acme"), userstore.ErrConnectionNotFound)
}

func testConnCopies(t *testing.T, s userstore.ConnectionAdmin) {
	ctx := context.Background()
	c := sampleConnection("acme", "acme.example")
	got, err := s.PutConnection(ctx, c, connNow)
	require.NoError(t, err)
	c.IDPMetadata[0], c.Domains[0].Name = 'X', "changed.example"
	got.IDPMetadata[1], got.Domains[0].Name = 'Y', "changed.example"
	read, err := s.GetConnection(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, byte('<'), read.IDPMetadata[0])
	assert.Equal(t, byte('m'), read.IDPMetadata[1])
	assert.Equal(t, "acme.example", read.Domains[0].Name)
}

// testConnEndsSessions: a store that keeps users and sessions too ends the
// sessions made through a connection when it disables or removes it, and
// only those. Other stores skip it.
func testConnEndsSessions(t *testing.T, s userstore.ConnectionAdmin) {
	users, ok1 := s.(userstore.Store)
	sessions, ok2 := s.(userstore.Sessions)
	if !ok1 || !ok2 {
		t.Skip("the store keeps no sessions")
	}
	ctx := context.Background()
	for _, name := range []string{"acme", "globex"} {
		_, err := s.PutConnection(ctx, sampleConnection(name), connNow)
		require.NoError(t, err)
	}
	key := userstore.Key{Issuer: "https://idp.acme.example/", Subject: "ada"}
	_, err := users.Provision(ctx, key, userstore.Profile{Email: "ada@acme.example"}, connNow)
	require.NoError(t, err)
	session := func(id, conn string) {
		require.NoError(t, sessions.CreateSession(ctx, userstore.Session{ID: id, Key: key, Connection: conn, CreatedAt: connNow, ExpiresAt: connNow.Add(time.Hour)}))
	}
	live := func(id string) bool {
		_, _, err := sessions.LookupSession(ctx, id, connNow)
		if err != nil {
			require.ErrorIs(t, err, userstore.ErrNotFound)
		}
		return err == nil
	}
	session("s-acme-1", "acme")
	session("s-globex", "globex")
	require.NoError(t, s.SetConnectionEnabled(ctx, "acme", true, connNow), "already enabled")
	assert.True(t, live("s-acme-1"), "enabling an enabled connection ends nothing")
	require.NoError(t, s.SetConnectionEnabled(ctx, "acme", false, connNow))
	assert.False(t, live("s-acme-1"), "disabling ends the connection's sessions")
	assert.True(t, live("s-globex"), "and no other's")
	_, err = users.Lookup(ctx, key)
	require.NoError(t, err, "the user is kept")

	require.NoError(t, s.SetConnectionEnabled(ctx, "acme", true, connNow))
	session("s-acme-2", "acme")
	require.NoError(t, s.RemoveConnection(ctx, "acme"))
	assert.False(t, live("s-acme-2"), "removing ends the connection's sessions")
	assert.True(t, live("s-globex"))
	_, err = users.Lookup(ctx, key)
	require.NoError(t, err, "the user is kept")
}
