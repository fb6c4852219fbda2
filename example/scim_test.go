package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const acmeSCIMToken = "acme-scim-token-0123456789abcdefghij"

// scimRequest sends a SCIM request to the example with token.
func scimRequest(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/scim+json") {
		require.NoError(t, json.Unmarshal(raw, &m), string(raw))
	}
	return resp.StatusCode, m
}

// TestSCIMThroughTheExample: with -scim-token, the IdP creates a person
// over SCIM, their SAML sign-in finds that record, SCIM disables them and
// their open session is refused at the next request, SCIM re-enables
// them and they sign in again.
func TestSCIMThroughTheExample(t *testing.T) {
	a, root := startAppArgs(t, "-data", t.TempDir(), "-scim-token", "acme="+acmeSCIMToken)
	users := root + "/scim/acme/v2/Users"
	code, created := scimRequest(t, "POST", users, acmeSCIMToken,
		`{"externalId":"acme-0001","userName":"ada@acme.example","emails":[{"value":"ada@acme.example","primary":true}]}`)
	require.Equal(t, http.StatusCreated, code, created)
	id := created["id"].(string)

	ada := browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	code, body := get(t, ada, root+"/api/me")
	require.Equal(t, http.StatusOK, code, body)
	var me userJSON
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, id, me.ID, "the sign-in found the record SCIM created")

	patch := func(active string) {
		code, body := scimRequest(t, "PATCH", users+"/"+id, acmeSCIMToken,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"`+active+`"}]}`)
		require.Equal(t, http.StatusOK, code, body)
	}
	patch("False")
	code, _ = get(t, ada, root+"/api/me")
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, "the disabled person's session is refused")
	patch("True")
	code, _ = get(t, ada, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code, "re-enabling revives no session")
	signIn(t, a, ada, root, "acme", "acme-0001")
	code, _ = get(t, ada, root+"/api/me")
	assert.Equal(t, http.StatusOK, code)

	// globex has the endpoint the development IdP's token opens, and
	// acme's token opens nothing there.
	code, _ = scimRequest(t, "GET", root+"/scim/globex/v2/Users", acmeSCIMToken, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = scimRequest(t, "GET", users, "wrong-token", "")
	assert.Equal(t, http.StatusUnauthorized, code)

	// The admin page's audit trail shows SCIM's changes.
	entries, err := a.audit.Page(t.Context(), auditQuery{Limit: 100})
	require.NoError(t, err)
	var kinds []string
	for _, e := range entries {
		if strings.HasPrefix(e.Kind, "scim ") {
			assert.Equal(t, "SCIM", e.Actor, "the actor of %s", e.Kind)
		}
		kinds = append(kinds, e.Kind)
	}
	assert.Subset(t, kinds, []string{"scim user.created", "scim user.suspended", "scim user.reactivated"})
}

func TestSCIMTokenFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scim-token", "short"}, "with several connections"},
		{[]string{"-scim-token", "acme=short"}, "at least 32 characters"},
		{[]string{"-scim-token", "acme=" + acmeSCIMToken, "-scim-token", "acme=" + acmeSCIMToken}, "given twice"},
	} {
		cfg, err := parseFlags(append([]string{"-data", t.TempDir()}, tc.args...), io.Discard)
		require.NoError(t, err)
		_, err = newApp(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		require.ErrorContains(t, err, tc.want, "%q", tc.args)
	}
}

func TestSCIMTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "scim-tokens")
	require.NoError(t, os.WriteFile(f, []byte("# acme's provisioning\nacme="+acmeSCIMToken+"\n\n"), 0o600))
	_, root := startAppArgs(t, "-data", t.TempDir(), "-scim-token-file", f)
	code, _ := scimRequest(t, "GET", root+"/scim/acme/v2/Users", acmeSCIMToken, "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = scimRequest(t, "GET", root+"/scim/globex/v2/Users", acmeSCIMToken, "")
	assert.Equal(t, http.StatusUnauthorized, code, "acme's token does not open globex's endpoint")
}
