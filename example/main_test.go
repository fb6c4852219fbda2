package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"flag"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// startApp runs the example with its development IdP on real HTTP.
func startApp(t *testing.T, data string) (*app, string) {
	t.Helper()
	return startAppArgs(t, "-data", data)
}

// startAppArgs runs the example on real HTTP at 127.0.0.1 with the given
// command line; -addr (and so the root URL) is chosen here.
func startAppArgs(t *testing.T, args ...string) (*app, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	root := "http://" + ln.Addr().String()
	cfg, err := parseFlags(append([]string{"-addr", ln.Addr().String()}, args...), io.Discard)
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

// newTestApp builds the example from a command line without serving it:
// for requests through httptest.NewRecorder.
func newTestApp(t *testing.T, args ...string) *app {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	require.NoError(t, err)
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a
}

// metadataFile writes an IdP's metadata to a file, as an administrator
// would save it for -idp-metadata.
func metadataFile(t *testing.T, idp *jittest.IdP) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "idp-metadata.xml")
	require.NoError(t, os.WriteFile(f, idp.Metadata(), 0o600))
	return f
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	// It stops at redirects, but for the one to the page of a refused
	// sign-in, which it follows as a browser does.
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/saml/failed") {
			return nil
		}
		return http.ErrUseLastResponse
	}}
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
	assert.Equal(t, []string{"admin", "member"}, me.Roles, "the admin group grants the admin role")
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
	assert.Equal(t, http.StatusUnauthorized, code, "the suspension ended her session")
	graceStatus := func() userstore.Status {
		u, err := a.store.Lookup(context.Background(), userstore.Key{Issuer: a.dev.tenants[0].idp.EntityID(), Subject: "acme-0002"})
		require.NoError(t, err)
		return u.Status
	}

	// A cross-origin admin post is refused.
	req, err = http.NewRequest(http.MethodPost, root+"/admin/users/"+graceID+"/unsuspend", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://evil.example")
	resp, err = ada.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, userstore.Suspended, graceStatus(), "still suspended")

	// So is one with no Origin and no Sec-Fetch-Site: the check once
	// passed whenever the Origin header was missing.
	req, err = http.NewRequest(http.MethodPost, root+"/admin/users/"+graceID+"/unsuspend", nil)
	require.NoError(t, err)
	resp, err = ada.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no Origin: refused")
	assert.Equal(t, userstore.Suspended, graceStatus(), "still suspended")

	// While suspended, signing in again is refused too, and audited.
	resp, err = a.dev.tenants[0].idp.SignIn(context.Background(), browser(t), root+"/saml/acme/login", "acme-0002")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a sign-in never lifts a suspension")

	// Ada unsuspends Grace through the admin page's form.
	code, page := get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	row := userRow(t, page, "acme-0002")
	assert.Equal(t, "suspended", cellText(t, row, "status"))
	assert.Contains(t, auditKinds(t, page, "acme-0002"), "refused")
	action := formAction(t, row)
	assert.Equal(t, "/admin/users/"+graceID+"/unsuspend", action)
	code, loc := postAdminForm(t, ada, root+action, root)
	require.Equal(t, http.StatusSeeOther, code)
	assert.Equal(t, "/admin", loc)

	// Her old session stays ended: unsuspending revives no cookie issued
	// before the suspension.
	code, _ = get(t, grace, root+"/api/me")
	assert.Equal(t, http.StatusUnauthorized, code, "unsuspending revived a session")

	code, page = get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	row = userRow(t, page, "acme-0002")
	assert.Equal(t, "active", cellText(t, row, "status"))
	assert.Equal(t, "/admin/users/"+graceID+"/suspend", formAction(t, row), "the form offers to suspend again")

	// She signs in again; the audit trail shows it after the refusal,
	// and Ada's suspension and unsuspension around the refusal.
	signIn(t, a, grace, root, "acme", "acme-0002")
	code, body = get(t, grace, root+"/api/me")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &me))
	assert.Equal(t, "grace@acme.example", me.Email)
	assert.Equal(t, "active", me.Status)
	_, page = get(t, ada, root+"/admin")
	assert.Equal(t, []string{"updated", "unsuspended", "refused", "suspended", "created"}, auditKinds(t, page, "acme-0002"), "newest first")
}

