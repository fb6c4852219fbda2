package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// TestConnections: every change moves the version and the changed
// connection's revision; a domain belongs to one connection; what is
// returned is a copy.
func TestConnections(t *testing.T) {
	ctx := context.Background()
	s := memstore.NewConnections()
	now := time.Unix(1700000000, 0)
	v0, err := s.ConnectionsVersion(ctx)
	require.NoError(t, err)

	a, err := s.PutConnection(ctx, userstore.Connection{Name: "acme", IDPMetadataURL: "https://idp.acme.example/md",
		Domains: []userstore.Domain{{Name: "acme.example", Verified: true}, {Name: "acme.test"}}}, now)
	require.NoError(t, err)
	assert.Greater(t, a.Revision, v0)
	assert.Equal(t, now, a.UpdatedAt)
	assert.Equal(t, []string{"acme.example"}, a.VerifiedDomains())

	_, err = s.PutConnection(ctx, userstore.Connection{Name: "globex", IDPMetadataURL: "https://idp.globex.example/md",
		Domains: []userstore.Domain{{Name: "acme.test"}}}, now)
	require.ErrorIs(t, err, userstore.ErrDomainTaken)
	_, err = s.PutConnection(ctx, userstore.Connection{Name: "Globex", IDPMetadataURL: "https://x.example/md"}, now)
	require.ErrorIs(t, err, userstore.ErrInvalidConnection)
	_, err = s.PutConnection(ctx, userstore.Connection{Name: "globex"}, now)
	require.ErrorIs(t, err, userstore.ErrInvalidConnection)

	// Moving a domain: release it first, then claim it.
	a.Domains = a.Domains[:1]
	a2, err := s.PutConnection(ctx, a, now)
	require.NoError(t, err)
	assert.Greater(t, a2.Revision, a.Revision)
	_, err = s.PutConnection(ctx, userstore.Connection{Name: "globex", IDPMetadataURL: "https://idp.globex.example/md",
		Domains: []userstore.Domain{{Name: "acme.test"}}}, now)
	require.NoError(t, err)

	require.NoError(t, s.SetConnectionEnabled(ctx, "acme", true, now))
	got, err := s.GetConnection(ctx, "acme")
	require.NoError(t, err)
	assert.True(t, got.Enabled)
	assert.Greater(t, got.Revision, a2.Revision)
	got.Domains[0].Name = "changed.example"
	again, err := s.GetConnection(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, "acme.example", again.Domains[0].Name, "GetConnection returns a copy")

	list, v, err := s.ListConnections(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "acme", list[0].Name)
	assert.Equal(t, "globex", list[1].Name)
	before := v
	require.NoError(t, s.RemoveConnection(ctx, "acme"))
	v, err = s.ConnectionsVersion(ctx)
	require.NoError(t, err)
	assert.Greater(t, v, before)
	_, err = s.GetConnection(ctx, "acme")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound)
	require.ErrorIs(t, s.RemoveConnection(ctx, "acme"), userstore.ErrConnectionNotFound)
	require.ErrorIs(t, s.SetConnectionEnabled(ctx, "acme", false, now), userstore.ErrConnectionNotFound)
	_, err = s.PutConnection(ctx, userstore.Connection{Name: "initech", IDPMetadataURL: "https://i.example/md",
		Domains: []userstore.Domain{{Name: "acme.example"}}}, now)
	require.NoError(t, err, "a removed connection's domains are free")
}
