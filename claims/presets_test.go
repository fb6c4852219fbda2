package claims_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

const (
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraObject = "4f1e6c3a-2b8d-4e71-9a55-0c3f2d1b7e90"
	entraIssuer = "https://sts.windows.net/" + entraTenant + "/"
)

// entraIdentity is what Entra ID asserts for a member user, plus extra.
func entraIdentity(extra ...claims.Attribute) *claims.Identity {
	return &claims.Identity{
		Issuer:       entraIssuer,
		NameID:       "ada@contoso.example",
		NameIDFormat: claims.NameIDFormatEmailAddress,
		Attributes: append([]claims.Attribute{
			attr(claims.ClaimEntraTenantID, entraTenant),
			attr(claims.ClaimEntraObjectID, entraObject),
			attr(claims.ClaimIdentityProvider, entraIssuer),
			attr("http://schemas.microsoft.com/claims/authnmethodsreferences", "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"),
		}, extra...),
	}
}

func TestPresets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		preset  string
		id      *claims.Identity
		key     userstore.Key
		profile userstore.Profile
	}{
		{
			preset: claims.PresetEntra,
			id: entraIdentity(
				attr(claims.ClaimDisplayName, "Ada Lovelace"),
				attr(claims.ClaimEmailAddress, "ada@contoso.example"),
				attr(claims.ClaimGivenName, "Ada"),
				attr(claims.ClaimSurname, "Lovelace"),
				attr(claims.ClaimName, "ada@contoso.example"),
				attr(claims.ClaimGroups, "07dd8a60-bf6d-4e17-8844-230b77145381", "a1b2c3d4-0000-0000-0000-000000000001"),
				attr(claims.ClaimRole, "Admin", "Reader"),
			),
			key: userstore.Key{Issuer: entraIssuer, Subject: entraTenant + "/" + entraObject},
			profile: userstore.Profile{
				Email:       "ada@contoso.example",
				DisplayName: "Ada Lovelace",
				GivenName:   "Ada",
				FamilyName:  "Lovelace",
				Groups:      []string{"07dd8a60-bf6d-4e17-8844-230b77145381", "a1b2c3d4-0000-0000-0000-000000000001"},
				Attributes: map[string][]string{
					claims.ClaimRole:             {"Admin", "Reader"},
					claims.ClaimIdentityProvider: {entraIssuer},
				},
			},
		},
		{
			preset: claims.PresetEntra + " groups overage, name as display name",
			id: entraIdentity(
				attr(claims.ClaimName, "ada@contoso.example"),
				attr(claims.ClaimGroupsLink, "https://graph.windows.net/"+entraTenant+"/users/"+entraObject+"/getMemberObjects"),
			),
			key: userstore.Key{Issuer: entraIssuer, Subject: entraTenant + "/" + entraObject},
			profile: userstore.Profile{
				DisplayName: "ada@contoso.example",
				Attributes: map[string][]string{
					claims.ClaimIdentityProvider: {entraIssuer},
					claims.ClaimGroupsLink:       {"https://graph.windows.net/" + entraTenant + "/users/" + entraObject + "/getMemberObjects"},
				},
			},
		},
		{
			preset: claims.PresetGeneric,
			id: &claims.Identity{
				Issuer:       "https://idp.example.edu/idp/shibboleth",
				NameID:       "Xy7+ab/9QwErTy0=",
				NameIDFormat: claims.NameIDFormatPersistent,
				Attributes: []claims.Attribute{
					{Name: claims.OIDMail, FriendlyName: "mail", NameFormat: uriFormat, Values: []string{"ada@example.edu"}},
					{Name: claims.OIDDisplayName, FriendlyName: "displayName", NameFormat: uriFormat, Values: []string{"Ada Lovelace"}},
					{Name: claims.OIDGivenName, FriendlyName: "givenName", NameFormat: uriFormat, Values: []string{"Ada"}},
					{Name: claims.OIDSurname, FriendlyName: "sn", NameFormat: uriFormat, Values: []string{"Lovelace"}},
					{Name: claims.OIDIsMemberOf, FriendlyName: "isMemberOf", NameFormat: uriFormat, Values: []string{"cn=staff,ou=groups,dc=example,dc=edu", "cn=math,ou=groups,dc=example,dc=edu"}},
					{Name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", FriendlyName: "eduPersonAffiliation", NameFormat: uriFormat, Values: []string{"staff"}},
				},
			},
			key: userstore.Key{Issuer: "https://idp.example.edu/idp/shibboleth", Subject: "Xy7+ab/9QwErTy0="},
			profile: userstore.Profile{
				Email:       "ada@example.edu",
				DisplayName: "Ada Lovelace",
				GivenName:   "Ada",
				FamilyName:  "Lovelace",
				Groups:      []string{"cn=staff,ou=groups,dc=example,dc=edu", "cn=math,ou=groups,dc=example,dc=edu"},
			},
		},
		{
			preset: claims.PresetGeneric + " plain names",
			id: persistent(
				attr("mail", "ada@example.com"),
				attr("cn", "Ada Lovelace"),
				attr("givenName", "Ada"),
				attr("surname", "Lovelace"),
				attr("memberOf", "engineering"),
			),
			key:     userstore.Key{Issuer: issuer, Subject: "p-123"},
			profile: userstore.Profile{Email: "ada@example.com", DisplayName: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace", Groups: []string{"engineering"}},
		},
		{
			preset: claims.PresetOkta,
			id: &claims.Identity{
				Issuer:       "http://www.okta.com/exk1a2b3c4d5E6f7g8h9",
				NameID:       "00u1a2b3c4d5E6f7g8h9",
				NameIDFormat: claims.NameIDFormatPersistent,
				Attributes: []claims.Attribute{
					{Name: "email", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", Values: []string{"ada@example.com"}},
					{Name: "firstName", Values: []string{"Ada"}},
					{Name: "lastName", Values: []string{"Lovelace"}},
					{Name: "displayName", Values: []string{"Ada Lovelace"}},
					{Name: "login", Values: []string{"ada@example.com"}},
					{Name: "groups", Values: []string{"Everyone", "Engineering"}},
				},
			},
			key:     userstore.Key{Issuer: "http://www.okta.com/exk1a2b3c4d5E6f7g8h9", Subject: "00u1a2b3c4d5E6f7g8h9"},
			profile: userstore.Profile{Email: "ada@example.com", DisplayName: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace", Groups: []string{"Everyone", "Engineering"}},
		},
		{
			preset: claims.PresetADFS,
			id: &claims.Identity{
				Issuer:       "http://adfs.contoso.example/adfs/services/trust",
				NameID:       "q2VhZGEtb2JqZWN0LWd1aWQ=",
				NameIDFormat: claims.NameIDFormatPersistent,
				Attributes: []claims.Attribute{
					attr(claims.ClaimEmailAddress, "ada@contoso.example"),
					attr(claims.ClaimGivenName, "Ada"),
					attr(claims.ClaimSurname, "Lovelace"),
					attr(claims.ClaimName, "CONTOSO\\ada"),
					attr(claims.ClaimCommonName, "Ada Lovelace"),
					attr(claims.ClaimUPN, "ada@contoso.example"),
					attr(claims.ClaimADFSGroup, "Domain Users", "Engineering"),
					attr(claims.ClaimRole, "AppAdmin"),
				},
			},
			key: userstore.Key{Issuer: "http://adfs.contoso.example/adfs/services/trust", Subject: "q2VhZGEtb2JqZWN0LWd1aWQ="},
			profile: userstore.Profile{
				Email:       "ada@contoso.example",
				DisplayName: "Ada Lovelace",
				GivenName:   "Ada",
				FamilyName:  "Lovelace",
				Groups:      []string{"Domain Users", "Engineering"},
				Attributes: map[string][]string{
					claims.ClaimRole: {"AppAdmin"},
					claims.ClaimUPN:  {"ada@contoso.example"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			t.Parallel()
			name, _, _ := cut(tt.preset)
			m, err := claims.Preset(name)
			require.NoError(t, err)
			key, p, err := m.Map(tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.key, key)
			assert.Equal(t, tt.profile, p)
		})
	}
}

// cut splits a test name at its first space.
func cut(s string) (before, after string, found bool) {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestEntraSubjectAndTenantRequired(t *testing.T) {
	t.Parallel()
	noObject := entraIdentity()
	noObject.Attributes = noObject.Attributes[:1] // tenantid only
	_, _, err := claims.Entra().Map(noObject)
	var missing *claims.MissingAttributeError
	require.ErrorAs(t, err, &missing)
	assert.Equal(t, claims.FieldSubject, missing.Field)
	assert.Equal(t, []string{claims.ClaimEntraObjectID}, missing.Names)

	noTenant := entraIdentity()
	noTenant.Attributes = noTenant.Attributes[1:] // objectidentifier first
	_, _, err = claims.Entra().Map(noTenant)
	require.ErrorAs(t, err, &missing)
	assert.Equal(t, claims.FieldSubjectScope, missing.Field)

	// A duplicated objectidentifier, for example one in a second
	// AttributeStatement, is refused.
	_, _, err = claims.Entra().Map(entraIdentity(attr(claims.ClaimEntraObjectID, entraObject)))
	require.ErrorIs(t, err, claims.ErrAmbiguousAttribute)

	// The email-format NameID Entra sends is not looked at.
	key, _, err := claims.Entra().Map(entraIdentity())
	require.NoError(t, err)
	assert.Equal(t, entraTenant+"/"+entraObject, key.Subject)
}

func TestNameIDPresetsRefuseUnsafeNameIDs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{claims.PresetGeneric, claims.PresetOkta, claims.PresetADFS} {
		m, err := claims.Preset(name)
		require.NoError(t, err)
		_, _, err = m.Map(&claims.Identity{Issuer: issuer, NameID: "_t", NameIDFormat: claims.NameIDFormatTransient})
		assert.ErrorIs(t, err, claims.ErrTransientNameID, name)
		_, _, err = m.Map(&claims.Identity{Issuer: issuer, NameID: "a@example.com", NameIDFormat: claims.NameIDFormatEmailAddress})
		assert.ErrorIs(t, err, claims.ErrEmailNameID, name)
	}
}

func TestPreset(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"adfs", "entra", "generic", "okta"}, claims.PresetNames())

	for _, tt := range []struct {
		name string
		want claims.Mapping
	}{
		{"generic", claims.Generic()},
		{"entra", claims.Entra()},
		{"okta", claims.Okta()},
		{"adfs", claims.ADFS()},
	} {
		got, err := claims.Preset(tt.name)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}

	for _, name := range []string{"", "Entra", "azure", "entra "} {
		_, err := claims.Preset(name)
		require.ErrorIs(t, err, claims.ErrUnknownPreset, name)
		assert.Contains(t, err.Error(), "unknown preset")
	}

	// Presets share no state: changing one does not change the next.
	m := claims.Entra()
	m.Keep[0] = "changed"
	m.Subject.Names[0] = "changed"
	assert.Equal(t, claims.ClaimRole, claims.Entra().Keep[0])
	assert.Equal(t, claims.ClaimEntraObjectID, claims.Entra().Subject.Names[0])
	names := claims.PresetNames()
	names[0] = "changed"
	assert.Equal(t, "adfs", claims.PresetNames()[0])
}
