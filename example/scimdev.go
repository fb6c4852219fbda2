package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
)

// With the development IdP, every tenant gets a SCIM endpoint with no
// flag: its bearer token is made at the first run and kept in the data
// directory beside the SP key and the session secret (devSCIMTokenFile,
// mode 0600). The admin page shows it to the tenant's administrators, and
// the /dev-idp pages push changes over SCIM with it, as the tenant's IdP
// would: disable a person, re-enable them, change their groups.

// devSCIMTokenFile is the file in the data directory holding the
// development tenants' SCIM tokens, in the -scim-token-file format.
const devSCIMTokenFile = "scim-tokens"

// scimEndpoint is a connection's SCIM endpoint, for the admin page.
type scimEndpoint struct {
	Connection string
	Issuer     string
	URL        string
	// Token is the bearer token, kept only for a development tenant's
	// endpoint (whose token the example made); "" when the operator gave
	// it with -scim-token.
	Token string
}

// loadOrCreateDevSCIMTokens returns the SCIM token of each development
// tenant from path, making and saving one for each tenant that has none.
// The file is readable by its owner only.
func loadOrCreateDevSCIMTokens(path string, tenants []string) (map[string]string, error) {
	tokens := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if name, tok, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") && len(tok) >= minSCIMToken {
				tokens[name] = tok
			}
		}
	}
	missing := false
	for _, t := range tenants {
		if _, ok := tokens[t]; ok {
			continue
		}
		tok, _, err := scim.NewToken()
		if err != nil {
			return nil, err
		}
		tokens[t], missing = tok, true
	}
	if missing {
		var out strings.Builder
		out.WriteString("# SCIM bearer tokens of the development IdP's tenants (tenant=TOKEN), made at the first run.\n")
		for _, name := range slices.Sorted(maps.Keys(tokens)) {
			out.WriteString(name + "=" + tokens[name] + "\n")
		}
		if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
			return nil, err
		}
	}
	return tokens, os.Chmod(path, 0o600)
}

// scimEndpoints returns the SCIM endpoints admin manages: an operator
// every one, a tenant administrator their own connection's.
func (a *app) scimEndpoints(admin userstore.User) []scimEndpoint {
	var out []scimEndpoint
	for _, e := range a.scim {
		if admin.HasLocalRole(roleOperator) || (admin.HasIdPRole(jit.RoleAdmin) && admin.Key.Issuer == e.Issuer) {
			out = append(out, e)
		}
	}
	return out
}

// devSCIM returns the SCIM client of a development tenant, or false when
// the tenant has no endpoint made by the example.
func (a *app) devSCIM(tenant string) (*scimClient, bool) {
	for _, e := range a.scim {
		if e.Connection == tenant && e.Token != "" {
			return newSCIMClient(e.URL, e.Token), true
		}
	}
	return nil, false
}

