package jit_test

import (
	"net/http"
	"testing"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// TestFastPathAudienceIsTheConnectionsEntityID: with Connection.EntityID
// set, the audience the fast path requires is that entity ID, not the SP
// metadata URL: an assertion restricted to the metadata URL is refused,
// by both paths alike (the harness fails the test when they disagree),
// and one restricted to the entity ID signs the person in.
func TestFastPathAudienceIsTheConnectionsEntityID(t *testing.T) {
	const entityID = "urn:example:sp"
	for _, tc := range []struct {
		audience func(h *harness) string
		ok       bool
	}{
		{func(h *harness) string { return spEntityID(h) }, false},
		{func(*harness) string { return entityID }, true},
	} {
		h, before := hostileHarness(t, harnessConfig{configure: func(o *jit.Options) { o.Connections[0].EntityID = entityID }})
		aud := tc.audience(h)
		h.idp().SetMutateAssertion(func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{{Audience: saml.Audience{Value: aud}}}
		})
		c := h.client()
		resp, body := h.signIn(c, "", victim)
		if tc.ok {
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			continue
		}
		refusal(t, resp, body, http.StatusForbidden)
		require.ErrorIs(t, h.lastRefusal(), jit.ErrInvalidResponse)
		assert.Equal(t, before, h.users(), "nobody created or changed")
	}
}
