package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestPageTitlesAndFavicon: the landing page's title names the example
// once, other pages put their own name first, and the icon every browser
// asks for is served, not a 404.
func TestPageTitlesAndFavicon(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	c := browser(t)
	code, body := get(t, c, root+"/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "<title>samljit example</title>")
	assert.NotContains(t, body, "samljit example · samljit example")
	assert.Contains(t, body, `<link rel="icon" href="/favicon.svg" type="image/svg+xml">`)

	signIn(t, a, c, root, "acme", "acme-0001")
	_, body = get(t, c, root+"/admin")
	assert.Contains(t, body, "<title>Admin · samljit example</title>")

	for _, p := range []string{"/favicon.svg", "/favicon.ico"} {
		resp, err := http.Get(root + p)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
		assert.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"), p)
		assert.True(t, strings.HasPrefix(string(b), "<svg "), p)
	}
}

// TestAdminRefusalNamesTheFlag: a person who may not use /admin is told
// which group may, and the flag that sets it; without one, how to set it.
func TestAdminRefusalNamesTheFlag(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	grace := browser(t)
	signIn(t, a, grace, root, "acme", "acme-0002")
	code, body := get(t, grace, root+"/admin")
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "Only members of the IdP group &#34;admins&#34; (set with -admin-group) can use this page.")

	idp := jittest.New(t)
	idp.AddUser(jittest.User{NameID: "p-1", Attributes: map[string][]string{claims.OIDMail: {"p@example.com"}, claims.OIDIsMemberOf: {"staff"}}})
	_, root = startAppArgs(t, "-data", t.TempDir(), "-idp-metadata", metadataFile(t, idp))
	c := browser(t)
	resp, err := idp.SignIn(context.Background(), c, root+"/saml/login", "p-1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	code, body = get(t, c, root+"/admin")
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "No admin group is set")
	assert.Contains(t, body, "start the example with -admin-group GROUP")
}

// TestDevIdPPageExplainCommand: the development IdP page gives each
// tenant's metadata URL and an explain command whose flags judge a sign-in
// captured from that tenant as the app's connection does: accepted.
func TestDevIdPPageExplainCommand(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	c := browser(t)
	_, page := get(t, c, root+"/dev-idp")
	m := regexp.MustCompile(`<code class="explain-command">([^<]*)</code>`).FindAllStringSubmatch(page, -1)
	require.Len(t, m, len(a.dev.tenants), "one command per tenant")
	acme, _ := a.dev.tenant("acme")
	cmd := html.UnescapeString(m[0][1])
	assert.Contains(t, page, `href="`+acme.idp.MetadataURL()+`"`)
	require.True(t, strings.HasPrefix(cmd, "go run ./cmd/samljit explain "), cmd)

	flags := map[string]string{}
	args := strings.Fields(strings.TrimPrefix(cmd, "go run ./cmd/samljit explain "))
	for i := 0; i+1 < len(args); i += 2 {
		flags[args[i]] = args[i+1]
	}
	assert.Equal(t, "response.b64", args[len(args)-1])
	assert.Equal(t, acme.idp.MetadataURL(), flags["-idp-metadata"])

	f, err := acme.idp.Respond(context.Background(), c, root+"/saml/acme/login", "acme-0002")
	require.NoError(t, err)
	mdXML, err := jit.FetchIDPMetadata(context.Background(), nil, flags["-idp-metadata"], false)
	require.NoError(t, err)
	mapper, err := claims.Preset(flags["-preset"])
	require.NoError(t, err)
	tr, err := jit.Explain(context.Background(), jit.ExplainRequest{Response: []byte(f.SAMLResponse), IDPMetadata: mdXML,
		SPEntityID: flags["-sp-entity-id"], ACSURL: flags["-acs-url"], Mapper: mapper})
	require.NoError(t, err)
	assert.Equal(t, "create", tr.Decision.Action, "%+v", tr.Steps)
}
