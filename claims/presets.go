package claims

import (
	"fmt"
	"slices"
)

// NameID formats (SAML 2.0 Core §8.3). Only the first five are treated
// specially; see [Mapping].
const (
	// NameIDFormatPersistent is an opaque, pairwise identifier that the
	// identity provider keeps stable for the person and this service
	// provider. It is the format to request.
	NameIDFormatPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	// NameIDFormatTransient is a one-time identifier that changes at every
	// sign-in. It cannot key a user.
	NameIDFormatTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	// NameIDFormatEmailAddress is an email address. It is mutable and
	// reassignable, so it keys a user only with [Mapping.AllowEmailNameID].
	NameIDFormatEmailAddress = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	// NameIDFormatUnspecified leaves the interpretation to the identity
	// provider. Entra ID and Okta send it by default with the user's
	// principal name or login, which are not immutable.
	NameIDFormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	// NameIDFormatEntity identifies a SAML entity rather than a person.
	NameIDFormatEntity = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	// NameIDFormatKerberos is a Kerberos principal name.
	NameIDFormatKerberos = "urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos"
	// NameIDFormatWindowsDomainQualifiedName is a DOMAIN\user name.
	NameIDFormatWindowsDomainQualifiedName = "urn:oasis:names:tc:SAML:1.1:nameid-format:WindowsDomainQualifiedName"
	// NameIDFormatX509SubjectName is an X.509 subject distinguished name.
	NameIDFormatX509SubjectName = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"

	// nameIDFormatEmailAddress20 is a non-standard spelling some identity
	// providers send; it is refused like NameIDFormatEmailAddress.
	nameIDFormatEmailAddress20 = "urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress"
)

// Claim type URIs used by Microsoft Entra ID and AD FS, from Microsoft's
// "SAML token claims reference" (learn.microsoft.com, Entra identity
// platform), "Customize SAML token claims" and "Configure group claims for
// applications", and the AD FS claim descriptions.
const (
	// ClaimEntraObjectID is the user's object ID in the tenant: "immutable
	// and cannot be reassigned or reused". With ClaimEntraTenantID it is
	// the Entra ID key.
	ClaimEntraObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	// ClaimEntraTenantID is the directory tenant's immutable, non-reusable
	// ID. The Entra issuer is "https://sts.windows.net/{tenantid}/".
	ClaimEntraTenantID = "http://schemas.microsoft.com/identity/claims/tenantid"
	// ClaimIdentityProvider is the identity provider that authenticated the
	// user; it differs from the issuer for guest (B2B) users.
	ClaimIdentityProvider = "http://schemas.microsoft.com/identity/claims/identityprovider"
	// ClaimDisplayName is the user's display name (Entra ID).
	ClaimDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
	// ClaimEmailAddress is the user's email address (Entra ID: user.mail).
	// Mutable and not proof of ownership: display data only.
	ClaimEmailAddress = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	// ClaimGivenName is the user's first name.
	ClaimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	// ClaimSurname is the user's last name.
	ClaimSurname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	// ClaimName is, in Entra ID, a UPN-like name "not guaranteed to be
	// unique within a tenant and ... designed to be used only for display
	// purposes". In AD FS it carries whatever the claim rules map to it.
	ClaimName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	// ClaimUPN is the user principal name (AD FS). Mutable: display only.
	ClaimUPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
	// ClaimGroups carries Entra ID group memberships, as group object IDs
	// (not names) by default.
	ClaimGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	// ClaimGroupsLink replaces ClaimGroups when a user is in more than 150
	// groups (the SAML overage limit): Entra ID then omits the groups
	// completely and sends a Microsoft Graph link instead. Absent groups
	// with this claim present mean "unknown", not "none".
	ClaimGroupsLink = "http://schemas.microsoft.com/claims/groups.link"
	// ClaimRole carries application roles (Entra ID app roles, assigned
	// directly or through groups), or AD FS role claims.
	ClaimRole = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	// ClaimCommonName is the AD FS common name claim.
	ClaimCommonName = "http://schemas.xmlsoap.org/claims/CommonName"
	// ClaimADFSGroup is the AD FS group claim, typically issued by the
	// "Send LDAP Attributes as Claims" rule from Token-Groups.
	ClaimADFSGroup = "http://schemas.xmlsoap.org/claims/Group"
)

