package jit_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// rolloverApp is an application whose middleware a test replaces, as a
// configuration change and restart would, on one address and one store.
type rolloverApp struct {
	t       *testing.T
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	base    jit.Options
	idp     *jittest.IdP
}

func newRolloverApp(t *testing.T) *rolloverApp {
	a := &rolloverApp{t: t, idp: jittest.New(t)}
	a.idp.AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*a.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	store, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
	a.base = jit.Options{
		RootURL:      a.srv.URL,
		Store:        store,
		SessionKeys:  [][]byte{bytes.Repeat([]byte{7}, 32)},
		SignRequests: true,
		Connections:  []jit.Connection{{IDPMetadata: a.idp.Metadata()}},
	}
	return a
}

// serve replaces the middleware with one configured with the SP keys.
func (a *rolloverApp) serve(key *rsa.PrivateKey, cert *x509.Certificate, next *rsa.PrivateKey, nextCert *x509.Certificate, older ...*rsa.PrivateKey) {
	opts := a.base
	opts.Key, opts.Certificate, opts.DecryptionKeys = key, cert, older
	if next != nil {
		opts.NextKey, opts.NextCertificate = next, nextCert
	}
	mw, err := jit.New(context.Background(), opts)
	require.NoError(a.t, err)
	a.t.Cleanup(func() { _ = mw.Close() })
	var h http.Handler = mw
	a.handler.Store(&h)
}

// metadata fetches the SP metadata the application serves.
func (a *rolloverApp) metadata() []byte {
	resp, err := http.Get(a.srv.URL + "/saml/metadata")
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return b
}

// idpLoads has the IdP's administrator load the SP metadata served now.
func (a *rolloverApp) idpLoads() jittest.SPKeys {
	id, k, err := jittest.SPKeysFromMetadata(a.metadata())
	require.NoError(a.t, err)
	a.idp.SetSPKeys(id, k)
	return k
}

// signIn signs Ada in, checking that the IdP encrypted the assertion, and
// returns the IdP's answer to the AuthnRequest (403 when it refused the
// request's signature) or the ACS's.
func (a *rolloverApp) signIn() (int, string) {
	a.t.Helper()
	c := (&harness{t: a.t}).client()
	f, err := a.idp.Respond(context.Background(), c, a.srv.URL+"/saml/login", "p-ada")
	if err != nil {
		return http.StatusForbidden, err.Error()
	}
	raw, err := f.XML()
	require.NoError(a.t, err)
	require.Contains(a.t, string(raw), "EncryptedAssertion", "the IdP encrypts to the SP")
	resp, err := f.Post(context.Background(), c)
	require.NoError(a.t, err)
	return resp.StatusCode, readBody(a.t, resp)
}

func certsOf(k jittest.SPKeys) []*x509.Certificate { return k.Signing }

// TestSPKeyRollover walks a full SP key rollover against an IdP that has
// only the old certificate, then both, then only the new one: no sign-in
// fails at any step, and each step is one configuration change.
func TestSPKeyRollover(t *testing.T) {
	oldKey, oldCert := spKeyPair()
	newKey, newCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	a := newRolloverApp(t)
	ok := func(step string) {
		t.Helper()
		code, body := a.signIn()
		require.Equal(t, http.StatusSeeOther, code, "%s: %s", step, body)
	}

	// 1. Only the old key, and the IdP has only the old certificate.
	a.serve(oldKey, oldCert, nil, nil)
	k := a.idpLoads()
	require.Len(t, certsOf(k), 1)
	require.True(t, k.EncryptTo.Equal(oldCert))
	ok("old key only")

	// 2. The next key is configured. The IdP has not reloaded yet: it
	// still verifies with and encrypts to the old certificate only.
	a.serve(oldKey, oldCert, newKey, newCert)
	ok("next key configured, IdP still on the old certificate")

	// The metadata lists both, for signing and for encryption, current
	// first; the IdP loads it and has both.
	k = a.idpLoads()
	require.Len(t, k.Signing, 2)
	assert.True(t, k.Signing[0].Equal(oldCert))
	assert.True(t, k.Signing[1].Equal(newCert))
	md := string(a.metadata())
	assert.Equal(t, 2, strings.Count(md, `use="encryption"`), md)
	ok("IdP has both, encrypts to the old")
	a.idp.SetSPKeys(a.srv.URL+"/saml/metadata", jittest.SPKeys{Signing: k.Signing, EncryptTo: newCert})
	ok("IdP has both, encrypts to the next")

	// 3. Promotion: the next pair becomes the current one, the old key
	// only decrypts. Requests are now signed with the new key, which the
	// IdP has; it may still encrypt to either certificate.
	a.serve(newKey, newCert, nil, nil, oldKey)
	ok("promoted, IdP encrypts to the new")
	a.idp.SetSPKeys(a.srv.URL+"/saml/metadata", jittest.SPKeys{Signing: k.Signing, EncryptTo: oldCert})
	ok("promoted, IdP still encrypts to the old")

	// 4. The IdP reloads: only the new certificate.
	k = a.idpLoads()
	require.Len(t, k.Signing, 1)
	require.True(t, k.Signing[0].Equal(newCert))
	require.True(t, k.EncryptTo.Equal(newCert))
	ok("IdP has only the new certificate")

	// 5. The old key is dropped.
	a.serve(newKey, newCert, nil, nil)
	ok("old key dropped")
	assert.NotContains(t, string(a.metadata()), certB64(oldCert))
}

// TestSPKeyRolloverSkippedStep: the steps matter. Promoting before the IdP
// has the next certificate fails at the IdP, and dropping the old key
// while the IdP still encrypts to it fails at the ACS.
func TestSPKeyRolloverSkippedStep(t *testing.T) {
	oldKey, oldCert := spKeyPair()
	newKey, newCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	a := newRolloverApp(t)
	a.serve(oldKey, oldCert, nil, nil)
	a.idpLoads()

	a.serve(newKey, newCert, nil, nil, oldKey)
	code, body := a.signIn()
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "none of the SP's certificates")

	a.idp.SetSPKeys(a.srv.URL+"/saml/metadata", jittest.SPKeys{Signing: []*x509.Certificate{newCert}, EncryptTo: oldCert})
	a.serve(newKey, newCert, nil, nil)
	code, _ = a.signIn()
	assert.Equal(t, http.StatusForbidden, code, "an assertion encrypted to a dropped key is refused")
}

// TestNextKeyOptions: a next key needs its certificate, and the pair must
// match and differ from the current one.
func TestNextKeyOptions(t *testing.T) {
	key, cert := spKeyPair()
	otherKey, otherCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	md := jittest.New(t).Metadata()
	for name, tc := range map[string]struct {
		next     *rsa.PrivateKey
		nextCert *x509.Certificate
		want     string
	}{
		"KeyWithoutCertificate": {otherKey, nil, "both"},
		"CertificateWithoutKey": {nil, otherCert, "both"},
		"Mismatch":              {otherKey, cert, "public key"},
		"SameAsCurrent":         {key, cert, "current"},
	} {
		t.Run(name, func(t *testing.T) {
			opts := jit.Options{RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(),
				SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{{IDPMetadata: md}}}
			if tc.next != nil {
				opts.NextKey = tc.next
			}
			opts.NextCertificate = tc.nextCert
			_, err := jit.New(context.Background(), opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func certB64(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) }
