package main

// Interop test against an identity provider we did not write: SimpleSAMLphp
// 1.19 from the Debian package (apt-get install simplesamlphp php-cli), run
// with PHP's built-in web server on 127.0.0.1.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // reproduces SimpleSAMLphp's persistent NameID, not a security use
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	ssphpDir      = "/usr/share/simplesamlphp"
	ssphpFixtures = "testdata/simplesamlphp"
	ssphpTimeout  = 60 * time.Second
)

// ssphpUser is the one person in the example-userpass auth source.
var ssphpUser = struct {
	Username, Password, UID, Mail, GivenName, Surname, DisplayName, EPPN string
	Groups                                                               []string
}{
	Username: "student", Password: "studentpass", UID: "student",
	Mail: "student@uni.example", GivenName: "Stu", Surname: "Dent", DisplayName: "Stu Dent",
	EPPN: "student@uni.example", Groups: []string{"students", "interop-testers"},
}

func TestInteropSimpleSAMLphp(t *testing.T) {
	php := requireSimpleSAMLphp(t)
	ctx, cancel := context.WithTimeout(context.Background(), ssphpTimeout)
	defer cancel()
	start := time.Now()

	// The app's address must be known before SimpleSAMLphp's SP metadata is
	// written, and SimpleSAMLphp must answer before the app starts (the app
	// fetches the IdP metadata at start-up).
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	appRoot := "http://" + appLn.Addr().String()
	spEntityID := appRoot + "/saml/metadata"

	idp := startSimpleSAMLphp(ctx, t, php, spEntityID, appRoot+"/saml/acs", nil)
	t.Logf("SimpleSAMLphp ready at %s after %s", idp.baseURL, time.Since(start).Round(time.Millisecond))

	a := ssphpStartApp(ctx, t, appLn, idp.metadataURL, t.TempDir())
	wantSubject := ssphpPersistentNameID(idp.salt, idp.entityID, spEntityID, ssphpUser.UID)

	t0 := time.Now()
	first := ssphpSignIn(ctx, t, appRoot)
	t.Logf("first sign-in took %s", time.Since(t0).Round(time.Millisecond))
	assert.Equal(t, idp.entityID, first.Issuer, "issuer is SimpleSAMLphp's IdP entity ID")
	assert.Equal(t, wantSubject, first.Subject, "subject is the persistent NameID saml:PersistentNameID computes")
	assert.NotEmpty(t, first.Subject)
	assert.NotEqual(t, ssphpUser.Mail, first.Subject, "never keyed on the email")
	assert.Equal(t, ssphpUser.Mail, first.Email)
	assert.Equal(t, ssphpUser.GivenName, first.GivenName)
	assert.Equal(t, ssphpUser.Surname, first.FamilyName)
	assert.Equal(t, ssphpUser.DisplayName, first.DisplayName)
	assert.Equal(t, ssphpUser.Groups, first.Groups)
	assert.Equal(t, "active", first.Status)

	// A second sign-in, fresh browser (so a fresh SimpleSAMLphp session and a
	// new password prompt), nothing changed at the IdP: the same record.
	t0 = time.Now()
	second := ssphpSignIn(ctx, t, appRoot)
	t.Logf("second sign-in took %s", time.Since(t0).Round(time.Millisecond))
	assert.Equal(t, first.ID, second.ID, "same person, same record")
	assert.Equal(t, first.Subject, second.Subject)
	assert.Equal(t, first.CreatedAt, second.CreatedAt)
	assert.False(t, second.LastSignInAt.Before(first.LastSignInAt))
	users, err := a.store.List(ctx)
	require.NoError(t, err)
	assert.Len(t, users, 1, "updated, not duplicated")
	t.Logf("SimpleSAMLphp interop test took %s", time.Since(start).Round(time.Millisecond))
}

