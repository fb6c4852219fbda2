package jit

import (
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// The fast path's reading: what crewjam's encoding/xml unmarshalling
// fills in and this package uses, read from the element goxmldsig
// verified, declining whatever encoding/xml could read otherwise.

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

// readIssuer reads an Issuer, which has a NameID's attributes and value.
func readIssuer(el *etree.Element) (saml.Issuer, error) {
	n, err := readNameID(el)
	if err != nil {
		return saml.Issuer{}, err
	}
	return saml.Issuer{NameQualifier: n.NameQualifier, SPNameQualifier: n.SPNameQualifier,
		Format: n.Format, SPProvidedID: n.SPProvidedID, Value: n.Value}, nil
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
			// The first Audience, then the others, as crewjam reads them.
			var ar saml.AudienceRestriction
			for i, au := range r.ChildElements() {
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
				if i == 0 {
					ar.Audience = saml.Audience{Value: v}
				} else {
					ar.AdditionalAudiences = append(ar.AdditionalAudiences, saml.Audience{Value: v})
				}
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
		case at.Space == "xmlns":
			// A prefix's declaration. A default namespace's (xmlns,
			// unprefixed) passes as an unprefixed attribute.
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
