package jit_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

func explainFixture(t *testing.T, at time.Time, metadata string) *jit.Trace {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile("../testdata/explain/" + name)
		require.NoError(t, err)
		return b
	}
	tr, err := jit.Explain(context.Background(), jit.ExplainRequest{
		Response: read("response.b64"), IDPMetadata: read(metadata),
		SPEntityID: "https://app.example.com/saml/metadata", ACSURL: "https://app.example.com/saml/acs",
		Mapper: claims.Entra(), Now: at,
		Policy: jit.Policy{Roles: jit.RoleMapping{DefaultRoles: []string{"viewer"}}},
	})
	require.NoError(t, err)
	return tr
}

var fixtureIssued = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

// TestTraceJSONRoundTrip: the stable JSON form reads back into the same
// trace, but for the error, which it does not carry.
func TestTraceJSONRoundTrip(t *testing.T) {
	for name, tr := range map[string]*jit.Trace{
		"Accepted": explainFixture(t, fixtureIssued.Add(30*time.Second), "idp-metadata.xml"),
		"Stale":    explainFixture(t, fixtureIssued.Add(time.Hour), "idp-metadata.xml"),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(tr)
			require.NoError(t, err)
			var back jit.Trace
			require.NoError(t, json.Unmarshal(b, &back))
			want := *tr
			want.Decision.Err = nil
			assert.Equal(t, want, back)
		})
	}
	var tr jit.Trace
	assert.Error(t, json.Unmarshal([]byte(`{"version": 2, "steps": []}`), &tr), "another version is not read as this one")
}

// TestExplainRetryAt: a response judged an hour late is refused and
// RetryAt is just after its IssueInstant, where it is accepted; one judged
// in time has none.
func TestExplainRetryAt(t *testing.T) {
	late := explainFixture(t, fixtureIssued.Add(time.Hour), "idp-metadata.xml")
	require.Equal(t, "refuse", late.Decision.Action)
	require.Equal(t, fixtureIssued.Add(time.Second), late.RetryAt)
	again := explainFixture(t, late.RetryAt, "idp-metadata.xml")
	assert.Equal(t, "create", again.Decision.Action)
	assert.True(t, again.RetryAt.IsZero())

	// Refused inside its window (the signing certificate is not trusted):
	// no other instant helps.
	rolled := explainFixture(t, fixtureIssued.Add(30*time.Second), "rolled-idp-metadata.xml")
	require.Equal(t, "refuse", rolled.Decision.Action)
	assert.True(t, rolled.RetryAt.IsZero())
	// Refused late and with an untrusted certificate: judging it in time
	// gets no further, so no RetryAt either.
	both := explainFixture(t, fixtureIssued.Add(time.Hour), "rolled-idp-metadata.xml")
	require.Equal(t, "refuse", both.Decision.Action)
	assert.True(t, both.RetryAt.IsZero())
}

// TestExplainCertificates: the trace names the certificate a response is
// signed with and those the metadata trusts, and which of the first are
// not among the second.
func TestExplainCertificates(t *testing.T) {
	ok := explainFixture(t, fixtureIssued.Add(30*time.Second), "idp-metadata.xml")
	require.Len(t, ok.SigningCertificates, 1)
	require.Len(t, ok.TrustedCertificates, 1)
	assert.Equal(t, ok.SigningCertificates, ok.TrustedCertificates)
	assert.Empty(t, ok.Untrusted())
	assert.Regexp(t, `^([0-9A-F]{2}:){31}[0-9A-F]{2}$`, ok.SigningCertificates[0].SHA256)
	assert.Equal(t, "CN=jittest IdP,O=samljit jittest", ok.SigningCertificates[0].Subject)

	rolled := explainFixture(t, fixtureIssued.Add(30*time.Second), "rolled-idp-metadata.xml")
	assert.Equal(t, ok.SigningCertificates, rolled.Untrusted())
	assert.NotEqual(t, ok.TrustedCertificates, rolled.TrustedCertificates)
	assert.Contains(t, strings.Join(rolled.Notes, "\n"), "signed with a certificate the IdP metadata does not list")
}

// TestTraceJSONKeyOnceAnIdentityIsRead: the JSON form carries the key and
// the profile once the response's identity was read (even when the mapping
// then produced no key) or a key was made, and neither when validation
// stopped before the identity.
func TestTraceJSONKeyOnceAnIdentityIsRead(t *testing.T) {
	for name, tc := range map[string]struct {
		trace   jit.Trace
		withKey bool
	}{
		"refused before the identity": {jit.Trace{}, false},
		"identity, mapping refused":   {jit.Trace{Identity: &claims.Identity{Issuer: "https://idp.example"}}, true},
		"identity and key": {jit.Trace{Identity: &claims.Identity{Issuer: "https://idp.example"},
			Key: userstore.Key{Issuer: "https://idp.example", Subject: "ada"}}, true},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(tc.trace)
			require.NoError(t, err)
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &m))
			_, key := m["key"]
			_, profile := m["profile"]
			assert.Equal(t, tc.withKey, key, "%s", b)
			assert.Equal(t, tc.withKey, profile, "%s", b)
		})
	}
}
