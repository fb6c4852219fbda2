package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

// postForm posts an edit form to the app with the given Origin header.
func postDevForm(t *testing.T, c *http.Client, target, origin string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Location") + string(b)
}

func TestDevIdPPickerShowsPeople(t *testing.T) {
	_, root := startApp(t, t.TempDir())
	c := browser(t)
	resp, err := c.Get(root + "/saml/acme/login")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	code, page := get(t, c, resp.Header.Get("Location"))
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, "Development IdP — signs in anyone, never use in production")
	assert.Contains(t, page, "Sign in to Acme Corp (development IdP)")
	for _, s := range []string{"Ada Lovelace", "ada@acme.example", ">admins<", "Grace Hopper", "grace@acme.example", ">engineering<", "Sign in as Grace"} {
		assert.Contains(t, page, s)
	}
	assert.NotContains(t, page, "Hank Scorpio", "each tenant's IdP lists its own people")
	assert.Contains(t, page, `href="`+root+`/dev-idp/acme/acme-0002"`, "links to the app's edit form")
}

func TestDevIdPEditReachesJIT(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	c := browser(t)
	signIn(t, a, c, root, "acme", "acme-0002")

	code, page := get(t, c, root+"/dev-idp")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "Frank Grimes")
	code, page = get(t, c, root+"/dev-idp/acme/acme-0002")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, `value="engineering"`)

	edit := url.Values{"given": {"Grace"}, "family": {"Murray Hopper"}, "email": {"grace@acme.example"}, "groups": {"engineering, navy,navy"}}
	code, _ = postDevForm(t, c, root+"/dev-idp/acme/acme-0002", "http://evil.example", edit)
	assert.Equal(t, http.StatusForbidden, code, "cross-origin edit refused")
	bad := url.Values{"given": {"Grace"}, "family": {"Hopper"}, "email": {"not-an-email"}, "groups": {"engineering, navy"}}
	code, page = postDevForm(t, c, root+"/dev-idp/acme/acme-0002", root, bad)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, page, "is not an email address")
	assert.Contains(t, page, `value="engineering, navy"`, "the form keeps what was typed")
	code, _ = postDevForm(t, c, root+"/dev-idp/acme/nobody", root, edit)
	assert.Equal(t, http.StatusNotFound, code)
	code, loc := postDevForm(t, c, root+"/dev-idp/acme/acme-0002", root, edit)
	require.Equal(t, http.StatusSeeOther, code, loc)
	code, page = get(t, c, root+"/dev-idp?saved=acme/acme-0002")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "Saved Grace Murray Hopper")

	// The record changes only at the next sign-in.
	code, body := get(t, c, root+"/api/me")
	require.Equal(t, http.StatusOK, code)
	var me userJSON
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "Hopper", me.FamilyName)
	signIn(t, a, c, root, "acme", "acme-0002")
	code, body = get(t, c, root+"/api/me")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "Murray Hopper", me.FamilyName)
	assert.Equal(t, "Grace Murray Hopper", me.DisplayName)
	assert.Equal(t, []string{"engineering", "navy"}, me.Groups)
	_, page = get(t, c, root+"/")
	assert.Contains(t, page, ">navy<")

	// Ada sees the update in the audit trail.
	ada := browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	code, page = get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "updated")
	assert.Contains(t, page, `<span class="tag">groups</span>`)
}

func TestDevIdPRoutesOnlyWithDevIdP(t *testing.T) {
	idp := jittest.New(t)
	md := filepath.Join(t.TempDir(), "idp.xml")
	require.NoError(t, os.WriteFile(md, idp.Metadata(), 0o600))
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir(), "-idp-metadata", md}, io.Discard)
	require.NoError(t, err)
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	require.Nil(t, a.dev)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/dev-idp", nil),
		httptest.NewRequest(http.MethodGet, "/dev-idp/acme/acme-0001", nil),
		httptest.NewRequest(http.MethodPost, "/dev-idp/acme/acme-0001", strings.NewReader("given=x")),
		httptest.NewRequest(http.MethodPost, "/dev-idp/acme/acme-0001/scim", strings.NewReader("action=disable")),
	} {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		assert.Equal(t, http.StatusNotFound, w.Code, "%s %s", r.Method, r.URL)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.NotContains(t, w.Body.String(), "Development IdP")
	_, err = os.Stat(filepath.Join(cfg.data, devSCIMTokenFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "no SCIM token is made without the development IdP")
	assert.Empty(t, a.scim, "nor any SCIM endpoint without -scim-token")
}

func TestParsePerson(t *testing.T) {
	p, err := parsePerson("x-1", url.Values{"given": {" Ada "}, "family": {"Lovelace"}, "email": {"ada@x.example"}, "groups": {"a,\n b , a,,"}})
	require.NoError(t, err)
	assert.Equal(t, devPerson{NameID: "x-1", Given: "Ada", Family: "Lovelace", Email: "ada@x.example", Groups: []string{"a", "b"}}, p)
	assert.Equal(t, "AL", p.Initials())
	assert.Equal(t, p, personFromUser(p.user()), "round trip through the IdP's attributes")

	for name, v := range map[string]url.Values{
		"no given":    {"family": {"L"}, "email": {"a@x"}},
		"no email":    {"given": {"A"}, "family": {"L"}},
		"bad email":   {"given": {"A"}, "family": {"L"}, "email": {"a @x"}},
		"long name":   {"given": {strings.Repeat("a", maxFieldLen+1)}, "family": {"L"}, "email": {"a@x"}},
		"long group":  {"given": {"A"}, "family": {"L"}, "email": {"a@x"}, "groups": {strings.Repeat("g", maxFieldLen+1)}},
		"many groups": {"given": {"A"}, "family": {"L"}, "email": {"a@x"}, "groups": {manyGroups(maxGroups + 1)}},
	} {
		_, err := parsePerson("x-1", v)
		assert.ErrorIs(t, err, errInvalidPerson, name)
	}
}

// manyGroups returns n distinct comma-separated group names.
func manyGroups(n int) string {
	gs := make([]string, n)
	for i := range gs {
		gs[i] = "g" + strconv.Itoa(i)
	}
	return strings.Join(gs, ",")
}
