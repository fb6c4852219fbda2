package jit

import (
	"slices"
	"time"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// StepOrder returns the checks of a sign-in in the order they run (a panic
// aside), as a [Trace] names them.
func StepOrder() []string {
	return []string{stepMetadata, stepDecode, stepParse, stepStructure, stepProtocol, stepAssertion, stepMapping, stepSession}
}

// The checks of a sign-in, in the order they run, as named in a [Trace].
const (
	stepMetadata  = "metadata"  // the IdP metadata in hand is still valid
	stepDecode    = "decode"    // base64, within the size bound
	stepParse     = "parse"     // XML within the depth bound, no DOCTYPE or directive
	stepStructure = "structure" // one assertion, namespaces, algorithms, one Reference
	stepProtocol  = "protocol"  // crewjam/saml: round trip, signature, issuer, destination, status
	stepAssertion = "assertion" // issuer, time windows, audience, bearer recipient, InResponseTo
	stepMapping   = "mapping"   // claims to a key and a profile
	stepSession   = "session"   // the IdP session has not ended
	stepPanic     = "panic"     // the SAML library panicked (refused)
)

// Trace is the decision trace of one sign-in, as [Explain] reports it:
// each check that ran, what the assertion says, and what the connection's
// policy would do. Its JSON form is [Trace.MarshalJSON]'s: snake_case,
// versioned ([TraceFormatVersion]) and stable.
type Trace struct {
	// Steps are the checks that ran, in order; the first that failed
	// ends the list.
	Steps []Step `json:"steps"`
	// Notes are what could not be judged, and why.
	Notes []string `json:"notes,omitempty"`
	// Identity is what the validated assertion says; nil when validation
	// failed before the claims were read.
	Identity *claims.Identity `json:"identity,omitempty"`
	// Key and Profile are what the mapping derived.
	Key     userstore.Key     `json:"key"`
	Profile userstore.Profile `json:"profile"`
	// Decision is what the sign-in would do.
	Decision Decision `json:"decision"`
	// RetryAt is set when the sign-in was refused only because it is
	// judged too long after (or before) the response was issued: judged at
	// RetryAt, shortly after its IssueInstant, it gets further. A captured
	// response is usually judged minutes after it was issued; judge it
	// again at RetryAt to see the rest of the checks.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// SigningCertificates are the certificates the response's signatures
	// carry in their KeyInfo (not trusted for that: only the metadata's
	// are), and TrustedCertificates the IdP metadata's signing
	// certificates. A signature that does not verify is usually a
	// certificate missing from the metadata, which the two lists show.
	SigningCertificates []CertificateSummary `json:"signing_certificates,omitempty"`
	TrustedCertificates []CertificateSummary `json:"trusted_certificates,omitempty"`
}

// CertificateSummary names a certificate for a person comparing two of
// them.
type CertificateSummary struct {
	// Subject and Issuer are the distinguished names.
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// SHA256 is the fingerprint of the DER certificate, in upper-case hex
	// with colons, as openssl x509 -fingerprint -sha256 prints it.
	SHA256 string `json:"sha256_fingerprint"`
	// NotBefore and NotAfter bound the certificate's validity.
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// Untrusted reports the signing certificates that are not among the
// trusted ones (compared by fingerprint).
func (t *Trace) Untrusted() []CertificateSummary {
	var out []CertificateSummary
	for _, c := range t.SigningCertificates {
		if !slices.ContainsFunc(t.TrustedCertificates, func(tc CertificateSummary) bool { return tc.SHA256 == c.SHA256 }) {
			out = append(out, c)
		}
	}
	return out
}

// Step is the outcome of one check.
type Step struct {
	// Name is the check's name, one of [StepOrder]'s ("metadata",
	// "decode", "parse", "structure", "protocol", "assertion", "mapping",
	// "session"), or "panic" for a panic inside the SAML library.
	Name string `json:"name"`
	// OK reports whether the check passed.
	OK bool `json:"ok"`
	// Detail is why it failed; empty when it passed.
	Detail string `json:"detail,omitempty"`
}

// Decision is what a sign-in would do to the store, and the roles it would
// grant and remove.
type Decision struct {
	// Action is "create", "update", "link" or "refuse".
	Action string `json:"action"`
	// Reason says why a sign-in is refused.
	Reason string `json:"reason,omitempty"`
	// UserID is the existing user updated or linked.
	UserID string `json:"user_id,omitempty"`
	// Changed names the profile fields an update or link would change.
	Changed []string `json:"changed,omitempty"`
	// Before is the stored profile an update or link starts from; After
	// the profile it would write.
	Before *userstore.Profile `json:"before,omitempty"`
	After  *userstore.Profile `json:"after,omitempty"`
	// RolesGranted and RolesRemoved are the IdP-derived roles the sign-in
	// would add and take away.
	RolesGranted []string `json:"roles_granted,omitempty"`
	RolesRemoved []string `json:"roles_removed,omitempty"`
	// Err is the refusal's error, for errors.Is; not serialised.
	Err error `json:"-"`
}
