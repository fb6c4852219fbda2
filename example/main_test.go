package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startApp runs the example with its development IdP on real HTTP.
func startApp(t *testing.T, data string) (*app, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	root := "http://" + ln.Addr().String()
	cfg, err := parseFlags([]string{"-addr", ln.Addr().String(), "-data", data}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, root, cfg.rootURL)
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close() })
	return a, root
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func signIn(t *testing.T, a *app, c *http.Client, root, tenant, nameID string) {
	t.Helper()
	var idp = a.dev.tenants[0].idp
	for _, tn := range a.dev.tenants {
		if tn.name == tenant {
			idp = tn.idp
		}
	}
	resp, err := idp.SignIn(context.Background(), c, root+"/saml/"+tenant+"/login", nameID)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, string(body))
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestSmokeDevSignInAPIAndSuspend(t *testing.T) {
	data := t.TempDir()
	a, root := startApp(t, data)

	anon := browser(t)
	code, _ := get(t, anon, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code)

	ada := browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	code, body := get(t, ada, root+"/api/me")
	require.Equal(t, http.StatusOK, code, body)
	var me userJSON
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "ada@acme.example", me.Email)
	assert.Equal(t, []string{"admins", "engineering"}, me.Groups)
	assert.Equal(t, "active", me.Status)

	code, body = get(t, ada, root+"/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Ada Lovelace")

	grace := browser(t)
	signIn(t, a, grace, root, "acme", "acme-0002")
	code, _ = get(t, grace, root+"/admin")
	assert.Equal(t, http.StatusForbidden, code, "not in the admin group")

	code, body = get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "grace@acme.example")

	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	require.Len(t, users, 2)
	var graceID string
	for _, u := range users {
		if u.Profile.Email == "grace@acme.example" {
			graceID = u.ID
		}
	}
	req, err := http.NewRequest(http.MethodPost, root+"/admin/users/"+graceID+"/suspend", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", root)
	resp, err := ada.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	code, _ = get(t, grace, root+"/api/me")
	assert.Equal(t, http.StatusForbidden, code, "suspended mid-session")

	// A cross-origin admin post is refused.
	req, err = http.NewRequest(http.MethodPost, root+"/admin/users/"+graceID+"/unsuspend", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	resp, err = ada.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestDataDirectoryReusedAcrossRuns(t *testing.T) {
	data := t.TempDir()
	a, root := startApp(t, data)
	signIn(t, a, browser(t), root, "globex", "globex-0001")
	key, err := os.ReadFile(data + "/sp-key.pem")
	require.NoError(t, err)

	b, root2 := startApp(t, data)
	key2, err := os.ReadFile(data + "/sp-key.pem")
	require.NoError(t, err)
	assert.Equal(t, key, key2, "keys created on first run are reused")
	users, err := b.store.List(context.Background())
	require.NoError(t, err)
	require.Len(t, users, 1, "the database is reused")
	signIn(t, b, browser(t), root2, "globex", "globex-0001")
	users, err = b.store.List(context.Background())
	require.NoError(t, err)
	assert.Len(t, users, 1, "same person, same record after a restart")
}

func TestREADMEComparisonMatchesPage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for _, r := range comparison {
		row := "| " + r.Aspect + " | " + r.SCIM + " | " + r.Graph + " | " + r.JIT + " |"
		assert.True(t, strings.Contains(string(readme), row), "README lacks row %q", row)
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-idp-metadata", "acme=a.xml", "-idp-metadata", "https://idp.example/md", "-preset", "entra", "-allow-idp-initiated"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme=a.xml", "https://idp.example/md"}, cfg.idpMetadata)
	assert.True(t, cfg.allowIDPInitiated)
	assert.Equal(t, "http://127.0.0.1:8080", cfg.rootURL)
	_, err = parseFlags([]string{"stray"}, io.Discard)
	assert.Error(t, err)
}
