// Package jit is an http.Handler middleware that signs people in through SAML
// 2.0 identity providers and provisions their user records just in time: the
// first sign-in creates the record from the assertion's claims, every later
// sign-in brings it up to date.
//
// # The sign-in flow
//
// For each IdP connection the [Middleware] serves SP metadata, a login
// endpoint that sends the browser to the IdP, and an assertion consumer
// service (ACS). At the ACS one sign-in goes through these steps, in order,
// and stops at the first that refuses:
//
//  1. bounds: the POST body, the decoded XML and its nesting depth are
//     capped before anything is parsed; DOCTYPE, entities, comments and
//     processing instructions are refused;
//  2. structure: exactly one assertion, namespace-correct Subject, NameID,
//     Conditions and AuthnStatement, allowed signature and encryption
//     algorithms (checked on the decrypted plaintext too);
//  3. crewjam/saml verifies the signature against the connection's IdP
//     metadata, the issuer, destination, status, InResponseTo and times;
//  4. our checks on the verified assertion, against the injected clock:
//     an AudienceRestriction naming this SP, a bearer SubjectConfirmation
//     whose Recipient is this ACS and whose InResponseTo is the request this
//     browser started, validity windows, an AuthnStatement;
//  5. the connection's [claims.Mapper] derives the user's key and profile;
//  6. [userstore.Store.Lookup]: a suspended user is refused before any write;
//     a first sign-in meets the connection's [Policy]: creation allowed,
//     brownfield email conflicts and links, the BeforeCreate hook;
//  7. the assertion ID is consumed in the [userstore.ReplayCache] and the
//     record created or updated by the policy's sync rules and roles, in
//     one transaction where the store is a [userstore.SignInStore]: a
//     second use of the assertion is refused, across restarts and
//     instances that share the store;
//  8. a fresh session cookie holding only the user's key is issued, an
//     [Event] is emitted and the browser is redirected to where it started.
//
// [Explain] runs the same checks on a captured response, writing nothing,
// and reports each one and what the policy would do. [Middleware.Warnings]
// lists risky settings and IdP behaviour found at start-up and at each
// connection's first sign-in.
//
// Every refusal shows the person a plain page with a correlation id, logs
// the reason under that id, and writes nothing to the store.
//
// # What JIT cannot do
//
// SAML tells the application about a person only when they sign in, so JIT
// provisioning can create and update users but never deprovision them. This
// package accepts only a [userstore.Store], which cannot delete, suspend or
// reactivate anyone, and a sign-in never changes a user's status. A person
// removed at the IdP keeps their record, and keeps access until their
// session ends: [Options.SessionLifetime] (default 8 hours) is the worst-case
// delay, so keep it short. To deprovision, suspend users through the
// concrete store's [userstore.Admin] methods, from an HR feed, a SCIM
// endpoint or a stale-account job built on [userstore.Admin.NotSignedInSince].
//
// # IdP metadata from a URL
//
// A connection configured with [Connection.IDPMetadataURL] is fetched by
// [New] and then kept fresh by one background goroutine per [Middleware]:
// it fetches again when the document's cacheDuration or validUntil ask,
// and at least every [Options.MetadataRefreshInterval] (24 hours by
// default). A fresh copy replaces the old one atomically; each request
// uses one copy throughout. Every signing certificate the document lists
// is trusted, so a rollover published as old+new, then new only, causes no
// failed sign-in. A failed fetch, or a document naming another entity ID,
// listing no signing certificate or already expired, keeps the last good
// copy, logs a warning and is retried with backoff. When the copy in hand
// passes its validUntil, sign-ins through the connection are refused with
// [ErrMetadataExpired] (a 503) until a fresh copy arrives. Call
// [Middleware.Close] to stop the goroutine.
//
// # crewjam/saml and the clock
//
// Signature and protocol validation is done by github.com/crewjam/saml,
// given [Options.Now] as its ServiceProvider.Clock: crewjam and this
// package judge every time (validity windows, IssueInstant, the IdP
// certificate's validity) against the same clock, and no package-level
// clock is read or set. crewjam's own tolerance is its package variable
// saml.MaxClockSkew (180 s); [Options.ClockSkew] applies to this package's
// checks, so a larger ClockSkew does not loosen crewjam's.
package jit
