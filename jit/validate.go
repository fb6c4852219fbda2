package jit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// This file is the validation layer of a sign-in. The response is parsed
// once, with etree (parseXML), and everything runs on that tree:
//   - structural checks (checkResponse): an input bound on depth, no
//     directive, comment or processing instruction; exactly one assertion
//     in the whole document; namespace-exact, counted children where
//     identity and validity are read (crewjam v0.6.3 accepts a second,
//     foreign-namespace NameID after the real one); at most one Signature
//     per element and exactly one Reference; an allowlist of signature,
//     digest, key-transport and block-encryption algorithms;
//   - the fast path (fastpath.go): goxmldsig verifies the signatures on
//     this tree, as crewjam calls it, and the assertion is read from the
//     element goxmldsig returns, then crewjam's protocol checks, ported;
//   - when the fast path declines (an encrypted assertion, a shape it
//     does not reproduce exactly, or anything it would refuse), crewjam's
//     ParseXMLResponse decides instead, as before the fast path: it parses
//     the bytes again behind its round-trip validator, verifies and
//     decrypts, and the decrypted copy of an encrypted assertion is then
//     checked like a plain one (checkDecrypted, only after crewjam has
//     authenticated the Response where CBC needs it, so this layer is
//     never a decryption oracle);
//   - on either path's assertion, the semantic checks of checks below,
//     judged with the injected clock and this package's skew, which are
//     stricter than crewjam's: every AudienceRestriction must name this SP
//     alone, and every bearer SubjectConfirmation must pass, where crewjam
//     needs one.
//
// crewjam stays the oracle: fastpath_oracle_test.go runs every response
// of the harness tests, FuzzFastPath's and the captured one through both
// paths and fails when the fast path accepts what crewjam with these
// checks refuses, or reads a different identity.

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	nsXMLEnc    = "http://www.w3.org/2001/04/xmlenc#"

	methodBearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

var (
	strongSignatureMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": true,
	}
	strongDigestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
	sha1SignatureMethod = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	sha1DigestMethod    = "http://www.w3.org/2000/09/xmldsig#sha1"

	// RSA-OAEP only: rsa-1_5 key transport is open to Bleichenbacher-style
	// oracles ("One Bad Apple", NDSS 2013).
	keyTransportMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p": true,
		"http://www.w3.org/2009/xmlenc11#rsa-oaep":        true,
	}
	blockEncryptionMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#aes128-cbc": true,
		"http://www.w3.org/2001/04/xmlenc#aes192-cbc": true,
		"http://www.w3.org/2001/04/xmlenc#aes256-cbc": true,
		"http://www.w3.org/2009/xmlenc11#aes128-gcm":  true,
		"http://www.w3.org/2009/xmlenc11#aes192-gcm":  true,
		"http://www.w3.org/2009/xmlenc11#aes256-gcm":  true,
	}
)

// invalid wraps a validation failure.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidResponse, fmt.Sprintf(format, args...))
}

// decodeResponse base64-decodes the posted SAMLResponse, refusing input
// whose decoded size would exceed max before decoding it.
func decodeResponse(b64 string, max int) ([]byte, error) {
	if b64 == "" {
		return nil, invalid("no SAMLResponse in the request")
	}
	if base64.StdEncoding.DecodedLen(len(b64)) > max+max/64+16 {
		return nil, fmt.Errorf("%w: encoded response is %d bytes", ErrResponseTooLarge, len(b64))
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, invalid("SAMLResponse is not base64: %v", err)
	}
	if len(raw) > max {
		return nil, fmt.Errorf("%w: decoded response is %d bytes, limit %d", ErrResponseTooLarge, len(raw), max)
	}
	return raw, nil
}

