package main

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"

	"github.com/samljit/samljit/userstore"
)

// pageData is what every page template receives.
type pageData struct {
	Title     string
	Message   string
	Dev       bool
	LoginURL  string
	User      *userstore.User
	Admin     bool
	Users     []userstore.User
	Sessions  map[string]int // live sessions by user ID, on the admin page
	StaleDays int
	Audit     []auditEntry
	Facts     *jitVsSCIMFacts
	Stale     []staleUser
	SCIM      []scimEndpoint  // the SCIM endpoints the admin manages
	Live      *liveComparison // JIT vs SCIM for the signed-in person
	SSOSetup  string          // the connection the user may set up (setup.go)

	// AuditOlder is the audit entry ID the admin page's next page of the
	// trail starts before; 0 when there is no older page.
	AuditOlder int64

	// Development IdP pages only.
	Error      string          // a refused edit
	DevTenants []devTenantView // the /dev-idp directory
	Tenant     string          // the edited person's tenant
	Person     *devPerson      // the edited person
	DevSCIM    bool            // the development IdP can push over SCIM

	// SessionList is the content of a sessions page (sessions.go).
	SessionList *sessionsPage
}

// jitVsSCIMFacts is the content of the "JIT vs SCIM" page. README.md's
// section "What SAML JIT cannot do" states the same facts in Markdown;
// TestREADMEMatchesJITvsSCIMPage keeps the two in step in both directions.
// Text fields are Markdown limited to `code` and **bold**.
type jitVsSCIMFacts struct {
	// Intro is the sentence before the comparison table.
	Intro string
	// Columns heads the table's SCIM, Graph and JIT columns.
	Columns [3]string
	// Rows is the comparison table.
	Rows []comparisonRow
	// Measured is samljit's own behaviour at the limit, each line backed
	// by a test.
	Measured []measuredFact
}

// comparisonRow is one line of the JIT-versus-SCIM comparison.
type comparisonRow struct {
	Aspect, SCIM, Graph, JIT string
}

// measuredFact is one thing samljit does about JIT's limit and the test
// that measures it.
type measuredFact struct {
	Text string // what holds
	Test string // the name of the test function that checks it
	File string // the file that holds that test, relative to the module root
}

var jitVsSCIM = jitVsSCIMFacts{
	Intro:   "Entra ID offers SaaS apps three ways to have a user record before a user's first sign-in:",
	Columns: [3]string{"SCIM 2.0 provisioning", "Microsoft Graph", "SAML JIT (samljit)"},
	Rows: []comparisonRow{
		{"Who acts", "the IdP pushes to your `/Users`, `/Groups`", "your app pulls", "your app, at each sign-in"},
		{"Create, read, update users", "yes", "yes", "yes: create at first sign-in, update at every sign-in"},
		{"Delete / disable users", "**yes**", "yes (you poll for changes)", "**no**: a person who left never signs in again"},
		{"Groups", "yes (group objects, membership)", "yes", "only as claims on the user, at sign-in (Entra: 150 max, then a `groups.link` overage claim, which `jit/entragraph` resolves through Graph)"},
		{"Multiple IdPs / tenants", "one SCIM endpoint per tenant", "per tenant consent", "yes, one connection per IdP"},
		{"Guest (B2B) accounts", "yes", "yes", "yes, as they sign in"},
		{"Effort", "the `scim` package, on the same user records", "Graph client, polling, consent (`jit/entragraph` for the groups overage)", "this library"},
	},
	Measured: []measuredFact{
		{"`userstore.Store`, the only store the sign-in path accepts, has exactly two methods, `Lookup` and `Provision`: no sign-in can delete, suspend or reactivate anyone, and a test fails if the interface is widened.",
			"TestStoreIsNarrow", "userstore/contract_test.go"},
		{"`userstore.Profile` has no status field: no claim can suspend or re-enable a user.",
			"TestProfileHasNoStatus", "userstore/contract_test.go"},
		{"A suspended user is refused at sign-in, before any write, and on their next request.",
			"TestSuspendedUserRefusedAtACSAndMidSession", "jit/acs_test.go"},
		{"A person deleted at the IdP keeps their record and their session until it expires: `SessionLifetime` (8 h by default) is the worst-case delay.",
			"TestRemovedAtIdPKeepsAccessUntilSessionEnds", "jit/session_test.go"},
		{"Deleting a JIT user locally is not deprovisioning: their next sign-in creates them again.",
			"TestSessionEndsAndDeletedUserMustSignInAgain", "jit/session_test.go"},
		{"**Suspend** is the supported deprovisioning (`userstore.Admin.Suspend`, on the concrete stores), and JIT never reverses it: only an administrator's `Unsuspend` does.",
			"testProvisionNeverChangesStatus", "userstore/storetest/storetest.go"},
		{"A suspension ends the user's sessions at once, on every instance sharing the store, and unsuspending revives none of them: the person signs in again.",
			"TestUnsuspendDoesNotReviveSessions", "jit/revocation_test.go"},
		{"Every sign-in stamps `LastSignInAt`; `userstore.Admin.NotSignedInSince` is the stale-account report to review and suspend from, oldest first.",
			"TestAdminStaleAccountReport", "example/admin_test.go"},
		{"To deprovision automatically, use **SCIM** (or an HR feed) to call `Suspend` when the IdP disables someone: their next request is refused.",
			"TestFeedSuspendEndsAccess", "example/admin_test.go"},
	},
}