// requireSimpleSAMLphp returns the php binary, or skips when php or
// SimpleSAMLphp is missing. On CI a missing IdP is a failure, never a skip.
func requireSimpleSAMLphp(t *testing.T) string {
	t.Helper()
	var missing []string
	php, err := exec.LookPath("php")
	if err != nil {
		missing = append(missing, "php (apt-get install php-cli)")
	}
	if _, err := os.Stat(filepath.Join(ssphpDir, "www", "saml2", "idp", "SSOService.php")); err != nil {
		missing = append(missing, ssphpDir+" (apt-get install simplesamlphp)")
	}
	if php != "" {
		// The Debian package does not depend on these, but SimpleSAMLphp
		// cannot build or sign a SAML message without DOM, nor start
		// without mbstring.
		for _, e := range [][2]string{{"dom", "php-xml"}, {"mbstring", "php-mbstring"}, {"openssl", "php-cli"}} {
			if exec.Command(php, "-r", "exit(extension_loaded('"+e[0]+"') ? 0 : 1);").Run() != nil {
				missing = append(missing, "the PHP "+e[0]+" extension (apt-get install "+e[1]+")")
			}
		}
	}
	if len(missing) == 0 {
		return php
	}
	msg := "SimpleSAMLphp interop test needs " + strings.Join(missing, " and ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run it, not skip it")
	}
	t.Skip(msg)
	return ""
}

type ssphpIdP struct {
	baseURL     string // http://127.0.0.1:PORT/simplesaml/
	entityID    string // __DYNAMIC:1__ resolves to the metadata URL
	metadataURL string
	salt        string
}

// startSimpleSAMLphp writes a SimpleSAMLphp configuration for one SP and
// serves it with `php -S` until the test ends. extra adds to (or replaces)
// the values the templates are rendered with: SLO (the SP's Single Logout
// endpoint) and SPCertData (its base64 certificate) list the SP's SLO.
func startSimpleSAMLphp(ctx context.Context, t *testing.T, php, spEntityID, acsURL string, extra map[string]any) ssphpIdP {
	t.Helper()
	dir := t.TempDir()
	sub := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(p, 0o700))
		return p + string(os.PathSeparator)
	}
	configDir, metadataDir, certDir := sub("config"), sub("metadata"), sub("cert")
	tempDir, sessionDir, docroot := sub("tmp"), sub("sessions"), sub("docroot")

	// PHP's server maps URL paths onto the document root and finds PATH_INFO
	// itself, so a symlink serves www/ under /simplesaml/ without a router.
	// SimpleSAMLphp resolves the symlink (realpath) when it computes its own
	// URLs, and baseurlpath then supplies scheme, host, port and path.
	require.NoError(t, os.Symlink(filepath.Join(ssphpDir, "www"), filepath.Join(docroot, "simplesaml")))

	port := ssphpFreePort(t)
	idp := ssphpIdP{baseURL: fmt.Sprintf("http://127.0.0.1:%d/simplesaml/", port)}
	idp.metadataURL = idp.baseURL + "saml2/idp/metadata.php"
	idp.entityID = idp.metadataURL
	idp.salt = ssphpRandomHex(t, 32)

	keyFile, certFile := ssphpWriteKeyPair(t, certDir)
	data := map[string]any{
		"BaseURL": idp.baseURL, "CertDir": certDir, "MetadataDir": metadataDir,
		"TempDir": tempDir, "SessionDir": sessionDir, "AttributeMapDir": ssphpAttributeMapDir(t),
		"SecretSalt": idp.salt, "AdminPassword": ssphpRandomHex(t, 16),
		"KeyFile": keyFile, "CertFile": certFile,
		"SPEntityID": spEntityID, "ACS": acsURL,
		"Username": ssphpUser.Username, "Password": ssphpUser.Password, "UID": ssphpUser.UID,
		"Mail": ssphpUser.Mail, "GivenName": ssphpUser.GivenName, "Surname": ssphpUser.Surname,
		"DisplayName": ssphpUser.DisplayName, "EPPN": ssphpUser.EPPN, "Groups": ssphpUser.Groups,
		"SLO": "", "SPCertData": "",
	}
	maps.Copy(data, extra)
	ssphpRender(t, "config.php", configDir, data)
	ssphpRender(t, "authsources.php", configDir, data)
	ssphpRender(t, "metadata/saml20-idp-hosted.php", metadataDir, data)
	ssphpRender(t, "metadata/saml20-sp-remote.php", metadataDir, data)
	for _, f := range []string{"config.php", "authsources.php"} {
		ssphpLintPHP(ctx, t, php, filepath.Join(configDir, f))
	}
	for _, f := range []string{"saml20-idp-hosted.php", "saml20-sp-remote.php"} {
		ssphpLintPHP(ctx, t, php, filepath.Join(metadataDir, f))
	}

	out := &ssphpBuffer{}
	cmd := exec.Command(php, "-S", fmt.Sprintf("127.0.0.1:%d", port), "-t", docroot)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIMPLESAMLPHP_CONFIG_DIR="+configDir)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that the cleanup also ends any worker php
	// forks; WaitDelay bounds the wait for the output pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("SimpleSAMLphp (php -S) output:\n%s", out.String())
		}
	})

	// Wait until the IdP metadata answers, bounded by ctx.
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, idp.metadataURL, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("IDPSSODescriptor")) {
				require.Contains(t, string(body), `entityID="`+idp.entityID+`"`, "SimpleSAMLphp's base URL")
				return idp
			}
			t.Fatalf("SimpleSAMLphp metadata: HTTP %d\n%s", resp.StatusCode, body)
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("php -S exited before answering: %v", err)
		case <-ctx.Done():
			t.Fatalf("SimpleSAMLphp did not answer at %s: %v", idp.metadataURL, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ssphpStartApp runs the example app on ln against a real IdP's metadata
// URL, with its data (and SP key pair) in dataDir.
func ssphpStartApp(ctx context.Context, t *testing.T, ln net.Listener, idpMetadataURL, dataDir string) *app {
	t.Helper()
	cfg, err := parseFlags([]string{"-addr", ln.Addr().String(), "-data", dataDir,
		"-idp-metadata", idpMetadataURL, "-preset", "generic"}, io.Discard)
	require.NoError(t, err)
	logs := &ssphpBuffer{}
	a, err := newApp(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
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
	return a
}

// ssphpSignIn signs in as ssphpUser with a fresh browser, the way a person
// does: the app redirects to SimpleSAMLphp, which shows its login form; the
// form is posted; SimpleSAMLphp answers with a self-submitting form holding
// the SAMLResponse, which is posted to the app's ACS. It returns /api/me.
func ssphpSignIn(ctx context.Context, t *testing.T, appRoot string) userJSON {
	t.Helper()
	return ssphpSignInWith(ctx, t, ssphpBrowser(t), appRoot)
}

// ssphpBrowser is a fresh browser: a cookie jar, redirects followed.
func ssphpBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("more than 10 redirects")
			}
			return nil
		}}
}

