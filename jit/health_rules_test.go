package jit_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
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

// healthAt builds a middleware whose clock reads now, serving connection
// "code" from metadata md, and returns the connection's health.
func healthAt(t *testing.T, now time.Time, md []byte) jit.ConnectionHealth {
	t.Helper()
	key, cert := spKeyPair()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(), SessionKeys: [][]byte{make32()},
		Now:         func() time.Time { return now },
		Connections: []jit.Connection{{Name: "code", IDPMetadata: md}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	h, ok := mw.ConnectionHealth("code")
	require.True(t, ok)
	return h
}

// TestHealthWarnsOfMetadataWithinSevenDaysOfValidUntil: expiring metadata
// is warned about from seven days before its validUntil, to the second.
func TestHealthWarnsOfMetadataWithinSevenDaysOfValidUntil(t *testing.T) {
	validUntil := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	md := strings.Replace(string(jittest.New(t).Metadata()), `<md:EntityDescriptor `,
		`<md:EntityDescriptor validUntil="`+validUntil.Format(time.RFC3339)+`" `, 1)
	for before, warned := range map[time.Duration]bool{
		8 * 24 * time.Hour:           false,
		7 * 24 * time.Hour:           false,
		7*24*time.Hour - time.Second: true,
		24 * time.Hour:               true,
	} {
		h := healthAt(t, validUntil.Add(-before), []byte(md))
		require.True(t, h.MetadataValidUntil.Equal(validUntil), "validUntil read: %s", h.MetadataValidUntil)
		assert.Equal(t, warned, slices.Contains(warningCodes(h.Warnings), jit.WarnMetadataExpiring), "%s before validUntil", before)
	}
}

// TestHealthWarnsOfCertificateWithinThirtyDaysOfExpiry: an IdP signing
// certificate is warned about from thirty days before it expires, to the
// second.
func TestHealthWarnsOfCertificateWithinThirtyDaysOfExpiry(t *testing.T) {
	idp := jittest.New(t)
	notAfter := idp.Certificate().NotAfter
	for before, warned := range map[time.Duration]bool{
		30 * 24 * time.Hour:           false,
		30*24*time.Hour - time.Second: true,
	} {
		h := healthAt(t, notAfter.Add(-before), idp.Metadata())
		assert.Equal(t, warned, slices.Contains(warningCodes(h.Warnings), jit.WarnCertificateExpiring), "%s before the certificate's end", before)
	}
}

// TestHealthListsSigningAndUnspecifiedUseCertificates: the signing
// certificates health reports are the metadata's keys of unspecified use
// and for signing, not its encryption keys.
func TestHealthListsSigningAndUnspecifiedUseCertificates(t *testing.T) {
	idp := jittest.New(t)
	_, encCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	md := strings.Replace(string(idp.Metadata()), `<md:KeyDescriptor use="signing">`,
		`<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>`+
			base64.StdEncoding.EncodeToString(encCert.Raw)+
			`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:KeyDescriptor>`, 1)
	require.NotEqual(t, string(idp.Metadata()), md)
	h := healthAt(t, time.Now(), []byte(md))
	require.Len(t, h.SigningCertificates, 1)
	sum := sha256.Sum256(idp.Certificate().Raw)
	assert.Equal(t, hex.EncodeToString(sum[:]), h.SigningCertificates[0].SHA256, "the IdP's signing certificate")
}

// TestNotServedWarningGivesTheBuildError: an enabled stored connection
// that cannot be built is warned about with the reason it cannot.
func TestNotServedWarningGivesTheBuildError(t *testing.T) {
	conns := memstore.NewConnections()
	h := storedHarness(t, conns)
	ctx := context.Background()
	// Written to the store directly, bypassing PutConnection's check.
	_, err := conns.PutConnection(ctx, userstore.Connection{Name: "broken", IDPMetadata: []byte("<nope/>"), Enabled: true}, time.Now())
	require.NoError(t, err)
	require.NoError(t, h.mw.SyncConnections(ctx))
	hl, ok := h.mw.ConnectionHealth("broken")
	require.True(t, ok)
	require.NotEmpty(t, hl.Error)
	require.Len(t, hl.Warnings, 1)
	assert.Equal(t, "the connection is enabled but not served: "+hl.Error, hl.Warnings[0].Message)
}
