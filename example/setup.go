package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// The "Set up SSO" page: a customer's administrator connects their own IdP
// to the application, as a connection kept in the database.
//
// Who may: an account holding the local role "sso-admin:NAME", which only
// an operator grants (userstore.Admin.GrantRole; a sign-in never grants a
// local role), for the connection NAME of that customer. A group an IdP
// asserts never does, whatever it is called: a tenant's claims are only as
// trustworthy as the tenant, and a connection, once enabled, is trusted to
// sign people in.
//
// The test sign-in: a connection is saved disabled, so that nobody signs in
// through it. The administrator then tests it: the page sends their browser
// to the new IdP with an AuthnRequest the page made, and the IdP's answer,
// posted to the connection's ACS, is judged with jit.Explain: every check
// of a real sign-in, the mapping and the decision, with nothing written. No
// user is created or changed and no session is made, for anyone: a test
// cannot be used to get in before the connection is enabled. The answer
// must be to the request the page made (InResponseTo), within ten minutes,
// once; the trace is shown to the administrator who started the test and
// to no one else. Enabling needs a passed test of the connection as it is
// stored now.

// ssoAdminRole is the prefix of the local role naming the connection an
// account may set up.
const ssoAdminRole = "sso-admin:"

// setupTestTTL bounds how long a test sign-in may take.
const setupTestTTL = 10 * time.Minute

// setupTest is a test sign-in in progress or judged.
type setupTest struct {
	connection string
	revision   int64
	requestID  string
	admin      string // the ID of the user who started it
	expires    time.Time
	judged     bool
	// Trace is the judged answer, and Err why none could be judged.
	Trace *jit.Trace
	Err   string
}

// setupState is the example's memory of test sign-ins. It is per
// instance: a deployment of several instances would keep it in the
// database, or route the test to one instance. The zero value is ready.
type setupState struct {
	mu     sync.Mutex
	tests  map[string]*setupTest // by the RelayState token
	passed map[string]int64      // connection -> revision a test passed at
	key    *rsa.PrivateKey
	cert   *x509.Certificate
}

func (a *app) setup() *setupState {
	s := &a.sso
	s.mu.Lock()
	if s.tests == nil {
		s.tests, s.passed = map[string]*setupTest{}, map[string]int64{}
	}
	s.mu.Unlock()
	return s
}

// setupRoutes adds the Set up SSO page and the ACS that receives its test
// sign-ins (before the middleware's, which it falls back to).
func (a *app) setupRoutes() {
	auth := func(h http.HandlerFunc) http.Handler { return a.mw.RequireUser(a.requireSSOAdmin(h)) }
	a.mux.Handle("GET /setup-sso", auth(a.setupPage))
	a.mux.Handle("POST /setup-sso/save", auth(a.setupSave))
	a.mux.Handle("POST /setup-sso/test", auth(a.setupStartTest))
	a.mux.Handle("POST /setup-sso/enable", auth(a.setupEnable))
	a.mux.HandleFunc("POST "+a.mw.Prefix()+"/{name}/acs", a.setupACS)
}

// ssoConnection returns the connection u may set up, or "".
func ssoConnection(u userstore.User) string {
	for _, r := range u.LocalRoles {
		if name, ok := strings.CutPrefix(r, ssoAdminRole); ok && name != "" {
			return name
		}
	}
	return ""
}

func (a *app) requireSSOAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := jit.UserFromContext(r.Context())
		if ssoConnection(u) == "" {
			a.render(w, http.StatusForbidden, "error", pageData{Title: "Forbidden", User: &u,
				Message: "Setting up SSO needs the role " + ssoAdminRole + "NAME on your account, which the application's operator grants. Membership of an IdP group does not."})
			return
		}
		if r.Method == http.MethodPost && !a.mw.SameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// setupView is what the page shows.
type setupView struct {
	Name, MetadataURL, EntityID, ACS string
	Stored                           *userstore.Connection
	Health                           *jit.ConnectionHealth
	CheckError                       string
	Saved                            bool
	Test                             *setupTest
	TestPassed                       bool
	CanEnable                        bool
	Enabled                          bool
	Presets                          []string
	Preset                           string
	LoginURL                         string
}

