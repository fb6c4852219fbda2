package claims_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// seedAssertionXML is an Entra ID-shaped assertion, written for these tests
// after the examples in Microsoft's SAML token claims reference. It is not
// signed: this package reads assertions that were validated elsewhere.
const seedAssertionXML = `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_d71a3a8e-9fcc-45c9-9a02-9ec2a8ebb401" IssueInstant="2025-03-01T09:30:00.000Z" Version="2.0">
  <Issuer>https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/</Issuer>
  <Subject>
    <NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">ada@contoso.example</NameID>
    <SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
      <SubjectConfirmationData InResponseTo="_req1" NotOnOrAfter="2025-03-01T09:35:00.000Z" Recipient="https://sp.example.com/saml/acs"/>
    </SubjectConfirmation>
  </Subject>
  <Conditions NotBefore="2025-03-01T09:25:00.000Z" NotOnOrAfter="2025-03-01T10:30:00.000Z">
    <AudienceRestriction><Audience>https://sp.example.com/saml/metadata</Audience></AudienceRestriction>
  </Conditions>
  <AttributeStatement>
    <Attribute Name="http://schemas.microsoft.com/identity/claims/tenantid"><AttributeValue>72f988bf-86f1-41af-91ab-2d7cd011db47</AttributeValue></Attribute>
    <Attribute Name="http://schemas.microsoft.com/identity/claims/objectidentifier"><AttributeValue>00000000-0000-0000-0000-0000000000a1</AttributeValue></Attribute>
    <Attribute Name="http://schemas.microsoft.com/identity/claims/identityprovider"><AttributeValue>https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/</AttributeValue></Attribute>
    <Attribute Name="http://schemas.microsoft.com/identity/claims/displayname"><AttributeValue>Ada Lovelace</AttributeValue></Attribute>
    <Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress" FriendlyName="mail"><AttributeValue>ada@contoso.example</AttributeValue></Attribute>
    <Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"><AttributeValue>Ada</AttributeValue></Attribute>
    <Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"><AttributeValue>Lovelace</AttributeValue></Attribute>
    <Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"><AttributeValue>ada@contoso.example</AttributeValue></Attribute>
    <Attribute Name="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"><AttributeValue>g-1</AttributeValue><AttributeValue>g-2</AttributeValue><AttributeValue>g-1</AttributeValue></Attribute>
  </AttributeStatement>
  <AuthnStatement AuthnInstant="2025-03-01T09:30:00.000Z" SessionIndex="_sess-1" SessionNotOnOrAfter="2025-03-01T17:30:00.000Z">
    <AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</AuthnContextClassRef></AuthnContext>
  </AuthnStatement>
</Assertion>`

// presets returns every preset with its name.
func presets() map[string]claims.Mapping {
	out := make(map[string]claims.Mapping)
	for _, n := range claims.PresetNames() {
		m, err := claims.Preset(n)
		if err != nil {
			panic(err)
		}
		out[n] = m
	}
	return out
}

// sentinels returns every error the package may wrap.
func sentinels() []error {
	return []error{
		claims.ErrInvalidAssertion,
		claims.ErrNoIssuer,
		claims.ErrMissingAttribute,
		claims.ErrAmbiguousAttribute,
		claims.ErrTooManyValues,
		claims.ErrEmptySubject,
		claims.ErrInvalidScope,
		claims.ErrTransientNameID,
		claims.ErrEmailNameID,
	}
}