// postAdminForm submits an admin page form as a browser on origin would:
// a same-origin POST (the app's CSRF defence is SameSite=Lax cookies plus
// an Origin check). It returns the status and the Location header.
func postAdminForm(t *testing.T, c *http.Client, target, origin string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(""))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// htmlTable returns the inside of the page's table with the given id.
func htmlTable(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<table id="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</table>`).FindStringSubmatch(page)
	require.NotNil(t, m, "no table %q in the page", id)
	return m[1]
}

// dataRows returns the rows of an admin table by their data-subject, in
// page order.
func dataRows(t *testing.T, page, table string) (subjects, rows []string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?s)<tr data-subject="([^"]*)">(.*?)</tr>`).FindAllStringSubmatch(htmlTable(t, page, table), -1) {
		subjects = append(subjects, html.UnescapeString(m[1]))
		rows = append(rows, m[2])
	}
	return subjects, rows
}

// userRow returns the admin users table's row for subject.
func userRow(t *testing.T, page, subject string) string {
	t.Helper()
	subjects, rows := dataRows(t, page, "users")
	i := slices.Index(subjects, subject)
	require.GreaterOrEqual(t, i, 0, "no user %q on the admin page", subject)
	return rows[i]
}

// cellText is the text of the row's cell of the given class.
func cellText(t *testing.T, row, class string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<td class="(?:[^"]* )?` + regexp.QuoteMeta(class) + `(?: [^"]*)?"[^>]*>(.*?)</td>`).FindStringSubmatch(row)
	require.NotNil(t, m, "no %q cell in %s", class, row)
	return textOf(m[1])
}

// formAction is the action of the row's form.
func formAction(t *testing.T, row string) string {
	t.Helper()
	m := regexp.MustCompile(`<form method="post" action="([^"]*)">`).FindStringSubmatch(row)
	require.NotNil(t, m, "no form in %s", row)
	return html.UnescapeString(m[1])
}

// auditKinds lists the audit trail's event kinds for subject, newest first.
func auditKinds(t *testing.T, page, subject string) []string {
	t.Helper()
	var kinds []string
	for _, m := range regexp.MustCompile(`(?s)<tr data-kind="([a-z_]+)">.*?<td><code>([^<]*)</code>`).FindAllStringSubmatch(htmlTable(t, page, "audit"), -1) {
		if html.UnescapeString(m[2]) == subject {
			kinds = append(kinds, m[1])
		}
	}
	return kinds
}

// textOf is the text of an HTML fragment: tags dropped, entities decoded,
// runs of white space made one space.
func textOf(fragment string) string {
	return strings.Join(strings.Fields(html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(fragment, ""))), " ")
}

