package jit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

// Rules found by mutation testing (.ci/mutation, docs/MUTATION.md) that no
// test through the middleware can reach in a test's time: each case kills
// a mutant that lived through the suite.

// TestMetadataValidityShortestCacheDuration: the shortest positive
// cacheDuration of the entity and its IDPSSODescriptors brings the next
// refresh forward; one that is absent (zero) says nothing. The refresher
// honours it no sooner than minMetadataRefreshInterval, a minute, which is
// why this is checked here and not through a refresh.
func TestMetadataValidityShortestCacheDuration(t *testing.T) {
	for _, tc := range []struct {
		name          string
		entity, roles []time.Duration
		want          time.Duration
	}{
		{"none", nil, []time.Duration{0}, 0},
		{"entity only", []time.Duration{time.Hour}, []time.Duration{0}, time.Hour},
		{"descriptor only", nil, []time.Duration{30 * time.Minute}, 30 * time.Minute},
		{"descriptor shorter", []time.Duration{2 * time.Hour}, []time.Duration{time.Hour}, time.Hour},
		{"descriptor longer", []time.Duration{time.Hour}, []time.Duration{2 * time.Hour}, time.Hour},
		{"shortest of several descriptors", nil, []time.Duration{2 * time.Hour, 0, 20 * time.Minute, time.Hour}, 20 * time.Minute},
		{"a negative one says nothing", []time.Duration{time.Hour}, []time.Duration{-time.Minute}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := &saml.EntityDescriptor{}
			for _, d := range tc.entity {
				md.CacheDuration = d
			}
			for _, d := range tc.roles {
				var idp saml.IDPSSODescriptor
				idp.CacheDuration = d
				md.IDPSSODescriptors = append(md.IDPSSODescriptors, idp)
			}
			_, cache := metadataValidity(md)
			assert.Equal(t, tc.want, cache)
		})
	}
}

// TestMetadataClientDefaultTimeout: without a client of the application's,
// a metadata fetch gives up after 10 seconds, so that an IdP that never
// answers cannot hang New or the refresher; a client of the application's
// keeps its own timeout. (Through the middleware, this would take a test
// ten seconds.)
func TestMetadataClientDefaultTimeout(t *testing.T) {
	assert.Equal(t, 10*time.Second, metadataClient(nil).Timeout)
	assert.Equal(t, time.Minute, metadataClient(&http.Client{Timeout: time.Minute}).Timeout)
}

// TestNextRefresh: a document's cacheDuration and validUntil bring the
// next fetch forward from the refresh interval, never below the floor;
// an absent cacheDuration changes nothing. (The refresher acts on it
// minutes later at the soonest, hence a test of the function.)
func TestNextRefresh(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		every      time.Duration
		cache      time.Duration
		validUntil time.Time
		want       time.Duration
	}{
		{"interval", time.Hour, 0, time.Time{}, time.Hour},
		{"shorter cacheDuration", time.Hour, 30 * time.Minute, time.Time{}, 30 * time.Minute},
		{"longer cacheDuration", time.Hour, 2 * time.Hour, time.Time{}, time.Hour},
		{"cacheDuration under the floor", time.Hour, 10 * time.Second, time.Time{}, minMetadataRefreshInterval},
		{"validUntil sooner", time.Hour, 0, now.Add(10 * time.Minute), 10 * time.Minute},
		{"validUntil later", time.Hour, 0, now.Add(2 * time.Hour), time.Hour},
		{"validUntil sooner than cacheDuration", time.Hour, 30 * time.Minute, now.Add(20 * time.Minute), 20 * time.Minute},
		{"validUntil passed", time.Hour, 0, now.Add(-time.Minute), minMetadataRefreshInterval},
		{"explicit short interval is its own floor", 50 * time.Millisecond, 0, time.Time{}, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Middleware{refreshEvery: tc.every, now: func() time.Time { return now }}
			assert.Equal(t, tc.want, m.nextRefresh(&idpSnapshot{cache: tc.cache, validUntil: tc.validUntil}))
		})
	}
}

