package jittest_test

import (
	"encoding/base64"
	"encoding/xml"
	"html/template"
	"net/http"
	"net/url"
	"testing"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

// TestSSOUserListTemplate checks that Options.UserListTemplate replaces the
// built-in picker and receives each user's attributes and sign-in link.
func TestSSOUserListTemplate(t *testing.T) {
	t.Parallel()
	tmpl := template.Must(template.New("picker").Parse(
		`<p class="banner">custom</p>{{range .Users}}<a href="{{.Href}}">{{index .User.Attributes "` + attrEmail + `" 0}}</a>{{end}}` +
			`{{if .Post}}<form method="post" action="{{.Action}}"><input name="SAMLRequest" value="{{.SAMLRequest}}"></form>{{end}}`))
	p := jittest.New(t, func(o *jittest.Options) { o.UserListTemplate = tmpl })
	p.AddUser(alice)
	app := newTestSP(t, p)
	u, _ := redirectURL(t, app.sp, "rs")

	resp, err := http.Get(u.String())
	require.NoError(t, err)
	page := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `<p class="banner">custom</p>`)
	assert.Contains(t, page, `>alice@example.com</a>`)
	assert.Contains(t, page, `user=alice-0001`)
	assert.NotContains(t, page, "jittest IdP: sign in as")

	req, err := app.sp.MakeAuthenticationRequest(p.SSOURL(), saml.HTTPPostBinding, saml.HTTPPostBinding)
	require.NoError(t, err)
	raw, err := xml.Marshal(req)
	require.NoError(t, err)
	resp, err = http.PostForm(p.SSOURL(), url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}})
	require.NoError(t, err)
	page = readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `<form method="post" action="/sso">`)
}
