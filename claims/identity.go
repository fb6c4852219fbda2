package claims

import (
	"fmt"
	"slices"
	"time"

	"github.com/crewjam/saml"
)

// Attribute is one asserted attribute.
type Attribute struct {
	// Name is the attribute's Name: a URI or OID such as
	// "http://schemas.microsoft.com/identity/claims/objectidentifier" or
	// "urn:oid:0.9.2342.19200300.100.1.3". It is the attribute's identity.
	Name string
	// FriendlyName is the optional human-readable name. It is not unique
	// and is used only as an alias when no attribute has the requested Name.
	FriendlyName string
	// NameFormat is the optional format of Name, for example
	// "urn:oasis:names:tc:SAML:2.0:attrname-format:uri".
	NameFormat string
	// Values are the attribute's values in document order, copied exactly.
	// A value that is itself a NameID element (as in eduPersonTargetedID)
	// is represented by the NameID's value.
	Values []string
}

// Identity is what a validated assertion says about a person.
type Identity struct {
	// Issuer is the Assertion/Issuer value, copied exactly.
	Issuer string
	// NameID is the Subject/NameID value, copied exactly; empty when the
	// assertion has none.
	NameID string
	// NameIDFormat is the NameID's Format attribute, for example
	// [NameIDFormatPersistent]; empty when absent.
	NameIDFormat string
	// NameQualifier is the NameID's NameQualifier attribute.
	NameQualifier string
	// SPNameQualifier is the NameID's SPNameQualifier attribute.
	SPNameQualifier string
	// SessionIndex is from the first AuthnStatement.
	SessionIndex string
	// AuthnInstant is from the first AuthnStatement; zero when there is
	// none.
	AuthnInstant time.Time
	// SessionNotOnOrAfter is from the first AuthnStatement; zero when
	// absent. A session built on this sign-in must not outlive it.
	SessionNotOnOrAfter time.Time
	// Attributes are the attributes of all AttributeStatements, in document
	// order.
	Attributes []Attribute
}

// FromAssertion builds an Identity from an assertion that has ALREADY been
// validated (signature, issuer, audience, subject confirmation, time window,
// replay) by the caller. It checks nothing itself and copies every value
// exactly.
//
// It does not panic on any input. A nil assertion yields an error wrapping
// [ErrInvalidAssertion]; a missing Subject or NameID leaves the NameID fields
// empty, and a missing AuthnStatement leaves the session fields zero. Whether
// such an identity is usable is decided by the [Mapper].
//
// Only the first AuthnStatement is read: SAML 2.0 Profiles §4.1.4.2 requires
// at least one, and identity providers send exactly one.
func FromAssertion(a *saml.Assertion) (*Identity, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil assertion", ErrInvalidAssertion)
	}
	id := &Identity{Issuer: a.Issuer.Value}
	if a.Subject != nil && a.Subject.NameID != nil {
		n := a.Subject.NameID
		id.NameID = n.Value
		id.NameIDFormat = n.Format
		id.NameQualifier = n.NameQualifier
		id.SPNameQualifier = n.SPNameQualifier
	}
	if len(a.AuthnStatements) > 0 {
		s := a.AuthnStatements[0]
		id.SessionIndex = s.SessionIndex
		id.AuthnInstant = s.AuthnInstant
		if s.SessionNotOnOrAfter != nil {
			id.SessionNotOnOrAfter = *s.SessionNotOnOrAfter
		}
	}
	n := 0
	for _, st := range a.AttributeStatements {
		n += len(st.Attributes)
	}
	if n == 0 {
		return id, nil
	}
	id.Attributes = make([]Attribute, 0, n)
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			vals := make([]string, len(at.Values))
			for i, v := range at.Values {
				if v.NameID != nil {
					vals[i] = v.NameID.Value
				} else {
					vals[i] = v.Value
				}
			}
			id.Attributes = append(id.Attributes, Attribute{
				Name:         at.Name,
				FriendlyName: at.FriendlyName,
				NameFormat:   at.NameFormat,
				Values:       vals,
			})
		}
	}
	return id, nil
}

// Values returns the values of the attribute whose Name equals name exactly;
// if no attribute has that Name, the first whose FriendlyName equals name
// (FriendlyName is kept as an alias). It returns nil when absent, and also for
// an empty name. When several attributes match, only the first is used; use
// [Identity.Find] to detect duplicates.
//
// The returned slice is a copy.
func (id *Identity) Values(name string) []string {
	attrs := id.find(name)
	if len(attrs) == 0 {
		return nil
	}
	return slices.Clone(attrs[0].Values)
}

// Find returns all Attribute elements matching name: those whose Name equals
// name exactly or, if there are none, those whose FriendlyName equals name. It
// returns nil when none match, and for an empty name. Callers use it to detect
// an attribute asserted more than once.
//
// The returned attributes are copies.
func (id *Identity) Find(name string) []Attribute {
	attrs := id.find(name)
	if len(attrs) == 0 {
		return nil
	}
	out := make([]Attribute, len(attrs))
	for i, a := range attrs {
		out[i] = a
		out[i].Values = slices.Clone(a.Values)
	}
	return out
}

// find is Find without copying the values. It is linear in the number of
// attributes.
func (id *Identity) find(name string) []Attribute {
	if id == nil || name == "" {
		return nil
	}
	var out []Attribute
	for _, a := range id.Attributes {
		if a.Name == name {
			out = append(out, a)
		}
	}
	if out != nil {
		return out
	}
	for _, a := range id.Attributes {
		if a.FriendlyName == name {
			out = append(out, a)
		}
	}
	return out
}

// GroupsOverage reports whether the IdP omitted the user's groups because
// there were too many, and returns the overage claim's value. Entra ID sends
// at most 150 groups in a SAML token; beyond that it sends no groups claim at
// all and [ClaimGroupsLink] instead, whose value is a Microsoft Graph URL of
// the user's memberships. An identity with an overage has unknown groups, not
// none. The claim is matched by Name only.
func (id *Identity) GroupsOverage() (link string, ok bool) {
	if id == nil {
		return "", false
	}
	for _, a := range id.Attributes {
		if a.Name == ClaimGroupsLink {
			if len(a.Values) > 0 {
				link = a.Values[0]
			}
			return link, true
		}
	}
	return "", false
}
