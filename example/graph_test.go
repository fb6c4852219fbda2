package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/entragraph"
)

func TestGraphFlags(t *testing.T) {
	entra := []string{"-preset", "entra", "-idp-metadata", "https://login.microsoftonline.com/t/federationmetadata/2007-06/federationmetadata.xml"}
	const id = "5f0e8c2a-7d41-4b6e-9a35-0c2d1e4f6a8b"

	t.Run("refused", func(t *testing.T) {
		for want, args := range map[string][]string{
			"need -graph-client-id":       append([]string{"-graph-client-secret", "s"}, entra...),
			"needs -graph-client-secret":  append([]string{"-graph-client-id", id}, entra...),
			"not both":                    append([]string{"-graph-client-id", id, "-graph-client-secret", "s", "-graph-client-secret-file", "f"}, entra...),
			"need -preset entra":          {"-graph-client-id", id, "-graph-client-secret", "s", "-idp-metadata", "md.xml"},
			"need -preset entra and -idp": {"-graph-client-id", id, "-graph-client-secret", "s", "-preset", "entra"},
		} {
			var stderr bytes.Buffer
			_, err := parseFlags(args, &stderr)
			require.Error(t, err, want)
			assert.Contains(t, stderr.String(), "Usage of example", want)
		}
	})

	t.Run("off by default", func(t *testing.T) {
		cfg, err := parseFlags(entra, io.Discard)
		require.NoError(t, err)
		r, err := graphResolver(cfg)
		require.NoError(t, err)
		assert.Nil(t, r)
	})

	t.Run("secret file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "graph-secret")
		require.NoError(t, os.WriteFile(file, []byte("  s3cr3t\n"), 0o600))
		cfg, err := parseFlags(append([]string{"-graph-client-id", id, "-graph-client-secret-file", file}, entra...), io.Discard)
		require.NoError(t, err)
		r, err := graphResolver(cfg)
		require.NoError(t, err)
		assert.IsType(t, &entragraph.Resolver{}, r)

		require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600))
		_, err = graphResolver(cfg)
		require.ErrorContains(t, err, "empty")
		cfg.graphClientSecretFile = filepath.Join(t.TempDir(), "missing")
		_, err = graphResolver(cfg)
		require.Error(t, err)
	})

	t.Run("secret flag", func(t *testing.T) {
		cfg, err := parseFlags(append([]string{"-graph-client-id", id, "-graph-client-secret", "s"}, entra...), io.Discard)
		require.NoError(t, err)
		r, err := graphResolver(cfg)
		require.NoError(t, err)
		assert.NotNil(t, r)
	})
}
