package jit

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/samljit/samljit/claims"
)

// A refused sign-in is answered with a redirect after the POST: the ACS
// seals the failure into a short-lived cookie and sends the browser to
// PathPrefix+"/failed?ref=CORRELATION_ID", which renders it. A reload of
// that page shows the same failure again instead of resubmitting the
// response (or meeting a 405 on the ACS). The URL carries only the
// correlation id, which the middleware made; the page shows nothing from
// the request but that id, and only when it is one the middleware could
// have made. The cookie is sealed with Options.SessionKeys, so any
// instance of the application can render it.

const (
	failureCookieName = "samljit_failure"
	// failureLifetime is how long the failure page can be reloaded: the
	// lifetime of the cookies sealed with the same codecs.
	failureLifetime = requestLifetime
)

// failureKinds are the reasons a sealed failure remembers, so that the
// failure page's Failure.Err still matches them with errors.Is; the details
// stay in the log.
var failureKinds = []error{
	ErrInvalidResponse, ErrResponseTooLarge, ErrUnsolicited, ErrReplayed, ErrMapping, ErrSuspended,
	ErrStoreUnavailable, ErrMetadataExpired, ErrUnknownUser, ErrEmailConflict, ErrIdentifierConflict,
	ErrProofRequired, ErrNotAuthorized, ErrGroupsOverage, ErrGroupsUnavailable, ErrVetoed, ErrHook,
	ErrInternal, ErrSessionExpired, errMethod,
	claims.ErrMissingAttribute, claims.ErrAmbiguousAttribute, claims.ErrTooManyValues, claims.ErrEmptySubject,
	claims.ErrInvalidScope, claims.ErrTransientNameID, claims.ErrEmailNameID, claims.ErrNoIssuer,
}

// sealedFailure is what the failure cookie holds.
type sealedFailure struct {
	Corr      string `json:"corr"`
	Status    int    `json:"status"`
	Message   string `json:"msg"`
	Conn      string `json:"conn,omitempty"`
	SignInURL string `json:"retry,omitempty"`
	Kinds     []int  `json:"kinds,omitempty"` // indexes into failureKinds
	Expires   int64  `json:"exp"`
}

// redirectFailure answers a refused POST to the ACS: it seals f into the
// failure cookie and redirects to the failure page. If the failure cannot
// be sealed, it renders the page at once, as before.
func (m *Middleware) redirectFailure(w http.ResponseWriter, r *http.Request, f *Failure) {
	sf := sealedFailure{Corr: f.CorrelationID, Status: f.Status, Message: f.Message, Conn: f.Connection,
		SignInURL: f.SignInURL, Expires: m.now().Add(failureLifetime).Unix()}
	for i, k := range failureKinds {
		if errors.Is(f.Err, k) {
			sf.Kinds = append(sf.Kinds, i)
		}
	}
	name := m.cookieName(failureCookieName)
	v, err := securecookie.EncodeMulti(name, sf, m.codecs...)
	if err != nil || !isCorrelationID(f.CorrelationID) {
		m.renderError(w, r, f)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: "/", MaxAge: int(failureLifetime / time.Second),
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, m.prefix+"/failed?"+url.Values{"ref": {f.CorrelationID}}.Encode(), http.StatusSeeOther)
}

// serveFailed renders the failure the ACS sealed for this browser under
// the correlation id in ref, with its status; a reload shows it again. A
// ref the browser holds no failure for (expired, another browser's, made
// up) gets a page that says so and offers a new sign-in.
func (m *Middleware) serveFailed(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ref := r.URL.Query().Get("ref")
	if !isCorrelationID(ref) {
		ref = ""
	}
	name := m.cookieName(failureCookieName)
	var sf sealedFailure
	if ck, err := r.Cookie(name); err == nil && ref != "" &&
		securecookie.DecodeMulti(name, ck.Value, &sf, m.codecs...) == nil &&
		sf.Corr == ref && m.now().Unix() < sf.Expires {
		var kinds []error
		for _, i := range sf.Kinds {
			if i >= 0 && i < len(failureKinds) {
				kinds = append(kinds, failureKinds[i])
			}
		}
		err := fmt.Errorf("jit: sign-in %s was refused (the log holds the reason): %w", sf.Corr, errors.Join(kinds...))
		m.renderError(w, r, &Failure{Status: sf.Status, Message: sf.Message, CorrelationID: sf.Corr,
			Connection: sf.Conn, Err: err, SignInURL: sf.SignInURL})
		return
	}
	m.renderError(w, r, &Failure{Status: http.StatusGone, CorrelationID: ref, Err: errFailureGone, SignInURL: m.LoginURL(""),
		Message: "This page about a failed sign-in has expired or belongs to another browser. Please sign in again; if it fails, give your administrator the reference below."})
}

// errFailureGone is the reason of the failure page when the browser holds
// no failure for its ref.
var errFailureGone = errors.New("jit: no sign-in failure for this reference in this browser")

// isCorrelationID reports whether s has the form of the ids
// newCorrelationID makes: 16 lower-case hexadecimal digits.
func isCorrelationID(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

// pageStyle is the style of the pages the middleware shows people: small,
// readable at any width, with visible focus and enough contrast in light
// and dark modes.
const pageStyle = `:root{color-scheme:light dark;--fg:#1b1b1f;--bg:#fff;--muted:#4a4a55;--accent:#0b57d0;--box:#f3f4f6}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8ec;--bg:#16161a;--muted:#b4b4c0;--accent:#8ab4f8;--box:#24242a}}
body{font:1rem/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0}
main{max-width:36rem;margin:0 auto;padding:3rem 1.25rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
a{color:var(--accent)}
a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.button{display:inline-block;padding:.6rem 1.1rem;border-radius:.4rem;background:var(--accent);color:var(--bg);text-decoration:none;font-weight:600}
ul.choices{list-style:none;padding:0}ul.choices li{margin:.5rem 0}
ul.choices a{display:block;padding:.75rem 1rem;border-radius:.4rem;background:var(--box);text-decoration:none;font-weight:600}
label{display:block;font-weight:600;margin-bottom:.4rem}
input{font:inherit;padding:.55rem .7rem;border:1px solid var(--muted);border-radius:.4rem;width:20rem;max-width:100%;box-sizing:border-box;color:var(--fg);background:var(--bg)}
input:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
button{font:inherit;font-weight:600;padding:.6rem 1.1rem;border:0;border-radius:.4rem;background:var(--accent);color:var(--bg);margin-top:.75rem;cursor:pointer}
.problem{border-left:4px solid #b00;padding-left:.75rem}
.ref{color:var(--muted);font-size:.9rem}code{font-size:.95em;word-break:break-all}`

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>` + pageStyle + `</style></head>
<body><main>
<h1>We could not sign you in</h1>
<p>{{.Message}}</p>
{{if .SignInURL}}<p><a class="button" href="{{.SignInURL}}">Try again</a></p>{{end}}
{{if .CorrelationID}}<p class="ref">Reference: <code>{{.CorrelationID}}</code> (give it to your administrator)</p>{{end}}
</main></body></html>
`))
