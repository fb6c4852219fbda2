package scim

import (
	"fmt"
	"regexp"
	"strings"
)

// SubjectMapping turns SCIM's externalId into the subject of a user's key
// (userstore.Key.Subject) as the connection's sign-ins compute it, and
// back. Use [EntraObjectID] or [PersistentNameID], or write one for a
// mapping of your own.
type SubjectMapping struct {
	// Subject returns the subject for externalID, or an error when it
	// cannot key a user (it is then refused with [ErrUnkeyable]).
	Subject func(externalID string) (string, error)
	// ExternalID returns the externalId of a user with subject, and
	// false when the subject is not one this mapping makes (a user the
	// connection keyed otherwise): such a user shows no externalId.
	ExternalID func(subject string) (string, bool)
}

// maxExternalID bounds an externalId's length.
const maxExternalID = 1024

// PersistentNameID is the mapping of a connection keyed on its persistent
// NameID (claims.Generic and presets whose Subject has no Names): the IdP
// sends, as externalId, the value it sends as the NameID, and the subject
// is that value unchanged.
func PersistentNameID() SubjectMapping {
	return SubjectMapping{
		Subject: func(id string) (string, error) {
			if strings.TrimSpace(id) == "" || len(id) > maxExternalID {
				return "", fmt.Errorf("%w: want the persistent NameID the IdP signs the person in with, got %d bytes", ErrUnkeyable, len(id))
			}
			return id, nil
		},
		ExternalID: func(subject string) (string, bool) { return subject, true },
	}
}

// guid matches an Entra ID object ID.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// EntraObjectID is the mapping of a connection using the Entra ID preset
// (claims.Entra), whose key's subject is tenantid/objectidentifier. In the
// enterprise application's provisioning, map the user's objectId to
// externalId and match users on it: Entra's default maps mailNickname
// there, which is neither immutable nor what a sign-in carries, and this
// mapping refuses anything that is not an object ID. tenantID is the
// connection's tenant, which the externalId does not carry, written as
// the tenantid claim carries it (lower case). Both parts are kept exactly
// as given, as claims compares keys.
func EntraObjectID(tenantID string) SubjectMapping {
	prefix := tenantID + "/"
	return SubjectMapping{
		Subject: func(id string) (string, error) {
			if !guid.MatchString(id) {
				return "", fmt.Errorf("%w: want the user's Entra object ID (map objectId to externalId), got %q", ErrUnkeyable, truncate(id, 64))
			}
			return prefix + id, nil
		},
		ExternalID: func(subject string) (string, bool) {
			if rest, ok := strings.CutPrefix(subject, prefix); ok {
				return rest, true
			}
			return "", false
		},
	}
}

// truncate returns s cut to at most n bytes, for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
