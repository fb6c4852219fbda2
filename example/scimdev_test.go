package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// devTokens reads the development tenants' SCIM tokens from the data
// directory.
func devTokens(t *testing.T, data string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, devSCIMTokenFile))
	require.NoError(t, err)
	tokens := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if name, tok, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			tokens[name] = tok
		}
	}
	return tokens
}

// me is the signed-in person's record from /api/me.
func me(t *testing.T, c *http.Client, root string) userJSON {
	t.Helper()
	code, body := get(t, c, root+"/api/me")
	require.Equal(t, http.StatusOK, code, body)
	var u userJSON
	require.NoError(t, json.Unmarshal([]byte(body), &u))
	return u
}

// TestDevSCIMTokenMadeAtFirstRun: with the development IdP, each tenant's
// SCIM token is made at the first run, kept private in the data
// directory, reused by the next run, opens its own tenant's endpoint
// only, and is shown on the admin page to that tenant's administrators
// only.
func TestDevSCIMTokenMadeAtFirstRun(t *testing.T) {
	data := t.TempDir()
	a, root := startApp(t, data)
	fi, err := os.Stat(filepath.Join(data, devSCIMTokenFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	tokens := devTokens(t, data)
	require.Len(t, tokens, 2)
	require.GreaterOrEqual(t, len(tokens["acme"]), minSCIMToken)
	require.GreaterOrEqual(t, len(tokens["globex"]), minSCIMToken)
	require.NotEqual(t, tokens["acme"], tokens["globex"])

	code, _ := scimRequest(t, "GET", root+"/scim/acme/v2/Users", tokens["acme"], "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = scimRequest(t, "GET", root+"/scim/acme/v2/Users", tokens["globex"], "")
	assert.Equal(t, http.StatusUnauthorized, code, "globex's token does not open acme's endpoint")

	shown := regexp.MustCompile(`<code class="scim-token">([^<]*)</code>`)
	for _, tc := range []struct{ tenant, nameID, other string }{{"acme", "acme-0001", "globex"}, {"globex", "globex-0001", "acme"}} {
		c := browser(t)
		signIn(t, a, c, root, tc.tenant, tc.nameID)
		code, page := get(t, c, root+"/admin")
		require.Equal(t, http.StatusOK, code)
		got := shown.FindAllStringSubmatch(htmlTable(t, page, "scim-endpoints"), -1)
		require.Len(t, got, 1, "a tenant administrator sees their own connection's endpoint only")
		assert.Equal(t, tokens[tc.tenant], got[0][1])
		assert.Contains(t, page, `<code class="scim-url">`+root+`/scim/`+tc.tenant+`/v2</code>`)
		assert.NotContains(t, page, tokens[tc.other])
	}
	grace := browser(t)
	signIn(t, a, grace, root, "acme", "acme-0002")
	code, page := get(t, grace, root+"/admin")
	assert.Equal(t, http.StatusForbidden, code)
	assert.NotContains(t, page, tokens["acme"])

	_, root2 := startApp(t, data)
	assert.Equal(t, tokens, devTokens(t, data), "the next run keeps the tokens")
	code, _ = scimRequest(t, "GET", root2+"/scim/acme/v2/Users", tokens["acme"], "")
	assert.Equal(t, http.StatusOK, code)
}

// TestDevSCIMTokenFlagWins: a -scim-token for a development tenant
// replaces the made one there; the made one still serves the other.
func TestDevSCIMTokenFlagWins(t *testing.T) {
	data := t.TempDir()
	_, root := startAppArgs(t, "-data", data, "-scim-token", "acme="+acmeSCIMToken)
	tokens := devTokens(t, data)
	assert.NotContains(t, tokens, "acme")
	code, _ := scimRequest(t, "GET", root+"/scim/acme/v2/Users", acmeSCIMToken, "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = scimRequest(t, "GET", root+"/scim/globex/v2/Users", tokens["globex"], "")
	assert.Equal(t, http.StatusOK, code)
}

// TestDevIdPPushesSCIM: the development IdP disables a signed-in person
// over SCIM (real HTTP to the app's own endpoint) and their open session
// is refused at the next request; it re-enables them and they sign in
// again; it changes a person's groups and their administrator's rights
// end at their next request, with no sign-in.
func TestDevIdPPushesSCIM(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	ada, grace := browser(t), browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	signIn(t, a, grace, root, "acme", "acme-0002")
	code, _ := get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	code, page := get(t, ada, root+"/dev-idp")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `action="/dev-idp/acme/acme-0002/scim"`, "the directory has the push buttons")

	push := func(c *http.Client, nameID string, form url.Values) string {
		t.Helper()
		code, loc := postDevForm(t, c, root+"/dev-idp/acme/"+nameID+"/scim", root, form)
		require.Equal(t, http.StatusSeeOther, code, loc)
		code, page := get(t, c, root+loc)
		require.Equal(t, http.StatusOK, code)
		return textOf(regexp.MustCompile(`(?s)<p class="flash" id="flash">(.*?)</p>`).FindStringSubmatch(page)[1])
	}
	code, _ = postDevForm(t, grace, root+"/dev-idp/acme/acme-0002/scim", "http://evil.example", url.Values{"action": {"disable"}})
	assert.Equal(t, http.StatusForbidden, code, "cross-origin push refused")
	code, _ = postDevForm(t, grace, root+"/dev-idp/acme/nobody/scim", root, url.Values{"action": {"disable"}})
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = postDevForm(t, grace, root+"/dev-idp/acme/acme-0002/scim", root, url.Values{"action": {"explode"}})
	assert.Equal(t, http.StatusBadRequest, code)

	// Disable: Grace's open session is refused at her next request.
	id := me(t, grace, root).ID
	assert.Contains(t, push(ada, "acme-0002", url.Values{"action": {"disable"}}), "disabled Grace Hopper over SCIM")
	code, _ = get(t, grace, root+"/api/me")
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, "the disabled person's open session is refused")
	users, err := a.store.List(t.Context())
	require.NoError(t, err)
	require.Len(t, users, 2, "SCIM found the sign-in's record: one record, not two")
	u, err := a.store.Lookup(t.Context(), userstore.Key{Issuer: "urn:samljit:example:dev-idp:acme", Subject: "acme-0002"})
	require.NoError(t, err)
	assert.Equal(t, userstore.Suspended, u.Status)
	assert.Equal(t, id, u.ID)

	// Enable: no session comes back; Grace signs in again.
	assert.Contains(t, push(ada, "acme-0002", url.Values{"action": {"enable"}}), "re-enabled Grace Hopper")
	code, _ = get(t, grace, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code, "re-enabling revives no session")
	signIn(t, a, grace, root, "acme", "acme-0002")
	assert.Equal(t, id, me(t, grace, root).ID)

	// Groups: Ada leaves admins over SCIM and her next request to the
	// admin page is refused, with no sign-in in between.
	edit := url.Values{"action": {"update"}, "given": {"Ada"}, "family": {"Lovelace"}, "email": {"ada@acme.example"}, "groups": {"engineering, research"}}
	assert.Contains(t, push(grace, "acme-0001", edit), "pushed Ada Lovelace's attributes and groups over SCIM")
	code, _ = get(t, ada, root+"/admin")
	assert.Equal(t, http.StatusForbidden, code, "the admin group's removal takes effect at once")
	rec := me(t, ada, root)
	assert.Equal(t, []string{"engineering", "research"}, rec.Groups)
	assert.NotContains(t, rec.Roles, "admin")
	p, ok := a.dev.person("acme", "acme-0001")
	require.True(t, ok)
	assert.Equal(t, []string{"engineering", "research"}, p.Groups, "the IdP asserts the same at the next sign-in")
	signIn(t, a, ada, root, "acme", "acme-0001")
	assert.Equal(t, []string{"engineering", "research"}, me(t, ada, root).Groups)

	// Back into admins: the group exists now, and she is added to it.
	edit.Set("groups", "admins, engineering")
	push(grace, "acme-0001", edit)
	code, _ = get(t, ada, root+"/admin")
	assert.Equal(t, http.StatusOK, code)
	bad := url.Values{"action": {"update"}, "given": {"Ada"}, "family": {"Lovelace"}, "email": {"nope"}}
	code, page = postDevForm(t, grace, root+"/dev-idp/acme/acme-0001/scim", root, bad)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, page, "is not an email address")

	// The audit trail holds SCIM's changes as SCIM's.
	entries, err := a.audit.Page(t.Context(), auditQuery{Limit: 200})
	require.NoError(t, err)
	var kinds []string
	for _, e := range entries {
		if e.Actor == "SCIM" {
			kinds = append(kinds, e.Kind)
		}
	}
	assert.Subset(t, kinds, []string{"scim user.suspended", "scim user.reactivated", "scim user.updated", "scim group.created", "scim group.updated"})
}

// TestJITvsSCIMLive: the JIT vs SCIM page shows the signed-in person what
// their sign-ins did to their record beside what SCIM did, and nobody
// else's.
func TestJITvsSCIMLive(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	code, page := get(t, browser(t), root+"/jit-vs-scim")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "Sign in to see, side by side")

	grace, frank := browser(t), browser(t)
	signIn(t, a, grace, root, "acme", "acme-0002")
	signIn(t, a, frank, root, "globex", "globex-0002")
	column := func(c *http.Client, id string) string {
		t.Helper()
		code, page := get(t, c, root+"/jit-vs-scim")
		require.Equal(t, http.StatusOK, code)
		m := regexp.MustCompile(`(?s)<td id="` + id + `">(.*?)</td>\s*(?:<td|</tr>)`).FindStringSubmatch(page)
		require.NotNil(t, m, "no %s column", id)
		return m[1]
	}
	assert.Contains(t, column(grace, "live-jit"), `data-kind="created"`)
	assert.Contains(t, textOf(column(grace, "live-scim")), "nothing")

	code, loc := postDevForm(t, grace, root+"/dev-idp/acme/acme-0002/scim", root, url.Values{"action": {"update"},
		"given": {"Grace"}, "family": {"Hopper"}, "email": {"grace@acme.example"}, "groups": {"engineering, navy"}})
	require.Equal(t, http.StatusSeeOther, code, loc)
	scimCol := column(grace, "live-scim")
	assert.Contains(t, scimCol, `data-kind="scim user.updated"`)
	assert.Contains(t, textOf(scimCol), "groups engineering → engineering, navy")
	assert.NotContains(t, column(grace, "live-jit"), "navy", "JIT did not write the groups: SCIM did")
	assert.Contains(t, textOf(column(frank, "live-scim")), "nothing", "another tenant's person sees only their own record")
}
