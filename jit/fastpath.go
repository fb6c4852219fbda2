package jit

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
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
	rejectSHA1  bool
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
		rejectSHA1:  sp.RejectSHA1Signatures,
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
	if v.rejectSHA1 {
		for _, path := range []string{".//SignatureMethod", ".//DigestMethod"} {
			for _, m := range sig.FindElements(path) {
				for _, at := range m.Attr {
					if at.Key == "Algorithm" && sha1Algorithms[at.Value] {
						return nil, declined("SHA-1 signature algorithm %q", at.Value)
					}
				}
			}
		}
	}
	if err := checkReference(el, sig); err != nil {
		return nil, err
	}
	ctx, err := unboundedParentContext(el)
	if err == nil {
		ctx, err = ctx.SubContext(el)
	}
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
	noCert := stripKeyInfoWithoutCertificate(detached)
	certs := v.certs
	if !noCert || len(certs) == 1 {
		return v.validate(detached, certs)
	}
	// As crewjam: without a certificate in KeyInfo, each trusted
	// certificate on its own.
	for _, c := range certs {
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

var sha1Algorithms = map[string]bool{
	dsig.RSASHA1SignatureMethod:                   true,
	dsig.ECDSASHA1SignatureMethod:                 true,
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":  true,
	"http://www.w3.org/2000/09/xmldsig#hmac-sha1": true,
	"http://www.w3.org/2000/09/xmldsig#sha1":      true,
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
// trusted certificates.
func stripKeyInfoWithoutCertificate(el *etree.Element) bool {
	if el.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") != nil {
		return false
	}
	if sigEl := el.FindElement("./Signature"); sigEl != nil {
		if keyInfo := sigEl.FindElement("KeyInfo"); keyInfo != nil {
			sigEl.RemoveChild(keyInfo)
		}
	}
	return true
}

// onlyChild returns el's child {ns}local, nil when there is none. A second
// one, or a child of that local name whose namespace declarations crewjam
// refuses, declines.
func onlyChild(el *etree.Element, ns, local string) (*etree.Element, error) {
	var found *etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag != local {
			continue
		}
		if err := reservedDeclarations(c); err != nil {
			return nil, err
		}
		if c.NamespaceURI() != ns {
			continue
		}
		if found != nil {
			return nil, declined("more than one %s in %s", local, el.Tag)
		}
		found = c
	}
	return found, nil
}

