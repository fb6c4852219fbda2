// Package scim is a SCIM 2.0 service provider (RFC 7643, RFC 7644) over the
// user records that SAML just-in-time provisioning writes: the path by
// which an identity provider creates, updates, deactivates and groups a
// connection's users ahead of and after their sign-ins, and the one that
// deprovisions.
//
// A [Handler] serves one IdP connection: /Users, /Groups,
// /ServiceProviderConfig, /ResourceTypes and /Schemas, with the core User
// schema and the enterprise extension, in application/scim+json. Mount it
// under the path given to the IdP, stripping that prefix:
//
//	h, err := scim.New(scim.Options{Store: store, Issuer: entityID,
//		Subject: scim.EntraObjectID(tenantID), Tokens: scim.NewTokens(scim.HashToken(token)),
//		Roles: conn.Policy.Roles.Derive})
//	http.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
//
// # One record, two paths
//
// A user's key is {Issuer, Subject}, the same key a sign-in through the
// connection computes. SCIM carries the subject in externalId, so a person
// created by SCIM and the same person's later sign-in are one record, and
// a person a sign-in created is found by the IdP's matching query
// (externalId eq) and adopted by its POST rather than duplicated. The
// mapping from externalId to subject is the connection's [SubjectMapping]:
// [EntraObjectID] for the Entra ID preset (externalId is the user's object
// ID; the subject is tenantid/objectid, as claims.Entra builds it) and
// [PersistentNameID] for a connection keyed on its persistent NameID (the
// IdP sends that NameID's value as externalId). A write whose externalId
// is missing or cannot be a subject is refused: a user that cannot be
// keyed would never meet their sign-in.
//
// # Deprovisioning
//
// active false suspends the user (their next request and sign-in are
// refused, their sessions end at once), active true reinstates them:
// SCIM, unlike a sign-in, may reactivate, because the IdP is the authority
// on who is active. DELETE suspends by default and keeps the record for
// audit ([DeleteSuspends]); [DeleteRemoves] removes it. A change of a
// group's members rewrites its members' groups and re-derives their roles
// with [Options.Roles], the connection's role mapping that its sign-ins
// use, in the same transaction: a removal from an administrators' group
// takes effect at the person's next request.
//
// # Security
//
// Every request needs a bearer token of the connection ([Options.Tokens]),
// kept as SHA-256 hashes and compared in constant time, two or more valid
// during a rotation. [Tokens] keeps them in memory; [TokenTable] keeps
// them in the application's database (SQLite or PostgreSQL), so that a
// rotation on one instance holds on every instance at once. A handler reads and writes only the users and groups
// of its connection's issuer; the store refuses the local issuer, so no
// SCIM request reaches an application's own accounts. Bodies, filters and
// pages are bounded. Every change is an [Event] whose Source is "scim".
//
// # Interoperability
//
// Written from the public documentation of Microsoft Entra ID's
// provisioning service (PascalCase PATCH operations, "active": "False" as
// a string, PATCH without a path whose value keys are attribute paths,
// emails[type eq "work"].value paths, the enterprise manager) and of
// Okta's SCIM 2.0 client (PUT with active). Attributes the store does not
// keep (phone numbers, addresses, photos…) are accepted and ignored, as
// Entra sends its default mappings whatever the application keeps.
//
// Filters are parsed by github.com/scim2/filter-parser/v2. A filter must
// narrow by an indexed equality: userName, externalId, id or emails.value
// eq, combined with and (the other side checked on the candidates) and or
// (both sides so narrowed); /Groups by id, displayName or externalId.
//
// Lists page by startIndex and count (RFC 7644), and, over a store that
// is a userstore.DirectoryPager (the three in this module are), by cursor
// (RFC 9865): a request with a cursor parameter, empty at first, gets a
// nextCursor while more follow, and each page costs the same however far
// the client has paged. A group PATCH answers 204 No Content, as Entra ID's
// and Okta's documentation show, unless it asks for attributes.
package scim