// endpoints returns the SP's metadata URL, entity ID and ACS URL towards
// the connection name.
func (a *app) endpoints(rec userstore.Connection) (md, entityID, acs string) {
	base := strings.TrimSuffix(a.cfg.rootURL, "/") + a.mw.Prefix() + "/" + url.PathEscape(rec.Name)
	entityID = rec.EntityID
	if entityID == "" {
		entityID = base + "/metadata"
	}
	return base + "/metadata", entityID, base + "/acs"
}

// view assembles the page for the connection of u.
func (a *app) setupView(r *http.Request, u userstore.User) setupView {
	name := ssoConnection(u)
	v := setupView{Name: name, Presets: []string{claims.PresetGeneric, "entra", "okta", "adfs"}, Preset: claims.PresetGeneric}
	rec := userstore.Connection{Name: name}
	if stored, err := a.store.GetConnection(r.Context(), name); err == nil {
		rec, v.Stored, v.Enabled = stored, &stored, stored.Enabled
		if stored.Preset != "" {
			v.Preset = stored.Preset
		}
		if h, ok := a.mw.ConnectionHealth(name); ok && stored.Enabled {
			v.Health = &h
		} else if h, err := a.mw.CheckConnection(r.Context(), stored); err == nil {
			v.Health = &h
		} else {
			v.CheckError = err.Error()
		}
	}
	v.MetadataURL, v.EntityID, v.ACS = a.endpoints(rec)
	v.LoginURL = a.mw.Prefix() + "/" + url.PathEscape(name) + "/login"
	s := a.setup()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tests[r.URL.Query().Get("test")]; t != nil && t.admin == u.ID && t.connection == name {
		v.Test = t
	}
	v.TestPassed = v.Stored != nil && s.passed[name] == v.Stored.Revision
	v.CanEnable = v.TestPassed && !v.Enabled
	return v
}

