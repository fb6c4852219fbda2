package jit_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestGenerateKeysCertificateValidFromNow: the generated SP certificate is
// valid from now (an IdP may refuse one that is not yet valid) for ten
// years.
func TestGenerateKeysCertificateValidFromNow(t *testing.T) {
	before := time.Now()
	k, err := jit.GenerateKeys("app.example.com")
	require.NoError(t, err)
	c := k.Certificate
	assert.False(t, c.NotBefore.After(before), "NotBefore %s is after %s", c.NotBefore, before)
	assert.WithinDuration(t, before.AddDate(10, 0, 0), c.NotAfter, time.Minute)
}

func ecdsaKeyPair(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "samljit test SP (ECDSA)"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert
}

// spMetadataKeys returns the certificates of the SP metadata served with
// the current and next key pairs, by KeyDescriptor use.
func spMetadataKeys(t *testing.T, key crypto.Signer, cert *x509.Certificate, next crypto.Signer, nextCert *x509.Certificate) map[string][]string {
	t.Helper()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, NextKey: next, NextCertificate: nextCert,
		Store: newMem(), SessionKeys: [][]byte{make32()},
		Connections: []jit.Connection{{IDPMetadata: jittest.New(t).Metadata()}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://app.example.com/saml/metadata", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var md saml.EntityDescriptor
	require.NoError(t, xml.Unmarshal(rec.Body.Bytes(), &md))
	require.Len(t, md.SPSSODescriptors, 1)
	out := map[string][]string{}
	for _, kd := range md.SPSSODescriptors[0].KeyDescriptors {
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			out[kd.Use] = append(out[kd.Use], c.Data)
		}
	}
	return out
}

// TestNextKeyOfferedForEncryptionOnlyWhenRSA: during a rollover the next
// certificate is published for signing, and for encryption only when its
// key is RSA (XML encryption needs one), even when the current key is not.
func TestNextKeyOfferedForEncryptionOnlyWhenRSA(t *testing.T) {
	rsaKey, rsaCert := spKeyPair()
	ecKey, ecCert := ecdsaKeyPair(t)
	b64 := func(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) }

	got := spMetadataKeys(t, rsaKey, rsaCert, ecKey, ecCert)
	assert.Equal(t, []string{b64(rsaCert), b64(ecCert)}, got["signing"], "RSA now, ECDSA next: both sign")
	assert.Equal(t, []string{b64(rsaCert)}, got["encryption"], "RSA now, ECDSA next: only the current decrypts")

	got = spMetadataKeys(t, ecKey, ecCert, rsaKey, rsaCert)
	assert.Equal(t, []string{b64(ecCert), b64(rsaCert)}, got["signing"], "ECDSA now, RSA next: both sign")
	assert.Equal(t, []string{b64(rsaCert)}, got["encryption"], "ECDSA now, RSA next: only the next decrypts")
}

// TestLoadKeysChecksEveryPairsAuthenticationKey: in session-keys, every
// pair's first key is an authentication key of 32 or 64 bytes, the
// second pair's as the first's.
func TestLoadKeysChecksEveryPairsAuthenticationKey(t *testing.T) {
	dir, _ := writtenKeys(t)
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for lines, want := range map[string]string{
		key(32) + "\n" + key(32) + "\n" + key(64) + "\n" + key(16) + "\n": "",
		key(32) + "\n" + key(32) + "\n" + key(16) + "\n" + key(32) + "\n": "line 3: an authentication key is 32 or 64 bytes, not 16",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "session-keys"), []byte(lines), 0o600))
		k, err := jit.LoadKeys(dir)
		if want == "" {
			require.NoError(t, err)
			assert.Len(t, k.SessionKeys, 4)
		} else {
			assert.ErrorContains(t, err, want)
		}
	}
}

// TestLoadKeysEncryptionKeySizes: in session-keys, every pair's second key
// is an AES key of 16, 24 or 32 bytes, and nothing else.
func TestLoadKeysEncryptionKeySizes(t *testing.T) {
	dir, _ := writtenKeys(t)
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) + "\n" }
	for lines, want := range map[string]string{
		key(64) + key(16) + key(32) + key(24) + key(32) + key(32): "",
		key(32) + key(20):                     "line 2: an encryption key is 16, 24 or 32 bytes, not 20",
		key(32) + key(32) + key(32) + key(64): "line 4: an encryption key is 16, 24 or 32 bytes, not 64",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "session-keys"), []byte(lines), 0o600))
		k, err := jit.LoadKeys(dir)
		if want == "" {
			require.NoError(t, err)
			assert.Len(t, k.SessionKeys, 6)
		} else {
			assert.ErrorContains(t, err, want)
		}
	}
}
