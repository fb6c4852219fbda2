package jit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/samljit/samljit/claims"
)

// Errors a sign-in or a protected request can fail with. They reach
// [Options.OnEvent], [Options.RenderError] and the log, wrapped with
// detail; test them with errors.Is. The person only ever sees a plain
// message and a correlation id.
var (
	// ErrInvalidResponse means the SAML response failed validation: bad
	// signature, wrong audience, recipient, destination or issuer, expired,
	// malformed, or any structural check.
	ErrInvalidResponse = errors.New("jit: invalid SAML response")
	// ErrResponseTooLarge means the body, the decoded response or its
	// nesting depth exceeded the configured bounds.
	ErrResponseTooLarge = errors.New("jit: SAML response too large")
	// ErrUnsolicited means a response answered no request this browser
	// started, and the connection does not allow IdP-initiated sign-in.
	ErrUnsolicited = errors.New("jit: unsolicited SAML response")
	// ErrReplayed means the assertion was already used.
	ErrReplayed = errors.New("jit: assertion replayed")
	// ErrMapping means the claims could not be mapped to a user: a required
	// attribute is missing, the key would be transient or an email, or an
	// identity attribute is ambiguous. The wrapped error is from package
	// claims.
	ErrMapping = errors.New("jit: claims cannot be mapped to a user")
	// ErrSuspended means the user is suspended. Suspension is an
	// administrative decision; a sign-in never lifts it.
	ErrSuspended = errors.New("jit: user suspended")
	// ErrStoreUnavailable means the user store or replay record failed. The
	// person sees a 503 and may retry; nothing was half-written.
	ErrStoreUnavailable = errors.New("jit: user store unavailable")
	// ErrMetadataExpired means the connection's IdP metadata has passed its
	// validUntil and no fresh copy has been fetched since: sign-ins through
	// the connection are refused with a 503 until the background refresh
	// brings one.
	ErrMetadataExpired = errors.New("jit: IdP metadata expired")
	// ErrUnknownUser means a first sign-in was refused because the
	// connection's [Policy.DisableCreate] is set.
	ErrUnknownUser = errors.New("jit: user not provisioned and creation is disabled")
	// ErrEmailConflict means a first sign-in asserted an email that belongs
	// to an existing user the brownfield policy does not link: a local
	// account under [BrownfieldDeny] or an unverified domain, or a user of
	// another connection (never linked).
	ErrEmailConflict = errors.New("jit: email belongs to an existing user")
	// ErrIdentifierConflict means a first sign-in asserted an email that
	// belongs to a user of the same connection under another subject:
	// either the IdP reassigned the address or the subject changed. Neither
	// a second account nor a takeover is made; an administrator decides.
	ErrIdentifierConflict = errors.New("jit: email belongs to another subject of the same IdP")
	// ErrProofRequired means [Brownfield.Prove] did not accept that the
	// person holds the existing account the email belongs to.
	ErrProofRequired = errors.New("jit: existing account not proven")
	// ErrNotAuthorized means the user is in none of the connection's
	// [RoleMapping.RequiredGroups].
	ErrNotAuthorized = errors.New("jit: user is in no required group")
	// ErrGroupsOverage means the IdP omitted the groups (Entra ID's groups
	// overage), no [GroupResolver] is configured, and the user's roles
	// cannot be known: a first sign-in under a group-based role mapping.
	ErrGroupsOverage = errors.New("jit: IdP omitted the groups (overage)")
	// ErrGroupsUnavailable means the [GroupResolver] failed; the person sees
	// a 503 and may retry.
	ErrGroupsUnavailable = errors.New("jit: groups could not be resolved")
	// ErrVetoed means an application hook refused the sign-in with [Veto].
	ErrVetoed = errors.New("jit: sign-in vetoed by the application")
	// ErrHook means an application hook failed without a veto; the person
	// sees a 503.
	ErrHook = errors.New("jit: application hook failed")
	// ErrInternal means something panicked during a sign-in (a hook, the
	// group resolver, the store or the event callback); the person sees a
	// 500 and the log holds the panic and its stack.
	ErrInternal = errors.New("jit: internal error")
	// ErrNotSignedIn means a protected request carried no valid session.
	ErrNotSignedIn = errors.New("jit: not signed in")
	// ErrSessionExpired means the session's lifetime has passed.
	ErrSessionExpired = errors.New("jit: session expired")
)

