package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// devRoutes serves the development IdP's people directory and edit form.
// They exist only while the development IdP runs (no -idp-metadata): like
// the IdP itself, they let anyone change anyone, which is the point in
// development and unacceptable anywhere else.
func (a *app) devRoutes() {
	a.mux.HandleFunc("GET /dev-idp", a.devDirectory)
	a.mux.HandleFunc("GET /dev-idp/{tenant}/{nameid}", a.devEdit)
	a.mux.HandleFunc("POST /dev-idp/{tenant}/{nameid}", a.devSave)
	a.mux.HandleFunc("POST /dev-idp/{tenant}/{nameid}/scim", a.devSCIMPush)
}

// devDirectory lists every development tenant's people with their
// attributes and an edit link.
func (a *app) devDirectory(w http.ResponseWriter, r *http.Request) {
	d := a.devPage(r, "Development IdP people")
	if s := r.URL.Query().Get("saved"); s != "" {
		if tenant, nameID, ok := strings.Cut(s, "/"); ok {
			if p, ok := a.dev.person(tenant, nameID); ok {
				d.Message = "Saved " + p.Name() + "'s attributes at the " + tenant + " IdP. They reach this app at " + p.Given + "'s next sign-in, when JIT updates the record."
			}
		}
	}
	if m := a.devSCIMFlash(r); m != "" {
		d.Message = m
	}
	d.DevTenants = a.dev.directory()
	for i := range d.DevTenants {
		_, d.DevTenants[i].SCIM = a.devSCIM(d.DevTenants[i].Name)
		a.explainCommand(&d.DevTenants[i])
	}
	a.render(w, http.StatusOK, "devidp", d)
}

// devEdit shows the form that edits a person's attributes at the IdP.
func (a *app) devEdit(w http.ResponseWriter, r *http.Request) {
	tenant, nameID := r.PathValue("tenant"), r.PathValue("nameid")
	p, ok := a.dev.person(tenant, nameID)
	if !ok {
		a.render(w, http.StatusNotFound, "error", pageData{Title: "Not found", Message: "No such person at the development IdP.", Dev: true})
		return
	}
	d := a.devPage(r, "Edit "+p.Name())
	d.Tenant, d.Person = tenant, &p
	_, d.DevSCIM = a.devSCIM(tenant)
	a.render(w, http.StatusOK, "devedit", d)
}

// devSave stores the edited attributes at the IdP and goes back to the
// directory. The same-origin check keeps other sites from posting here.
func (a *app) devSave(w http.ResponseWriter, r *http.Request) {
	if !a.mw.SameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	tenant, nameID := r.PathValue("tenant"), r.PathValue("nameid")
	if _, ok := a.dev.person(tenant, nameID); !ok {
		a.render(w, http.StatusNotFound, "error", pageData{Title: "Not found", Message: "No such person at the development IdP.", Dev: true})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse form", http.StatusBadRequest)
		return
	}
	p, err := parsePerson(nameID, r.PostForm)
	if errors.Is(err, errInvalidPerson) {
		d := a.devPage(r, "Edit "+nameID)
		d.Tenant, d.Person, d.Error = tenant, &p, err.Error()
		a.render(w, http.StatusBadRequest, "devedit", d)
		return
	}
	if err != nil || !a.dev.update(tenant, p) {
		http.Error(w, "cannot save", http.StatusInternalServerError)
		return
	}
	a.log.InfoContext(r.Context(), "dev IdP person edited", "tenant", tenant, "name_id", nameID)
	http.Redirect(w, r, "/dev-idp?"+url.Values{"saved": {tenant + "/" + nameID}}.Encode(), http.StatusSeeOther)
}

// devPage is the page data of a development IdP page, with the signed-in
// user, if any, for the navigation bar.
func (a *app) devPage(r *http.Request, title string) pageData {
	d := pageData{Title: title, Dev: true, LoginURL: a.mw.LoginURL("/")}
	if u, err := a.mw.CurrentUser(r); err == nil {
		d.User, d.Admin = &u, a.isAdmin(u)
	}
	return d
}

// explainCommand fills in a tenant's IdP metadata URL and the samljit
// explain command that judges a sign-in captured from it as this app's
// connection does.
func (a *app) explainCommand(v *devTenantView) {
	t, ok := a.dev.tenant(v.Name)
	if !ok {
		return
	}
	v.MetadataURL = t.idp.MetadataURL()
	sp, ok := a.mw.MetadataURL(v.Name)
	if !ok {
		return
	}
	acs := strings.TrimSuffix(sp, "/metadata") + "/acs"
	v.ExplainCommand = "go run ./cmd/samljit explain -idp-metadata " + v.MetadataURL +
		" -sp-entity-id " + sp + " -acs-url " + acs + " -preset " + a.cfg.preset + " response.b64"
}
