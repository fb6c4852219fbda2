package jit

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/crewjam/saml"
	"github.com/gorilla/sessions"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// Defaults applied by [New] to zero fields of [Options] and [Connection].
const (
	DefaultPathPrefix       = "/saml"
	DefaultSessionName      = "samljit_session"
	DefaultSessionLifetime  = 8 * time.Hour
	DefaultMaxResponseBytes = 256 << 10
	DefaultMaxXMLDepth      = 32
	DefaultClockSkew        = 180 * time.Second
	requestLifetime         = 10 * time.Minute
	// MaxIssueDelay is how old a response or assertion may be, by its
	// IssueInstant, when it reaches the ACS (beyond the clock skew).
	MaxIssueDelay = 90 * time.Second
)

// Options configure a [Middleware]. The zero value of every optional field
// is safe; the required ones are RootURL, Key, Certificate, Connections,
// Store, SessionKeys (also with a SessionStore) and Sessions (which Store
// provides when it keeps sessions).
type Options struct {
	// RootURL is the application's public base URL, such as
	// "https://app.example.com". Endpoint URLs in SP metadata, the ACS URL
	// checked as Destination and Recipient, and the Secure flag of cookies
	// derive from it. Required.
	RootURL string

	// PathPrefix is where the middleware's endpoints live under RootURL.
	// Default "/saml". A connection named "" serves PathPrefix+"/metadata",
	// "/login" and "/acs"; a connection named "acme" serves
	// PathPrefix+"/acme/metadata" and so on.
	PathPrefix string

	// Key and Certificate are the SP's key pair: published in SP metadata,
	// used to decrypt encrypted assertions and, when SignRequests is set, to
	// sign authentication requests. Required.
	Key         crypto.Signer
	Certificate *x509.Certificate

	// DecryptionKeys are older SP keys that still decrypt encrypted
	// assertions, tried in order after Key; they sign nothing and are not
	// published in SP metadata. To roll the SP key over, publish metadata
	// with the new Key and Certificate, keep the old key here until every
	// IdP has fetched the new metadata (or its administrator has uploaded
	// it), then drop it.
	DecryptionKeys []*rsa.PrivateKey

	// NextKey and NextCertificate are the SP's next key pair, set both or
	// neither, for a rollover without a failed sign-in: SP metadata lists
	// NextCertificate beside Certificate, for signing and (for an RSA key)
	// encryption, and assertions encrypted to either certificate decrypt,
	// while AuthnRequests are still signed with Key. Once every IdP has
	// fetched (or been given) the metadata listing both, promote: the next
	// pair becomes Key and Certificate, and the old key moves to
	// DecryptionKeys until the IdPs have the new metadata. See
	// "SP key rollover" in the README.
	NextKey         crypto.Signer
	NextCertificate *x509.Certificate

	// Connections are the identity providers (tenants) this application
	// trusts, each with its own metadata, mapping and endpoints. At least
	// one is required; names and IdP entity IDs must be unique.
	Connections []Connection

	// ConnectionStore, when set, is where connections kept as data are
	// read from (see [userstore.Connection]): New reads it, then it is
	// polled every ConnectionPollInterval, and a change (a connection
	// added, changed, enabled, disabled or removed) is served from then
	// on, without a restart and without dropping sign-ins in flight
	// through connections that stay. Its connections are served beside
	// Options.Connections, which keep their names, IdPs and domains when
	// a stored connection claims them too. With a store that implements
	// [userstore.ConnectionAdmin], [Middleware.PutConnection] and its
	// siblings change it. Call [Middleware.Close] to stop the polling.
	ConnectionStore userstore.Connections

	// Chooser, when set, serves PathPrefix+"/login" when the request names
	// neither an email (?email=, which goes to the connection of its
	// domain) nor a connection (?connection=NAME): the page where people
	// say who they are. Link its choices to
	// [Middleware.ConnectionLoginURL], or send its form to
	// PathPrefix+"/login?email=…". The default page asks for a work email
	// address and never lists the connections.
	Chooser http.Handler

	// ConnectionPollInterval is how often ConnectionStore's version is
	// read. Default 5 seconds.
	ConnectionPollInterval time.Duration

	// ConfigureConnection, when set, adjusts the Connection built from a
	// stored one before it is served: the place for a Policy, hooks, a
	// GroupResolver or a mapping other than the stored preset. An error
	// refuses the connection (it is logged and not served).
	ConfigureConnection func(ctx context.Context, stored userstore.Connection, c *Connection) error

	// Store keeps the users. It can only look users up and provision them:
	// nothing the sign-in path does can delete, suspend or reactivate a
	// user. Required.
	Store userstore.Store

	// Replay records consumed assertion IDs. When nil, Store is used if it
	// implements [userstore.ReplayCache]; otherwise New fails, because
	// replay protection is not optional.
	//
	// When the store keeps the replay record itself (Replay nil, or the
	// same value as Store) and implements [userstore.SignInStore], a
	// sign-in records the assertion and writes the user in one
	// transaction ([userstore.SignInWithStore]: a first sign-in's email
	// lookup and the session record too). A Replay that is another cache makes every sign-in
	// take separate steps instead: record the assertion in Replay, look
	// the user up and write it in Store, and release the record if the
	// write fails. That is correct but slower, and the record and the
	// write are no longer atomic; set Replay to another cache only when
	// the record must live elsewhere.
	Replay userstore.ReplayCache

	// SessionKeys are the gorilla/securecookie key pairs for the session and
	// request-tracking cookies: a 32- or 64-byte authentication key, then a
	// 16-, 24- or 32-byte encryption key or nil, then older pairs for
	// rotation (new cookies use the first pair, all pairs are tried when
	// reading). To rotate, put a new pair first and keep the old pair until
	// the sessions it sealed have expired: {newAuth, newEnc, oldAuth,
	// oldEnc}. A lone trailing authentication key is a pair without
	// encryption. Every instance of an application must share them.
	// Required, also when SessionStore is set: the request-tracking
	// cookie is always sealed with them.
	SessionKeys [][]byte

	// Sessions keeps the signed-in sessions, so that a logout, an
	// administrator ([Middleware.EndSessions]) or a suspension ends a
	// session at once, on every instance sharing it. When nil, Store is
	// used if it implements [userstore.Sessions] (memstore, sqlitestore
	// and pgstore do); otherwise New fails, because a session that only a
	// cookie holds cannot be revoked. Sessions reads the session's user
	// with it ([userstore.Sessions.LookupSession]), so it must keep its
	// sessions beside Store's users: set it apart from Store only when
	// Store is a wrapper that hides the interface of the store it wraps.
	// When Sessions is Store (nil, or the same value) and Store is a
	// [userstore.SignInWithStore], a sign-in records its session in the
	// same transaction as the user's write and the assertion's record.
	Sessions userstore.Sessions

	// SessionStore, when set, replaces the cookie store built from
	// SessionKeys for the session cookie's values, and only for them: the
	// values a sign-in saves (the ID of the session record kept in
	// Sessions, the connection and the expiry, under SessionName), which
	// RequireUser and CurrentUser read and Logout deletes, are saved in
	// and read from SessionStore, so a server-side store keeps them off
	// the cookie. Logout loads the browser's session from SessionStore
	// and saves it with MaxAge -1, which deletes what a server-side store
	// keeps; Sessions, not SessionStore, decides whether a session is
	// still live. The middleware still sets that cookie's options itself
	// (path "/", HttpOnly, SameSite=Lax, Secure on https, a MaxAge within
	// SessionLifetime) and judges the expiry it stored, whatever the
	// store's own defaults. It does not replace the short-lived
	// request-tracking cookie (samljit_req_…) that ties the IdP's response
	// to the browser that started the sign-in: that one is sealed with
	// SessionKeys, which stay required. SessionStore must hold only what
	// the middleware puts in it.
	SessionStore sessions.Store

	// SessionName is the session cookie's name. Default "samljit_session".
	// When RootURL is https the middleware's cookies get the "__Host-"
	// prefix ("__Host-samljit_session"), so that a sibling subdomain can
	// neither plant nor overwrite them.
	SessionName string

	// SessionLifetime caps how long a session lasts after sign-in. It never
	// outlives the assertion's SessionNotOnOrAfter. Because JIT cannot
	// deprovision, this is the longest a person removed at the IdP keeps
	// access, unless a suspension or [Middleware.EndSessions] ends the
	// session first. Default 8 hours.
	SessionLifetime time.Duration

	// Activity, when its Recorder is set, reports each session's use (the
	// time, the client's IP address and user agent) at most once a
	// minute, for a page listing a person's sessions: see
	// [ActivityOptions]. Off by default.
	Activity ActivityOptions

	// AfterSignInPath is where a sign-in that did not start from a
	// protected page lands. Default "/".
	AfterSignInPath string

	// AfterLogoutPath is where a logout lands: at once when it is local
	// only, or once the IdP has confirmed a Single Logout. Default
	// AfterSignInPath.
	AfterLogoutPath string

	// Now is the clock. Default time.Now. Every time judgement this package
	// makes uses it, and so does crewjam/saml's validation for this
	// middleware (signature certificates' validity included).
	Now func() time.Time

	// ClockSkew is the tolerance applied to validity windows. Default 180
	// seconds, as Shibboleth and crewjam use.
	ClockSkew time.Duration

	// MaxResponseBytes caps the decoded SAMLResponse; the POST body is
	// capped accordingly before it is read. Default 256 KiB.
	MaxResponseBytes int

	// MaxXMLDepth caps the nesting depth of the response. Default 32.
	MaxXMLDepth int

	// SignRequests signs authentication requests with RSA-SHA256 when the
	// IdP's binding allows it.
	SignRequests bool

	// Logger receives one record per sign-in outcome and per refused
	// request, with stable keys (correlation_id, connection, event, reason,
	// user_id, issuer, subject). Assertions are never logged. Default
	// slog.Default().
	Logger *slog.Logger

	// OnEvent, when set, is called synchronously after every sign-in
	// outcome: created, updated (with the before and after profiles and
	// the changed fields), linked, or refused (with the reason), and on a
	// groups overage. It is the one event hook, for every connection:
	// [Event.Connection] names the connection. It must not block for
	// long.
	OnEvent func(ctx context.Context, e Event)

	// RenderError, when set, writes the page shown when a sign-in is
	// refused or a protected request cannot be served. The default writes a
	// small HTML page with the message, the correlation id and, when set,
	// a Try again link to f.SignInURL. A sign-in refused at the ACS is
	// drawn after a redirect, at PathPrefix+"/failed", so that a reload is
	// safe; there f.Err matches the reason's sentinel errors and holds no
	// detail. Implementations must not show f.Err to the person.
	RenderError func(w http.ResponseWriter, r *http.Request, f *Failure)

	// HTTPClient fetches IdP metadata from Connection.IDPMetadataURL, at
	// start-up and in the background refresh. Default: a client with a
	// 10-second timeout.
	HTTPClient *http.Client

	// MetadataRefreshInterval is the longest IdP metadata fetched from a
	// Connection.IDPMetadataURL is kept before it is fetched again. A
	// shorter cacheDuration or an earlier validUntil in the document brings
	// the refresh forward, but not below one minute (or this interval, if
	// shorter). Default 24 hours.
	MetadataRefreshInterval time.Duration
}

