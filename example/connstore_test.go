package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/userstore"
)

// buildCLI builds cmd/samljit into a temporary directory, with the race
// detector when this test binary has it (so that the build reuses what the
// test's own build compiled), and returns its path.
func buildCLI(ctx context.Context, t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Need(t, "the go command is not on PATH", "install Go")
	}
	bin := filepath.Join(t.TempDir(), "samljit")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	out, err := exec.CommandContext(ctx, goBin, append(args, "github.com/samljit/samljit/cmd/samljit")...).CombinedOutput()
	require.NoError(t, err, "go build cmd/samljit: %s", out)
	return bin
}

// TestStoredConnectionFromCLI is the operator's path from the README: the
// example runs on its defaults (the development IdP and its tenants) with
// -db FILE; "samljit connections add -db FILE -name contoso
// -idp-metadata URL -preset generic -domain example.com", run as its own
// process, adds SimpleSAMLphp as a connection; within 10 s the running app
// serves its SP metadata at /saml/contoso/metadata, and a person signs in
// through it from /saml/login?email=alice@example.com, with no restart.
// "connections remove" then makes /saml/contoso/login 404 within 10 s,
// ends that person's session and keeps their record.
func TestStoredConnectionFromCLI(t *testing.T) {
	php := requireSimpleSAMLphp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cli := buildCLI(ctx, t)
	samljit := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
		require.NoError(t, err, "samljit %s: %s", strings.Join(args, " "), out)
		return string(out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	appRoot := "http://" + ln.Addr().String()
	spEntityID := appRoot + "/saml/contoso/metadata"
	idp := startSimpleSAMLphp(ctx, t, php, spEntityID, appRoot+"/saml/contoso/acs", nil)

	dataDir := t.TempDir()
	dbFile := filepath.Join(dataDir, "app.db")
	cfg, err := parseFlags([]string{"-addr", ln.Addr().String(), "-data", dataDir, "-db", dbFile}, io.Discard)
	require.NoError(t, err)
	logs := &ssphpBuffer{}
	a, err := newApp(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
		if t.Failed() {
			t.Logf("example app log:\n%s", logs.String())
		}
	})
	require.NotNil(t, a.dev, "the example runs on its defaults, with the development IdP")
	devTenants := a.mw.Connections()
	require.NotEmpty(t, devTenants)

	get := func(path string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, appRoot+path, nil)
		require.NoError(t, err)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	code, _ := get("/saml/contoso/metadata")
	require.Equal(t, http.StatusNotFound, code)

	out := samljit("connections", "add", "-db", dbFile, "-name", "contoso", "-idp-metadata", idp.metadataURL, "-preset", "generic", "-domain", "example.com")
	t.Logf("samljit connections add: %s", out)
	added := time.Now()
	var md string
	require.Eventually(t, func() bool {
		code, md = get("/saml/contoso/metadata")
		return code == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond, "the running app serves the new connection within 10 s")
	t.Logf("served %s after it was added", time.Since(added).Round(time.Millisecond))
	assert.Contains(t, md, `entityID="`+spEntityID+`"`)
	assert.Contains(t, md, appRoot+"/saml/contoso/acs")

	// A person signs in from their email address.
	browser := ssphpBrowser(t)
	page, pageURL := ssphpDo(ctx, t, browser, http.MethodGet, appRoot+"/saml/login?email=alice@example.com", nil)
	action, fields := ssphpParseForm(t, page, pageURL)
	require.Contains(t, fields, "AuthState", "SimpleSAMLphp login form:\n%s", page)
	fields.Set("username", ssphpUser.Username)
	fields.Set("password", ssphpUser.Password)
	page, pageURL = ssphpDo(ctx, t, browser, http.MethodPost, action, fields)
	action, fields = ssphpParseForm(t, page, pageURL)
	require.NotEmpty(t, fields.Get("SAMLResponse"), "SimpleSAMLphp did not answer with a SAMLResponse:\n%s", page)
	require.Equal(t, appRoot+"/saml/contoso/acs", action)
	_, pageURL = ssphpDo(ctx, t, browser, http.MethodPost, action, fields)
	require.True(t, strings.HasPrefix(pageURL, appRoot+"/"), "ended at %s", pageURL)
	me1 := apiMeOf(ctx, t, browser, appRoot)
	require.Equal(t, http.StatusOK, me1.code, me1.body)
	assert.Equal(t, idp.entityID, me1.user.Issuer)
	assert.Equal(t, ssphpPersistentNameID(idp.salt, idp.entityID, spEntityID, ssphpUser.UID), me1.user.Subject)
	assert.Equal(t, ssphpUser.Mail, me1.user.Email)
	assert.Equal(t, append(devTenants, "contoso"), a.mw.Connections(), "the development IdP's tenants stay")

	out = samljit("connections", "remove", "-db", dbFile, "-name", "contoso")
	t.Logf("samljit connections remove: %s", out)
	removed := time.Now()
	require.Eventually(t, func() bool {
		code, _ := get("/saml/contoso/login")
		return code == http.StatusNotFound
	}, 10*time.Second, 100*time.Millisecond, "/saml/contoso/login 404s within 10 s")
	t.Logf("404 %s after it was removed", time.Since(removed).Round(time.Millisecond))
	me := apiMeOf(ctx, t, browser, appRoot)
	assert.Equal(t, http.StatusUnauthorized, me.code, "the session ended with the connection")
	users, err := a.store.List(ctx)
	require.NoError(t, err)
	assert.True(t, slices.ContainsFunc(users, func(u userstore.User) bool { return u.ID == me1.user.ID }), "the user is kept")
}

// apiMe is the answer of /api/me.
type apiMe struct {
	code int
	body string
	user userJSON
}

// apiMeOf fetches /api/me with browser c.
func apiMeOf(ctx context.Context, t *testing.T, c *http.Client, appRoot string) apiMe {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, appRoot+"/api/me", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	me := apiMe{code: resp.StatusCode, body: string(b)}
	if me.code == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &me.user))
	}
	return me
}