func (a *app) renderSetup(w http.ResponseWriter, status int, u userstore.User, v setupView) {
	w.Header().Set("Cache-Control", "no-store")
	var buf strings.Builder
	d := struct {
		pageData
		Setup setupView
	}{pageData{Title: "Set up SSO", User: &u, Admin: a.isAdmin(u), Dev: a.dev != nil, SSOSetup: v.Name}, v}
	if err := setupPage.ExecuteTemplate(&buf, "setup", d); err != nil {
		a.log.Error("render", "page", "setup", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

func (a *app) setupPage(w http.ResponseWriter, r *http.Request) {
	u, _ := jit.UserFromContext(r.Context())
	a.renderSetup(w, http.StatusOK, u, a.setupView(r, u))
}

// setupSave checks the pasted IdP metadata (URL or XML) and stores the
// connection disabled; a connection that cannot be served is refused with
// the reason, and nothing is stored.
func (a *app) setupSave(w http.ResponseWriter, r *http.Request) {
	u, _ := jit.UserFromContext(r.Context())
	name := ssoConnection(u)
	rec := userstore.Connection{Name: name, Preset: r.PostFormValue("preset")}
	if old, err := a.store.GetConnection(r.Context(), name); err == nil {
		rec.DisplayName, rec.EntityID, rec.Domains = old.DisplayName, old.EntityID, old.Domains
	}
	mdURL, mdXML := strings.TrimSpace(r.PostFormValue("metadata_url")), strings.TrimSpace(r.PostFormValue("metadata_xml"))
	switch {
	case mdURL != "" && mdXML != "":
		a.setupRefused(w, r, u, "Give the IdP metadata's URL or paste its XML, not both.")
		return
	case mdURL != "":
		rec.IDPMetadataURL = mdURL
	case mdXML != "":
		rec.IDPMetadata = []byte(mdXML)
	default:
		a.setupRefused(w, r, u, "Give the IdP metadata's URL or paste its XML.")
		return
	}
	// Saved disabled: a new IdP signs nobody in before it has been tested
	// and enabled, and a replaced one neither.
	if _, err := a.mw.PutConnection(r.Context(), rec); err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	a.log.InfoContext(r.Context(), "sso connection saved", "connection", name, "by", u.ID)
	v := a.setupView(r, u)
	v.Saved = true
	a.renderSetup(w, http.StatusOK, u, v)
}

func (a *app) setupRefused(w http.ResponseWriter, r *http.Request, u userstore.User, reason string) {
	v := a.setupView(r, u)
	v.CheckError = reason
	a.renderSetup(w, http.StatusUnprocessableEntity, u, v)
}

// spKeys returns the SP's key pair, read from the data directory.
func (a *app) spKeys() (*rsa.PrivateKey, *x509.Certificate, error) {
	s := a.setup()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		key, cert, err := loadOrCreateKeyPair(filepath.Join(a.cfg.data, "sp-key.pem"), filepath.Join(a.cfg.data, "sp-cert.pem"), "samljit example SP")
		if err != nil {
			return nil, nil, err
		}
		s.key, s.cert = key, cert
	}
	return s.key, s.cert, nil
}

// idpMetadata returns the stored connection's IdP metadata document,
// fetched when it is given by URL.
func (a *app) idpMetadata(r *http.Request, rec userstore.Connection) ([]byte, error) {
	if len(rec.IDPMetadata) > 0 {
		return rec.IDPMetadata, nil
	}
	return jit.FetchIDPMetadata(r.Context(), nil, rec.IDPMetadataURL, false)
}

// setupStartTest sends the administrator's browser to the stored, not yet
// enabled connection's IdP with an AuthnRequest of the page's own.
func (a *app) setupStartTest(w http.ResponseWriter, r *http.Request) {
	u, _ := jit.UserFromContext(r.Context())
	name := ssoConnection(u)
	rec, err := a.store.GetConnection(r.Context(), name)
	if err != nil {
		a.setupRefused(w, r, u, "Save the connection first.")
		return
	}
	if rec.Enabled {
		a.setupRefused(w, r, u, "The connection is enabled: sign in through it at "+a.mw.Prefix()+"/"+name+"/login.")
		return
	}
	md, err := a.idpMetadata(r, rec)
	if err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	ed, err := jit.ParseIDPMetadata(md)
	if err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	key, cert, err := a.spKeys()
	if err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	mdURL, entityID, acs := a.endpoints(rec)
	sp := saml.ServiceProvider{Key: key, Certificate: cert, IDPMetadata: ed, SignatureMethod: dsig.RSASHA256SignatureMethod}
	sp.EntityID = entityID
	sp.MetadataURL, sp.AcsURL = mustURL(mdURL), mustURL(acs)
	sso := sp.GetSSOBindingLocation(saml.HTTPRedirectBinding)
	if sso == "" {
		a.setupRefused(w, r, u, "The IdP metadata lists no SingleSignOnService with the HTTP-Redirect binding.")
		return
	}
	req, err := sp.MakeAuthenticationRequest(sso, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := "setup-" + hex.EncodeToString(b[:])
	to, err := req.Redirect(token, &sp)
	if err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	s := a.setup()
	s.mu.Lock()
	now := time.Now()
	for k, t := range s.tests {
		if now.After(t.expires) {
			delete(s.tests, k)
		}
	}
	s.tests[token] = &setupTest{connection: name, revision: rec.Revision, requestID: req.ID, admin: u.ID, expires: now.Add(setupTestTTL)}
	s.mu.Unlock()
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

// setupACS receives the answer to a test sign-in: a POST to the ACS of a
// connection that is not served, whose RelayState is a pending test's.
// Anything else goes to the middleware, as if this handler were not there.
func (a *app) setupACS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if a.served(name) {
		a.mw.ServeHTTP(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	relay := r.PostFormValue("RelayState")
	s := a.setup()
	s.mu.Lock()
	t := s.tests[relay]
	pending := t != nil && !t.judged && t.connection == name && time.Now().Before(t.expires)
	if pending {
		t.judged = true // once
	}
	s.mu.Unlock()
	if !pending {
		a.mw.ServeHTTP(w, r)
		return
	}
	trace, err := a.judgeTest(r, t)
	s.mu.Lock()
	t.Trace = trace
	if err != nil {
		t.Err = err.Error()
	} else if trace.Decision.Action != "refuse" {
		s.passed[name] = t.revision
	}
	s.mu.Unlock()
	http.Redirect(w, r, "/setup-sso?test="+url.QueryEscape(relay), http.StatusSeeOther)
}

// served reports whether the middleware serves the connection name.
func (a *app) served(name string) bool {
	_, ok := a.mw.ConnectionLoginURL(name, "")
	return ok
}

// judgeTest judges the posted response as the connection, stored as the
// test began, would: with jit.Explain, which writes nothing.
func (a *app) judgeTest(r *http.Request, t *setupTest) (*jit.Trace, error) {
	rec, err := a.store.GetConnection(r.Context(), t.connection)
	if err != nil {
		return nil, err
	}
	if rec.Revision != t.revision {
		return nil, errors.New("the connection was changed during the test: test it again")
	}
	raw := r.PostFormValue("SAMLResponse")
	if got := responseInResponseTo(raw); got != t.requestID {
		return nil, fmt.Errorf("the response answers request %q, not this test's %q", got, t.requestID)
	}
	md, err := a.idpMetadata(r, rec)
	if err != nil {
		return nil, err
	}
	mapper, err := claims.Preset(orGeneric(rec.Preset))
	if err != nil {
		return nil, err
	}
	key, cert, err := a.spKeys()
	if err != nil {
		return nil, err
	}
	var c jit.Connection
	if err := a.configureStored(r.Context(), rec, &c); err != nil {
		return nil, err
	}
	_, entityID, acs := a.endpoints(rec)
	return jit.Explain(r.Context(), jit.ExplainRequest{
		Response: []byte(raw), IDPMetadata: md, SPEntityID: entityID, ACSURL: acs,
		Mapper: mapper, Policy: c.Policy, Key: key, Certificate: cert, Store: a.store,
	})
}

func orGeneric(p string) string {
	if p == "" {
		return claims.PresetGeneric
	}
	return p
}

// responseInResponseTo returns the InResponseTo of a base64 SAMLResponse,
// or "" (the trace judges everything else about it).
func responseInResponseTo(b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) > 1<<20 {
		return ""
	}
	var resp struct {
		InResponseTo string `xml:"InResponseTo,attr"`
	}
	if xml.Unmarshal(b, &resp) != nil {
		return ""
	}
	return resp.InResponseTo
}

// setupEnable enables the connection once a test of it, as stored now,
// has passed.
func (a *app) setupEnable(w http.ResponseWriter, r *http.Request) {
	u, _ := jit.UserFromContext(r.Context())
	name := ssoConnection(u)
	rec, err := a.store.GetConnection(r.Context(), name)
	if err != nil {
		a.setupRefused(w, r, u, "Save the connection first.")
		return
	}
	s := a.setup()
	s.mu.Lock()
	passed := s.passed[name] == rec.Revision
	s.mu.Unlock()
	if !passed {
		a.setupRefused(w, r, u, "Test a sign-in through the connection, as it is saved now, before enabling it.")
		return
	}
	if err := a.mw.SetConnectionEnabled(r.Context(), name, true); err != nil {
		a.setupRefused(w, r, u, err.Error())
		return
	}
	a.log.InfoContext(r.Context(), "sso connection enabled", "connection", name, "by", u.ID)
	http.Redirect(w, r, "/setup-sso", http.StatusSeeOther)
}

var setupPage = template.Must(template.Must(pages.Clone()).Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 MST")
	},
}).Parse(`{{define "setup"}}{{template "head" .}}
<h1>Set up SSO</h1>
{{with .Setup}}
<p>Connect your organisation's identity provider to this application as the connection <b id="conn-name">{{.Name}}</b>.
{{if .Enabled}}<span id="state" class="ok">Enabled</span>{{else if .Stored}}<span id="state">Saved, not enabled</span>{{else}}<span id="state">Not set up</span>{{end}}</p>

<h2>1. Give your IdP these</h2>
<dl>
<dt>SP metadata URL</dt><dd><code id="sp-metadata">{{.MetadataURL}}</code> (served once the connection is enabled; until then enter the two values below)</dd>
<dt>Entity ID (Identifier, Audience)</dt><dd><code id="sp-entity-id">{{.EntityID}}</code></dd>
<dt>Assertion consumer service (Reply URL)</dt><dd><code id="sp-acs">{{.ACS}}</code></dd>
</dl>

<h2>2. Your IdP's metadata</h2>
<form method="post" action="/setup-sso/save">
<p><label for="metadata_url">Metadata URL</label><br><input id="metadata_url" name="metadata_url" type="url" size="70"{{if .Stored}} value="{{.Stored.IDPMetadataURL}}"{{end}}></p>
<p><label for="metadata_xml">or its XML</label><br><textarea id="metadata_xml" name="metadata_xml" rows="6" cols="70"></textarea></p>
<p><label for="preset">Claims</label> <select id="preset" name="preset">{{$p := .Preset}}{{range .Presets}}<option{{if eq . $p}} selected{{end}}>{{.}}</option>{{end}}</select></p>
<p><button id="save" type="submit">Check and save (not enabled)</button></p>
</form>
{{if .CheckError}}<p id="check-error" class="error">Refused: {{.CheckError}}</p>{{end}}
{{if .Saved}}<p id="saved" class="ok">Checked and saved. It is not enabled: test a sign-in next.</p>{{end}}
{{with .Health}}
<h3>Connection health</h3>
<table id="health">
<tr><th>IdP entity ID</th><td id="idp-entity-id">{{.IdPEntityID}}</td></tr>
<tr><th>Served</th><td>{{if .Served}}yes{{else}}no{{end}}</td></tr>
<tr><th>Last sign-in</th><td id="last-sign-in">{{when .LastSignIn}}</td></tr>
<tr><th>Last refusal</th><td>{{when .LastRefusal}} {{.LastRefusalReason}}</td></tr>
<tr><th>Metadata valid until</th><td>{{when .MetadataValidUntil}}</td></tr>
<tr><th>Next metadata refresh</th><td>{{when .NextMetadataRefresh}}</td></tr>
<tr><th>Signing certificates</th><td>{{range .SigningCertificates}}<div class="cert">{{.Subject}}, until {{when .NotAfter}}<br><small>SHA-256 {{.SHA256}}</small></div>{{end}}</td></tr>
</table>
{{if .Warnings}}<ul id="warnings">{{range .Warnings}}<li><b>{{.Code}}</b>: {{.Message}}</li>{{end}}</ul>{{end}}
{{end}}

<h2>3. Test a sign-in</h2>
<p>Sign in at your IdP as yourself. The answer is checked as a real sign-in would be, and nothing is written: no account, no session.</p>
<form method="post" action="/setup-sso/test"><button id="test" type="submit"{{if or (not .Stored) .Enabled}} disabled{{end}}>Test sign-in</button></form>
{{with .Test}}
<div id="test-result">
{{if .Err}}<p class="error" id="test-verdict">Test failed: {{.Err}}</p>
{{else if .Trace}}{{with .Trace}}
<p id="test-verdict" class="{{if eq .Decision.Action "refuse"}}error{{else}}ok{{end}}">{{if eq .Decision.Action "refuse"}}Refused: {{.Decision.Reason}}{{else}}Passed: the sign-in would {{.Decision.Action}} the account{{end}}</p>
<ol id="trace">{{range .Steps}}<li data-step="{{.Name}}">{{.Name}}: {{if .OK}}ok{{else}}failed: {{.Detail}}{{end}}</li>{{end}}</ol>
{{if .Profile.Email}}<p>Signed in as <span id="test-email">{{.Profile.Email}}</span> ({{.Profile.DisplayName}}), key <code>{{.Key.Subject}}</code></p>{{end}}
{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}{{end}}
</div>
{{end}}

<h2>4. Enable</h2>
<form method="post" action="/setup-sso/enable"><button id="enable" type="submit"{{if not .CanEnable}} disabled{{end}}>Enable</button></form>
{{if .Enabled}}<p id="enabled">Enabled: people sign in at <a id="login" href="{{.LoginURL}}">{{.LoginURL}}</a>.</p>{{else if not .TestPassed}}<p>Enabling needs a passed test of the connection as saved.</p>{{end}}
{{end}}
{{template "foot" .}}{{end}}`))