// Connection is one identity provider (a tenant) the application trusts.
type Connection struct {
	// Name identifies the connection in endpoint paths and logs: lower-case
	// letters, digits, '-' and '_'. It may be empty only when it is the sole
	// connection. Users are bound to the connection that created them.
	Name string

	// DisplayName labels the connection for people. Default: Name.
	DisplayName string

	// Domains are the email domains whose people sign in through this
	// connection ([Middleware.Discover], /saml/login?email=…), lower
	// case: "example.com". Listing one here is the operator's word that
	// the customer controls it. A domain belongs to at most one
	// connection.
	Domains []string

	// IDPMetadata is the IdP's SAML metadata XML. Exactly one of
	// IDPMetadata and IDPMetadataURL is required. Signatures are trusted
	// only from the signing certificates it lists. A validUntil in it is
	// enforced: New refuses metadata already expired, and once it passes,
	// sign-ins fail with [ErrMetadataExpired].
	IDPMetadata []byte

	// IDPMetadataURL is where the IdP publishes its metadata. New fetches
	// it and fails if it cannot, then one background goroutine per
	// Middleware fetches it again as the document's cacheDuration and
	// validUntil ask, at least every [Options.MetadataRefreshInterval].
	// Every signing certificate listed is trusted, so an IdP that publishes
	// its next certificate beside the current one before switching rolls
	// over without a failed sign-in. A failed fetch keeps the last good
	// copy and is retried with backoff; a document naming another entityID,
	// listing no signing certificate or already expired is refused the
	// same way. Once the copy in hand passes its validUntil, sign-ins
	// through the connection fail with [ErrMetadataExpired] until a fresh
	// copy arrives. Call [Middleware.Close] to stop the refresh.
	IDPMetadataURL string

	// InsecureAllowHTTPMetadata lets IDPMetadataURL be plain http for a
	// host other than loopback. Off by default: the metadata holds the
	// certificates every signature is checked against, so whoever can
	// change it in transit, at start-up or at any refresh, can sign in as
	// anyone. With or without it, a redirect to another host, or from
	// https to http, is never followed. Linted.
	InsecureAllowHTTPMetadata bool

	// EntityID is this SP's entity ID towards this IdP, the audience its
	// assertions must name. Default: the connection's metadata URL.
	EntityID string

	// Mapper derives the user's key and profile from the assertion. Default
	// [claims.Generic]. The key's issuer must be the IdP's entity ID.
	Mapper claims.Mapper

	// NameIDFormat is requested in the AuthnRequest's NameIDPolicy. Default
	// persistent.
	NameIDFormat saml.NameIDFormat

	// AllowIDPInitiated accepts unsolicited responses (sign-ins started at
	// the IdP's portal). Off by default: an unsolicited response cannot be
	// tied to this browser, so it is easier to replay or inject. Solicited
	// responses are still checked against the request this browser
	// started, and the replay record still applies.
	AllowIDPInitiated bool

	// AllowSHA1 accepts RSA-SHA1 signatures and SHA-1 digests from this
	// IdP. SHA-1 is refused by default: collisions are practical.
	AllowSHA1 bool

	// AllowCBCWithoutSignedResponse accepts an assertion encrypted with an
	// AES-CBC block cipher when only the assertion inside the encryption is
	// signed. By default an AES-CBC EncryptedAssertion is decrypted only
	// when the Response carrying it has a valid signature by the IdP, since
	// decrypting unauthenticated CBC ciphertext is what padding-oracle
	// attacks on XML Encryption need (saml-core errata E93). AES-GCM is not
	// affected. Microsoft Entra ID and ADFS encrypt with AES-256-CBC and by
	// default sign only the assertion: configure them to sign the response
	// too (Entra: "Sign SAML response and assertion"), or set this.
	AllowCBCWithoutSignedResponse bool

	// Policy says what sign-ins through this connection may create and
	// change: creation, per-field sync rules, roles from groups, the groups
	// overage, brownfield accounts and hooks. The zero value is safe.
	Policy Policy
}