// TestDataDirectoryPrivate: a data directory and database left open by an
// earlier run or another tool (0755, 0644) are made private, and SQLite's
// WAL file follows the database's permissions.
func TestDataDirectoryPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "samljit.db"), nil, 0o644))
	a, root := startApp(t, data)
	signIn(t, a, browser(t), root, "globex", "globex-0001")
	for name, want := range map[string]os.FileMode{"": 0o700, "samljit.db": 0o600, "samljit.db-wal": 0o600, "sp-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(data, name))
		require.NoError(t, err, name)
		assert.Equal(t, want, fi.Mode().Perm(), "%q", name)
	}
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

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-idp-metadata", "acme=a.xml", "-idp-metadata", "https://idp.example/md", "-preset", "entra", "-allow-idp-initiated"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme=a.xml", "https://idp.example/md"}, cfg.idpMetadata)
	assert.True(t, cfg.allowIDPInitiated)
	assert.Equal(t, "entra", cfg.preset)
	assert.Equal(t, "127.0.0.1:8080", cfg.addr)
	assert.Equal(t, "http://127.0.0.1:8080", cfg.rootURL)
	assert.Equal(t, filepath.Join("samljit-data", "samljit.db"), cfg.db)

	// usage checks that args are refused as a usage error: main exits 2
	// and stderr says why and how to use the command.
	usage := func(t *testing.T, want string, args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		_, err := parseFlags(args, &stderr)
		require.Error(t, err, "%q", args)
		assert.NotErrorIs(t, err, flag.ErrHelp)
		assert.Contains(t, stderr.String(), want)
		assert.Contains(t, stderr.String(), "Usage of example", "stderr shows the usage")
	}
	t.Run("stray arguments", func(t *testing.T) {
		usage(t, "unexpected arguments", "stray")
	})

	// A listen address without a host, or on every interface, is no
	// address a browser opens: the default RootURL says localhost.
	t.Run("addr without a host", func(t *testing.T) {
		for addr, root := range map[string]string{
			":8080":          "http://localhost:8080",
			"0.0.0.0:9090":   "http://localhost:9090",
			"[::]:7070":      "http://localhost:7070",
			"127.0.0.1:8081": "http://127.0.0.1:8081",
		} {
			cfg, err := parseFlags([]string{"-addr", addr}, io.Discard)
			require.NoError(t, err)
			assert.Equal(t, root, cfg.rootURL, addr)
		}
	})

	t.Run("preset", func(t *testing.T) {
		require.Equal(t, []string{"adfs", "entra", "generic", "okta"}, claims.PresetNames())
		for _, name := range claims.PresetNames() {
			cfg, err := parseFlags([]string{"-preset", name}, io.Discard)
			require.NoError(t, err, name)
			assert.Equal(t, name, cfg.preset)
		}
		cfg, err := parseFlags(nil, io.Discard)
		require.NoError(t, err)
		assert.Equal(t, "generic", cfg.preset, "the default")
		usage(t, `unknown preset "azure"`, "-preset", "azure")
		usage(t, "-preset", "-preset", "Entra")

		// Each preset is the mapping the app signs people in with: an
		// IdP asserting that preset's claim names provisions its email.
		data := t.TempDir()
		for name, attrs := range map[string]map[string][]string{
			"generic": {claims.OIDMail: {"p@generic.example"}},
			"okta":    {"email": {"p@okta.example"}},
			"adfs":    {claims.ClaimEmailAddress: {"p@adfs.example"}},
			"entra": {claims.ClaimEmailAddress: {"p@entra.example"}, claims.ClaimEntraTenantID: {"tenant-1"},
				claims.ClaimEntraObjectID: {"object-1"}},
		} {
			t.Run(name, func(t *testing.T) {
				idp := jittest.New(t)
				idp.AddUser(jittest.User{NameID: "p-1", Attributes: attrs})
				a, root := startAppArgs(t, "-data", data, "-db", filepath.Join(t.TempDir(), "users.db"),
					"-idp-metadata", metadataFile(t, idp), "-preset", name)
				c := browser(t)
				signIn2(t, idp, c, root+"/saml/login", "p-1")
				users, err := a.store.List(context.Background())
				require.NoError(t, err)
				require.Len(t, users, 1)
				assert.Equal(t, "p@"+name+".example", users[0].Profile.Email)
				if name == "entra" {
					assert.Contains(t, users[0].Key.Subject, "object-1", "Entra keys on the object ID, not the NameID")
				} else {
					assert.Equal(t, "p-1", users[0].Key.Subject)
				}
			})
		}
	})

	t.Run("root-url", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-addr", "127.0.0.1:9999", "-root-url", "https://app.example.com"}, io.Discard)
		require.NoError(t, err)
		assert.Equal(t, "https://app.example.com", cfg.rootURL, "not derived from -addr when given")
		cfg, err = parseFlags([]string{"-addr", "127.0.0.1:9999"}, io.Discard)
		require.NoError(t, err)
		assert.Equal(t, "http://127.0.0.1:9999", cfg.rootURL)
		for _, bad := range []string{"app.example.com", "/app", "ftp://app.example.com", "https://"} {
			usage(t, "-root-url", "-root-url", bad)
		}
		// That the SP metadata and ACS are built on it is
		// TestSPMetadataPerTenant's job.
	})

	t.Run("db file", func(t *testing.T) {
		data := t.TempDir()
		file := filepath.Join(t.TempDir(), "elsewhere", "users.sqlite")
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o700))
		a, root := startAppArgs(t, "-data", data, "-db", file)
		signIn(t, a, browser(t), root, "globex", "globex-0002")

		_, err := os.Stat(filepath.Join(data, "samljit.db"))
		assert.ErrorIs(t, err, os.ErrNotExist, "-db replaces DATA/samljit.db")
		db, err := sql.Open("sqlite3", sqlitestore.DSN(file))
		require.NoError(t, err)
		defer db.Close()
		var subject, email string
		require.NoError(t, db.QueryRow("SELECT subject, email FROM users").Scan(&subject, &email))
		assert.Equal(t, "globex-0002", subject)
		assert.Equal(t, "frank@globex.example", email)
	})

	t.Run("tenants", func(t *testing.T) {
		acme, globex := jittest.New(t), jittest.New(t)
		for _, idp := range []*jittest.IdP{acme, globex} {
			idp.AddUser(jittest.User{NameID: "p-1", Attributes: map[string][]string{claims.OIDMail: {"p-1@" + idp.EntityID()}}})
		}
		a, root := startAppArgs(t, "-data", t.TempDir(),
			"-idp-metadata", "acme="+metadataFile(t, acme), "-idp-metadata", "globex="+metadataFile(t, globex))
		assert.Equal(t, []string{"acme", "globex"}, a.mw.Connections())
		assert.Nil(t, a.dev, "no development IdP with -idp-metadata")

		c := browser(t)
		signIn2(t, globex, c, root+"/saml/globex/login", "p-1")
		code, body := get(t, c, root+"/api/me")
		require.Equal(t, http.StatusOK, code, body)
		var me userJSON
		require.NoError(t, json.Unmarshal([]byte(body), &me))
		assert.Equal(t, globex.EntityID(), me.Issuer, "bound to the issuer of the tenant signed in through")
		assert.Equal(t, "p-1", me.Subject)

		// The same NameID at the other tenant is another person.
		signIn2(t, acme, browser(t), root+"/saml/acme/login", "p-1")
		users, err := a.store.List(context.Background())
		require.NoError(t, err)
		require.Len(t, users, 2)
		assert.Equal(t, globex.EntityID(), users[0].Key.Issuer)
		assert.Equal(t, acme.EntityID(), users[1].Key.Issuer)

		// A response acme's IdP made for acme's ACS is refused at globex's:
		// globex started no request in this browser (and the response's
		// Destination, audience and signer are all acme's, which
		// jit.TestTenantsAreSeparate checks with globex's request too).
		c = browser(t)
		f, err := acme.Respond(context.Background(), c, root+"/saml/acme/login", "p-1")
		require.NoError(t, err)
		require.Equal(t, root+"/saml/acme/acs", f.ACS)
		f.ACS = root + "/saml/globex/acs"
		resp, err := f.Post(context.Background(), c)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		trail, err := a.audit.Page(context.Background(), auditQuery{Limit: 1})
		require.NoError(t, err)
		require.Len(t, trail, 1)
		refused := trail[0]
		assert.Equal(t, string(jit.EventRefused), refused.Kind)
		assert.Equal(t, "globex", refused.Connection)
		assert.Contains(t, refused.Reason, jit.ErrUnsolicited.Error())
		users, err = a.store.List(context.Background())
		require.NoError(t, err)
		assert.Len(t, users, 2)

		_, err = parseFlags([]string{"-idp-metadata", "acme=a.xml", "-idp-metadata", "b.xml"}, io.Discard)
		require.NoError(t, err, "parsed; refused when the connections are built")
		_, err = connectionsFromFlags([]string{"acme=" + metadataFile(t, acme), metadataFile(t, globex)}, claims.Generic())
		assert.ErrorContains(t, err, "name each as tenant=URL-or-file")
	})
}

