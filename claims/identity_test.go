package claims_test

import (
	"encoding/xml"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
)

const uriFormat = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

// attr builds an Attribute with the given Name and values.
func attr(name string, values ...string) claims.Attribute {
	return claims.Attribute{Name: name, Values: values}
}

// samlAttr builds a saml.Attribute with the given names and values.
func samlAttr(name, friendly string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, FriendlyName: friendly, NameFormat: uriFormat}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

func TestFromAssertion(t *testing.T) {
	t.Parallel()
	authn := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	notAfter := authn.Add(8 * time.Hour)
	a := &saml.Assertion{
		ID:     "_a1",
		Issuer: saml.Issuer{Value: "https://idp.example.com/"},
		Subject: &saml.Subject{NameID: &saml.NameID{
			Value:           "AbC+123=",
			Format:          claims.NameIDFormatPersistent,
			NameQualifier:   "https://idp.example.com/",
			SPNameQualifier: "https://sp.example.com/",
		}},
		AuthnStatements: []saml.AuthnStatement{
			{AuthnInstant: authn, SessionIndex: "_s1", SessionNotOnOrAfter: &notAfter},
			{AuthnInstant: authn.Add(time.Hour), SessionIndex: "_s2"},
		},
		AttributeStatements: []saml.AttributeStatement{
			{Attributes: []saml.Attribute{
				samlAttr(claims.OIDMail, "mail", "ada@example.com"),
				samlAttr("groups", "", "g1", "g2"),
			}},
			{Attributes: []saml.Attribute{
				samlAttr(claims.OIDDisplayName, "displayName", " Ada  Lovelace "),
				{
					Name:   "urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
					Values: []saml.AttributeValue{{NameID: &saml.NameID{Value: "targeted-1", Format: claims.NameIDFormatPersistent}}},
				},
				samlAttr("empty", ""),
			}},
		},
	}

	id, err := claims.FromAssertion(a)
	require.NoError(t, err)
	assert.Equal(t, &claims.Identity{
		Issuer:              "https://idp.example.com/",
		NameID:              "AbC+123=",
		NameIDFormat:        claims.NameIDFormatPersistent,
		NameQualifier:       "https://idp.example.com/",
		SPNameQualifier:     "https://sp.example.com/",
		SessionIndex:        "_s1",
		AuthnInstant:        authn,
		SessionNotOnOrAfter: notAfter,
		Attributes: []claims.Attribute{
			{Name: claims.OIDMail, FriendlyName: "mail", NameFormat: uriFormat, Values: []string{"ada@example.com"}},
			{Name: "groups", NameFormat: uriFormat, Values: []string{"g1", "g2"}},
			{Name: claims.OIDDisplayName, FriendlyName: "displayName", NameFormat: uriFormat, Values: []string{" Ada  Lovelace "}},
			{Name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.10", Values: []string{"targeted-1"}},
			{Name: "empty", NameFormat: uriFormat, Values: []string{}},
		},
	}, id)

	// Name lookup, FriendlyName alias, absence.
	assert.Equal(t, []string{"ada@example.com"}, id.Values(claims.OIDMail))
	assert.Equal(t, []string{"ada@example.com"}, id.Values("mail"))
	assert.Equal(t, []string{" Ada  Lovelace "}, id.Values("displayName"))
	assert.Nil(t, id.Values("MAIL"), "names are matched exactly")
	assert.Nil(t, id.Values("nope"))
	assert.Nil(t, id.Values(""))
	assert.NotNil(t, id.Values("empty"), "present without values is an empty, non-nil slice")
	assert.Empty(t, id.Values("empty"))

	// Values returns a copy.
	v := id.Values("groups")
	v[0] = "changed"
	assert.Equal(t, []string{"g1", "g2"}, id.Values("groups"))
}

func TestFromAssertionNoPanic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a    *saml.Assertion
	}{
		{"zero", &saml.Assertion{}},
		{"nil subject", &saml.Assertion{Issuer: saml.Issuer{Value: "i"}}},
		{"nil NameID", &saml.Assertion{Subject: &saml.Subject{}}},
		{"no AuthnStatement", &saml.Assertion{Subject: &saml.Subject{NameID: &saml.NameID{Value: "n"}}}},
		{"empty AttributeStatement", &saml.Assertion{AttributeStatements: []saml.AttributeStatement{{}}}},
		{"attribute without values", &saml.Assertion{AttributeStatements: []saml.AttributeStatement{{Attributes: []saml.Attribute{{Name: "a"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := claims.FromAssertion(tt.a)
			require.NoError(t, err)
			require.NotNil(t, id)
			assert.Equal(t, tt.a.Issuer.Value, id.Issuer)
			if tt.a.Subject == nil || tt.a.Subject.NameID == nil {
				assert.Empty(t, id.NameID)
				assert.Empty(t, id.NameIDFormat)
			}
			assert.True(t, id.SessionNotOnOrAfter.IsZero())
			for _, m := range []claims.Mapping{claims.Generic(), claims.Entra(), claims.Okta(), claims.ADFS()} {
				_, _, err := m.Map(id)
				assert.Error(t, err)
			}
		})
	}
}

func TestFromAssertionNil(t *testing.T) {
	t.Parallel()
	id, err := claims.FromAssertion(nil)
	require.ErrorIs(t, err, claims.ErrInvalidAssertion)
	assert.Nil(t, id)
}

func TestFromAssertionXML(t *testing.T) {
	t.Parallel()
	var a saml.Assertion
	require.NoError(t, xml.Unmarshal([]byte(seedAssertionXML), &a))
	id, err := claims.FromAssertion(&a)
	require.NoError(t, err)

	assert.Equal(t, "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/", id.Issuer)
	assert.Equal(t, "ada@contoso.example", id.NameID)
	assert.Equal(t, claims.NameIDFormatEmailAddress, id.NameIDFormat)
	assert.Equal(t, "_sess-1", id.SessionIndex)
	assert.Equal(t, time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC), id.AuthnInstant.UTC())
	assert.Equal(t, time.Date(2025, 3, 1, 17, 30, 0, 0, time.UTC), id.SessionNotOnOrAfter.UTC())
	assert.Equal(t, []string{"00000000-0000-0000-0000-0000000000a1"}, id.Values(claims.ClaimEntraObjectID))
	assert.Equal(t, []string{"g-1", "g-2", "g-1"}, id.Values(claims.ClaimGroups))
	assert.Equal(t, []string{"ada@contoso.example"}, id.Values("mail"), "FriendlyName alias")
	require.Len(t, id.Attributes, 9)
	assert.Equal(t, claims.ClaimEntraTenantID, id.Attributes[0].Name, "document order")

	key, p, err := claims.Entra().Map(id)
	require.NoError(t, err)
	assert.Equal(t, "72f988bf-86f1-41af-91ab-2d7cd011db47/00000000-0000-0000-0000-0000000000a1", key.Subject)
	assert.Equal(t, []string{"g-1", "g-2"}, p.Groups)
}

func TestFind(t *testing.T) {
	t.Parallel()
	id := &claims.Identity{Attributes: []claims.Attribute{
		{Name: "urn:oid:1", FriendlyName: "uid", Values: []string{"a"}},
		{Name: "uid", Values: []string{"b"}},
		{Name: "urn:oid:2", FriendlyName: "mail", Values: []string{"m1"}},
		{Name: "urn:oid:3", FriendlyName: "mail", Values: []string{"m2"}},
		{Name: "dup", Values: []string{"x"}},
		{Name: "dup", Values: []string{"y"}},
	}}

	tests := []struct {
		name string
		want []string // the first value of each match
	}{
		{"uid", []string{"b"}}, // Name beats FriendlyName
		{"mail", []string{"m1", "m2"}},
		{"dup", []string{"x", "y"}},
		{"urn:oid:1", []string{"a"}},
		{"absent", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := id.Find(tt.name)
			var firsts []string
			for _, a := range got {
				firsts = append(firsts, a.Values[0])
			}
			assert.Equal(t, tt.want, firsts)
			if tt.want == nil {
				assert.Nil(t, got)
				assert.Nil(t, id.Values(tt.name))
			} else {
				assert.Equal(t, []string{tt.want[0]}, id.Values(tt.name))
			}
		})
	}

	// Find returns copies.
	got := id.Find("dup")
	got[0].Values[0] = "changed"
	assert.Equal(t, []string{"x"}, id.Values("dup"))

	// A nil identity has no attributes.
	var nilID *claims.Identity
	assert.Nil(t, nilID.Find("a"))
	assert.Nil(t, nilID.Values("a"))
}