// devSCIMPush serves POST /dev-idp/{tenant}/{nameid}/scim: the tenant's
// IdP pushes a change of the person to the app over SCIM. The form's
// action is "disable", "enable", or "update" (save the edit form's
// attributes at the IdP, as Save does, and push them and the groups at
// once). The same-origin check keeps other sites from posting here.
func (a *app) devSCIMPush(w http.ResponseWriter, r *http.Request) {
	if !a.mw.SameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	tenant, nameID := r.PathValue("tenant"), r.PathValue("nameid")
	p, ok := a.dev.person(tenant, nameID)
	c, hasSCIM := a.devSCIM(tenant)
	if !ok || !hasSCIM {
		a.render(w, http.StatusNotFound, "error", pageData{Title: "Not found", Message: "No such person, or no SCIM endpoint, at the development IdP.", Dev: true})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse form", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	action := r.PostForm.Get("action")
	var err error
	switch action {
	case "disable", "enable":
		err = c.setActive(ctx, p, action == "enable")
	case "update":
		if p, err = parsePerson(nameID, r.PostForm); errors.Is(err, errInvalidPerson) {
			d := a.devPage(r, "Edit "+nameID)
			d.Tenant, d.Person, d.Error, d.DevSCIM = tenant, &p, err.Error(), true
			a.render(w, http.StatusBadRequest, "devedit", d)
			return
		}
		err = a.devSCIMUpdate(ctx, c, tenant, p)
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	if err != nil {
		a.log.ErrorContext(ctx, "dev IdP SCIM push", "tenant", tenant, "name_id", nameID, "action", action, "err", err)
		a.render(w, http.StatusBadGateway, "error", pageData{Title: "SCIM push failed", Message: "The development IdP's SCIM request failed: " + err.Error(), Dev: true})
		return
	}
	a.log.InfoContext(ctx, "dev IdP SCIM push", "tenant", tenant, "name_id", nameID, "action", action)
	http.Redirect(w, r, "/dev-idp?"+url.Values{"pushed": {tenant + "/" + nameID + "/" + action}}.Encode(), http.StatusSeeOther)
}

// devSCIMUpdate saves p at the tenant's IdP and pushes it over SCIM.
// The IdP first brings the app's groups to what it asserted before the
// edit (its first push is the initial cycle that creates the groups its
// people's sign-ins named), then pushes p and the groups after: so a
// group p leaves is one the app knows, and leaving it takes p out of it.
func (a *app) devSCIMUpdate(ctx context.Context, c *scimClient, tenant string, p devPerson) error {
	if err := c.syncGroups(ctx, a.dev.people(tenant)); err != nil {
		return err
	}
	if !a.dev.update(tenant, p) {
		return errors.New("cannot save at the IdP")
	}
	if _, err := c.updateUser(ctx, p); err != nil {
		return err
	}
	return c.syncGroups(ctx, a.dev.people(tenant))
}

// devSCIMFlash is the directory page's message after a push.
func (a *app) devSCIMFlash(r *http.Request) string {
	parts := strings.Split(r.URL.Query().Get("pushed"), "/")
	if len(parts) != 3 {
		return ""
	}
	p, ok := a.dev.person(parts[0], parts[1])
	if !ok {
		return ""
	}
	switch parts[2] {
	case "disable":
		return "The " + parts[0] + " IdP disabled " + p.Name() + " over SCIM (PATCH active false): the record is suspended, and " + p.Given + "'s open sessions are refused at their next request."
	case "enable":
		return "The " + parts[0] + " IdP re-enabled " + p.Name() + " over SCIM (PATCH active true). No session comes back: " + p.Given + " signs in again."
	case "update":
		return "The " + parts[0] + " IdP pushed " + p.Name() + "'s attributes and groups over SCIM: the record and its roles changed now, not at the next sign-in."
	}
	return ""
}

// liveComparison is what each path did to one person's record, for the
// JIT vs SCIM page: the sign-ins' entries of the audit trail beside
// SCIM's.
type liveComparison struct {
	User      userstore.User
	JIT, SCIM []auditEntry
	// Endpoint reports whether the person's connection has a SCIM
	// endpoint; DevPush whether the development IdP can push to it.
	Endpoint, DevPush bool
	Tenant            string // the person's development tenant, for DevPush
}

// maxLiveEntries bounds the entries the comparison reads.
const maxLiveEntries = 200

// liveComparison reads what JIT and SCIM did to u.
func (a *app) liveComparison(ctx context.Context, u userstore.User) (*liveComparison, error) {
	entries, err := a.audit.Page(ctx, auditQuery{Limit: maxLiveEntries, Issuer: u.Key.Issuer, Subject: u.Key.Subject})
	if err != nil {
		return nil, fmt.Errorf("live comparison: %w", err)
	}
	lc := &liveComparison{User: u}
	for _, e := range entries {
		switch e.Actor {
		case "sign-in":
			lc.JIT = append(lc.JIT, e)
		case "SCIM":
			lc.SCIM = append(lc.SCIM, e)
		}
	}
	for _, e := range a.scim {
		if e.Issuer == u.Key.Issuer {
			lc.Endpoint = true
			if e.Token != "" && a.dev != nil {
				lc.DevPush, lc.Tenant = true, e.Connection
			}
		}
	}
	return lc, nil
}
