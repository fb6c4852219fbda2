package main

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// devIdP is the built-in development identity provider: two tenants, each
// a real SAML IdP on 127.0.0.1 that signs with its own key. It signs in
// anyone who picks a name, so it only runs when no -idp-metadata is given.
//
// Its people live in the jittest IdPs themselves: the app's /dev-idp pages
// edit them there, and the next sign-in carries the new attributes to JIT.
type devIdP struct {
	appRoot string // the app's root URL, for the picker's "edit" links
	tenants []devTenant
}

type devTenant struct {
	name, display string
	idp           *jittest.IdP
}

// devPerson is a sample person of a tenant, as the dev IdP pages show and
// edit it. NameID is the immutable key; the rest are attributes.
type devPerson struct {
	NameID, Given, Family, Email string
	Groups                       []string
}

// devTenantView is one tenant and its people, for the /dev-idp page.
type devTenantView struct {
	Name, Display string
	People        []devPerson
	// MetadataURL is the IdP's metadata; ExplainCommand judges a sign-in
	// captured from it with samljit explain.
	MetadataURL, ExplainCommand string
	// SCIM reports whether the tenant's IdP can push to the app over SCIM.
	SCIM bool
}

var devTenants = []struct {
	name, display string
	people        []devPerson
}{
	{"acme", "Acme Corp (development IdP)", []devPerson{
		{"acme-0001", "Ada", "Lovelace", "ada@acme.example", []string{"admins", "engineering"}},
		{"acme-0002", "Grace", "Hopper", "grace@acme.example", []string{"engineering"}},
	}},
	{"globex", "Globex (development IdP)", []devPerson{
		{"globex-0001", "Hank", "Scorpio", "hank@globex.example", []string{"admins", "leadership"}},
		{"globex-0002", "Frank", "Grimes", "frank@globex.example", []string{"operations"}},
	}},
}

// startDevIdP starts one IdP per sample tenant. appRoot is the app's root
// URL, which the IdPs' picker pages link to for editing a person.
func startDevIdP(appRoot string) (*devIdP, error) {
	d := &devIdP{appRoot: strings.TrimSuffix(appRoot, "/")}
	for _, t := range devTenants {
		picker, err := d.pickerTemplate(t.name, t.display)
		if err != nil {
			d.Close()
			return nil, err
		}
		// A stable entity ID keeps user keys stable across restarts even
		// though the IdP's port and key are new each run.
		idp, err := jittest.NewServer(jittest.Options{
			EntityID:         "urn:samljit:example:dev-idp:" + t.name,
			UserListTemplate: picker,
		})
		if err != nil {
			d.Close()
			return nil, err
		}
		for _, p := range t.people {
			idp.AddUser(p.user())
		}
		d.tenants = append(d.tenants, devTenant{name: t.name, display: t.display, idp: idp})
	}
	return d, nil
}

// Name is the person's full name.
func (p devPerson) Name() string { return strings.TrimSpace(p.Given + " " + p.Family) }

