package jit_test

import (
	"context"
	"encoding/base64"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
)

// explainFixtureWith is explainFixture with the fixture's response XML,
// IdP metadata and request edited first. The fixture signs its assertion
// only: the Response element may be edited without breaking a signature.
func explainFixtureWith(t *testing.T, at time.Time, response, metadata func(string) string, req func(*jit.ExplainRequest)) *jit.Trace {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile("../testdata/explain/" + name)
		require.NoError(t, err)
		return string(b)
	}
	xml, md := read("response.xml"), read("idp-metadata.xml")
	if response != nil {
		xml = response(xml)
	}
	if metadata != nil {
		md = metadata(md)
	}
	r := jit.ExplainRequest{
		Response: []byte(base64.StdEncoding.EncodeToString([]byte(xml))), IDPMetadata: []byte(md),
		SPEntityID: "https://app.example.com/saml/metadata", ACSURL: "https://app.example.com/saml/acs",
		Mapper: claims.Entra(), Now: at,
		Policy: jit.Policy{Roles: jit.RoleMapping{DefaultRoles: []string{"viewer"}}},
	}
	if req != nil {
		req(&r)
	}
	tr, err := jit.Explain(context.Background(), r)
	require.NoError(t, err)
	return tr
}

// TestExplainRetryAtWhenInTimeGetsFurtherStillRefused: a response judged
// late, and refused again when judged in time for another reason (here the
// policy creates no one), still gets a RetryAt: judged then, more of its
// checks pass.
func TestExplainRetryAtWhenInTimeGetsFurtherStillRefused(t *testing.T) {
	noCreate := func(r *jit.ExplainRequest) { r.Policy.DisableCreate = true }
	late := explainFixtureWith(t, fixtureIssued.Add(time.Hour), nil, nil, noCreate)
	require.Equal(t, "refuse", late.Decision.Action)
	require.Equal(t, fixtureIssued.Add(time.Second), late.RetryAt)
	again := explainFixtureWith(t, late.RetryAt, nil, nil, noCreate)
	assert.Equal(t, "refuse", again.Decision.Action, "the policy creates no one")
	assert.Greater(t, passedSteps(again), passedSteps(late))
}

func passedSteps(t *jit.Trace) int {
	n := 0
	for _, s := range t.Steps {
		if s.OK {
			n++
		}
	}
	return n
}

// TestExplainRetryAtFollowsTheResponseIssueInstant: RetryAt is just after
// the Response's IssueInstant when it has one, not its assertion's.
func TestExplainRetryAtFollowsTheResponseIssueInstant(t *testing.T) {
	responseIssued := fixtureIssued.Add(time.Minute)
	later := func(xml string) string {
		// The first IssueInstant is the Response's, the second the
		// (signed) assertion's.
		return strings.Replace(xml, `IssueInstant="2026-03-02T09:30:00Z"`, `IssueInstant="2026-03-02T09:31:00Z"`, 1)
	}
	late := explainFixtureWith(t, fixtureIssued.Add(time.Hour), later, nil, nil)
	require.Equal(t, "refuse", late.Decision.Action)
	assert.Equal(t, responseIssued.Add(time.Second), late.RetryAt)
	again := explainFixtureWith(t, late.RetryAt, later, nil, nil)
	assert.Equal(t, "create", again.Decision.Action)
}

// TestExplainTrustsSigningAndUnspecifiedUseKeys: the trusted certificates
// are the metadata's keys for signing and those of unspecified use, which
// may sign too; an encryption key is not one.
func TestExplainTrustsSigningAndUnspecifiedUseKeys(t *testing.T) {
	rolled, err := os.ReadFile("../testdata/explain/rolled-idp-metadata.xml")
	require.NoError(t, err)
	encryptionCert := regexp.MustCompile(`<ds:X509Certificate>[^<]*</ds:X509Certificate>`).FindString(string(rolled))
	require.NotEmpty(t, encryptionCert)
	metadata := func(md string) string {
		md = strings.Replace(md, `<md:KeyDescriptor use="signing">`, `<md:KeyDescriptor>`, 1)
		return strings.Replace(md, `<md:NameIDFormat>`, `<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data>`+
			encryptionCert+`</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>`, 1)
	}
	tr := explainFixtureWith(t, fixtureIssued.Add(30*time.Second), nil, metadata, nil)
	assert.Equal(t, "create", tr.Decision.Action, "the key of unspecified use verifies the signature")
	require.Len(t, tr.TrustedCertificates, 1, "the encryption key is not trusted for signing")
	assert.Equal(t, tr.SigningCertificates, tr.TrustedCertificates)
	assert.Empty(t, tr.Untrusted())
}

// TestExplainListsEachSigningCertificateOnce: a response whose Response
// and assertion are both signed with one certificate lists it once.
func TestExplainListsEachSigningCertificateOnce(t *testing.T) {
	h := newHarness(t, harnessConfig{idpOptions: signedBy(true, true)})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	f := h.respond(h.client(), "", "p-ada")
	raw, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(raw), "SignatureValue>")/2, "the Response and its assertion are signed")
	entityID, ok := h.mw.MetadataURL("")
	require.True(t, ok)
	key, cert := spKeyPair()
	tr, err := jit.Explain(context.Background(), jit.ExplainRequest{
		Response: []byte(f.SAMLResponse), IDPMetadata: h.idp().Metadata(),
		SPEntityID: entityID, ACSURL: f.ACS, Key: key, Certificate: cert,
	})
	require.NoError(t, err)
	assert.Equal(t, "create", tr.Decision.Action, tr.Decision.Reason)
	require.Len(t, tr.SigningCertificates, 1)
	assert.Equal(t, tr.TrustedCertificates, tr.SigningCertificates)
}