// TestRefreshBackoff: after a failed refresh the next attempt waits 5 s,
// then twice as long after each further failure, never past the regular
// refresh. (Through the refresher, the first attempt alone comes a
// minute after New at the soonest.)
func TestRefreshBackoff(t *testing.T) {
	idp := jittest.New(t)
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(idp.Metadata())
	}))
	t.Cleanup(srv.Close)
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	m, err := New(context.Background(), Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: memstore.New(),
		SessionKeys: [][]byte{bytes.Repeat([]byte{1}, 32)}, MetadataRefreshInterval: time.Hour,
		Logger:      slog.New(slog.DiscardHandler),
		Connections: []Connection{{IDPMetadataURL: srv.URL + "/metadata"}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })

	fail.Store(true)
	s := &refreshState{c: m.conns[0]}
	for i, want := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		before := time.Now()
		m.refresh(context.Background(), s)
		assert.Equal(t, i+1, s.failures)
		assert.WithinRange(t, s.due, before.Add(want), time.Now().Add(want), "retry %d", i+1)
	}
	s.failures = 30 // far past the cap
	before := time.Now()
	m.refresh(context.Background(), s)
	assert.WithinRange(t, s.due, before.Add(15*time.Minute), time.Now().Add(15*time.Minute), "capped at 15 minutes")
}

// TestSigningCertSet: the signing certificates are those of every
// KeyDescriptor with use "signing" or no use, which crewjam trusts; an
// encryption-only certificate is not one. A refreshed document must list
// one, and the log names their fingerprints when they change.
func TestSigningCertSet(t *testing.T) {
	kd := func(use, cert string) saml.KeyDescriptor {
		var k saml.KeyDescriptor
		k.Use = use
		k.KeyInfo.X509Data.X509Certificates = []saml.X509Certificate{{Data: cert}}
		return k
	}
	fp := func(der string) string {
		sum := sha256.Sum256([]byte(der))
		return hex.EncodeToString(sum[:])
	}
	b64 := base64.StdEncoding.EncodeToString
	var idp saml.IDPSSODescriptor
	enc := kd("encryption", b64([]byte("encryption")))
	enc.KeyInfo.X509Data.X509Certificates = append(enc.KeyInfo.X509Data.X509Certificates, saml.X509Certificate{Data: b64([]byte("encryption 2"))})
	idp.KeyDescriptors = []saml.KeyDescriptor{kd("", b64([]byte("no-use"))), kd("signing", b64([]byte("signing"))), enc}
	md := &saml.EntityDescriptor{IDPSSODescriptors: []saml.IDPSSODescriptor{idp}}
	want := []string{fp("no-use"), fp("signing")}
	slices.Sort(want)
	assert.Equal(t, want, signingCertSet(md))
	assert.Equal(t, 2, signingCerts(md), "a refresh needs one of these, and an encryption certificate is not one")
}

// TestTruncate: a logged value is cut at n bytes, at a character boundary,
// and marked; one of n bytes or fewer is left whole.
func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé", 2, "a…"},          // é is two bytes: not cut in half
		{"\x80\x80\x80", 2, "…"}, // no boundary at all: nothing of it is kept
	} {
		assert.Equal(t, tc.want, truncate(tc.s, tc.n), "truncate(%q, %d)", tc.s, tc.n)
	}
}

// TestVerifiedDomainNeedsALocalPart: an email is in a verified domain only
// when it names a mailbox there; "@kasa.example" names none, as
// userstore.EmailDomain also holds.
func TestVerifiedDomainNeedsALocalPart(t *testing.T) {
	b := Brownfield{VerifiedDomains: []string{"kasa.example"}}
	for email, want := range map[string]bool{
		"ada@kasa.example":  true,
		"Ada@KASA.example":  true,
		"@kasa.example":     false,
		"kasa.example":      false,
		"ada@kasa.example.": false,
		"ada@":              false,
	} {
		if got := b.domainVerified(email); got != want {
			t.Errorf("domainVerified(%q) = %v, want %v", email, got, want)
		}
	}
}