// ssphpSignInWith is ssphpSignIn with browser c.
func ssphpSignInWith(ctx context.Context, t *testing.T, c *http.Client, appRoot string) userJSON {
	t.Helper()

	// App → SimpleSAMLphp SSOService → login page (redirects followed).
	page, pageURL := ssphpDo(ctx, t, c, http.MethodGet, appRoot+"/saml/login", nil)
	action, fields := ssphpParseForm(t, page, pageURL)
	require.Contains(t, fields, "AuthState", "SimpleSAMLphp login form:\n%s", page)
	fields.Set("username", ssphpUser.Username)
	fields.Set("password", ssphpUser.Password)

	// Login form → SimpleSAMLphp's auto-submitting POST form to the ACS.
	page, pageURL = ssphpDo(ctx, t, c, http.MethodPost, action, fields)
	action, fields = ssphpParseForm(t, page, pageURL)
	require.NotEmpty(t, fields.Get("SAMLResponse"), "SimpleSAMLphp did not answer with a SAMLResponse:\n%s", page)
	require.Equal(t, appRoot+"/saml/acs", action)
	if os.Getenv("SAMLJIT_INTEROP_DUMP") != "" {
		xml, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
		t.Logf("SAMLResponse:\n%s", xml)
	}

	// ACS → redirect into the app (followed).
	page, pageURL = ssphpDo(ctx, t, c, http.MethodPost, action, fields)
	require.True(t, strings.HasPrefix(pageURL, appRoot+"/"), "ended at %s:\n%s", pageURL, page)

	body, _ := ssphpDo(ctx, t, c, http.MethodGet, appRoot+"/api/me", nil)
	var me userJSON
	require.NoError(t, json.Unmarshal([]byte(body), &me), body)
	return me
}

