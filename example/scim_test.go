package main

import (
	"database/sql"
	"encoding/hex"
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

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore/sqlitestore"
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

// TestSCIMTokensInTheDatabase: the example keeps its SCIM tokens hashed
// in its database (scim.TokenTable), never the token itself, and reads
// them at every request, so that a rotation made by another instance
// sharing the database holds at once, with no restart; at the next start
// the flags' token is the connection's one token again. The development
// tenants' first-run tokens are kept the same way.
func TestSCIMTokensInTheDatabase(t *testing.T) {
	data := t.TempDir()
	a, root := startAppArgs(t, "-data", data, "-scim-token", "acme="+acmeSCIMToken)
	users := root + "/scim/acme/v2/Users"
	code, _ := scimRequest(t, "GET", users, acmeSCIMToken, "")
	require.Equal(t, http.StatusOK, code)

	hashes := func(a *app, conn string) []string {
		t.Helper()
		rows, err := a.db.QueryContext(t.Context(), `SELECT hash FROM scim_tokens WHERE connection = $1 AND expires_ms = 0`, conn)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var h string
			require.NoError(t, rows.Scan(&h))
			out = append(out, h)
		}
		require.NoError(t, rows.Err())
		return out
	}
	hexHash := func(token string) string { h := scim.HashToken(token); return hex.EncodeToString(h[:]) }
	assert.Equal(t, []string{hexHash(acmeSCIMToken)}, hashes(a, "acme"), "the table holds the token's hash")
	var plain int
	require.NoError(t, a.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM scim_tokens WHERE hash = $1`, acmeSCIMToken).Scan(&plain))
	assert.Zero(t, plain, "the token itself is not stored")

	// The development tenant's first-run token is in the table too.
	saved, err := loadOrCreateDevSCIMTokens(filepath.Join(data, devSCIMTokenFile), nil)
	require.NoError(t, err)
	globexToken := saved["globex"]
	require.NotEmpty(t, globexToken)
	assert.Equal(t, []string{hexHash(globexToken)}, hashes(a, "globex"))
	code, _ = scimRequest(t, "GET", root+"/scim/globex/v2/Users", globexToken, "")
	assert.Equal(t, http.StatusOK, code)

	// Another instance on the same database rotates acme's token.
	other, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(data, "samljit.db")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	table, err := scim.OpenTokenTable(t.Context(), other, scim.TokenTableOptions{})
	require.NoError(t, err)
	rotated, err := table.Rotate(t.Context(), "acme", 0)
	require.NoError(t, err)
	code, _ = scimRequest(t, "GET", users, rotated, "")
	assert.Equal(t, http.StatusOK, code, "the rotated token works at once")
	code, _ = scimRequest(t, "GET", users, acmeSCIMToken, "")
	assert.Equal(t, http.StatusUnauthorized, code, "the old token is refused at once")
	require.NoError(t, table.Revoke(t.Context(), "acme", scim.HashToken(rotated)))
	code, _ = scimRequest(t, "GET", users, rotated, "")
	assert.Equal(t, http.StatusUnauthorized, code, "a revoked token is refused at once")

	// A start with a new flag makes it acme's one token.
	a.Close()
	const next = "acme-scim-token-next-0123456789abcdefgh"
	b, root := startAppArgs(t, "-data", data, "-scim-token", "acme="+next)
	code, _ = scimRequest(t, "GET", root+"/scim/acme/v2/Users", next, "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = scimRequest(t, "GET", root+"/scim/acme/v2/Users", acmeSCIMToken, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, []string{hexHash(next)}, hashes(b, "acme"))
}
