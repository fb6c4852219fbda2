package entragraph

import (
	"errors"
	"fmt"
)

// Errors returned by [Resolver.ResolveGroups], wrapped with the details;
// test them with errors.Is. Each is a refusal of the sign-in.
var (
	// ErrConsentRequired means the tenant has not granted the application
	// admin consent (no service principal in the tenant, or the Graph
	// permission not granted). The error is a [*ConsentError] naming the
	// admin consent URL.
	ErrConsentRequired = errors.New("entragraph: tenant has not granted admin consent")
	// ErrThrottled means Graph answered 429 or 503 and the wait it asked
	// for did not fit in the time budget, or the retries ran out.
	ErrThrottled = errors.New("entragraph: Microsoft Graph is throttling or unavailable")
	// ErrTimeout means the time budget of the sign-in ran out.
	ErrTimeout = errors.New("entragraph: time budget exceeded")
	// ErrTooManyGroups means the memberships ran past Options.MaxPages or
	// Options.MaxGroups; a partial list is never returned.
	ErrTooManyGroups = errors.New("entragraph: too many groups")
	// ErrIdentity means the assertion lacks a single, well-formed tenantid
	// or objectidentifier claim.
	ErrIdentity = errors.New("entragraph: assertion does not identify an Entra user")
	// ErrTenantMismatch means the assertion's tenantid is not the tenant
	// whose Entra issuer signed it.
	ErrTenantMismatch = errors.New("entragraph: tenantid does not match the issuer")
	// ErrToken means the token endpoint refused or failed to issue an
	// app-only token for another reason than consent (a wrong secret, an
	// expired certificate, an unreachable endpoint).
	ErrToken = errors.New("entragraph: no app-only token")
	// ErrGraph means Microsoft Graph answered with an error or a response
	// that could not be read.
	ErrGraph = errors.New("entragraph: Microsoft Graph request failed")
)

// ConsentError is the error of a tenant that has not granted the
// application admin consent. It matches [ErrConsentRequired] with errors.Is.
// Its Warning method lets jit list it in Middleware.Warnings.
type ConsentError struct {
	// Tenant is the tenant's ID.
	Tenant string
	// ClientID is the application (client) ID.
	ClientID string
	// URL is where an administrator of the tenant grants consent.
	URL string
	// Reason is what Entra ID or Graph said (an AADSTS code, or Graph's
	// error code).
	Reason string
}

// Error says what is missing and how to fix it.
func (e *ConsentError) Error() string {
	return fmt.Sprintf("entragraph: tenant %s has not granted application %s admin consent to read group memberships (%s): an administrator of the tenant must grant it at %s", e.Tenant, e.ClientID, e.Reason, e.URL)
}

// Is reports whether target is [ErrConsentRequired].
func (e *ConsentError) Is(target error) bool { return target == ErrConsentRequired }

// Warning is the administrator's to-do, for jit's Middleware.Warnings.
func (e *ConsentError) Warning() string {
	return fmt.Sprintf("Microsoft Graph cannot resolve the groups overage for tenant %s: the tenant has not granted application %s admin consent (%s). Overage sign-ins from this tenant are refused until an administrator of the tenant grants it at %s", e.Tenant, e.ClientID, e.Reason, e.URL)
}