// plain strips the Markdown emphasis and code marks the facts use.
func plain(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '*' && s[i] != '`' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// inlineMarkdown renders the Markdown the facts use, `code` and **bold**,
// as HTML. Everything else, unmatched marks included, is escaped text.
func inlineMarkdown(s string) template.HTML {
	var b strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, "`"):
			if end := strings.IndexByte(s[1:], '`'); end >= 0 {
				b.WriteString("<code>" + template.HTMLEscapeString(s[1:1+end]) + "</code>")
				s = s[end+2:]
				continue
			}
		case strings.HasPrefix(s, "**"):
			if end := strings.Index(s[2:], "**"); end >= 0 {
				b.WriteString("<strong>" + string(inlineMarkdown(s[2:2+end])) + "</strong>")
				s = s[end+4:]
				continue
			}
		}
		i := strings.IndexAny(s[1:], "`*") + 1
		if i == 0 {
			i = len(s)
		}
		b.WriteString(template.HTMLEscapeString(s[:i]))
		s = s[i:]
	}
	return template.HTML(b.String()) //nolint:gosec // every piece of s is escaped above
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"md": inlineMarkdown,
	"when": func(t interface{ Format(string) string }) string {
		return t.Format("2006-01-02 15:04:05 MST")
	},
	"initials": func(u *userstore.User) string {
		return devPerson{Given: u.Profile.GivenName, Family: u.Profile.FamilyName}.Initials()
	},
	"short": func(t interface{ Format(string) string }) string {
		return t.Format("2006-01-02 15:04")
	},
	"join": strings.Join,
}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{with .Title}}{{.}} · {{end}}samljit example</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1e2a3a;color:#fff}
header .bar{max-width:78rem;margin:0 auto;padding:.75rem 1rem;display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap}
header a{color:#dfe7f2;text-decoration:none} header a:hover{color:#fff;text-decoration:underline}
.brand{font-weight:700;color:#fff;margin-right:.5rem} .who{margin-left:auto;color:#b8c4d4;font-size:.92rem}
form.inline{display:inline;margin:0} button.link{background:none;border:0;padding:0;color:#dfe7f2;font-size:inherit} button.link:hover{color:#fff;text-decoration:underline}
main{max-width:78rem;margin:1.5rem auto;padding:0 1rem}
.dev{background:#fff3cd;border:1px solid #e0c36a;padding:.6rem 1rem;border-radius:.4rem;margin:0 0 1.25rem}
.card{background:#fff;border:1px solid #dde1e6;border-radius:.6rem;padding:1.25rem 1.5rem;margin:0 0 1.25rem}
.profile{display:flex;gap:1.25rem;align-items:center}
.avatar{flex:none;width:4rem;height:4rem;border-radius:50%;background:#3b5bdb;color:#fff;display:grid;place-items:center;font-weight:700;font-size:1.4rem}
.avatar.small{width:2.4rem;height:2.4rem;font-size:.95rem}
h1{margin:0 0 .25rem;font-size:1.7rem} h2{font-size:1.2rem;margin:0 0 .5rem} .muted{color:#5b6470}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border-bottom:1px solid #e3e6ea;padding:.4rem .5rem;text-align:left;vertical-align:top;font-size:.92rem}
th{color:#3d4652;font-weight:600}
.tag{display:inline-block;background:#e7ecff;color:#1f2d5a;border-radius:.3rem;padding:0 .45rem;margin:0 .25rem .2rem 0;font-size:.88rem}
.ok{color:#1f7a4d;font-weight:600} .suspended{color:#a00;font-weight:600} code{font-size:.85rem}
button,.button{cursor:pointer;font:inherit;border-radius:.4rem;border:1px solid #b9c0c9;background:#fff;padding:.3rem .8rem;color:#1b1f24;text-decoration:none;display:inline-block}
.primary{background:#1f7a4d;border-color:#1f7a4d;color:#fff;padding:.5rem 1.2rem}
.danger{border-color:#c0392b;color:#a00}
.flash{background:#e6f4ea;border:1px solid #9fd3ae;padding:.6rem 1rem;border-radius:.4rem}
.error{background:#fdecea;border:1px solid #f1a7a0;padding:.6rem 1rem;border-radius:.4rem}
.form label{display:block;margin:.6rem 0 .2rem;font-weight:600} input[type=text],input[type=email],textarea{font:inherit;width:100%;max-width:28rem;padding:.35rem .5rem;border:1px solid #b9c0c9;border-radius:.3rem}
td.actions form{display:inline-block;margin:0 .35rem .25rem 0}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f4f6;padding:.5rem .75rem;border-radius:.4rem}
.change del{color:#a00} .change ins{color:#1f7a4d;text-decoration:none} .change del:empty::after,.change ins:empty::after{content:"(none)";color:#5b6470}
#measured li{margin:.35rem 0} .nowrap{white-space:nowrap} .scroll{overflow-x:auto} .issuer{word-break:break-all;min-width:10rem} .hint{font-size:.85rem;color:#5b6470;margin:.15rem 0 0}
@media (max-width:48rem){
/* On a phone the users table becomes one card per person, each cell
   labelled, so that the actions are on screen, not past a scroll. */
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards tr:first-child{display:none}
table.cards tr{border:1px solid #dde1e6;border-radius:.5rem;padding:.5rem .75rem;margin:0 0 .75rem;background:#fff}
table.cards td{border:0;padding:.2rem 0}
table.cards td[data-label]::before{content:attr(data-label);display:block;font-size:.78rem;color:#5b6470;font-weight:600}
.issuer{min-width:0} .nowrap{white-space:normal;word-break:break-all}
}
</style></head><body>
<header><div class="bar"><a class="brand" href="/">samljit example</a><a href="/">Home</a>{{if .Admin}}<a href="/admin">Admin</a>{{end}}{{if .SSOSetup}}<a id="setup-sso-link" href="/setup-sso">Set up SSO</a>{{end}}<a href="/jit-vs-scim">JIT vs SCIM</a>{{if .Dev}}<a href="/dev-idp">Dev IdP people</a>{{end}}
{{if .User}}<span class="who">Signed in as {{or .User.Profile.DisplayName .User.Key.Subject}} · <a id="your-sessions" href="/sessions">Your sessions</a> · <form method="post" action="/saml/logout" class="inline"><button id="signout" class="link">Sign out</button></form></span>{{end}}</div></header>
<main>
{{if .Dev}}<p class="dev"><b>Development IdP.</b> This app is using its built-in identity provider, which signs in anyone who picks a name. Never use it in production: pass <code>-idp-metadata</code>.</p>{{end}}
{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "landing"}}{{template "head" .}}
<div class="card">
<h1>samljit example</h1>
<p>Sign in through your organisation's identity provider. The first sign-in creates your user record from the SAML assertion; each later sign-in updates it.</p>
<p><a class="button primary" id="signin" href="{{.LoginURL}}">Sign in</a></p>
{{if .Dev}}<p class="muted">Choose a tenant, then a sample person. To see JIT update a record, <a href="/dev-idp">edit a person's attributes</a> and sign in again.</p>{{end}}
</div>
{{template "foot"}}{{end}}

{{define "home"}}{{template "head" .}}
{{with .User}}
<div class="card profile">
<div class="avatar" aria-hidden="true">{{initials .}}</div>
<div><h1 id="display-name">Hello, {{or .Profile.DisplayName .Key.Subject}}</h1>
<div class="muted">{{.Profile.Email}}</div>
<div id="group-tags">{{range .Profile.Groups}}<span class="tag">{{.}}</span>{{end}}</div></div>
</div>
<div class="card">
<h2>Your record</h2>
<p class="muted">Provisioned just in time from your identity provider's assertion, and updated at each sign-in.</p>
<table>
<tr><th>Name</th><td id="name">{{.Profile.GivenName}} {{.Profile.FamilyName}}</td></tr>
<tr><th>Email</th><td id="email">{{.Profile.Email}}</td></tr>
<tr><th>Groups</th><td id="groups">{{range .Profile.Groups}}<span class="tag">{{.}}</span>{{else}}none{{end}}</td></tr>
<tr><th>Roles</th><td id="roles">{{range .Roles}}<span class="tag">{{.}}</span>{{else}}none{{end}}</td></tr>
<tr><th>Issuer (tenant)</th><td><code>{{.Key.Issuer}}</code></td></tr>
<tr><th>Subject</th><td><code>{{.Key.Subject}}</code></td></tr>
<tr><th>Status</th><td class="ok">{{.Status}}</td></tr>
<tr><th>Created</th><td>{{when .CreatedAt}}</td></tr>
<tr><th>Last sign-in</th><td>{{when .LastSignInAt}}</td></tr>
</table>
</div>
{{end}}
{{template "foot"}}{{end}}

{{define "suspended"}}{{template "head" .}}
<div class="card"><h1>Account suspended</h1><p>Your account has been suspended in this application. Contact your administrator.</p></div>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" .}}
<div class="card"><h1>{{.Title}}</h1><p>{{.Message}}</p></div>
{{template "foot"}}{{end}}

{{define "admin"}}{{template "head" .}}
<div class="card">
<h1>Users</h1>
<div class="scroll"><table id="users" class="cards"><tr><th>Tenant (issuer)</th><th>Subject</th><th>Name</th><th>Email</th><th>Groups</th><th>Roles</th><th>Created</th><th>Last sign-in</th><th>Status</th><th>Sessions</th><th>Actions</th></tr>
{{range .Users}}<tr data-subject="{{.Key.Subject}}">
<td class="issuer" data-label="Tenant (issuer)"><code>{{.Key.Issuer}}</code></td><td class="nowrap" data-label="Subject"><code>{{.Key.Subject}}</code></td><td data-label="Name">{{.Profile.DisplayName}}</td><td data-label="Email">{{.Profile.Email}}</td>
<td data-label="Groups">{{range .Profile.Groups}}<span class="tag">{{.}}</span>{{end}}</td>
<td class="roles" data-label="Roles">{{range .Roles}}<span class="tag">{{.}}</span>{{end}}</td>
<td data-label="Created">{{short .CreatedAt}}</td><td data-label="Last sign-in">{{short .LastSignInAt}}</td>
<td class="status {{if eq .Status.String "suspended"}}suspended{{else}}ok{{end}}" data-label="Status">{{.Status}}</td>
<td class="sessions" data-label="Sessions"><a href="/admin/users/{{.ID}}/sessions">{{index $.Sessions .ID}}</a></td>
<td class="actions"><form method="post" action="/admin/users/{{.ID}}/{{if eq .Status.String "suspended"}}unsuspend{{else}}suspend{{end}}">
{{if eq .Status.String "suspended"}}<button class="unsuspend">Unsuspend</button>{{else}}<button class="suspend danger">Suspend</button>{{end}}</form>
<form method="post" action="/admin/users/{{.ID}}/end-sessions"><button class="end-sessions">End sessions</button></form></td>
</tr>{{end}}</table></div>
<p class="muted">Suspending is how a JIT app deprovisions: a sign-in never lifts a suspension, and it ends the person's sessions at once. Ending sessions signs someone out on every device without suspending them: they may sign in again. Deleting a record is not deprovisioning: the next sign-in would create it again.</p>
</div>

<div class="card">
<h2>Not signed in for {{.StaleDays}} days</h2>
<form method="get"><label>Days <input name="stale_days" type="number" min="0" value="{{.StaleDays}}"></label> <button>Show</button></form>
<div class="scroll"><table id="stale"><tr><th>Subject</th><th>Email</th><th>Last sign-in</th><th>Days ago</th><th>Status</th></tr>
{{range .Stale}}<tr data-subject="{{.Key.Subject}}"><td><code>{{.Key.Subject}}</code></td><td>{{.Profile.Email}}</td><td>{{when .LastSignInAt}}</td><td class="days">{{.Days}}</td><td class="status">{{.Status}}</td></tr>
{{else}}<tr><td colspan="5">Nobody.</td></tr>{{end}}</table></div>
<p class="muted">JIT cannot learn that someone left their organisation. Review this list and suspend, or deprovision automatically with SCIM.</p>
</div>

{{template "scim-endpoints" .}}
<div class="card">
<h2>Audit trail</h2>
<p class="muted">Every sign-in and every administrator's action, newest first, kept in the database beside the users.</p>
<div class="scroll"><table id="audit"><tr><th>Time</th><th>Event</th><th>By</th><th>Subject</th><th>Changes / reason</th><th>Reference</th></tr>
{{range .Audit}}<tr data-kind="{{.Kind}}"><td class="nowrap">{{when .Time}}</td><td>{{.Kind}}{{with .Connection}} <span class="muted">({{.}})</span>{{end}}</td><td>{{.Actor}}</td><td><code>{{.Key.Subject}}</code></td>
<td>{{if .Reason}}{{.Reason}}{{else}}{{range .Changes}}<div class="change"><span class="tag">{{.Field}}</span> <del>{{.Before}}</del> → <ins>{{.After}}</ins></div>{{end}}{{end}}</td><td><code>{{.CorrelationID}}</code></td></tr>{{else}}<tr><td colspan="6">Nothing yet.</td></tr>{{end}}</table></div>
{{if .AuditOlder}}<p><a class="button" id="audit-older" href="/admin?audit_before={{.AuditOlder}}">Older entries</a></p>{{end}}
</div>
{{template "foot"}}{{end}}

{{define "jitvsscim"}}{{template "head" .}}
{{template "jitvsscim-live" .}}
{{with .Facts}}
<div class="card">
<h1>SAML JIT vs SCIM vs Microsoft Graph</h1>
<p>{{md .Intro}}</p>
<div class="scroll"><table id="comparison"><tr><th></th>{{range .Columns}}<th>{{md .}}</th>{{end}}</tr>
{{range .Rows}}<tr><th>{{md .Aspect}}</th><td>{{md .SCIM}}</td><td>{{md .Graph}}</td><td>{{md .JIT}}</td></tr>
{{end}}</table></div>
</div>
<div class="card">
<h2>What samljit does about the limit</h2>
<ul id="measured">
{{range .Measured}}<li>{{md .Text}} <span class="muted">Measured by <code>{{.Test}}</code> ({{.File}}).</span></li>
{{end}}</ul>
</div>
{{end}}
{{template "foot"}}{{end}}

{{define "devidp"}}{{template "head" .}}
{{if .Message}}<p class="flash" id="flash">{{.Message}}</p>{{end}}
<div class="card">
<h1>Development IdP people</h1>
<p class="muted">The sample people of the built-in development IdP, as it will assert them at their next sign-in. Edit someone, then sign in as them: JIT updates their record in this app, and the admin page's audit trail shows which fields changed. Members of <span class="tag">admins</span> may use the admin page.</p>
{{if not .User}}<p><a class="button primary" href="{{.LoginURL}}">Sign in</a></p>{{end}}
</div>
{{range .DevTenants}}{{$tenant := .Name}}{{$scim := .SCIM}}
<div class="card" id="tenant-{{.Name}}">
<h2>{{.Display}} <code>{{.Name}}</code></h2>
{{if .MetadataURL}}<p class="muted">IdP metadata: <a class="metadata-url" href="{{.MetadataURL}}"><code>{{.MetadataURL}}</code></a></p>{{end}}
{{if .ExplainCommand}}<details class="explain"><summary>Debug a sign-in with <code>samljit explain</code></summary>
<p class="hint">In the browser's developer tools (Network), find the POST to this app's <code>/acs</code> after a sign-in, copy its <code>SAMLResponse</code> form field (or the whole form body) into <code>response.b64</code>, and run, from the samljit repository:</p>
<pre><code class="explain-command">{{.ExplainCommand}}</code></pre>
<p class="hint">A response is stale within minutes; explain then prints the <code>-now</code> to rerun it with. The development IdP's key and port change at every start of the app.</p></details>{{end}}
<table><tr><th></th><th>Name</th><th>Email</th><th>Groups</th><th>NameID</th><th></th></tr>
{{range .People}}<tr data-nameid="{{.NameID}}"><td><div class="avatar small" aria-hidden="true">{{.Initials}}</div></td><td>{{.Name}}</td><td>{{.Email}}</td>
<td>{{range .Groups}}<span class="tag">{{.}}</span>{{else}}<i>none</i>{{end}}</td><td><code>{{.NameID}}</code></td>
<td><a class="button edit" href="/dev-idp/{{$tenant}}/{{.NameID}}">Edit</a>{{if $scim}}{{template "dev-scim-buttons" (printf "/dev-idp/%s/%s/scim" $tenant .NameID)}}{{end}}</td></tr>{{end}}</table>
</div>
{{end}}
{{template "foot"}}{{end}}

{{define "devedit"}}{{template "head" .}}
{{with .Person}}
<div class="card">
<h1>Edit {{.Name}}</h1>
<p class="muted">Attributes the development IdP (tenant <code>{{$.Tenant}}</code>) asserts for <code>{{.NameID}}</code>. They reach the app at the next sign-in. The NameID is the immutable key JIT matches on, so it cannot be changed here: a new NameID would be a new user.</p>
{{if $.Error}}<p class="error" id="form-error">{{$.Error}}</p>{{end}}
<form class="form" method="post" action="/dev-idp/{{$.Tenant}}/{{.NameID}}" id="edit-person">
<label for="given">Given name</label><input type="text" id="given" name="given" value="{{.Given}}" required maxlength="100">
<label for="family">Family name</label><input type="text" id="family" name="family" value="{{.Family}}" required maxlength="100">
<label for="email">Email</label><input type="email" id="email" name="email" value="{{.Email}}" required maxlength="100">
<label for="groups-input">Groups</label><input type="text" id="groups-input" name="groups" value="{{join .Groups ", "}}">
<p class="hint">Comma-separated. Members of <code>admins</code> may use the admin page.</p>
<p><button class="primary" type="submit" id="save">Save</button>{{if $.DevSCIM}} <button type="submit" id="save-push" name="action" value="update" formaction="/dev-idp/{{$.Tenant}}/{{.NameID}}/scim">Save and push over SCIM</button>{{end}} <a class="button" href="/dev-idp">Cancel</a></p>
{{if $.DevSCIM}}<p class="hint">Save changes what the IdP asserts: the app learns it at the next sign-in (JIT). Save and push over SCIM also sends it to the app now, as the IdP's provisioning would: the groups, and the roles derived from them, change at once.</p>{{end}}
</form>
</div>
{{end}}
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
