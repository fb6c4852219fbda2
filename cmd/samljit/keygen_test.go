package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// TestKeygen writes keys that jit.LoadKeys reads, with private files
// 0600, and refuses to overwrite them.
func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out, errOut bytes.Buffer
	code := run([]string{"keygen", "-dir", dir, "-cn", "app.example.com"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), "SP certificate: CN=app.example.com")
	assert.Contains(t, out.String(), `jit.LoadKeys("`+dir+`")`)
	for name, mode := range map[string]os.FileMode{"sp-key.pem": 0o600, "sp-cert.pem": 0o644, "session-keys": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), name)
	}
	keys, err := jit.LoadKeys(dir)
	require.NoError(t, err)
	assert.Equal(t, "app.example.com", keys.Certificate.Subject.CommonName)

	key, err := os.ReadFile(filepath.Join(dir, "sp-key.pem"))
	require.NoError(t, err)
	code = run([]string{"keygen", "-dir", dir}, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "already exists")
	again, err := os.ReadFile(filepath.Join(dir, "sp-key.pem"))
	require.NoError(t, err)
	assert.Equal(t, key, again, "the key is not overwritten")

	assert.Equal(t, 2, run([]string{"keygen", "extra"}, &out, &errOut))
}
