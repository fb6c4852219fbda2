package jit_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

// fakeIdPHost answers metadata requests in-process, with no network: each
// URL maps to the metadata document, or to a redirect ("-> URL").
type fakeIdPHost map[string]string

func (f fakeIdPHost) RoundTrip(r *http.Request) (*http.Response, error) {
	body, status, header := "", http.StatusNotFound, http.Header{}
	if v, ok := f[r.URL.String()]; ok {
		if to, redirect := strings.CutPrefix(v, "-> "); redirect {
			status = http.StatusFound
			header.Set("Location", to)
		} else {
			status, body = http.StatusOK, v
		}
	}
	return &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// newWithMetadataURL runs jit.New with one connection whose metadata comes
// from url through transport.
func newWithMetadataURL(t *testing.T, url string, transport http.RoundTripper, insecure bool) (*jit.Middleware, error) {
	t.Helper()
	key, cert := spKeyPair()
	mw, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example", Key: key, Certificate: cert, Store: memstore.New(),
		SessionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		HTTPClient:  &http.Client{Transport: transport},
		Connections: []jit.Connection{{IDPMetadataURL: url, InsecureAllowHTTPMetadata: insecure}},
	})
	if err == nil {
		t.Cleanup(func() { _ = mw.Close() })
	}
	return mw, err
}

// TestMetadataURLMustBeHTTPS: IdP metadata (the trusted certificates) over
// plain http from a host that is not loopback is refused at New, before
// any request is sent, unless the connection opts in; the opt-in is
// linted. (Loopback http, the development case, is what every other test
// uses.)
func TestMetadataURLMustBeHTTPS(t *testing.T) {
	md := string(jittest.New(t).Metadata())
	host := fakeIdPHost{"http://idp.example/metadata": md, "https://idp.example/metadata": md}

	_, err := newWithMetadataURL(t, "http://idp.example/metadata", host, false)
	require.ErrorIs(t, err, jit.ErrInsecureMetadataURL)
	assert.Contains(t, err.Error(), "InsecureAllowHTTPMetadata")

	mw, err := newWithMetadataURL(t, "https://idp.example/metadata", host, false)
	require.NoError(t, err)
	assert.Empty(t, mw.Warnings())

	mw, err = newWithMetadataURL(t, "http://idp.example/metadata", host, true)
	require.NoError(t, err)
	require.Len(t, mw.Warnings(), 1)
	assert.Equal(t, jit.WarnInsecureMetadata, mw.Warnings()[0].Code)

	for _, loopback := range []string{"http://127.0.0.1:1/m", "http://localhost:1/m", "http://[::1]:1/m"} {
		_, err := jit.CheckMetadataURL(loopback, false)
		assert.NoError(t, err, loopback)
	}
	_, err = jit.CheckMetadataURL("http://127.0.0.1.evil.example/m", false)
	assert.ErrorIs(t, err, jit.ErrInsecureMetadataURL)
}

// TestMetadataRedirectOffHTTPSRefused: a redirect from https to http, or to
// another host, is never followed, with or without the http opt-in; one
// within the host over https is.
func TestMetadataRedirectOffHTTPSRefused(t *testing.T) {
	md := string(jittest.New(t).Metadata())
	host := fakeIdPHost{
		"https://idp.example/downgrade":     "-> http://idp.example/metadata",
		"https://idp.example/elsewhere":     "-> https://attacker.example/metadata",
		"https://idp.example/moved":         "-> https://idp.example/metadata",
		"http://idp.example/metadata":       md,
		"https://idp.example/metadata":      md,
		"https://attacker.example/metadata": md,
	}
	for _, insecure := range []bool{false, true} {
		for _, url := range []string{"https://idp.example/downgrade", "https://idp.example/elsewhere"} {
			_, err := newWithMetadataURL(t, url, host, insecure)
			assert.ErrorIs(t, err, jit.ErrInsecureMetadataURL, "%s (insecure opt-in %v)", url, insecure)
		}
	}
	_, err := newWithMetadataURL(t, "https://idp.example/moved", host, false)
	assert.NoError(t, err)

	_, err = jit.FetchIDPMetadata(context.Background(), &http.Client{Transport: host}, "https://idp.example/downgrade", true)
	assert.ErrorIs(t, err, jit.ErrInsecureMetadataURL, "the explain command's fetch follows the same rule")
}
