package main

import (
	"bytes"
	"html/template"
	"net/http"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// pageData is what every page template receives.
type pageData struct {
	Title      string
	Message    string
	Dev        bool
	LoginURL   string
	User       *userstore.User
	Admin      bool
	Users      []userstore.User
	Stale      []userstore.User
	StaleDays  int
	Audit      []jit.Event
	Comparison []comparisonRow
}

// comparisonRow is one line of the JIT-versus-SCIM comparison. The same
// facts are in README.md; a test keeps the two in step.
type comparisonRow struct {
	Aspect, SCIM, Graph, JIT string
}

var comparison = []comparisonRow{
	{"Who acts", "the IdP pushes to your `/Users`, `/Groups`", "your app pulls", "your app, at each sign-in"},
	{"Create, read, update users", "yes", "yes", "yes: create at first sign-in, update at every sign-in"},
	{"Delete / disable users", "**yes**", "yes (you poll for changes)", "**no**: a person who left never signs in again"},
	{"Groups", "yes (group objects, membership)", "yes", "only as claims on the user, at sign-in (Entra: 150 max, then a `groups.link` overage claim)"},
	{"Multiple IdPs / tenants", "one SCIM endpoint per tenant", "per tenant consent", "yes, one connection per IdP"},
	{"Guest (B2B) accounts", "yes", "yes", "yes, as they sign in"},
	{"Effort", "a SCIM server", "Graph client, polling, consent", "this library"},
}

// plain strips the Markdown emphasis and code marks the README uses.
func plain(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '*' && s[i] != '`' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"plain": plain,
	"when": func(t interface{ Format(string) string }) string {
		return t.Format("2006-01-02 15:04:05 MST")
	},
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
nav a{margin-right:1rem} table{border-collapse:collapse;width:100%;margin:1rem 0}
td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.92rem}
.dev{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem 1rem;border-radius:.4rem}
.tag{display:inline-block;background:#eef;border-radius:.3rem;padding:0 .4rem;margin:0 .2rem .2rem 0}
.suspended{color:#a00;font-weight:600} code{font-size:.85rem}
button{cursor:pointer}
</style></head><body>
<nav><a href="/">Home</a>{{if .Admin}}<a href="/admin">Admin</a>{{end}}<a href="/jit-vs-scim">JIT vs SCIM</a>{{if .User}}<a href="/saml/logout">Sign out</a>{{end}}</nav>
{{if .Dev}}<p class="dev"><b>Development IdP.</b> This app is using its built-in identity provider, which signs in anyone who picks a name. Never use it in production: pass <code>-idp-metadata</code>.</p>{{end}}
{{end}}
{{define "foot"}}</body></html>{{end}}

{{define "landing"}}{{template "head" .}}
<h1>samljit example</h1>
<p>Sign in through your organisation's identity provider. The first sign-in creates your user record from the SAML assertion; each later sign-in updates it.</p>
<p><a href="{{.LoginURL}}"><button>Sign in</button></a></p>
{{template "foot"}}{{end}}

{{define "home"}}{{template "head" .}}
{{with .User}}
<h1>Hello, {{if .Profile.DisplayName}}{{.Profile.DisplayName}}{{else}}{{.Key.Subject}}{{end}}</h1>
<p>This is your record, provisioned just in time from your identity provider's assertion.</p>
<table>
<tr><th>Name</th><td id="name">{{.Profile.GivenName}} {{.Profile.FamilyName}}</td></tr>
<tr><th>Email</th><td id="email">{{.Profile.Email}}</td></tr>
<tr><th>Groups</th><td id="groups">{{range .Profile.Groups}}<span class="tag">{{.}}</span>{{else}}none{{end}}</td></tr>
<tr><th>Issuer (tenant)</th><td><code>{{.Key.Issuer}}</code></td></tr>
<tr><th>Subject</th><td><code>{{.Key.Subject}}</code></td></tr>
<tr><th>Status</th><td>{{.Status}}</td></tr>
<tr><th>Created</th><td>{{when .CreatedAt}}</td></tr>
<tr><th>Last sign-in</th><td>{{when .LastSignInAt}}</td></tr>
</table>
{{end}}
{{template "foot"}}{{end}}

{{define "suspended"}}{{template "head" .}}
<h1>Account suspended</h1><p>Your account has been suspended in this application. Contact your administrator.</p>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" .}}
<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{template "foot"}}{{end}}

{{define "admin"}}{{template "head" .}}
<h1>Users</h1>
<table id="users"><tr><th>Tenant (issuer)</th><th>Subject</th><th>Email</th><th>Groups</th><th>Created</th><th>Last sign-in</th><th>Status</th><th></th></tr>
{{range .Users}}<tr>
<td><code>{{.Key.Issuer}}</code></td><td><code>{{.Key.Subject}}</code></td><td>{{.Profile.Email}}</td>
<td>{{range .Profile.Groups}}<span class="tag">{{.}}</span>{{end}}</td>
<td>{{when .CreatedAt}}</td><td>{{when .LastSignInAt}}</td>
<td{{if eq .Status.String "suspended"}} class="suspended"{{end}}>{{.Status}}</td>
<td><form method="post" action="/admin/users/{{.ID}}/{{if eq .Status.String "suspended"}}unsuspend{{else}}suspend{{end}}">
<button>{{if eq .Status.String "suspended"}}Unsuspend{{else}}Suspend{{end}}</button></form></td>
</tr>{{end}}</table>
<p>Suspending is how a JIT app deprovisions: a sign-in never lifts a suspension. Deleting a record is not deprovisioning: the next sign-in would create it again.</p>

<h2>Not signed in for {{.StaleDays}} days</h2>
<form method="get"><label>Days <input name="stale_days" type="number" min="0" value="{{.StaleDays}}"></label> <button>Show</button></form>
<table id="stale"><tr><th>Subject</th><th>Email</th><th>Last sign-in</th><th>Status</th></tr>
{{range .Stale}}<tr><td><code>{{.Key.Subject}}</code></td><td>{{.Profile.Email}}</td><td>{{when .LastSignInAt}}</td><td>{{.Status}}</td></tr>{{else}}<tr><td colspan="4">Nobody.</td></tr>{{end}}</table>
<p>JIT cannot learn that someone left their organisation. Review this list and suspend, or deprovision automatically with SCIM.</p>

<h2>Sign-in audit trail</h2>
<table id="audit"><tr><th>Time</th><th>Event</th><th>Connection</th><th>Subject</th><th>Changed / reason</th><th>Reference</th></tr>
{{range .Audit}}<tr><td>{{when .Time}}</td><td>{{.Kind}}</td><td>{{.Connection}}</td><td><code>{{.Key.Subject}}</code></td>
<td>{{if .Err}}{{.Err}}{{else}}{{range .Changed}}<span class="tag">{{.}}</span>{{end}}{{end}}</td><td><code>{{.CorrelationID}}</code></td></tr>{{end}}</table>
{{template "foot"}}{{end}}

{{define "jitvsscim"}}{{template "head" .}}
<h1>SAML JIT vs SCIM vs Microsoft Graph</h1>
<table><tr><th></th><th>SCIM 2.0 provisioning</th><th>Microsoft Graph</th><th>SAML JIT (samljit)</th></tr>
{{range .Comparison}}<tr><th>{{plain .Aspect}}</th><td>{{plain .SCIM}}</td><td>{{plain .Graph}}</td><td>{{plain .JIT}}</td></tr>{{end}}</table>
<p>JIT creates and updates users at sign-in; it cannot deprovision, because a person who left never signs in again. Suspend users (by an admin, an HR feed, SCIM, or a stale-account review) to keep them out; the session lifetime is the longest a removed person keeps access.</p>
{{template "foot"}}{{end}}
`))

func (a *app) render(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		a.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
