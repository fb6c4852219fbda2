package jit

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// The fast path verifies a response's XML signature with goxmldsig on the
// tree parseXML built, and reads the assertion from the element goxmldsig
// returns: what was digested, parsed from the canonical bytes. Nothing is
// read through a second parser, so no parser differential needs the
// round-trip validator, and nothing is unmarshalled with encoding/xml.
//
// It accepts only what crewjam's ParseXMLResponse, configured as
// serviceProvider configures it, followed by this package's checks, would
// accept, and reads the same values. Of crewjam's checks it makes only
// those this package's checks (checks.checkAssertion) do not make at least
// as strictly (checkResponse, checkAssertionAsCrewjam), with crewjam's own
// MaxIssueDelay and MaxClockSkew; then this package's checks, with the
// narrower of the two clock skews. It takes the shapes IdPs send: a
// plaintext assertion, signed itself, inside its signed Response, or both.
// Anything else (an encrypted assertion, a Subject given as EncryptedID, a
// NameID inside an AttributeValue, a ProxyRestriction, a prefixed or
// repeated XML attribute, text mixed with elements, a signature it cannot
// verify, a value it cannot parse, any check refused) makes it decline, and
// validate runs crewjam instead, which then decides, so every refusal keeps
// crewjam's path and its reasons. A response the fast path declines costs
// both; one it accepts costs one etree parse, the structural checks,
// goxmldsig and the reading.
//
// fastpath_test.go holds crewjam as the oracle: every response of the
// hostile suites, the captured ones and the fuzzer's goes through both, and
// the fast path may neither accept what crewjam and these checks refuse
// nor read a different identity.

// errDeclined marks why the fast path did not take a response.
var errDeclined = errors.New("jit: the fast path declines the response")

func declined(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDeclined, fmt.Sprintf(format, args...))
}

// fastVerifier is what the fast path needs of one IdP metadata snapshot,
// built once per snapshot. It is nil when the snapshot's ServiceProvider
// uses a crewjam option the fast path does not reproduce.
type fastVerifier struct {
	certs       []*x509.Certificate // the IdP's signing certificates, as crewjam trusts them
	idpEntityID string
	acsURL      string // the ACS URL, as crewjam compares Destination
	clock       *dsig.Clock
}

// newFastVerifier returns the fast path's verifier for sp, or nil when sp
// is configured in a way the fast path does not reproduce (then every
// response goes through crewjam).
func newFastVerifier(sp *saml.ServiceProvider) *fastVerifier {
	if sp.IDPMetadata == nil || sp.SignatureVerifier != nil || sp.IDPCertificate != nil ||
		sp.IDPCertificateFingerprint != nil || sp.IDPCertificateFingerprintAlgorithm != nil ||
		sp.IgnoreCertificateExpiry || sp.RejectExpiredIDPMetadata || sp.ReplayCache != nil ||
		sp.ValidateAudienceRestriction != nil || sp.ValidateUnknownConditions != nil ||
		sp.ValidateAuthnContextClassRef || !sp.RejectUnknownConditions || sp.AcceptAssertionBaseID ||
		sp.Clock == nil || sp.ValidateRequestID == nil {
		return nil
	}
	certs, err := idpSigningCerts(sp.IDPMetadata)
	if err != nil || len(certs) == 0 {
		return nil
	}
	return &fastVerifier{
		certs:       certs,
		idpEntityID: sp.IDPMetadata.EntityID,
		acsURL:      sp.AcsURL.String(),
		clock:       sp.Clock,
	}
}

var certSpace = regexp.MustCompile(`\s+`)

// idpSigningCerts parses the certificates of md's IDPSSODescriptors that
// may sign ("use" signing or absent), as crewjam's getIDPSigningCerts does.
func idpSigningCerts(md *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(certSpace.ReplaceAllString(c.Data, ""))
				if err != nil {
					return nil, err
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, err
				}
				certs = append(certs, cert)
			}
		}
	}
	return certs, nil
}