// Failure describes a refused sign-in or a protected request that cannot be
// served. It is passed to [Options.RenderError].
type Failure struct {
	// Status is the HTTP status to send.
	Status int
	// Message is plain text safe to show the person.
	Message string
	// CorrelationID ties the page to the log record.
	CorrelationID string
	// Connection is the IdP connection's name, if known.
	Connection string
	// Err is the reason. Never show it to the person.
	Err error
	// SignInURL, when set, is where the person can start the sign-in
	// again: for a refused sign-in, the connection that refused it,
	// coming back to the page it started from; unset when another attempt
	// cannot succeed (a suspended account).
	SignInURL string

	fix string // what an administrator changes, logged with the reason
}

// Error returns the reason, for logs.
func (f *Failure) Error() string { return f.Err.Error() }

// Unwrap returns the reason.
func (f *Failure) Unwrap() error { return f.Err }

// failure classifies err into the status and the plain message a person
// sees. Validation details never reach the message.
func failure(err error, corr, conn string) *Failure {
	f := &Failure{Status: http.StatusForbidden, CorrelationID: corr, Connection: conn, Err: err,
		Message: "The sign-in response from your identity provider could not be accepted. Please start the sign-in again."}
	var missing *claims.MissingAttributeError
	var veto *VetoError
	switch {
	case errors.Is(err, ErrInternal):
		f.Status = http.StatusInternalServerError
		f.Message = "Something went wrong while signing you in. Please try again; if it keeps happening, give your administrator the reference below."
	case errors.As(err, &veto):
		f.Message = veto.Reason
	case errors.Is(err, ErrGroupsUnavailable), errors.Is(err, ErrHook):
		f.Status = http.StatusServiceUnavailable
		f.Message = "Sign-in is temporarily unavailable. Please try again in a moment."
	case errors.Is(err, ErrUnknownUser):
		f.Message = "Your account has not been set up in this application. Ask your administrator for access."
	case errors.Is(err, ErrEmailConflict), errors.Is(err, ErrIdentifierConflict):
		f.Message = "An account with your email address already exists in this application, and it cannot be linked to this sign-in automatically. Ask your administrator to resolve it."
	case errors.Is(err, ErrProofRequired):
		f.Message = "An account with your email address already exists in this application. Sign in to it first, then sign in with your organisation again to link the two."
	case errors.Is(err, ErrNotAuthorized):
		f.Message = "You are not in a group that may use this application. Ask your administrator for access."
	case errors.Is(err, ErrGroupsOverage):
		f.Message = "Your organisation sent too many groups for this application to decide your access. Ask your administrator to limit the groups sent to this application."
	case errors.Is(err, ErrStoreUnavailable):
		f.Status = http.StatusServiceUnavailable
		f.Message = "Sign-in is temporarily unavailable. Please try again in a moment."
	case errors.Is(err, ErrMetadataExpired):
		f.Status = http.StatusServiceUnavailable
		f.Message = "Sign-in through your organisation is temporarily unavailable. Please try again later."
	case errors.Is(err, ErrSuspended):
		f.Message = "Your account has been suspended in this application. Contact your administrator."
	case errors.As(err, &missing):
		f.Message = fmt.Sprintf("Your identity provider did not send the %s this application requires. Ask your administrator to release it to this application.", missing.Field)
	case errors.Is(err, ErrMapping):
		f.Message = "Your identity provider did not identify you in a way this application can use. Ask your administrator to check the connection's settings."
	case errors.Is(err, ErrResponseTooLarge):
		f.Status = http.StatusRequestEntityTooLarge
	case errors.Is(err, errMethod):
		f.Status = http.StatusMethodNotAllowed
		f.Message = "This address accepts only a sign-in response posted by your identity provider."
	}
	return f
}

var errMethod = errors.New("jit: method not allowed")

func defaultRenderError(w http.ResponseWriter, _ *http.Request, f *Failure) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if f.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(f.Status)
	_ = errorPage.Execute(w, f)
}

// newID returns n random bytes as hex. It panics only if the system's
// random source fails, which crypto/rand documents as unrecoverable.
func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newCorrelationID() string { return newID(8) }

// storeErr wraps a store failure so that it is recognised as one.
func storeErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrStoreUnavailable, op, err)
}