// parseXML parses untrusted XML for the structural checks, refusing
// directives (DOCTYPE, ENTITY) and trees deeper than maxDepth.
//
// It does not run the round-trip stability check (xrv): what the fast path
// reads is read from this tree (through goxmldsig's verified copy of it),
// never through a second parser, so no round trip can differ; crewjam,
// which re-reads the bytes with encoding/xml, runs xrv itself on its path.
func parseXML(raw []byte, maxDepth int) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = maxDepth
	if err := doc.ReadFromBytes(raw); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, fmt.Errorf("%w: XML nesting deeper than %d", ErrResponseTooLarge, maxDepth)
		}
		return nil, invalid("XML does not parse: %v", err)
	}
	if what := hasMarkup(&doc.Element); what != "" {
		return nil, invalid("XML contains %s", what)
	}
	root := doc.Root()
	if root == nil {
		return nil, invalid("XML has no root element")
	}
	return root, nil
}

// hasMarkup names the first markup anywhere in the tree that a SAML
// response has no use for: a DOCTYPE, ENTITY or other directive, a comment
// (invisible to exclusive canonicalization, so a comment inside a signed
// value splits it without breaking the signature: the CVE-2017-11427
// class), or a processing instruction other than the XML declaration. It
// returns "" when there is none.
func hasMarkup(el *etree.Element) string {
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Directive:
			return "a DOCTYPE or other directive"
		case *etree.Comment:
			return "a comment"
		case *etree.ProcInst:
			if t.Target != "xml" || el.Parent() != nil {
				return "a processing instruction"
			}
		case *etree.Element:
			if what := hasMarkup(t); what != "" {
				return what
			}
		}
	}
	return ""
}

// structure holds what the structural check learned.
type structure struct {
	// encrypted is the Response's EncryptedAssertion, or nil. Its
	// algorithms are checked; its plaintext is checked by checkDecrypted
	// once crewjam has accepted the response.
	encrypted *etree.Element
	sha1      bool // a signature used SHA-1, which the connection allows
}

// checkResponse checks the shape of a Response before crewjam parses it:
// exactly one assertion anywhere in the document, as a direct child of the
// Response; only schema-valid, namespace-correct children where identity is
// read; allowed algorithms on every signature and encryption. It never
// decrypts: see checkDecrypted.
func checkResponse(root *etree.Element, allowSHA1 bool) (structure, error) {
	var st structure
	if !is(root, nsProtocol, "Response") {
		return st, invalid("root element is {%s}%s, want a SAML protocol Response", root.NamespaceURI(), root.Tag)
	}
	if n, weak, err := checkTree(root, allowSHA1); err != nil {
		return st, err
	} else if n != 1 {
		return st, invalid("response holds %d assertions, want exactly one", n)
	} else {
		st.sha1 = weak
	}
	var assertion, encrypted *etree.Element
	signatures := 0
	for _, c := range root.ChildElements() {
		switch {
		case is(c, nsAssertion, "Issuer"), is(c, nsProtocol, "Status"), is(c, nsProtocol, "Extensions"):
		case is(c, nsDSig, "Signature"):
			signatures++
		case is(c, nsAssertion, "Assertion"):
			assertion = c
		case is(c, nsAssertion, "EncryptedAssertion"):
			encrypted = c
		default:
			return st, invalid("unexpected element {%s}%s in Response", c.NamespaceURI(), c.Tag)
		}
	}
	if signatures > 1 {
		return st, invalid("Response has %d Signature elements", signatures)
	}
	switch {
	case assertion != nil:
		return st, checkAssertionTree(assertion)
	case encrypted != nil:
		st.encrypted = encrypted
		return st, checkEncryptionMethods(encrypted)
	default:
		return st, invalid("Response has no assertion")
	}
}

func is(el *etree.Element, ns, local string) bool {
	return el.Tag == local && el.NamespaceURI() == ns
}