// Attribute names from the SAML V2.0 X.500/LDAP attribute profile
// ("urn:oid:" plus the LDAP attribute's OID), as sent by Shibboleth, SimpleSAMLphp,
// Keycloak and the research and education federations (eduPerson, REFEDS).
const (
	// OIDMail is LDAP mail.
	OIDMail = "urn:oid:0.9.2342.19200300.100.1.3"
	// OIDDisplayName is LDAP displayName.
	OIDDisplayName = "urn:oid:2.16.840.1.113730.3.1.241"
	// OIDCommonName is LDAP cn.
	OIDCommonName = "urn:oid:2.5.4.3"
	// OIDGivenName is LDAP givenName.
	OIDGivenName = "urn:oid:2.5.4.42"
	// OIDSurname is LDAP sn.
	OIDSurname = "urn:oid:2.5.4.4"
	// OIDIsMemberOf is isMemberOf (eduMember).
	OIDIsMemberOf = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
)

// Preset names accepted by [Preset].
const (
	// PresetGeneric names [Generic].
	PresetGeneric = "generic"
	// PresetEntra names [Entra].
	PresetEntra = "entra"
	// PresetOkta names [Okta].
	PresetOkta = "okta"
	// PresetADFS names [ADFS].
	PresetADFS = "adfs"
)

// Generic maps an identity provider that follows the SAML V2.0 X.500/LDAP
// attribute profile (urn:oid names), plain LDAP-style names, or the
// WS-Federation claim URIs that many products copy from Microsoft.
//
// The subject is the NameID, which should be persistent: configure the
// service provider to request
// urn:oasis:names:tc:SAML:2.0:nameid-format:persistent. Transient and
// emailAddress NameIDs are refused; unspecified is accepted (see [Mapping]).
// An identity provider that sends the SAML subject-id or pairwise-id
// attribute can key on it instead by setting Subject, after checking its
// scope against the identity provider's metadata.
//
// Candidates, first present wins:
//   - email: mail OID, "email", "mail", [ClaimEmailAddress]
//   - display name: displayName OID, "displayName", cn OID, "cn"
//   - given name: givenName OID, "givenName", [ClaimGivenName]
//   - family name: sn OID, "sn", "surname", [ClaimSurname]
//   - groups: isMemberOf OID, "isMemberOf", "groups", "memberOf"
//
// eduPersonAffiliation is not a group list (it says "student", "staff"...)
// and is not mapped.
func Generic() Mapping {
	return Mapping{
		Email:       Field{Names: []string{OIDMail, "email", "mail", ClaimEmailAddress}},
		DisplayName: Field{Names: []string{OIDDisplayName, "displayName", OIDCommonName, "cn"}},
		GivenName:   Field{Names: []string{OIDGivenName, "givenName", ClaimGivenName}},
		FamilyName:  Field{Names: []string{OIDSurname, "sn", "surname", ClaimSurname}},
		Groups:      Field{Names: []string{OIDIsMemberOf, "isMemberOf", "groups", "memberOf"}},
	}
}

