package jit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/samljit/samljit/userstore"
)

// Errors of discovery by email.
var (
	// ErrNotAnEmail: what was given is not an email address with a
	// domain name.
	ErrNotAnEmail = errors.New("jit: not an email address")
	// ErrUnknownDomain: no served connection has the email's domain among
	// its verified domains.
	ErrUnknownDomain = errors.New("jit: no sign-in is set up for the email's domain")
	// ErrDomainNotVerified: the domain's DNS does not hold the expected
	// verification record.
	ErrDomainNotVerified = errors.New("jit: domain not verified")
)

// maxEmail bounds an email address given to discovery.
const maxEmail = 320

// ConnectionForEmail returns the name of the served connection whose
// verified domains include the domain of email (exactly: a subdomain is
// another domain). Errors wrap [ErrNotAnEmail] or [ErrUnknownDomain]. It
// is one map lookup, however many connections there are.
func (m *Middleware) ConnectionForEmail(email string) (string, error) {
	c, _, err := m.discover(email)
	if err != nil {
		return "", err
	}
	return c.name, nil
}

// LoginURLForEmail returns the local path that starts a sign-in through
// the connection of email's domain ([Middleware.ConnectionForEmail]) and
// comes back to returnTo, a local path (anything else is replaced by
// AfterSignInPath at the end of the sign-in).
func (m *Middleware) LoginURLForEmail(email, returnTo string) (string, error) {
	c, _, err := m.discover(email)
	if err != nil {
		return "", err
	}
	return withReturnTo(c.loginPath, returnTo), nil
}

// ConnectionLoginURL returns the local path that starts a sign-in through
// the served connection name and comes back to returnTo: what a chooser
// of the application's own links to.
func (m *Middleware) ConnectionLoginURL(name, returnTo string) (string, bool) {
	c, ok := m.connection(name)
	if !ok {
		return "", false
	}
	return withReturnTo(c.loginPath, returnTo), true
}

func (m *Middleware) discover(email string) (*connection, string, error) {
	if len(email) > maxEmail {
		return nil, "", fmt.Errorf("%w: over %d bytes", ErrNotAnEmail, maxEmail)
	}
	domain := userstore.EmailDomain(email)
	if domain == "" {
		return nil, "", ErrNotAnEmail
	}
	c, ok := m.connectionForDomain(domain)
	if !ok {
		return nil, domain, fmt.Errorf("%w: %s", ErrUnknownDomain, domain)
	}
	return c, domain, nil
}

// connectionForDomain returns the served connection whose verified domains
// include domain.
func (m *Middleware) connectionForDomain(domain string) (*connection, bool) {
	if c, ok := m.codeDomains[domain]; ok {
		return c, true
	}
	if m.reg == nil {
		return nil, false
	}
	m.reg.mu.RLock()
	c, ok := m.reg.byDomain[domain]
	m.reg.mu.RUnlock()
	return c, ok
}

var chooserPage = template.Must(template.New("chooser").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>` + pageStyle + `</style></head>
<body><main>
<h1>Sign in with your organisation</h1>
{{if .Problem}}<p role="alert" class="problem">{{.Problem}}</p>{{end}}
<form method="get" action="{{.Action}}">
<label for="email">Your work email address</label>
<input id="email" name="email" type="email" autocomplete="email" required value="{{.Email}}">
{{if .ReturnTo}}<input type="hidden" name="return_to" value="{{.ReturnTo}}">{{end}}
<div><button type="submit">Continue</button></div>
</form>
</main></body></html>
`))

// chooserView is what the default chooser shows. It never holds a
// connection's name: the page must not list the customers.
type chooserView struct {
	Action, Email, ReturnTo, Problem string
}

// serveChooser serves PathPrefix/login: with ?email=, the sign-in of the
// connection of the email's domain; with ?connection=NAME, that
// connection's; otherwise Options.Chooser, or a page asking for the email.
func (m *Middleware) serveChooser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnTo := q.Get("return_to")
	if !isLocalPath(returnTo) {
		returnTo = ""
	}
	if name := q.Get("connection"); name != "" {
		c, ok := m.connection(name)
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, withReturnTo(c.loginPath, returnTo), http.StatusFound)
		return
	}
	email := strings.TrimSpace(q.Get("email"))
	if !q.Has("email") && m.chooser != nil {
		m.chooser.ServeHTTP(w, r)
		return
	}
	v := chooserView{Action: m.prefix + "/login", ReturnTo: returnTo}
	status := http.StatusOK
	if q.Has("email") {
		c, domain, err := m.discover(email)
		switch {
		case err == nil:
			http.Redirect(w, r, withReturnTo(c.loginPath, returnTo), http.StatusFound)
			return
		case errors.Is(err, ErrUnknownDomain):
			status = http.StatusNotFound
			v.Problem = "Single sign-on is not set up for " + domain + ". Check the address, or ask your organisation's administrator to set it up."
		default:
			status = http.StatusBadRequest
			v.Problem = "Please enter an email address, such as name@example.com."
		}
		if len(email) <= maxEmail {
			v.Email = email
		}
	}
	var buf bytes.Buffer
	if err := chooserPage.Execute(&buf, v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// TXTResolver looks up DNS TXT records. *net.Resolver is one; tests give a
// fake.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DomainVerificationRecord returns the DNS TXT record a customer publishes
// to prove they control domain: its name ("_samljit-verification." +
// domain) and its value ("samljit-verification=" + token). token is a
// random value the application keeps with the connection; see
// [VerifyDomain].
func DomainVerificationRecord(domain, token string) (name, value string) {
	return "_samljit-verification." + domain, "samljit-verification=" + token
}

// VerifyDomain reports whether domain's DNS holds the TXT record
// [DomainVerificationRecord] names for token: the check an application
// makes before it marks a domain Verified. Whether a domain is verified
// is the application's decision; an operator may also mark it so
// without DNS. r nil means net.DefaultResolver. A missing or different
// record is an error wrapping [ErrDomainNotVerified]; a failed lookup
// wraps the resolver's error. token must be at least 16 characters.
func VerifyDomain(ctx context.Context, r TXTResolver, domain, token string) error {
	if err := userstore.CheckDomain(domain); err != nil {
		return fmt.Errorf("%w: %w", ErrDomainNotVerified, err)
	}
	if len(token) < 16 {
		return fmt.Errorf("%w: the verification token is under 16 characters", ErrDomainNotVerified)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	name, want := DomainVerificationRecord(domain, token)
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return fmt.Errorf("%w: %s has no TXT record", ErrDomainNotVerified, name)
		}
		return fmt.Errorf("jit: look up TXT %s: %w", name, err)
	}
	if slices.Contains(txts, want) {
		return nil
	}
	return fmt.Errorf("%w: no TXT record of %s is %q", ErrDomainNotVerified, name, want)
}
