package claims

// knownNames are the short names of attribute Names that identity
// providers send as URIs or OIDs: the LDAP and eduPerson names of the SAML
// V2.0 X.500/LDAP attribute profile, the SAML subject identifiers, and the
// WS-Federation claim types of Entra ID and AD FS.
var knownNames = map[string]string{
	OIDMail:                                         "mail",
	OIDDisplayName:                                  "displayName",
	OIDCommonName:                                   "cn",
	OIDGivenName:                                    "givenName",
	OIDSurname:                                      "sn",
	OIDIsMemberOf:                                   "isMemberOf",
	"urn:oid:0.9.2342.19200300.100.1.1":             "uid",
	"urn:oid:2.5.4.10":                              "o",
	"urn:oid:2.5.4.11":                              "ou",
	"urn:oid:2.5.4.12":                              "title",
	"urn:oid:2.5.4.20":                              "telephoneNumber",
	"urn:oid:2.16.840.1.113730.3.1.3":               "employeeNumber",
	"urn:oid:1.2.840.113556.1.2.102":                "memberOf",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.1":              "eduPersonAffiliation",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.6":              "eduPersonPrincipalName",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.7":              "eduPersonEntitlement",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.9":              "eduPersonScopedAffiliation",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.10":             "eduPersonTargetedID",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.13":             "eduPersonUniqueId",
	"urn:oid:1.3.6.1.4.1.25178.1.2.9":               "schacHomeOrganization",
	"urn:oasis:names:tc:SAML:attribute:subject-id":  "subject-id",
	"urn:oasis:names:tc:SAML:attribute:pairwise-id": "pairwise-id",
	ClaimEntraObjectID:                              "objectidentifier",
	ClaimEntraTenantID:                              "tenantid",
	ClaimIdentityProvider:                           "identityprovider",
	ClaimDisplayName:                                "displayname",
	ClaimEmailAddress:                               "emailaddress",
	ClaimGivenName:                                  "givenname",
	ClaimSurname:                                    "surname",
	ClaimName:                                       "name",
	ClaimUPN:                                        "upn",
	ClaimGroups:                                     "groups",
	ClaimGroupsLink:                                 "groups.link",
	ClaimRole:                                       "role",
	ClaimCommonName:                                 "CommonName",
	ClaimADFSGroup:                                  "Group",
	"http://schemas.microsoft.com/identity/claims/authnmethodsreferences": "authnmethodsreferences",
}

// KnownName returns the short, human-readable name of a well-known
// attribute Name, such as "mail" for "urn:oid:0.9.2342.19200300.100.1.3"
// or "objectidentifier" for Entra ID's object ID claim, and "" for a Name it
// does not know. It is for people reading an identity (logs, the explain
// tool); mappings match attributes by their exact Name, never by this.
func KnownName(name string) string { return knownNames[name] }