// checkMapped checks the invariants of a Map result.
func checkMapped(t *testing.T, name string, id *claims.Identity, key userstore.Key, p userstore.Profile, err error) {
	t.Helper()
	if err != nil {
		known := false
		for _, s := range sentinels() {
			if errors.Is(err, s) {
				known = true
			}
		}
		if !known {
			t.Fatalf("%s: error wraps no sentinel: %v", name, err)
		}
		if key != (userstore.Key{}) {
			t.Fatalf("%s: non-zero key %v with error %v", name, key, err)
		}
		return
	}
	if strings.TrimSpace(key.Issuer) == "" || strings.TrimSpace(key.Subject) == "" {
		t.Fatalf("%s: blank key %v", name, key)
	}
	if key.Issuer != id.Issuer {
		t.Fatalf("%s: issuer %q, want %q", name, key.Issuer, id.Issuer)
	}
	// The subject is derived verbatim from the inputs.
	var want string
	switch name {
	case claims.PresetEntra:
		tid := id.Find(claims.ClaimEntraTenantID)
		oid := id.Find(claims.ClaimEntraObjectID)
		if len(tid) != 1 || len(tid[0].Values) != 1 || len(oid) != 1 || len(oid[0].Values) != 1 {
			t.Fatalf("%s: mapped an ambiguous identity: %v", name, key)
		}
		want = tid[0].Values[0] + "/" + oid[0].Values[0]
	default:
		want = id.NameID
		switch id.NameIDFormat {
		case claims.NameIDFormatTransient, claims.NameIDFormatEmailAddress, "urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress":
			t.Fatalf("%s: keyed on a %q NameID", name, id.NameIDFormat)
		}
	}
	if key.Subject != want {
		t.Fatalf("%s: subject %q, want %q", name, key.Subject, want)
	}
	seen := make(map[string]bool)
	for _, g := range p.Groups {
		if g == "" || seen[g] {
			t.Fatalf("%s: groups %q contain an empty or duplicate value", name, p.Groups)
		}
		seen[g] = true
	}
}

func FuzzMap(f *testing.F) {
	const (
		tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		oid = "00000000-0000-0000-0000-0000000000a1"
	)
	f.Add("https://idp.example.com/", "abc", claims.NameIDFormatPersistent, tid, oid, claims.ClaimGroups, "g1\ng2\ng1", false)
	f.Add("https://idp.example.com/", "abc", claims.NameIDFormatTransient, tid, oid, "groups", "a\n\nb", true)
	f.Add("https://idp.example.com/", "ada@example.com", claims.NameIDFormatEmailAddress, "", oid, "email", "x@example.com\ny@example.com", false)
	f.Add(" ", "\t", "", "a/b", " ", claims.ClaimEntraObjectID, "second", false)
	f.Add("i", "K", claims.NameIDFormatUnspecified, "\u212A", "ſ", claims.ClaimEntraTenantID, "", true)
	f.Add("i", "n", "", tid, oid, "mail", "m\nm", true)
	f.Add("i", "n", claims.NameIDFormatEntity, tid, oid, claims.ClaimRole, "r1\nr1\n", false)

	all := presets()
	f.Fuzz(func(t *testing.T, issuer, nameID, format, tenant, object, name, values string, friendly bool) {
		extra := claims.Attribute{Name: name, Values: strings.Split(values, "\n")}
		if friendly {
			extra = claims.Attribute{Name: "urn:fuzz", FriendlyName: name, Values: extra.Values}
		}
		id := &claims.Identity{
			Issuer:       issuer,
			NameID:       nameID,
			NameIDFormat: format,
			Attributes: []claims.Attribute{
				attr(claims.ClaimEntraTenantID, tenant),
				attr(claims.ClaimEntraObjectID, object),
				extra,
			},
		}
		for pn, m := range all {
			key, p, err := m.Map(id)
			checkMapped(t, pn, id, key, p, err)
		}
	})
}

func FuzzFromAssertion(f *testing.F) {
	f.Add([]byte(seedAssertionXML))
	f.Add([]byte(`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>i</Issuer></Assertion>`))
	f.Add([]byte(`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>i</Issuer><Subject/><AuthnStatement/></Assertion>`))
	f.Add([]byte(`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>i</Issuer><Subject><NameID>n</NameID></Subject>` +
		`<AttributeStatement><Attribute Name="groups"><AttributeValue><NameID>x</NameID></AttributeValue><AttributeValue/></Attribute></AttributeStatement></Assertion>`))
	f.Add([]byte(`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><AuthnStatement AuthnInstant="not a time"/></Assertion>`))
	f.Add([]byte(`<x/>`))
	f.Add([]byte{})

	all := presets()
	f.Fuzz(func(t *testing.T, data []byte) {
		var a saml.Assertion
		if err := xml.Unmarshal(data, &a); err != nil {
			return
		}
		id, err := claims.FromAssertion(&a)
		if err != nil {
			t.Fatalf("FromAssertion: %v", err)
		}
		if id.Issuer != a.Issuer.Value {
			t.Fatalf("issuer %q, want %q", id.Issuer, a.Issuer.Value)
		}
		for pn, m := range all {
			key, p, err := m.Map(id)
			checkMapped(t, pn, id, key, p, err)
		}
	})
}