// reservedDeclarations declines an element declaring a reserved namespace
// prefix or an invalid default namespace, which crewjam refuses.
func reservedDeclarations(el *etree.Element) error {
	for _, at := range el.Attr {
		switch {
		case at.Space == "xmlns" && at.Key == "xml" && at.Value != etreeutils.XMLNamespace,
			at.Space == "xmlns" && at.Key == "xmlns",
			at.Space == "" && at.Key == "xmlns" && at.Value == etreeutils.XMLNSNamespace:
			return declined("reserved namespace declaration on %s", el.Tag)
		}
	}
	return nil
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

// readAssertion reads, from the verified Assertion element el, what
// crewjam's unmarshalling fills in and this package uses. Every element on
// the way must be of the shape checkAssertionTree allows, in the SAML
// assertion namespace; anything encoding/xml could read otherwise than
// this (a repeated or prefixed attribute, text beside child elements, a
// value crewjam parses as a number or boolean) declines.
func readAssertion(el *etree.Element) (*saml.Assertion, error) {
	if !is(el, nsAssertion, "Assertion") {
		return nil, declined("not an Assertion")
	}
	if err := plainAttrs(el, false); err != nil {
		return nil, err
	}
	a := &saml.Assertion{ID: attr(el, "ID"), Version: attr(el, "Version")}
	var err error
	if a.IssueInstant, err = timeAttr(el, "IssueInstant"); err != nil {
		return nil, err
	}
	issuers := 0
	for _, c := range el.ChildElements() {
		if err := reservedDeclarations(c); err != nil {
			return nil, err
		}
		if is(c, nsDSig, "Signature") {
			continue
		}
		if c.NamespaceURI() != nsAssertion {
			return nil, declined("unexpected %s in Assertion", c.Tag)
		}
		switch c.Tag {
		case "Issuer":
			issuers++
			if a.Issuer, err = readIssuer(c); err != nil {
				return nil, err
			}
		case "Subject":
			if a.Subject != nil {
				return nil, declined("more than one Subject")
			}
			if a.Subject, err = readSubject(c); err != nil {
				return nil, err
			}
		case "Conditions":
			if a.Conditions != nil {
				return nil, declined("more than one Conditions")
			}
			if a.Conditions, err = readConditions(c); err != nil {
				return nil, err
			}
		case "AuthnStatement":
			s, err := readAuthnStatement(c)
			if err != nil {
				return nil, err
			}
			a.AuthnStatements = append(a.AuthnStatements, s)
		case "AttributeStatement":
			s, err := readAttributeStatement(c)
			if err != nil {
				return nil, err
			}
			a.AttributeStatements = append(a.AttributeStatements, s)
		default:
			return nil, declined("unexpected %s in Assertion", c.Tag)
		}
	}
	if issuers != 1 {
		return nil, declined("Assertion has %d Issuers", issuers)
	}
	return a, nil
}

func readIssuer(el *etree.Element) (saml.Issuer, error) {
	if err := plainAttrs(el, false); err != nil {
		return saml.Issuer{}, err
	}
	v, err := text(el)
	return saml.Issuer{
		NameQualifier:   attr(el, "NameQualifier"),
		SPNameQualifier: attr(el, "SPNameQualifier"),
		Format:          attr(el, "Format"),
		SPProvidedID:    attr(el, "SPProvidedID"),
		Value:           v,
	}, err
}

func readNameID(el *etree.Element) (*saml.NameID, error) {
	if err := plainAttrs(el, false); err != nil {
		return nil, err
	}
	v, err := text(el)
	return &saml.NameID{
		NameQualifier:   attr(el, "NameQualifier"),
		SPNameQualifier: attr(el, "SPNameQualifier"),
		Format:          attr(el, "Format"),
		SPProvidedID:    attr(el, "SPProvidedID"),
		Value:           v,
	}, err
}

func readSubject(el *etree.Element) (*saml.Subject, error) {
	if err := plainAttrs(el, false); err != nil {
		return nil, err
	}
	s := &saml.Subject{}
	for _, c := range el.ChildElements() {
		var err error
		switch {
		case is(c, nsAssertion, "NameID") && s.NameID == nil:
			s.NameID, err = readNameID(c)
		case is(c, nsAssertion, "SubjectConfirmation"):
			var sc saml.SubjectConfirmation
			sc, err = readSubjectConfirmation(c)
			s.SubjectConfirmations = append(s.SubjectConfirmations, sc)
		default:
			err = declined("unexpected %s in Subject", c.Tag)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func readSubjectConfirmation(el *etree.Element) (saml.SubjectConfirmation, error) {
	sc := saml.SubjectConfirmation{Method: attr(el, "Method")}
	if err := plainAttrs(el, false); err != nil {
		return sc, err
	}
	for _, c := range el.ChildElements() {
		if !is(c, nsAssertion, "SubjectConfirmationData") || sc.SubjectConfirmationData != nil || len(c.ChildElements()) != 0 {
			return sc, declined("unexpected %s in SubjectConfirmation", c.Tag)
		}
		if err := plainAttrs(c, false); err != nil {
			return sc, err
		}
		d := &saml.SubjectConfirmationData{
			Recipient:    attr(c, "Recipient"),
			InResponseTo: attr(c, "InResponseTo"),
			Address:      attr(c, "Address"),
		}
		var err error
		if d.NotBefore, err = timeAttr(c, "NotBefore"); err != nil {
			return sc, err
		}
		if d.NotOnOrAfter, err = timeAttr(c, "NotOnOrAfter"); err != nil {
			return sc, err
		}
		sc.SubjectConfirmationData = d
	}
	return sc, nil
}

func readConditions(el *etree.Element) (*saml.Conditions, error) {
	if err := plainAttrs(el, false); err != nil {
		return nil, err
	}
	c := &saml.Conditions{}
	var err error
	if c.NotBefore, err = timeAttr(el, "NotBefore"); err != nil {
		return nil, err
	}
	if c.NotOnOrAfter, err = timeAttr(el, "NotOnOrAfter"); err != nil {
		return nil, err
	}
	for _, r := range el.ChildElements() {
		switch {
		case is(r, nsAssertion, "AudienceRestriction"):
			if err := plainAttrs(r, false); err != nil {
				return nil, err
			}
			var auds []saml.Audience
			for _, au := range r.ChildElements() {
				if !is(au, nsAssertion, "Audience") {
					return nil, declined("unexpected %s in AudienceRestriction", au.Tag)
				}
				if err := plainAttrs(au, false); err != nil {
					return nil, err
				}
				v, err := text(au)
				if err != nil {
					return nil, err
				}
				auds = append(auds, saml.Audience{Value: v})
			}
			var ar saml.AudienceRestriction
			if len(auds) > 0 {
				ar.Audience = auds[0]
			}
			if len(auds) > 1 {
				ar.AdditionalAudiences = auds[1:]
			}
			c.AudienceRestrictions = append(c.AudienceRestrictions, ar)
		case is(r, nsAssertion, "OneTimeUse") && c.OneTimeUse == nil && len(r.Child) == 0 && len(r.Attr) == 0:
			c.OneTimeUse = &saml.OneTimeUse{}
		default:
			return nil, declined("condition %s", r.Tag)
		}
	}
	return c, nil
}

func readAuthnStatement(el *etree.Element) (saml.AuthnStatement, error) {
	s := saml.AuthnStatement{SessionIndex: attr(el, "SessionIndex")}
	if err := plainAttrs(el, false); err != nil {
		return s, err
	}
	var err error
	if s.AuthnInstant, err = timeAttr(el, "AuthnInstant"); err != nil {
		return s, err
	}
	if hasAttr(el, "SessionNotOnOrAfter") {
		t, err := timeAttr(el, "SessionNotOnOrAfter")
		if err != nil {
			return s, err
		}
		s.SessionNotOnOrAfter = &t
	}
	hasContext := false
	for _, c := range el.ChildElements() {
		if err := plainAttrs(c, false); err != nil {
			return s, err
		}
		switch {
		case is(c, nsAssertion, "SubjectLocality") && s.SubjectLocality == nil && len(c.ChildElements()) == 0:
			s.SubjectLocality = &saml.SubjectLocality{Address: attr(c, "Address"), DNSName: attr(c, "DNSName")}
		case is(c, nsAssertion, "AuthnContext") && !hasContext:
			hasContext = true
			if s.AuthnContext, err = readAuthnContext(c); err != nil {
				return s, err
			}
		default:
			return s, declined("unexpected %s in AuthnStatement", c.Tag)
		}
	}
	return s, nil
}

func readAuthnContext(el *etree.Element) (saml.AuthnContext, error) {
	var ac saml.AuthnContext
	for _, c := range el.ChildElements() {
		if err := plainAttrs(c, false); err != nil {
			return ac, err
		}
		v, err := text(c)
		if err != nil {
			return ac, err
		}
		switch {
		case is(c, nsAssertion, "AuthnContextClassRef") && ac.AuthnContextClassRef == nil:
			ac.AuthnContextClassRef = &saml.AuthnContextClassRef{Value: v}
		case is(c, nsAssertion, "AuthenticatingAuthority"):
			ac.AuthenticatingAuthorities = append(ac.AuthenticatingAuthorities, saml.AuthenticatingAuthority{Value: v})
		default:
			return ac, declined("unexpected %s in AuthnContext", c.Tag)
		}
	}
	return ac, nil
}

func readAttributeStatement(el *etree.Element) (saml.AttributeStatement, error) {
	var st saml.AttributeStatement
	if err := plainAttrs(el, false); err != nil {
		return st, err
	}
	children := el.ChildElements()
	st.Attributes = make([]saml.Attribute, 0, len(children))
	for _, c := range children {
		if !is(c, nsAssertion, "Attribute") {
			return st, declined("unexpected %s in AttributeStatement", c.Tag)
		}
		if err := plainAttrs(c, false); err != nil {
			return st, err
		}
		values := c.ChildElements()
		at := saml.Attribute{
			FriendlyName: attr(c, "FriendlyName"),
			Name:         attr(c, "Name"),
			NameFormat:   attr(c, "NameFormat"),
			Values:       make([]saml.AttributeValue, 0, len(values)),
		}
		for _, v := range values {
			if !is(v, nsAssertion, "AttributeValue") {
				return st, declined("unexpected %s in Attribute", v.Tag)
			}
			if err := plainAttrs(v, true); err != nil {
				return st, err
			}
			s, err := text(v)
			if err != nil {
				return st, err
			}
			at.Values = append(at.Values, saml.AttributeValue{Value: s})
		}
		st.Attributes = append(st.Attributes, at)
	}
	return st, nil
}

// plainAttrs declines an element whose attributes encoding/xml might read
// otherwise than attr does: two attributes of one local name, whatever
// their prefixes (etree reads the first, encoding/xml the last, and
// encoding/xml matches an unqualified field by local name in any
// namespace), or a prefixed one. Namespace
// declarations are fine; so, on an AttributeValue (value), are prefixed
// attributes such as xsi:type, except one named nil, which crewjam parses
// as a boolean.
func plainAttrs(el *etree.Element, value bool) error {
	for i, at := range el.Attr {
		switch {
		case at.Space == "xmlns", at.Space == "" && at.Key == "xmlns":
			if err := reservedDeclarations(el); err != nil {
				return err
			}
			continue
		case at.Space != "" && (!value || at.Key == "nil"):
			return declined("attribute %s:%s on %s", at.Space, at.Key, el.Tag)
		}
		for _, b := range el.Attr[:i] {
			if b.Key == at.Key {
				return declined("attribute %s repeated on %s", at.Key, el.Tag)
			}
		}
	}
	return nil
}

// text is an element's character data, as encoding/xml's chardata reads
// it; an element with child elements declines.
func text(el *etree.Element) (string, error) {
	var s string
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			s += t.Data
		case *etree.Element:
			return "", declined("element %s inside %s", t.Tag, el.Tag)
		default:
			return "", declined("markup inside %s", el.Tag)
		}
	}
	return s, nil
}

// timeAttr parses the attribute key of el as crewjam parses SAML times
// (saml.RelaxedTime); an absent or empty attribute is the zero time.
func timeAttr(el *etree.Element, key string) (time.Time, error) {
	var t saml.RelaxedTime
	if err := t.UnmarshalText([]byte(attr(el, key))); err != nil {
		return time.Time{}, declined("%s of %s: %v", key, el.Tag, err)
	}
	return time.Time(t), nil
}

// attr is the value of el's unprefixed attribute key, "" when absent.
// (etree's SelectAttrValue matches key under any prefix, a namespace
// declaration's too.)
func attr(el *etree.Element, key string) string {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value
		}
	}
	return ""
}