// checkTree walks the whole tree once: it checks every signature's
// algorithms and that it has exactly one Reference, and returns how many
// assertions the tree holds anywhere, so that a wrapped or duplicated one
// cannot be slipped past the signature check, and whether a signature used
// SHA-1 (only possible when allowSHA1 is set).
func checkTree(root *etree.Element, allowSHA1 bool) (assertions int, sha1 bool, err error) {
	var walk func(el *etree.Element) error
	walk = func(el *etree.Element) error {
		switch {
		case is(el, nsAssertion, "Assertion"), is(el, nsAssertion, "EncryptedAssertion"):
			assertions++
		case is(el, nsDSig, "Signature"):
			weak, err := checkSignature(el, allowSHA1)
			if err != nil {
				return err
			}
			sha1 = sha1 || weak
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	err = walk(root)
	return assertions, sha1, err
}

// checkSignature checks one Signature's algorithms and References, and
// reports whether it used SHA-1.
func checkSignature(sig *etree.Element, allowSHA1 bool) (sha1 bool, err error) {
	var signedInfo *etree.Element
	for _, c := range sig.ChildElements() {
		if is(c, nsDSig, "SignedInfo") {
			if signedInfo != nil {
				return false, invalid("Signature has more than one SignedInfo")
			}
			signedInfo = c
		}
	}
	if signedInfo == nil {
		return false, invalid("Signature has no SignedInfo")
	}
	refs := 0
	for _, c := range signedInfo.ChildElements() {
		switch {
		case is(c, nsDSig, "SignatureMethod"):
			alg := c.SelectAttrValue("Algorithm", "")
			sha1 = sha1 || alg == sha1SignatureMethod
			if !strongSignatureMethods[alg] && !(allowSHA1 && alg == sha1SignatureMethod) {
				return false, invalid("signature method %q is not allowed", alg)
			}
		case is(c, nsDSig, "Reference"):
			refs++
			for _, d := range c.ChildElements() {
				if is(d, nsDSig, "DigestMethod") {
					alg := d.SelectAttrValue("Algorithm", "")
					sha1 = sha1 || alg == sha1DigestMethod
					if !strongDigestMethods[alg] && !(allowSHA1 && alg == sha1DigestMethod) {
						return false, invalid("digest method %q is not allowed", alg)
					}
				}
			}
		}
	}
	if refs != 1 {
		return false, invalid("Signature has %d References, want exactly one", refs)
	}
	return sha1, nil
}

// assertionChildren are the elements an Assertion may contain, with how
// many of each: 1 exactly one, -1 one or more, 0 any number, 2 at most one.
var assertionChildren = map[string]int{
	"Issuer":                 1,
	"Subject":                1,
	"Conditions":             1,
	"AuthnStatement":         -1,
	"AttributeStatement":     0,
	"AuthzDecisionStatement": 0,
}

// checkAssertionTree checks an Assertion element's shape: the elements
// identity and validity are read from exist exactly once and are in the
// SAML assertion namespace. crewjam's parser matches several of them by
// local name in any namespace.
func checkAssertionTree(a *etree.Element) error {
	if !is(a, nsAssertion, "Assertion") {
		return invalid("assertion is {%s}%s", a.NamespaceURI(), a.Tag)
	}
	counts := map[string]int{}
	signatures := 0
	for _, c := range a.ChildElements() {
		if is(c, nsDSig, "Signature") {
			signatures++
			continue
		}
		if _, ok := assertionChildren[c.Tag]; !ok || c.NamespaceURI() != nsAssertion {
			return invalid("unexpected element {%s}%s in Assertion", c.NamespaceURI(), c.Tag)
		}
		counts[c.Tag]++
		switch c.Tag {
		case "Subject":
			if err := checkSubject(c); err != nil {
				return err
			}
		case "Conditions":
			if err := checkConditions(c); err != nil {
				return err
			}
		case "AttributeStatement":
			if err := checkAttributeStatement(c); err != nil {
				return err
			}
		}
	}
	if signatures > 1 {
		return invalid("Assertion has %d Signature elements", signatures)
	}
	for name, want := range assertionChildren {
		got := counts[name]
		switch {
		case want == 1 && got != 1:
			return invalid("Assertion has %d %s elements, want exactly one", got, name)
		case want == -1 && got == 0:
			return invalid("Assertion has no %s", name)
		}
	}
	return nil
}

func checkSubject(s *etree.Element) error {
	nameIDs, confirmed := 0, false
	for _, c := range s.ChildElements() {
		switch {
		case is(c, nsAssertion, "NameID"):
			nameIDs++
		case is(c, nsAssertion, "SubjectConfirmation"):
			confirmed = true
		default:
			return invalid("unexpected element {%s}%s in Subject", c.NamespaceURI(), c.Tag)
		}
	}
	if nameIDs != 1 {
		return invalid("Subject has %d SAML NameID elements, want exactly one", nameIDs)
	}
	if !confirmed {
		return invalid("Subject has no SubjectConfirmation")
	}
	return nil
}

func checkConditions(cond *etree.Element) error {
	restricted := false
	for _, c := range cond.ChildElements() {
		switch {
		case is(c, nsAssertion, "AudienceRestriction"):
			restricted = true
			n := 0
			for _, a := range c.ChildElements() {
				if !is(a, nsAssertion, "Audience") {
					return invalid("unexpected element {%s}%s in AudienceRestriction", a.NamespaceURI(), a.Tag)
				}
				n++
			}
			if n != 1 {
				return invalid("AudienceRestriction has %d Audience elements; this SP accepts exactly one", n)
			}
		case is(c, nsAssertion, "OneTimeUse"), is(c, nsAssertion, "ProxyRestriction"):
		default:
			return invalid("unexpected condition {%s}%s", c.NamespaceURI(), c.Tag)
		}
	}
	if !restricted {
		return invalid("Conditions has no AudienceRestriction")
	}
	return nil
}

func checkAttributeStatement(st *etree.Element) error {
	for _, c := range st.ChildElements() {
		if !is(c, nsAssertion, "Attribute") {
			return invalid("unexpected element {%s}%s in AttributeStatement", c.NamespaceURI(), c.Tag)
		}
		for _, v := range c.ChildElements() {
			if !is(v, nsAssertion, "AttributeValue") {
				return invalid("unexpected element {%s}%s in Attribute", v.NamespaceURI(), v.Tag)
			}
		}
	}
	return nil
}

// checks are the semantic checks on a verified assertion, judged at now.
type checks struct {
	now                time.Time
	skew               time.Duration
	issuer             string // the IdP's entity ID
	audience           string // this SP's entity ID for the connection
	acsURL             string
	requestID          string // the outstanding request's ID, "" when unsolicited
	solicited          bool
	unsolicitedAllowed bool
}

// checkAssertion applies, to the assertion crewjam verified, the checks
// crewjam omits or makes less strictly, judged with this package's clock
// and skew, and returns how long the assertion's ID must be remembered.
func (c checks) checkAssertion(a *saml.Assertion) (time.Time, error) {
	if a == nil {
		return time.Time{}, invalid("no assertion")
	}
	if a.ID == "" {
		return time.Time{}, invalid("assertion has no ID")
	}
	if a.Issuer.Value != c.issuer {
		return time.Time{}, invalid("assertion issuer %q is not the connection's IdP %q", a.Issuer.Value, c.issuer)
	}
	if a.IssueInstant.IsZero() || a.IssueInstant.After(c.now.Add(c.skew)) {
		return time.Time{}, invalid("assertion IssueInstant %s is missing or in the future", a.IssueInstant.Format(time.RFC3339))
	}
	if a.IssueInstant.Add(MaxIssueDelay + c.skew).Before(c.now) {
		return time.Time{}, invalid("assertion was issued at %s, too long ago", a.IssueInstant.Format(time.RFC3339))
	}
	cond := a.Conditions
	if cond == nil {
		return time.Time{}, invalid("assertion has no Conditions")
	}
	if !cond.NotBefore.IsZero() && cond.NotBefore.After(c.now.Add(c.skew)) {
		return time.Time{}, invalid("assertion is not valid before %s", cond.NotBefore.Format(time.RFC3339))
	}
	if !cond.NotOnOrAfter.IsZero() && !c.now.Add(-c.skew).Before(cond.NotOnOrAfter) {
		return time.Time{}, invalid("assertion expired at %s", cond.NotOnOrAfter.Format(time.RFC3339))
	}
	if len(cond.AudienceRestrictions) == 0 {
		return time.Time{}, invalid("assertion has no AudienceRestriction")
	}
	for _, r := range cond.AudienceRestrictions {
		if r.Audience.Value != c.audience {
			return time.Time{}, invalid("assertion audience %q is not this SP %q", r.Audience.Value, c.audience)
		}
	}
	if a.Subject == nil || a.Subject.NameID == nil {
		return time.Time{}, invalid("assertion has no Subject NameID")
	}
	var expires time.Time
	bearer := false
	for _, sc := range a.Subject.SubjectConfirmations {
		if sc.Method != methodBearer {
			continue
		}
		d := sc.SubjectConfirmationData
		if d == nil {
			return time.Time{}, invalid("bearer SubjectConfirmation has no SubjectConfirmationData")
		}
		if d.Recipient != c.acsURL {
			return time.Time{}, invalid("bearer SubjectConfirmation Recipient %q is not this ACS %q", d.Recipient, c.acsURL)
		}
		if d.NotOnOrAfter.IsZero() {
			return time.Time{}, invalid("bearer SubjectConfirmationData has no NotOnOrAfter")
		}
		if !c.now.Add(-c.skew).Before(d.NotOnOrAfter) {
			return time.Time{}, invalid("bearer SubjectConfirmationData expired at %s", d.NotOnOrAfter.Format(time.RFC3339))
		}
		if !d.NotBefore.IsZero() && d.NotBefore.After(c.now.Add(c.skew)) {
			return time.Time{}, invalid("bearer SubjectConfirmationData not valid before %s", d.NotBefore.Format(time.RFC3339))
		}
		if err := c.checkInResponseTo(d.InResponseTo); err != nil {
			return time.Time{}, err
		}
		bearer = true
		if d.NotOnOrAfter.After(expires) {
			expires = d.NotOnOrAfter
		}
	}
	if !bearer {
		return time.Time{}, invalid("assertion has no bearer SubjectConfirmation")
	}
	if len(a.AuthnStatements) == 0 {
		return time.Time{}, invalid("assertion has no AuthnStatement")
	}
	if cond.NotOnOrAfter.After(expires) {
		expires = cond.NotOnOrAfter
	}
	// Remember the ID for as long as any clock within the skew could still
	// accept the assertion.
	return expires.Add(c.skew), nil
}

// noCookieHint names the usual causes of a response that arrives without
// its request cookie, for the log.
const noCookieHint = " (the browser sent no request cookie for it: the sign-in was started at a host name other than Options.RootURL's, such as 127.0.0.1 for localhost, which keeps cookies apart; or it took over 10 minutes; or cookies are blocked)"

// checkInResponseTo ties a response to the request this browser started.
// An unsolicited response must not claim to answer some other request. An
// empty request ID, which this package never issues, matches nothing.
func (c checks) checkInResponseTo(inResponseTo string) error {
	switch {
	case c.solicited && (c.requestID == "" || inResponseTo != c.requestID):
		return invalid("InResponseTo %q does not match this browser's request", inResponseTo)
	case !c.solicited && !c.unsolicitedAllowed:
		return fmt.Errorf("%w: no outstanding request for this browser%s", ErrUnsolicited, noCookieHint)
	case !c.solicited && inResponseTo != "":
		return fmt.Errorf("%w: InResponseTo %q names a request this browser did not start%s", ErrUnsolicited, inResponseTo, noCookieHint)
	}
	return nil
}

// validateRequestID replaces crewjam's Response-level InResponseTo check
// (ServiceProvider.ValidateRequestID) with ours. possibleRequestIDs holds
// the outstanding request's ID, or nothing for an unsolicited response.
func validateRequestID(allowUnsolicited bool) func(saml.Response, []string) error {
	return func(resp saml.Response, ids []string) error {
		c := checks{unsolicitedAllowed: allowUnsolicited}
		if len(ids) == 1 {
			c.solicited, c.requestID = true, ids[0]
		}
		return c.checkInResponseTo(resp.InResponseTo)
	}
}
