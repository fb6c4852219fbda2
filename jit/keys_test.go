package jit_test

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/jit/jittest/forge"
)

// generated is one set of generated keys, written once: RSA-3072
// generation is slow and every test below only reads them.
var generated = sync.OnceValues(func() (*jit.Keys, error) { return jit.GenerateKeys("app.example.com") })

func writtenKeys(t *testing.T) (string, *jit.Keys) {
	t.Helper()
	keys, err := generated()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, keys.Write(dir))
	return dir, keys
}

// TestKeysWriteAndLoad: the files have private modes, read back as the
// same keys, and are never overwritten.
func TestKeysWriteAndLoad(t *testing.T) {
	dir, keys := writtenKeys(t)
	for name, mode := range map[string]os.FileMode{"sp-key.pem": 0o600, "sp-cert.pem": 0o644, "session-keys": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), name)
	}
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	loaded, err := jit.LoadKeys(dir)
	require.NoError(t, err)
	assert.True(t, keys.Key.Equal(loaded.Key))
	assert.Equal(t, keys.Certificate.Raw, loaded.Certificate.Raw)
	assert.Equal(t, keys.SessionKeys, loaded.SessionKeys)
	require.Len(t, loaded.SessionKeys, 2)
	assert.Len(t, loaded.SessionKeys[0], 32)
	assert.Len(t, loaded.SessionKeys[1], 32)
	assert.Equal(t, 3072, loaded.Key.N.BitLen())
	assert.Equal(t, "app.example.com", loaded.Certificate.Subject.CommonName)

	before, err := os.ReadFile(filepath.Join(dir, "session-keys"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(dir, "sp-key.pem")))
	other, err := jit.GenerateKeys("other")
	require.NoError(t, err)
	err = other.Write(dir)
	require.ErrorIs(t, err, os.ErrExist)
	assert.Contains(t, err.Error(), "sp-cert.pem")
	_, err = os.Stat(filepath.Join(dir, "sp-key.pem"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing is written when one file exists")
	after, err := os.ReadFile(filepath.Join(dir, "session-keys"))
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// TestLoadKeysRefuses: a private file others can read, a key that is not
// the certificate's, session keys of the wrong size or none, and a
// missing file are refused, naming the file.
func TestLoadKeysRefuses(t *testing.T) {
	other, _, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	otherPEM := func() []byte {
		der, err := x509.MarshalPKCS8PrivateKey(other)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for name, tc := range map[string]struct {
		spoil func(dir string) error
		is    error
		want  string
	}{
		"KeyReadableByOthers":        {func(dir string) error { return os.Chmod(filepath.Join(dir, "sp-key.pem"), 0o644) }, jit.ErrInsecureKeyFile, "sp-key.pem has mode 0644"},
		"SessionKeysReadableByGroup": {func(dir string) error { return os.Chmod(filepath.Join(dir, "session-keys"), 0o640) }, jit.ErrInsecureKeyFile, "session-keys has mode 0640"},
		"KeyNotTheCertificates":      {func(dir string) error { return os.WriteFile(filepath.Join(dir, "sp-key.pem"), otherPEM(), 0o600) }, nil, "does not match the certificate"},
		"CertificateNotPEM":          {func(dir string) error { return os.WriteFile(filepath.Join(dir, "sp-cert.pem"), []byte("MIIB"), 0o644) }, nil, "not a PEM CERTIFICATE"},
		"ShortAuthKey": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "session-keys"), []byte("# comment\n\nAAAA\n"), 0o600)
		}, nil, "session-keys line 3: an authentication key is 32 or 64 bytes, not 3"},
		"NoSessionKey": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "session-keys"), []byte("# none\n"), 0o600)
		}, nil, "holds no key"},
		"NotBase64": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "session-keys"), []byte("not base64!\n"), 0o600)
		}, nil, "line 1: not base64"},
		"MissingCert": {func(dir string) error { return os.Remove(filepath.Join(dir, "sp-cert.pem")) }, os.ErrNotExist, "sp-cert.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := writtenKeys(t)
			require.NoError(t, tc.spoil(dir))
			_, err := jit.LoadKeys(dir)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestLoadedKeysSignIn: a middleware built from loaded keys publishes
// the certificate and decrypts an assertion encrypted to it, and its
// session keys seal a working session.
func TestLoadedKeysSignIn(t *testing.T) {
	dir, _ := writtenKeys(t)
	keys, err := jit.LoadKeys(dir)
	require.NoError(t, err)
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Key, o.Certificate, o.SessionKeys = keys.Key, keys.Certificate, keys.SessionKeys
	}})
	h.idp().AddUser(person("p-keys", "keys@example.com", "Key", "Holder"))
	h.idp().SetMutateResponse(func(resp *etree.Element) {
		require.NoError(t, forge.EncryptAssertion(resp, keys.Certificate, forge.Encryption{}))
	})
	c := h.client()
	resp, body := h.signIn(c, "", "p-keys")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, u := h.me(c)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "keys@example.com", u.Profile.Email)

	md, err := http.Get(h.app.URL + "/saml/metadata")
	require.NoError(t, err)
	mdBody := readBody(t, md)
	cert := strings.Join(strings.Fields(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: keys.Certificate.Raw}))), "")
	cert = strings.TrimSuffix(strings.TrimPrefix(cert, "-----BEGINCERTIFICATE-----"), "-----ENDCERTIFICATE-----")
	assert.Contains(t, strings.Join(strings.Fields(mdBody), ""), cert[:64], "the metadata publishes the loaded certificate")
}
