package jittest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/jit/jittest/internal/xmlsign"
)

// Request holds the parameters of a response: what an AuthnRequest names, or
// what an IdP-initiated sign-in is configured with.
type Request struct {
	// ID is the AuthnRequest's ID, written as InResponseTo in the Response
	// and in SubjectConfirmationData; empty for an IdP-initiated response.
	ID string
	// SPEntityID is the service provider's entity ID (the AuthnRequest's
	// Issuer), written as Audience and NameID/@SPNameQualifier.
	SPEntityID string
	// ACSURL is the service provider's assertion consumer service URL,
	// written as Response/@Destination and SubjectConfirmationData/@Recipient,
	// and where the form is posted.
	ACSURL string
	// RelayState is returned with the response unchanged.
	RelayState string
}

// ResponseFor builds a response for the user with the given NameID, signed
// as [Options] say, applying the hooks set with [IdP.SetMutateAssertion],
// [IdP.SetMutateAssertionElement] and [IdP.SetMutateResponse]. It is the building block of
// the SSO endpoint, [IdP.Respond] and [IdP.Unsolicited]. It returns an error
// wrapping [ErrUnknownUser] if no such user was added.
func (p *IdP) ResponseFor(req Request, nameID string) (Form, error) {
	if req.SPEntityID == "" {
		return Form{}, errors.New("jittest: Request.SPEntityID is empty")
	}
	if req.ACSURL == "" {
		return Form{}, errors.New("jittest: Request.ACSURL is empty")
	}
	p.mu.Lock()
	u, ok := p.users[nameID]
	mutateAssertion, mutateAssertionEl, mutateResponse := p.mutateAssertion, p.mutateAssertionElement, p.mutateResponse
	p.mu.Unlock()
	if !ok {
		return Form{}, fmt.Errorf("%w %q", ErrUnknownUser, nameID)
	}

	now := p.opts.Now().UTC().Truncate(time.Millisecond)
	assertion := p.assertion(req, u, now)
	if mutateAssertion != nil {
		mutateAssertion(assertion)
	}
	if s := assertion.Subject; s != nil && s.NameID != nil {
		for _, st := range assertion.AuthnStatements {
			p.recordSession(Session{NameID: s.NameID.Value, SessionIndex: st.SessionIndex, SPEntityID: req.SPEntityID})
		}
	}
	assertionEl := assertion.Element()
	if mutateAssertionEl != nil {
		mutateAssertionEl(assertionEl)
	}
	if !p.opts.UnsignedAssertion {
		var err error
		if assertionEl, err = p.sign(assertionEl); err != nil {
			return Form{}, err
		}
	}

	response := &saml.Response{
		ID:           newID(),
		InResponseTo: req.ID,
		Version:      "2.0",
		IssueInstant: now,
		Destination:  req.ACSURL,
		Issuer:       &saml.Issuer{Format: nameIDFormatEntity, Value: p.entityID},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: statusSuccess}},
	}
	responseEl := response.Element()
	responseEl.AddChild(assertionEl)
	if err := p.encryptFor(req.SPEntityID, responseEl); err != nil {
		return Form{}, err
	}
	if p.opts.SignResponse {
		var err error
		if responseEl, err = p.sign(responseEl); err != nil {
			return Form{}, err
		}
	}
	declareXS(responseEl)
	if mutateResponse != nil {
		mutateResponse(responseEl)
	}

	doc := etree.NewDocument()
	doc.SetRoot(responseEl)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return Form{}, fmt.Errorf("jittest: serializing response: %w", err)
	}
	return Form{
		ACS:          req.ACSURL,
		SAMLResponse: base64.StdEncoding.EncodeToString(buf),
		RelayState:   req.RelayState,
		Origin:       p.URL(),
	}, nil
}

// Unsolicited builds an IdP-initiated response (no InResponseTo) for the
// service provider with the given entity ID (the audience) and ACS URL.
func (p *IdP) Unsolicited(spEntityID, acsURL, nameID, relayState string) (Form, error) {
	return p.ResponseFor(Request{SPEntityID: spEntityID, ACSURL: acsURL, RelayState: relayState}, nameID)
}

// assertion builds the unsigned assertion for u as a real IdP would.
func (p *IdP) assertion(req Request, u User, now time.Time) *saml.Assertion {
	format := u.NameIDFormat
	if format == "" {
		format = NameIDFormatPersistent
	}
	notOnOrAfter := now.Add(p.opts.AssertionLifetime)
	authn := saml.AuthnStatement{
		AuthnInstant: now,
		SessionIndex: newID(),
		AuthnContext: saml.AuthnContext{
			AuthnContextClassRef: &saml.AuthnContextClassRef{Value: passwordProtectedTransp},
		},
	}
	if p.opts.SessionLifetime > 0 {
		t := now.Add(p.opts.SessionLifetime)
		authn.SessionNotOnOrAfter = &t
	}
	a := &saml.Assertion{
		ID:           newID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: nameIDFormatEntity, Value: p.entityID},
		Subject: &saml.Subject{
			NameID: &saml.NameID{
				Format:          format,
				SPNameQualifier: req.SPEntityID,
				Value:           u.NameID,
			},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearerMethod,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: req.ID,
					NotOnOrAfter: notOnOrAfter,
					Recipient:    req.ACSURL,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:    now,
			NotOnOrAfter: notOnOrAfter,
			AudienceRestrictions: []saml.AudienceRestriction{{
				Audience: saml.Audience{Value: req.SPEntityID},
			}},
		},
		AuthnStatements: []saml.AuthnStatement{authn},
	}
	if attrs := attributes(u); len(attrs) > 0 {
		a.AttributeStatements = []saml.AttributeStatement{{Attributes: attrs}}
	}
	return a
}

// attributes returns u's attributes sorted by Name.
func attributes(u User) []saml.Attribute {
	names := slices.Sorted(maps.Keys(u.Attributes))
	attrs := make([]saml.Attribute, 0, len(names))
	for _, name := range names {
		attr := saml.Attribute{
			FriendlyName: u.FriendlyNames[name],
			Name:         name,
			NameFormat:   attrNameFormatURI,
		}
		for _, v := range u.Attributes[name] {
			attr.Values = append(attr.Values, saml.AttributeValue{Type: "xs:string", Value: v})
		}
		attrs = append(attrs, attr)
	}
	return attrs
}

// declareXS declares the xs prefix on every AttributeValue whose xsi:type
// names it, as Shibboleth does, so that the value's QName is bound wherever
// the assertion goes. Signing canonicalizes elements in place, which drops
// such declarations (xs is not visibly used), so this runs after signing;
// the signature does not cover them either way.
func declareXS(assertion *etree.Element) {
	for _, v := range assertion.FindElements(".//AttributeValue") {
		if strings.HasPrefix(v.SelectAttrValue("xsi:type", ""), "xs:") && v.SelectAttr("xmlns:xs") == nil {
			v.CreateAttr("xmlns:xs", "http://www.w3.org/2001/XMLSchema")
		}
	}
}

func (p *IdP) signingContext() (*dsig.SigningContext, error) {
	ctx, err := xmlsign.Context(p.key, p.cert, p.opts.SignatureMethod)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	return ctx, nil
}

// sign returns a copy of el with an enveloped signature placed right after
// its Issuer, where the SAML schema wants it.
func (p *IdP) sign(el *etree.Element) (*etree.Element, error) {
	ctx, err := p.signingContext()
	if err != nil {
		return nil, err
	}
	signed, err := xmlsign.Enveloped(ctx, el)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	return signed, nil
}

// newID returns a fresh XML ID: "_" and 40 hex digits.
func newID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}