// Entra maps Microsoft Entra ID (formerly Azure AD). Claim URIs are those of
// Microsoft's "SAML token claims reference".
//
// The key is tenantid/objectidentifier ([ClaimEntraTenantID],
// [ClaimEntraObjectID]), both required: the object ID is immutable and never
// reused, and the tenant ID makes it unique across tenants for multi-tenant
// applications. The NameID is ignored because Entra ID sends the user
// principal name by default, which changes on rename.
//
// Email ([ClaimEmailAddress]), the names ([ClaimGivenName], [ClaimSurname],
// [ClaimDisplayName] then [ClaimName]) are display data only: Entra ID lets
// administrators set them freely and documents the name claim as not unique.
// Never link or authorise on them.
//
// Groups come from [ClaimGroups] and are group object IDs unless the
// application is configured otherwise. App roles are not groups: their
// values are kept in Profile.Attributes[ClaimRole]. Also kept are
// [ClaimIdentityProvider] (guest detection) and [ClaimGroupsLink]: when it is
// present Entra ID has omitted the groups because the user is in more than
// 150, so Profile.Groups is incomplete and the caller must fetch them from
// Microsoft Graph or refuse the sign-in rather than treat the user as having
// no groups. Assigning roles, or filtering groups to those assigned to the
// application, avoids the overage.
func Entra() Mapping {
	return Mapping{
		Subject:      Field{Names: []string{ClaimEntraObjectID}, Required: true},
		SubjectScope: Field{Names: []string{ClaimEntraTenantID}, Required: true},
		Email:        Field{Names: []string{ClaimEmailAddress}},
		DisplayName:  Field{Names: []string{ClaimDisplayName, ClaimName}},
		GivenName:    Field{Names: []string{ClaimGivenName}},
		FamilyName:   Field{Names: []string{ClaimSurname}},
		Groups:       Field{Names: []string{ClaimGroups}},
		Keep:         []string{ClaimRole, ClaimIdentityProvider, ClaimGroupsLink},
	}
}

// Okta maps an Okta SAML application whose attribute statements use the
// names commonly configured in Okta's app wizard: "email" (user.email),
// "firstName" (user.firstName), "lastName" (user.lastName), "displayName"
// (user.displayName) and a group attribute statement named "groups".
// Okta attribute names are chosen by the administrator; adjust the mapping
// to the application's configuration.
//
// The subject is the NameID. Okta's defaults (format unspecified, value the
// Okta username, which is usually an email address) are not a stable key:
// set "Name ID format" to Persistent and "Application username" to an
// immutable value such as the Okta user ID. Okta's login is display data and
// is not mapped.
func Okta() Mapping {
	return Mapping{
		Email:       Field{Names: []string{"email"}},
		DisplayName: Field{Names: []string{"displayName"}},
		GivenName:   Field{Names: []string{"firstName"}},
		FamilyName:  Field{Names: []string{"lastName"}},
		Groups:      Field{Names: []string{"groups"}},
	}
}

// ADFS maps Active Directory Federation Services with the claim types its
// "Send LDAP Attributes as Claims" rule template offers.
//
// The subject is the NameID, which AD FS emits only through a claim rule
// issuing a Name ID claim: give it the persistent format and an immutable
// source (for example objectGUID or ms-DS-ConsistencyGuid), not the UPN or
// sAMAccountName.
//
// Candidates: email [ClaimEmailAddress]; given name [ClaimGivenName]; family
// name [ClaimSurname]; display name [ClaimCommonName] then [ClaimName];
// groups [ClaimADFSGroup] (Token-Groups). Role claims ([ClaimRole]) are
// application roles, not groups, and are kept in Profile.Attributes, as is
// [ClaimUPN] for display.
func ADFS() Mapping {
	return Mapping{
		Email:       Field{Names: []string{ClaimEmailAddress}},
		DisplayName: Field{Names: []string{ClaimCommonName, ClaimName}},
		GivenName:   Field{Names: []string{ClaimGivenName}},
		FamilyName:  Field{Names: []string{ClaimSurname}},
		Groups:      Field{Names: []string{ClaimADFSGroup}},
		Keep:        []string{ClaimRole, ClaimUPN},
	}
}

// Preset returns the preset mapping with the given name, one of
// [PresetNames]: "adfs", "entra", "generic" or "okta". Names are matched
// exactly. An unknown name yields an error wrapping [ErrUnknownPreset].
func Preset(name string) (Mapping, error) {
	switch name {
	case PresetGeneric:
		return Generic(), nil
	case PresetEntra:
		return Entra(), nil
	case PresetOkta:
		return Okta(), nil
	case PresetADFS:
		return ADFS(), nil
	}
	return Mapping{}, fmt.Errorf("%w %q (known: %q)", ErrUnknownPreset, name, PresetNames())
}

// PresetNames returns the names [Preset] accepts, sorted. The slice is new at
// every call.
func PresetNames() []string {
	names := []string{PresetADFS, PresetEntra, PresetGeneric, PresetOkta}
	slices.Sort(names)
	return names
}
