package jit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// TestStoredConnectionUnderRootURLPath: with a RootURL that has a path, a
// stored connection's endpoints are served under it and also without it,
// behind a proxy that strips the path, as the code-configured ones are.
func TestStoredConnectionUnderRootURLPath(t *testing.T) {
	key, cert := spKeyPair()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com/app", Key: key, Certificate: cert, Store: newMem(), SessionKeys: [][]byte{make32()},
		ConnectionStore: memstore.NewConnections(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw.Close() })
	_, err = mw.PutConnection(context.Background(), userstore.Connection{Name: "contoso", IDPMetadata: jittest.New(t).Metadata(), Preset: "generic", Enabled: true})
	require.NoError(t, err)
	for _, path := range []string{"/app/saml/contoso/metadata", "/saml/contoso/metadata"} {
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, http.StatusOK, rec.Code, path)
	}
	rec := httptest.NewRecorder()
	mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/saml/initech/metadata", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code, "a connection not stored")
}