// fastAssertion verifies the Response root (of shape st, which
// checkResponse accepted) and returns its assertion, read from what the
// signatures cover, after those of crewjam's checks that ck's
// checkAssertion, which runs after either path, does not make at least as
// strictly; or an error wrapping errDeclined.
func (v *fastVerifier) fastAssertion(root *etree.Element, st structure, ck checks) (*saml.Assertion, error) {
	if v == nil {
		return nil, declined("the connection's ServiceProvider is configured beyond the fast path")
	}
	if st.encrypted != nil {
		return nil, declined("the assertion is encrypted")
	}
	if err := plainNames(root, 0); err != nil {
		return nil, err
	}
	respSig, err := onlyChild(root, nsDSig, "Signature")
	if err != nil {
		return nil, err
	}
	resp := root
	signedResponse := respSig != nil
	if signedResponse {
		if resp, err = v.verify(root, respSig); err != nil {
			return nil, err
		}
	}
	if err := v.checkResponse(resp, signedResponse, ck); err != nil {
		return nil, err
	}
	// The assertion as received, where its own signature is checked, and
	// as the Response's signature covers it.
	received, err := onlyChild(root, nsAssertion, "Assertion")
	if err != nil || received == nil {
		return nil, declined("no single plaintext Assertion")
	}
	assertionEl := received
	if signedResponse {
		if assertionEl, err = onlyChild(resp, nsAssertion, "Assertion"); err != nil || assertionEl == nil {
			return nil, declined("the signed Response holds no single Assertion")
		}
		if attr(assertionEl, "ID") != attr(received, "ID") {
			return nil, declined("the signed Assertion is not the one received")
		}
	}
	aSig, err := onlyChild(received, nsDSig, "Signature")
	if err != nil {
		return nil, err
	}
	switch {
	case aSig != nil:
		if assertionEl, err = v.verify(received, aSig); err != nil {
			return nil, err
		}
	case !signedResponse:
		return nil, declined("neither the Response nor the Assertion is signed")
	}
	a, err := readAssertion(assertionEl)
	if err != nil {
		return nil, err
	}
	if err := checkAssertionAsCrewjam(a, ck); err != nil {
		return nil, err
	}
	return a, nil
}

// verify checks the enveloped signature sig of el as crewjam's
// validatedElement does (same certificates, clock, KeyInfo handling and
// Reference profile) and returns what goxmldsig returns: the signed
// element parsed from the canonical bytes it digested.
func (v *fastVerifier) verify(el, sig *etree.Element) (*etree.Element, error) {
	// checkSignature, on every signature of the response, has allowed
	// only SHA-2 algorithms (and SHA-1 where the connection allows it),
	// which leaves nothing of crewjam's RejectSHA1Signatures to check.
	if err := checkReference(el, sig); err != nil {
		return nil, err
	}
	// NSDetatch adds el's own declarations to its parent's context.
	ctx, err := unboundedParentContext(el)
	var detached *etree.Element
	if err == nil {
		detached, err = etreeutils.NSDetatch(ctx, el)
	}
	if err != nil {
		return nil, declined("namespace context of %s: %v", el.Tag, err)
	}
	for _, at := range detached.Attr {
		if at.Key == "ID" && at.Space != "" {
			// goxmldsig finds the ID under any prefix.
			return nil, declined("prefixed ID attribute on %s", el.Tag)
		}
	}
	stripKeyInfoWithoutCertificate(detached)
	// Each trusted certificate on its own, as crewjam tries them without a
	// certificate in KeyInfo (goxmldsig then takes a single root only).
	// With one, goxmldsig verifies with it only if it is the root it is
	// given, so trying the roots one by one decides the same.
	for _, c := range v.certs {
		if signed, err := v.validate(detached, []*x509.Certificate{c}); err == nil {
			return signed, nil
		}
	}
	return nil, declined("signature on %s: no trusted certificate verifies it", el.Tag)
}

func (v *fastVerifier) validate(el *etree.Element, certs []*x509.Certificate) (*etree.Element, error) {
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	ctx.IdAttribute = "ID"
	ctx.Clock = v.clock
	signed, err := ctx.Validate(el)
	if err != nil {
		return nil, declined("signature on %s: %v", el.Tag, err)
	}
	return signed, nil
}

// checkReference is crewjam's reference profile (saml-core §5.4.2): the
// Signature's one Reference names el by its ID, with a single unprefixed
// URI attribute.
func checkReference(el, sig *etree.Element) error {
	signedInfo, err := onlyChild(sig, nsDSig, "SignedInfo")
	if err != nil || signedInfo == nil {
		return declined("signature has no single SignedInfo")
	}
	var ref *etree.Element
	for _, c := range signedInfo.ChildElements() {
		if c.Tag == "Reference" {
			if ref != nil || !is(c, nsDSig, "Reference") {
				return declined("signature has more than one Reference")
			}
			ref = c
		}
	}
	if ref == nil {
		return declined("signature has no Reference")
	}
	id := attr(el, "ID")
	uris := 0
	for _, at := range ref.Attr {
		if at.Key == "URI" {
			uris++
			if at.Space != "" || at.Value != "#"+id {
				return declined("signature Reference URI does not name the signed element")
			}
		}
	}
	if id == "" || uris != 1 {
		return declined("signature Reference URI does not name the signed element")
	}
	return nil
}

// unboundedParentContext is crewjam's: the namespace context of el's
// parent, without the 1000-node traversal budget of the default context.
func unboundedParentContext(el *etree.Element) (etreeutils.NSContext, error) {
	parent := el.Parent()
	if parent == nil {
		return etreeutils.EmptyNSContext, nil
	}
	ctx, err := unboundedParentContext(parent)
	if err != nil {
		return ctx, err
	}
	return ctx.SubContext(parent)
}

