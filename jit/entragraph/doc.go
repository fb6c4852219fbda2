// Package entragraph resolves Microsoft Entra ID's groups overage through
// Microsoft Graph: a [jit.GroupResolver] for connections that use
// [claims.Entra].
//
// When a person is in more than 150 groups, Entra ID sends no groups claim
// in the SAML assertion and a groups.link claim instead. Without a resolver
// the sign-in cannot know the person's groups, so group-derived roles are
// dropped or the sign-in is refused. A [Resolver] asks Microsoft Graph for
// the person's transitive group memberships:
//
//	GET {GraphURL}/v1.0/users/{objectidentifier}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999
//
// following @odata.nextLink across pages, with an app-only token that the
// client-credentials grant (golang.org/x/oauth2/clientcredentials) obtains
// for the assertion's tenant (its tenantid claim), with a client secret or a
// certificate. Tokens are cached per tenant until shortly before they
// expire.
//
// The resolver is bounded and fails closed: every sign-in has a time budget
// ([Options.Timeout]), pages ([Options.MaxPages]) and groups
// ([Options.MaxGroups]) are capped, 429 and 503 answers are retried after
// their Retry-After only when the wait fits in the budget, and every failure
// is an error, never "no groups": jit turns it into a refusal (503,
// [jit.ErrGroupsUnavailable], a log line and an overage event) and writes
// nothing. Callers test reasons with errors.Is: [ErrConsentRequired],
// [ErrThrottled], [ErrTimeout], [ErrTooManyGroups], [ErrIdentity],
// [ErrTenantMismatch], [ErrToken], [ErrGraph].
//
// The groups.link claim's URL itself is never followed (it names the
// retired Azure AD Graph, and following a URL taken from an assertion would
// send the app's token wherever the assertion points). The user is found by
// the tenantid and objectidentifier claims, both checked to be GUIDs, and by
// default the tenant must be the one whose Entra issuer
// (https://sts.windows.net/{tenant}/) signed the assertion, so that one
// customer's IdP cannot read another tenant's memberships.
//
// A multi-tenant app registration serves every tenant that has granted it
// admin consent for an application permission that reads another user's
// memberships: User.Read.All is the least privileged Microsoft lists
// (groups then come back with their IDs only, all this package reads);
// GroupMember.Read.All or Directory.Read.All also serve. A tenant
// that has not consented gets an [ErrConsentRequired] refusal naming the
// admin consent URL, https://login.microsoftonline.com/{tenant}/adminconsent?client_id=…;
// jit logs it and lists it in Middleware.Warnings.
//
// This package is separate from jit so that applications that do not use
// Entra ID do not link it.
package entragraph
