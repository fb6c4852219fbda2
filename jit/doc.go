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
//  3. goxmldsig verifies the signature against the connection's IdP
//     metadata on the same parse and the assertion is read from what it
//     verified, then those of crewjam/saml's checks that step 4 does not
//     make as strictly (the Response's destination, status, InResponseTo
//     and issuer, the issue instants) and step 4's checks within crewjam's
//     180 s skew run on it; an encrypted assertion, an unusual shape or any
//     refusal goes through crewjam/saml's own parser instead, which
//     decides;
//  4. our checks on the verified assertion, against the injected clock:
//     an AudienceRestriction naming this SP, a bearer SubjectConfirmation
//     whose Recipient is this ACS and whose InResponseTo is the request this
//     browser started, validity windows, an AuthnStatement;
//  5. the connection's [claims.Mapper] derives the user's key and profile;
//  6. groups the IdP omitted (an overage) are asked of the connection's
//     [GroupResolver]; then the connection's [Policy] decides what the
//     sign-in does, by one rule set whatever the store: a suspended user
//     is refused; a returning user
//     is updated by the sync rules and roles, or refused by them; a first
//     sign-in meets brownfield email conflicts and links, creation allowed,
//     and the BeforeCreate hook. The email lookup and the application's
//     hooks run outside any store transaction (the email lookup inside it
//     on a [userstore.SignInWithStore]);
//  7. the assertion ID is consumed in the [userstore.ReplayCache] together
//     with the write, so that a second use of the assertion is refused,
//     across restarts and instances that share the store. Where the store
//     is a [userstore.SignInStore] that keeps the replay record itself, a
//     sign-in is one transaction with no lookup before it: the stored user
//     is read inside it, and a suspended user refused before anything of
//     the user is written (the assertion stays recorded). On a
//     [userstore.SignInWithStore] the same transaction reads the users
//     holding a first sign-in's email and records the session, so a first
//     sign-in is one transaction too. A first sign-in whose decision needs
//     a hook's answer (or, on a plain SignInStore, the email lookup) ends
//     that transaction without writing, and runs it once more when they
//     are in.
//     With any other store, [userstore.Store.Lookup] runs first (a
//     suspended user is refused before any write), then the assertion is
//     recorded and the user created or updated;
//  8. a session is recorded in [Options.Sessions] (the store, normally;
//     then with the user's write, on a [userstore.SignInWithStore])
//     and a fresh session cookie holding only its ID is issued, an [Event]
//     is emitted and the browser is redirected to where it started. Every
//     later request reads the session record and its user in one store
//     call, so a logout, [Middleware.EndSessions] or a suspension ends the
//     session at once, on every instance sharing the store. An application
//     that lists a person's sessions with their last use, IP address and
//     browser has them reported through [Options.Activity].
//
// [Explain] runs the same checks and the same decision on a captured
// response, with a connection built as [New] builds one, writing nothing
// and running no hook, and reports each check and what the policy would
// do. [Middleware.Warnings]
// lists risky settings and IdP behaviour found at start-up and at each
// connection's first sign-in.
//
// Every refusal shows the person a plain page with a correlation id and
// logs the reason under that id. A refused sign-in changes no user record
// (unless the user was suspended while it was being written); one refused
// because the store failed also leaves the replay record unconsumed, so
// the person can retry.
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
// endpoint or a stale-account job built on [userstore.Admin.NotSignedInSince]:
// a suspension ends the user's sessions at once, and unsuspending revives
// none of them.
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