// TestSPMetadataPerTenant checks the SP metadata each IdP administrator is
// given: with several tenants one document per tenant, each with its own
// entity ID and ACS under -root-url; with one, /saml/metadata.
func TestSPMetadataPerTenant(t *testing.T) {
	const rootURL = "https://sp.example.test"
	// The parts of SP metadata an IdP administrator's import reads.
	type spMetadata struct {
		EntityID string `xml:"entityID,attr"`
		SP       []struct {
			ACS []struct {
				Binding  string `xml:"Binding,attr"`
				Location string `xml:"Location,attr"`
			} `xml:"AssertionConsumerService"`
		} `xml:"SPSSODescriptor"`
	}
	fetch := func(t *testing.T, a *app, path string) (int, *spMetadata) {
		t.Helper()
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK {
			return w.Code, nil
		}
		assert.Equal(t, "application/samlmetadata+xml", w.Header().Get("Content-Type"))
		var md spMetadata
		require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &md), w.Body.String())
		require.Len(t, md.SP, 1)
		return w.Code, &md
	}
	acsURLs := func(md *spMetadata) []string {
		var urls []string
		for _, acs := range md.SP[0].ACS {
			if acs.Binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" {
				urls = append(urls, acs.Location)
			}
		}
		return urls
	}

	t.Run("two tenants", func(t *testing.T) {
		acme, globex := jittest.New(t), jittest.New(t)
		a := newTestApp(t, "-root-url", rootURL, "-data", t.TempDir(),
			"-idp-metadata", "acme="+metadataFile(t, acme), "-idp-metadata", "globex="+metadataFile(t, globex))
		code, acmeMD := fetch(t, a, "/saml/acme/metadata")
		require.Equal(t, http.StatusOK, code)
		code, globexMD := fetch(t, a, "/saml/globex/metadata")
		require.Equal(t, http.StatusOK, code)

		assert.Equal(t, rootURL+"/saml/acme/metadata", acmeMD.EntityID)
		assert.Equal(t, rootURL+"/saml/globex/metadata", globexMD.EntityID)
		assert.Equal(t, []string{rootURL + "/saml/acme/acs"}, acsURLs(acmeMD))
		assert.Equal(t, []string{rootURL + "/saml/globex/acs"}, acsURLs(globexMD))
		assert.NotEqual(t, acmeMD.EntityID, globexMD.EntityID)

		code, _ = fetch(t, a, "/saml/metadata")
		assert.Equal(t, http.StatusNotFound, code, "no tenant-less metadata with several tenants")
	})

	t.Run("one tenant", func(t *testing.T) {
		a := newTestApp(t, "-root-url", rootURL, "-data", t.TempDir(), "-idp-metadata", metadataFile(t, jittest.New(t)))
		code, md := fetch(t, a, "/saml/metadata")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, rootURL+"/saml/metadata", md.EntityID)
		assert.Equal(t, []string{rootURL + "/saml/acs"}, acsURLs(md))
	})
}