// stripKeyInfoWithoutCertificate is crewjam's: a KeyInfo without an
// X509Certificate is removed, so that goxmldsig verifies against the
// trusted certificate it is given.
func stripKeyInfoWithoutCertificate(el *etree.Element) {
	if el.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") != nil {
		return
	}
	if sigEl := el.FindElement("./Signature"); sigEl != nil {
		if keyInfo := sigEl.FindElement("KeyInfo"); keyInfo != nil {
			sigEl.RemoveChild(keyInfo)
		}
	}
}

// onlyChild returns el's child {ns}local, nil when there is none; a second
// one declines. (A reserved namespace declaration, which crewjam refuses,
// makes goxmldsig fail where the fast path verifies: from the signed
// element up, and in all it canonicalizes.)
func onlyChild(el *etree.Element, ns, local string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag != local || c.NamespaceURI() != ns {
			continue
		}
		if found != nil {
			return nil, declined("more than one %s in %s", local, el.Tag)
		}
		found = c
	}
	return found, nil
}

// checkResponse makes crewjam's checks of the Response resp (what its
// signature covers when signedResponse), none of which checks.checkAssertion
// makes: on its Version, Destination, InResponseTo (by ck, as crewjam's
// ValidateRequestID is set to), IssueInstant, Issuer and Status.
func (v *fastVerifier) checkResponse(resp *etree.Element, signedResponse bool, ck checks) error {
	if err := plainAttrs(resp, false); err != nil {
		return err
	}
	if v := attr(resp, "Version"); v != "2.0" {
		return declined("Response Version %q", v)
	}
	dest := attr(resp, "Destination")
	if (signedResponse || dest != "") && dest != v.acsURL {
		return declined("Response Destination %q", dest)
	}
	if err := ck.checkInResponseTo(attr(resp, "InResponseTo")); err != nil {
		return declined("Response InResponseTo: %v", err)
	}
	issued, err := timeAttr(resp, "IssueInstant")
	if err != nil {
		return err
	}
	if err := issuedAsCrewjam("Response", issued, ck.now); err != nil {
		return err
	}
	var issuer, status *etree.Element
	for _, c := range resp.ChildElements() {
		switch {
		case is(c, nsAssertion, "Issuer"):
			if issuer != nil {
				return declined("Response has more than one Issuer")
			}
			issuer = c
		case is(c, nsProtocol, "Status"):
			if status != nil {
				return declined("Response has more than one Status")
			}
			status = c
		}
	}
	if issuer != nil {
		if err := plainAttrs(issuer, false); err != nil {
			return err
		}
		if s, err := text(issuer); err != nil || s != v.idpEntityID {
			return declined("Response Issuer is not the IdP")
		}
	}
	if status == nil {
		return declined("Response has no Status")
	}
	var code *etree.Element
	for _, c := range status.ChildElements() {
		if !is(c, nsProtocol, "StatusCode") || code != nil {
			return declined("Status holds %s", c.Tag)
		}
		code = c
	}
	if code == nil || len(code.ChildElements()) != 0 || plainAttrs(code, false) != nil ||
		attr(code, "Value") != saml.StatusSuccess {
		return declined("Status is not a plain Success")
	}
	return nil
}

// issuedAsCrewjam is crewjam's checkIssueInstant: what was issued more
// than saml.MaxIssueDelay ago, or more than saml.MaxClockSkew ahead,
// declines. checks.checkAssertion allows the delay plus the skew.
func issuedAsCrewjam(what string, issued, now time.Time) error {
	if issued.Add(saml.MaxIssueDelay).Before(now) || issued.Add(-saml.MaxClockSkew).After(now) {
		return declined("%s IssueInstant %s out of range", what, issued)
	}
	return nil
}

// checkAssertionAsCrewjam makes those of crewjam's checks of an assertion
// (validateAssertion, as serviceProvider configures it) that ck's
// checkAssertion does not make at least as strictly: its Version, its
// IssueInstant without the skew on the delay, and, where ck's skew is wider
// than crewjam's saml.MaxClockSkew, every validity window with crewjam's.
// The others (Issuer, Subject, audiences, bearer confirmation,
// InResponseTo, AuthnStatement) checkAssertion makes as strictly or more:
// it requires of every bearer confirmation what crewjam requires of one,
// an audience first in each restriction, and the browser's own request.
func checkAssertionAsCrewjam(a *saml.Assertion, ck checks) error {
	if a.Version != "2.0" {
		return declined("assertion Version %q", a.Version)
	}
	if err := issuedAsCrewjam("assertion", a.IssueInstant, ck.now); err != nil {
		return err
	}
	// Every window with the narrower of the two skews.
	ck.skew = min(ck.skew, saml.MaxClockSkew)
	if _, err := ck.checkAssertion(a); err != nil {
		return declined("within crewjam's clock skew: %v", err)
	}
	return nil
}
