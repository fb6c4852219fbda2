// Package claims turns the attributes of a validated SAML assertion into the
// user record that just-in-time provisioning writes: a [userstore.Key] that
// identifies the person across sign-ins, and a [userstore.Profile] of display
// and group data.
//
// It works in two steps:
//
//  1. [FromAssertion] copies what an assertion says about its subject into an
//     [Identity]: issuer, NameID and its qualifiers, session data and every
//     attribute, in document order, keyed by its Name (the URI or OID the
//     identity provider asserts), with FriendlyName kept only as an alias.
//  2. A [Mapper], usually a [Mapping] from one of the presets ([Generic],
//     [Entra], [Okta], [ADFS]) or adapted from one, picks the key and the
//     profile out of the Identity.
//
// This package does not verify anything cryptographic. The assertion passed
// to FromAssertion must already have been validated by the caller (signature,
// issuer, audience, subject confirmation, time window, replay).
//
// # Choosing the key
//
// A key must be immutable and never reassigned. The subject is therefore taken
// from a persistent NameID, or from an immutable attribute such as Entra ID's
// objectidentifier scoped by its tenantid. It is never an email address or a
// user principal name: those change when people are renamed and get reassigned
// when people leave, which would merge one person into another's account.
// Transient and emailAddress NameIDs are refused as keys unless the mapping
// opts in explicitly ([Mapping.InsecureAllowTransientNameID],
// [Mapping.AllowEmailNameID]).
//
// Identifiers are compared and copied exactly, byte for byte: no case folding,
// no Unicode normalisation and no trimming. Attribute names are matched
// exactly too.
//
// # Bounded and fail-closed
//
// An identity attribute asserted twice or with more than one value, a
// single-valued profile attribute with conflicting values, and more than
// [Mapping.MaxValues] values for one field are all refused rather than
// resolved by guessing. Every error wraps one of the sentinel errors declared
// here so callers can test it with [errors.Is]; the typed errors
// ([*MissingAttributeError], [*AmbiguousAttributeError],
// [*TooManyValuesError]) carry the details for logs.
package claims
