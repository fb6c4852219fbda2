package jit

import (
	"net/http"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
)

// Rules found by mutation testing (.ci/mutation, docs/MUTATION.md) that no
// test through the middleware can reach in a test's time: each case kills
// a mutant that lived through the suite.

// TestMetadataValidityShortestCacheDuration: the shortest positive
// cacheDuration of the entity and its IDPSSODescriptors brings the next
// refresh forward; one that is absent (zero) says nothing. The refresher
// honours it no sooner than MinMetadataRefreshInterval, a minute, which is
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