// TestServerTimeouts checks the limits of the server run starts, and that
// its own error log is JSON too.
func TestServerTimeouts(t *testing.T) {
	var logs bytes.Buffer
	srv := newServer(http.NotFoundHandler(), newLogger(&logs))
	assert.Positive(t, srv.ReadHeaderTimeout)
	assert.Positive(t, srv.ReadTimeout)
	assert.Positive(t, srv.WriteTimeout)
	assert.Positive(t, srv.IdleTimeout)
	assert.Positive(t, srv.MaxHeaderBytes)
	assert.LessOrEqual(t, srv.ReadHeaderTimeout, srv.ReadTimeout)
	require.NotNil(t, srv.ErrorLog)
	srv.ErrorLog.Print("http: something odd")
	var line map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &line), logs.String())
	assert.Equal(t, "WARN", line["level"])
	assert.Equal(t, "http: something odd", line["msg"])
}

// TestRunGracefulShutdown starts the app as main does, with run, signs in,
// and cancels run's context while a request is in flight: the request
// completes, then run returns, and every log line is a slog JSON object.
func TestRunGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	root := "http://" + addr
	cfg, err := parseFlags([]string{"-addr", addr, "-data", t.TempDir()}, io.Discard)
	require.NoError(t, err)
	var logs, stdout ssphpBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, ln, newLogger(&logs), &stdout) }()

	// The listener is open before run is called, so these wait for it.
	ada := browser(t)
	code, _ := get(t, ada, root+"/")
	require.Equal(t, http.StatusOK, code)
	resp, err := ada.Get(root + "/saml/acme/login")
	require.NoError(t, err)
	resp.Body.Close()
	idpURL, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	idpMD, err := http.Get(idpURL.Scheme + "://" + idpURL.Host + "/metadata")
	require.NoError(t, err)
	idpMD.Body.Close()
	code, body := get(t, ada, root+"/api/me")
	require.Equal(t, http.StatusUnauthorized, code, body)

	// A request in flight: an edit whose body arrives slowly. With
	// Expect: 100-continue the server answers "100 Continue" only once
	// the handler starts reading the body, so Got100Continue means the
	// handler is running.
	form := url.Values{"given": {"Grace"}, "family": {"Hopper"}, "email": {"grace@acme.example"}, "groups": {"engineering, shutdown"}}.Encode()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, root+"/dev-idp/acme/acme-0002", pr)
	require.NoError(t, err)
	req.ContentLength = int64(len(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", root)
	req.Header.Set("Expect", "100-continue")
	handling := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got100Continue: func() { close(handling) },
	}))
	slow := &http.Client{
		Transport:     &http.Transport{ExpectContinueTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	type result struct {
		code int
		loc  string
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := slow.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- result{code: resp.StatusCode, loc: resp.Header.Get("Location")}
	}()
	select {
	case <-handling:
	case r := <-answered:
		t.Fatalf("answered before the body was sent: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatal("the handler never started reading the body")
	}
	_, err = io.WriteString(pw, form[:len(form)/2])
	require.NoError(t, err)

	cancel() // what SIGINT or SIGTERM does through signal.NotifyContext
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "the listener is closed once shutdown starts")
	select {
	case err := <-done:
		t.Fatalf("run returned with a request in flight: %v", err)
	case r := <-answered:
		t.Fatalf("the in-flight request ended early: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}

	_, err = io.WriteString(pw, form[len(form)/2:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	select {
	case r := <-answered:
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusSeeOther, r.code, "the in-flight request completed")
		assert.Equal(t, "/dev-idp?saved=acme%2Facme-0002", r.loc)
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight request never completed")
	}
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown is not an error")
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after shutdown")
	}
	_, err = http.Get(idpURL.Scheme + "://" + idpURL.Host + "/metadata")
	assert.Error(t, err, "the development IdP stopped with the app")

	assert.Contains(t, stdout.String(), "samljit example: open "+root)
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line), "not a JSON log line: %s", l)
		for _, k := range []string{slog.TimeKey, slog.LevelKey, slog.MessageKey} {
			assert.Contains(t, line, k, l)
		}
		msg, _ := line[slog.MessageKey].(string)
		msgs = append(msgs, msg)
		if msg == "example app listening" {
			assert.Equal(t, root, line["url"])
			assert.Equal(t, true, line["dev_idp"])
		}
	}
	listening := slices.Index(msgs, "example app listening")
	shutting := slices.Index(msgs, "example app shutting down")
	edited := slices.Index(msgs, "dev IdP person edited")
	stopped := slices.Index(msgs, "example app stopped")
	require.True(t, listening >= 0 && shutting >= 0 && edited >= 0 && stopped >= 0, "messages: %q", msgs)
	assert.Less(t, listening, shutting)
	assert.Less(t, shutting, edited, "the edit completed during shutdown")
	assert.Less(t, edited, stopped, "run returned after the in-flight request")
	assert.Equal(t, len(msgs)-1, stopped, "nothing logged after stopping")
}

