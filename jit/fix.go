package jit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/samljit/samljit/claims"
)

// WarnMappingRefused: a sign-in was refused because its claims could not
// be mapped to a user; the message says what to change. It is recorded
// once for each kind of mapping refusal (emailAddress NameID, transient
// NameID, missing, ambiguous or too many values, empty subject…).
const WarnMappingRefused = "mapping-refused"

// mappingFix says what an administrator changes so that a sign-in refused
// with err (an [ErrMapping]) succeeds, and names the kind of refusal; ""
// for any other error. id is what the IdP sent, nil when unknown: the
// attribute names it carries help match a mapping to them.
func mappingFix(err error, id *claims.Identity) (kind, fix string) {
	if !errors.Is(err, ErrMapping) {
		return "", ""
	}
	var (
		missing   *claims.MissingAttributeError
		ambiguous *claims.AmbiguousAttributeError
		tooMany   *claims.TooManyValuesError
	)
	switch {
	case errors.Is(err, claims.ErrEmailNameID):
		return "email-nameid", "the IdP sent an emailAddress NameID and the mapping keys users on the NameID; emails change and are reassigned, so it cannot key a user. Fix it in one of three ways: " +
			"(1) have the IdP send a persistent NameID (samljit requests one; ADFS: a Name ID claim rule with the persistent format from objectGUID; Okta, OneLogin, PingFederate: the Persistent Name ID format with an immutable value); " +
			"(2) set the mapping's Subject to an immutable attribute the IdP sends (an object ID, employee ID or SAML subject-id)" + sentNames(id) + "; " +
			"(3) set claims.Mapping.AllowEmailNameID, accepting the risk that whoever is given the address later signs in to this person's account"
	case errors.Is(err, claims.ErrTransientNameID):
		return "transient-nameid", "the IdP sent a transient NameID, which changes at every sign-in, and the mapping keys users on the NameID. Fix it: have the IdP send a persistent NameID, or set the mapping's Subject to an immutable attribute the IdP sends" + sentNames(id) + "; claims.Mapping.InsecureAllowTransientNameID creates a new user at every sign-in and suits throwaway demo users only"
	case errors.As(err, &missing):
		if missing.Found != "" {
			return "missing-attribute", fmt.Sprintf("the IdP sent attribute %q for the mapping's %s without a usable value: give it a value at the IdP for every user of this application", missing.Found, missing.Field)
		}
		return "missing-attribute", fmt.Sprintf("the mapping's %s needs one of %q and the IdP sent none: release one of them to this application at the IdP, or change the mapping's %s to the name the IdP uses%s", missing.Field, missing.Names, missing.Field, sentNames(id))
	case errors.As(err, &ambiguous):
		return "ambiguous-attribute", fmt.Sprintf("the IdP sent attribute %q for the mapping's %s more than once or with several values, so it cannot say who this is: have the IdP send it once with one value, or map %s to another attribute", ambiguous.Name, ambiguous.Field, ambiguous.Field)
	case errors.As(err, &tooMany):
		return "too-many-values", fmt.Sprintf("the IdP sent more than %d values of %q for the mapping's %s: have it send fewer (for groups, only those assigned to this application), or raise claims.Mapping.MaxValues", tooMany.Limit, tooMany.Name, tooMany.Field)
	case errors.Is(err, claims.ErrEmptySubject):
		return "empty-subject", "the value the mapping keys users on (the NameID, or the Subject attribute) was empty: have the IdP send it for every user, or set the mapping's Subject to an attribute it always sends" + sentNames(id)
	case errors.Is(err, claims.ErrInvalidScope):
		return "invalid-scope", "the mapping's SubjectScope attribute contains a \"/\", which would make keys ambiguous: scope on another attribute (Entra ID: tenantid)"
	case errors.Is(err, claims.ErrNoIssuer):
		return "no-issuer", "the assertion has no Issuer, so no user can be scoped to this IdP: configure the IdP to send its entity ID as the assertion's Issuer"
	}
	return "mapping", "the connection's Mapper refused the claims or returned a key whose Issuer is not the IdP's entity ID: check a custom Mapper against what the IdP sends" + sentNames(id)
}

// sentNames lists the attribute names an identity carries, at most a
// dozen, for a fix that asks to map one of them.
func sentNames(id *claims.Identity) string {
	if id == nil || len(id.Attributes) == 0 {
		return ""
	}
	var names []string
	for _, a := range id.Attributes {
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	more := ""
	if len(names) > 12 {
		more = fmt.Sprintf(" and %d more", len(names)-12)
		names = names[:12]
	}
	return " (the IdP sent " + strings.Join(names, ", ") + more + ")"
}
