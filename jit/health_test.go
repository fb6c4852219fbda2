package jit_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

func warningCodes(ws []jit.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

// TestConnectionHealth: a connection's health reports its last sign-in
// and refusal, its metadata's validity and refresh, and its IdP's signing
// certificates; a stored connection keeps it across a change.
func TestConnectionHealth(t *testing.T) {
	conns := memstore.NewConnections()
	h := storedHarness(t, conns)
	ctx := context.Background()
	rec := addIdP(t, h, "contoso")
	rec.IDPMetadata, rec.IDPMetadataURL = nil, h.idp("contoso").MetadataURL()
	_, err := h.mw.PutConnection(ctx, rec)
	require.NoError(t, err)

	hl, ok := h.mw.ConnectionHealth("contoso")
	require.True(t, ok)
	assert.True(t, hl.Stored && hl.Enabled && hl.Served)
	assert.True(t, hl.LastSignIn.IsZero())
	assert.WithinDuration(t, time.Now().Add(jit.DefaultMetadataRefreshInterval), hl.NextMetadataRefresh, time.Minute)
	require.Len(t, hl.SigningCertificates, 1)
	idpCert := h.idp("contoso").Certificate()
	assert.Equal(t, idpCert.NotAfter, hl.SigningCertificates[0].NotAfter)
	assert.Equal(t, idpCert.NotAfter, hl.SigningCertificateExpiry)
	assert.Empty(t, hl.Warnings)

	c := h.client()
	form := h.respond(c, "contoso", "p-contoso")
	before := time.Now()
	resp, body := h.post(c, form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, _ = h.post(c, form)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	rec.DisplayName = "Contoso Ltd" // a change rebuilds the connection
	_, err = h.mw.PutConnection(ctx, rec)
	require.NoError(t, err)
	hl, _ = h.mw.ConnectionHealth("contoso")
	assert.WithinDuration(t, before, hl.LastSignIn, 5*time.Second)
	assert.False(t, hl.LastRefusal.Before(hl.LastSignIn))
	assert.Contains(t, hl.LastRefusalReason, "no outstanding request")

	code, ok := h.mw.ConnectionHealth("code")
	require.True(t, ok)
	assert.False(t, code.Stored)
	assert.True(t, code.Served)
	assert.True(t, code.NextMetadataRefresh.IsZero(), "metadata given as a document is not refreshed")
	assert.True(t, code.LastSignIn.IsZero())

	_, ok = h.mw.ConnectionHealth("initech")
	assert.False(t, ok)
	all := h.mw.Health()
	require.Len(t, all, 2)
	assert.Equal(t, "code", all[0].Connection)
	assert.Equal(t, "contoso", all[1].Connection)
}

// TestConnectionHealthWarnings: an expiring certificate, expiring
// metadata and a stored connection that cannot be served are warned
// about; a disabled one is reported as such.
func TestConnectionHealthWarnings(t *testing.T) {
	conns := memstore.NewConnections()
	later := time.Now().AddDate(10, 0, -10) // within 30 days of the IdP certificates' end
	h := storedHarness(t, conns, func(o *jit.Options) { o.Now = func() time.Time { return later } })
	ctx := context.Background()
	hl, _ := h.mw.ConnectionHealth("code")
	assert.Contains(t, warningCodes(hl.Warnings), jit.WarnCertificateExpiring)

	// Written to the store directly, bypassing PutConnection's check.
	_, err := conns.PutConnection(ctx, userstore.Connection{Name: "broken", IDPMetadata: []byte("<nope/>"), Enabled: true}, time.Now())
	require.NoError(t, err)
	_, err = conns.PutConnection(ctx, userstore.Connection{Name: "off", IDPMetadata: []byte("<nope/>")}, time.Now())
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(ctx))
	hl, ok := h.mw.ConnectionHealth("broken")
	require.True(t, ok)
	assert.False(t, hl.Served)
	assert.Contains(t, hl.Error, "metadata")
	assert.Equal(t, []string{jit.WarnNotServed}, warningCodes(hl.Warnings))
	hl, ok = h.mw.ConnectionHealth("off")
	require.True(t, ok)
	assert.False(t, hl.Enabled || hl.Served)
	assert.Empty(t, hl.Warnings)
	assert.NotContains(t, h.mw.Connections(), "broken")
}

// TestCheckConnectionReport: checking a connection before it is stored
// reports what a setup page shows: the IdP's entity ID, its signing
// certificates, and warnings such as an IdP offering no persistent NameID
// to a mapping keyed on it.
func TestCheckConnectionReport(t *testing.T) {
	h := storedHarness(t, memstore.NewConnections())
	ctx := context.Background()
	rec := addIdP(t, h, "contoso")
	idp := h.idp("contoso")
	report, err := h.mw.CheckConnection(ctx, rec)
	require.NoError(t, err)
	assert.Equal(t, idp.EntityID(), report.IdPEntityID)
	require.Len(t, report.SigningCertificates, 1)
	assert.Equal(t, idp.Certificate().NotAfter, report.SigningCertificateExpiry)
	assert.False(t, report.Served)
	assert.Empty(t, report.Warnings)
	assert.Empty(t, h.mw.Health()[1:], "nothing stored")

	emailOnly := strings.Replace(string(rec.IDPMetadata), "<md:NameIDFormat>"+jittest.NameIDFormatPersistent+"</md:NameIDFormat>", "", 1)
	require.NotEqual(t, string(rec.IDPMetadata), emailOnly)
	rec.IDPMetadata = []byte(emailOnly)
	report, err = h.mw.CheckConnection(ctx, rec)
	require.NoError(t, err)
	assert.Equal(t, []string{jit.WarnNameIDKey}, warningCodes(report.Warnings))

	rec.Preset = "entra" // keyed on an attribute: the NameID does not matter
	report, err = h.mw.CheckConnection(ctx, rec)
	require.NoError(t, err)
	assert.Empty(t, report.Warnings)
}