func hasAttr(el *etree.Element, key string) bool {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return true
		}
	}
	return false
}

// maxNamespacesInScope is crewjam's bound (from its round-trip validator)
// on the namespace declarations in scope at any element: canonicalizing
// costs elements times declarations, before any digest is checked.
const maxNamespacesInScope = 64

// plainNames declines a document crewjam's round-trip validator might
// refuse, which the fast path does not run: more than
// maxNamespacesInScope declarations in scope (inScope are the
// declarations of el's ancestors), or an element or attribute name that is
// not a plain (possibly prefixed) name: a second colon, an empty part, or
// a declaration of an empty namespace URI for a prefix. Such names
// encoding/xml does not write back as it read them (CVE-2020-29509,
// CVE-2020-29511); no IdP sends them.
func plainNames(el *etree.Element, inScope int) error {
	if !plainName(el.Space, el.Tag) {
		return declined("element name %q:%q", el.Space, el.Tag)
	}
	for _, at := range el.Attr {
		if !plainName(at.Space, at.Key) {
			return declined("attribute name %q:%q", at.Space, at.Key)
		}
		if at.Space == "xmlns" || at.Space == "" && at.Key == "xmlns" {
			if at.Space == "xmlns" && at.Value == "" {
				return declined("prefix %q declared empty", at.Key)
			}
			inScope++
		}
	}
	if inScope > maxNamespacesInScope {
		return declined("more than %d namespace declarations in scope", maxNamespacesInScope)
	}
	for _, c := range el.ChildElements() {
		if err := plainNames(c, inScope); err != nil {
			return err
		}
	}
	return nil
}

func plainName(space, local string) bool {
	return local != "" && !strings.Contains(local, ":") && !strings.Contains(space, ":")
}