// ssphpDo sends a request, follows redirects, requires a 200 and returns the
// body and the final URL.
func ssphpDo(ctx context.Context, t *testing.T, c *http.Client, method, target string, form url.Values) (string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", method, target)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s ended at %s:\n%s", method, target, resp.Request.URL, b)
	return string(b), resp.Request.URL.String()
}

var (
	ssphpFormRE  = regexp.MustCompile(`(?is)<form\b[^>]*>`)
	ssphpInputRE = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	ssphpAttrRE  = regexp.MustCompile(`(?is)\b([a-z][a-z0-9_-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
)

func ssphpTagAttrs(tag string) map[string]string {
	attrs := map[string]string{}
	for _, m := range ssphpAttrRE.FindAllStringSubmatch(tag, -1) {
		attrs[strings.ToLower(m[1])] = html.UnescapeString(m[2] + m[3])
	}
	return attrs
}

// ssphpParseForm returns the absolute action of the page's first form and its
// hidden fields.
func ssphpParseForm(t *testing.T, page, pageURL string) (string, url.Values) {
	t.Helper()
	tag := ssphpFormRE.FindString(page)
	require.NotEmpty(t, tag, "no form at %s:\n%s", pageURL, page)
	base, err := url.Parse(pageURL)
	require.NoError(t, err)
	action, err := base.Parse(ssphpTagAttrs(tag)["action"])
	require.NoError(t, err)
	fields := url.Values{}
	for _, in := range ssphpInputRE.FindAllString(page, -1) {
		a := ssphpTagAttrs(in)
		if strings.EqualFold(a["type"], "hidden") && a["name"] != "" {
			fields.Add(a["name"], a["value"])
		}
	}
	return action.String(), fields
}

// ssphpPersistentNameID is the NameID saml:PersistentNameID computes in
// SimpleSAMLphp 1.19: sha1 over the salt, both entity IDs and the attribute.
func ssphpPersistentNameID(salt, idpEntityID, spEntityID, uid string) string {
	s := "uidhashbase" + salt
	for _, v := range []string{idpEntityID, spEntityID, uid} {
		s += strconv.Itoa(len(v)) + ":" + v
	}
	sum := sha1.Sum([]byte(s + salt)) //nolint:gosec // see import
	return hex.EncodeToString(sum[:])
}

// ssphpAttributeMapDir finds the packaged attribute maps (name2oid.php).
func ssphpAttributeMapDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{filepath.Join(ssphpDir, "attributemap"), filepath.Join(ssphpDir, "config", "attributemap"), "/etc/simplesamlphp/attributemap"} {
		if _, err := os.Stat(filepath.Join(d, "name2oid.php")); err == nil {
			return d + string(os.PathSeparator)
		}
	}
	t.Fatal("SimpleSAMLphp's attributemap/name2oid.php not found")
	return ""
}

func ssphpRender(t *testing.T, name, dstDir string, data any) {
	t.Helper()
	tmpl, err := template.New(filepath.Base(name)).Option("missingkey=error").
		Funcs(template.FuncMap{"php": ssphpPHPString}).ParseFiles(filepath.Join(ssphpFixtures, name))
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, tmpl.Execute(&b, data))
	require.NoError(t, os.WriteFile(filepath.Join(dstDir, filepath.Base(name)), b.Bytes(), 0o600))
}

// ssphpPHPString quotes s as a single-quoted PHP string literal.
func ssphpPHPString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func ssphpLintPHP(ctx context.Context, t *testing.T, php, file string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, php, "-l", file).CombinedOutput()
	require.NoError(t, err, "php -l %s: %s", file, out)
}

// ssphpWriteKeyPair writes a fresh RSA key and self-signed certificate as PEM.
func ssphpWriteKeyPair(t *testing.T, dir string) (keyFile, certFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "SimpleSAMLphp interop IdP"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyFile, certFile = filepath.Join(dir, "idp.key"), filepath.Join(dir, "idp.crt")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600))
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return keyFile, certFile
}

func ssphpFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func ssphpRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// ssphpBuffer collects a child process's or a logger's output.
type ssphpBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *ssphpBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *ssphpBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