// TestTenantAdminManagesOnlyOwnConnection: admins of the example are
// whoever a tenant's IdP puts in its "admins" group, so their rights stop
// at that tenant. A globex admin once listed acme's users and suspended
// acme's admin; now the admin page shows only globex, and acme's users
// are not found. Only a local grant (the operator role, which no IdP can
// assert) reaches every tenant.
func TestTenantAdminManagesOnlyOwnConnection(t *testing.T) {
	a, root := startApp(t, t.TempDir())
	ada, hank := browser(t), browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")      // acme's admin
	signIn(t, a, hank, root, "globex", "globex-0001") // globex's admin
	signIn(t, a, browser(t), root, "acme", "acme-0002")

	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	byNameID := map[string]userstore.User{}
	for _, u := range users {
		byNameID[u.Key.Subject] = u
	}
	adaRec := byNameID["acme-0001"]
	require.True(t, adaRec.HasIdPRole(jit.RoleAdmin))

	code, page := get(t, hank, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	table := htmlTable(t, page, "users")
	assert.Contains(t, table, `data-subject="globex-0001"`)
	assert.NotContains(t, table, `data-subject="acme-0001"`, "another tenant's users are not listed")
	assert.NotContains(t, table, `data-subject="acme-0002"`)
	assert.NotContains(t, htmlTable(t, page, "audit"), "acme-000", "nor their sign-ins")

	code, _ = postAdminForm(t, hank, root+"/admin/users/"+adaRec.ID+"/suspend", root)
	assert.Equal(t, http.StatusNotFound, code, "another tenant's user cannot be suspended")
	code, _ = get(t, ada, root+"/api/me")
	assert.Equal(t, http.StatusOK, code, "acme's admin is still active")

	code, page = get(t, ada, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, htmlTable(t, page, "users"), `data-subject="acme-0002"`)
	assert.NotContains(t, htmlTable(t, page, "users"), `data-subject="globex-0001"`)

	// An operator, by a local grant, manages every tenant.
	require.NoError(t, a.store.GrantRole(context.Background(), byNameID["acme-0002"].Key, roleOperator))
	op := browser(t)
	signIn(t, a, op, root, "acme", "acme-0002")
	code, page = get(t, op, root+"/admin")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, htmlTable(t, page, "users"), `data-subject="globex-0001"`)
	code, _ = postAdminForm(t, op, root+"/admin/users/"+byNameID["globex-0001"].ID+"/suspend", root)
	assert.Equal(t, http.StatusSeeOther, code)
}