// Initials are the first letters of the given and family names.
func (p devPerson) Initials() string {
	var b strings.Builder
	for _, s := range []string{p.Given, p.Family} {
		if r, _ := utf8.DecodeRuneInString(s); r != utf8.RuneError {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// user is the person as the IdP asserts it, with LDAP attribute names that
// claims.Generic maps.
func (p devPerson) user() jittest.User {
	attrs := map[string][]string{
		claims.OIDMail:        {p.Email},
		claims.OIDGivenName:   {p.Given},
		claims.OIDSurname:     {p.Family},
		claims.OIDDisplayName: {p.Name()},
	}
	if len(p.Groups) > 0 {
		attrs[claims.OIDIsMemberOf] = slices.Clone(p.Groups)
	}
	return jittest.User{NameID: p.NameID, Attributes: attrs}
}

// personFromUser reads a person back from the IdP's user.
func personFromUser(u jittest.User) devPerson {
	first := func(name string) string {
		if v := u.Attributes[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return devPerson{
		NameID: u.NameID,
		Given:  first(claims.OIDGivenName),
		Family: first(claims.OIDSurname),
		Email:  first(claims.OIDMail),
		Groups: slices.Clone(u.Attributes[claims.OIDIsMemberOf]),
	}
}

// Limits on what the edit form accepts.
const (
	maxFieldLen = 100
	maxGroups   = 20
)

// errInvalidPerson is returned (wrapped) for an edit the form refuses.
var errInvalidPerson = errors.New("invalid attributes")

// parsePerson validates the edit form's values for the person nameID.
// Groups are separated by commas or new lines; duplicates are dropped.
func parsePerson(nameID string, form url.Values) (devPerson, error) {
	p := devPerson{
		NameID: nameID,
		Given:  strings.TrimSpace(form.Get("given")),
		Family: strings.TrimSpace(form.Get("family")),
		Email:  strings.TrimSpace(form.Get("email")),
	}
	for _, g := range strings.FieldsFunc(form.Get("groups"), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		g = strings.TrimSpace(g)
		if g != "" && !slices.Contains(p.Groups, g) {
			p.Groups = append(p.Groups, g)
		}
	}
	for _, f := range []struct{ label, v string }{{"Given name", p.Given}, {"Family name", p.Family}, {"Email", p.Email}} {
		switch {
		case f.v == "":
			return p, fmt.Errorf("%w: %s is required", errInvalidPerson, f.label)
		case len(f.v) > maxFieldLen:
			return p, fmt.Errorf("%w: %s is longer than %d characters", errInvalidPerson, f.label, maxFieldLen)
		}
	}
	if at := strings.IndexByte(p.Email, '@'); at <= 0 || at == len(p.Email)-1 || strings.ContainsAny(p.Email, " \t\r\n") {
		return p, fmt.Errorf("%w: %q is not an email address", errInvalidPerson, p.Email)
	}
	if len(p.Groups) > maxGroups {
		return p, fmt.Errorf("%w: at most %d groups", errInvalidPerson, maxGroups)
	}
	for _, g := range p.Groups {
		if len(g) > maxFieldLen {
			return p, fmt.Errorf("%w: group %q is longer than %d characters", errInvalidPerson, g, maxFieldLen)
		}
	}
	return p, nil
}

// tenant returns the tenant with the given name.
func (d *devIdP) tenant(name string) (devTenant, bool) {
	i := slices.IndexFunc(d.tenants, func(t devTenant) bool { return t.name == name })
	if i < 0 {
		return devTenant{}, false
	}
	return d.tenants[i], true
}

// person returns a tenant's person as the IdP currently asserts it.
func (d *devIdP) person(tenant, nameID string) (devPerson, bool) {
	t, ok := d.tenant(tenant)
	if !ok {
		return devPerson{}, false
	}
	u, ok := t.idp.User(nameID)
	if !ok {
		return devPerson{}, false
	}
	return personFromUser(u), true
}

// update replaces an existing person's attributes at the IdP; the next
// sign-in asserts them.
func (d *devIdP) update(tenant string, p devPerson) bool {
	t, ok := d.tenant(tenant)
	if !ok {
		return false
	}
	if _, ok := t.idp.User(p.NameID); !ok {
		return false
	}
	t.idp.AddUser(p.user())
	return true
}

// people returns a tenant's people as the IdP currently asserts them.
func (d *devIdP) people(tenant string) []devPerson {
	for i, t := range d.tenants {
		if t.name != tenant {
			continue
		}
		var out []devPerson
		for _, seed := range devTenants[i].people {
			if p, ok := d.person(t.name, seed.NameID); ok {
				out = append(out, p)
			}
		}
		return out
	}
	return nil
}

// directory lists every tenant's people, in the order of devTenants.
func (d *devIdP) directory() []devTenantView {
	views := make([]devTenantView, 0, len(d.tenants))
	for _, t := range d.tenants {
		views = append(views, devTenantView{Name: t.name, Display: t.display, People: d.people(t.name)})
	}
	return views
}

// connections returns one jit connection per development tenant.
func (d *devIdP) connections() []jit.Connection {
	var cs []jit.Connection
	for _, t := range d.tenants {
		cs = append(cs, jit.Connection{Name: t.name, DisplayName: t.display, IDPMetadata: t.idp.Metadata(), Mapper: claims.Generic()})
	}
	return cs
}

// Close stops the development IdPs.
func (d *devIdP) Close() {
	for _, t := range d.tenants {
		t.idp.Close()
	}
}

// editURL is the app page that edits a tenant's person.
func (d *devIdP) editURL(tenant, nameID string) string {
	return d.appRoot + "/dev-idp/" + url.PathEscape(tenant) + "/" + url.PathEscape(nameID)
}

// pickerTemplate is the page a tenant's IdP shows to pick who signs in:
// each person's name, email and groups, a sign-in button, and a link to
// edit them in the app. It is executed with a jittest.UserList.
func (d *devIdP) pickerTemplate(tenant, display string) (*template.Template, error) {
	return template.New("picker").Funcs(template.FuncMap{
		"person":  func(u jittest.User) devPerson { return personFromUser(u) },
		"tenant":  func() string { return tenant },
		"display": func() string { return display },
		"editURL": func(nameID string) string { return d.editURL(tenant, nameID) },
		"appURL":  func() string { return d.appRoot + "/dev-idp" },
	}).Parse(pickerPage)
}

const pickerPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{display}}: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f1ea;color:#1b1f24}
.banner{background:#b42318;color:#fff;padding:.7rem 1rem;text-align:center;font-weight:600;letter-spacing:.01em}
main{max-width:44rem;margin:2rem auto;padding:0 1rem}
h1{margin:.2rem 0 0;font-size:1.6rem} .sub{color:#555;margin:.2rem 0 1.5rem}
.person{display:flex;gap:1rem;align-items:center;background:#fff;border:1px solid #ddd;border-radius:.6rem;padding:1rem;margin:.75rem 0}
.avatar{flex:none;width:3rem;height:3rem;border-radius:50%;background:#3b5bdb;color:#fff;display:grid;place-items:center;font-weight:700}
.who{flex:1;min-width:0} .who b{font-size:1.05rem} .email{color:#444} code{font-size:.8rem;color:#666}
.tag{display:inline-block;background:#e7ecff;color:#233;border-radius:.3rem;padding:0 .45rem;margin:.25rem .25rem 0 0;font-size:.85rem}
.actions{display:flex;flex-direction:column;gap:.4rem;align-items:stretch;text-align:center}
.signin{background:#1f7a4d;color:#fff;border:0;border-radius:.4rem;padding:.5rem .9rem;font-size:.95rem;cursor:pointer;text-decoration:none}
.edit{font-size:.85rem}
</style></head><body>
<div class="banner" role="alert">Development IdP — signs in anyone, never use in production</div>
<main>
<p class="sub">Tenant <code>{{tenant}}</code></p>
<h1>Sign in to {{display}}</h1>
<p class="sub">Pick a sample person. Edit their attributes, then sign in again to see just-in-time provisioning update the app's record.</p>
{{- $post := .Post}}
{{- if .Post}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
{{- if .RelayState}}<input type="hidden" name="RelayState" value="{{.RelayState}}">{{end}}
{{- end}}
{{- range .Users}}{{$p := person .User}}
<div class="person" data-nameid="{{.NameID}}">
<div class="avatar" aria-hidden="true">{{$p.Initials}}</div>
<div class="who"><b class="name">{{$p.Name}}</b><div class="email">{{$p.Email}}</div>
<div class="groups">{{range $p.Groups}}<span class="tag">{{.}}</span>{{else}}<i>no groups</i>{{end}}</div>
<code>NameID {{.NameID}}</code></div>
<div class="actions">
{{- if $post}}<button class="signin" type="submit" name="user" value="{{.NameID}}">Sign in as {{$p.Given}}</button>
{{- else}}<a class="signin" href="{{.Href}}">Sign in as {{$p.Given}}</a>{{end}}
<a class="edit" href="{{editURL .NameID}}">Edit attributes</a></div>
</div>
{{- else}}
<p>This tenant has no people.</p>
{{- end}}
{{- if .Post}}</form>{{end}}
<p class="sub"><a href="{{appURL}}">All development people</a></p>
</main></body></html>
`
