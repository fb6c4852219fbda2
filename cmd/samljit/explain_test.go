package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/jit/jittest/forge"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

var (
	update     = flag.Bool("update", false, "rewrite the golden traces of testdata/explain, and write its fixture files that are missing")
	regenerate = flag.Bool("regenerate", false, "with -update, sign the captured response anew with a new IdP key (the goldens' fingerprints change)")
)

// The explain fixture: an Entra ID-shaped sign-in captured at issuedAt.
const (
	fixtureDir    = "../../testdata/explain"
	fixtureTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	fixtureObject = "00000000-0000-0000-0000-0000000000a1"
	fixtureSP     = "https://app.example.com/saml/metadata"
	fixtureACS    = "https://app.example.com/saml/acs"
	groupEng      = "5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69"
	groupAdmins   = "0c7b1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"
)

var issuedAt = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

// writeFixture signs a fresh response with a jittest IdP and writes it with
// the IdP's metadata. Run with -update after changing it.
func writeFixture(t *testing.T) {
	idp := jittest.New(t, func(o *jittest.Options) {
		o.EntityID = "https://sts.windows.net/" + fixtureTenant + "/"
		o.Now = func() time.Time { return issuedAt }
		o.SessionLifetime = 8 * time.Hour
	})
	idp.AddUser(jittest.User{
		NameID:       "ada@contoso.example",
		NameIDFormat: claims.NameIDFormatEmailAddress,
		Attributes: map[string][]string{
			claims.ClaimEntraTenantID: {fixtureTenant},
			claims.ClaimEntraObjectID: {fixtureObject},
			claims.ClaimEmailAddress:  {"ada@contoso.example"},
			claims.ClaimGivenName:     {"Ada"},
			claims.ClaimSurname:       {"Lovelace"},
			claims.ClaimDisplayName:   {"Ada Lovelace"},
			claims.ClaimGroups:        {groupEng, groupAdmins},
		},
	})
	f, err := idp.ResponseFor(jittest.Request{ID: "_req-7f3a", SPEntityID: fixtureSP, ACSURL: fixtureACS}, "ada@contoso.example")
	require.NoError(t, err)
	xml, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(fixtureDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(fixtureDir, "response.b64"), []byte(f.SAMLResponse+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(fixtureDir, "response.xml"), xml, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(fixtureDir, "idp-metadata.xml"), idp.Metadata(), 0o644))
}

// writeRolledMetadata writes the metadata of the fixture's IdP after a
// certificate rollover, if it is missing.
func writeRolledMetadata(t *testing.T) {
	path := filepath.Join(fixtureDir, "rolled-idp-metadata.xml")
	if _, err := os.Stat(path); err == nil && !*regenerate {
		return
	}
	// The same IdP after a certificate rollover the SP was not told of:
	// its metadata lists another signing certificate.
	rolled := jittest.New(t, func(o *jittest.Options) {
		o.EntityID = "https://sts.windows.net/" + fixtureTenant + "/"
		o.Now = func() time.Time { return issuedAt }
	})
	require.NoError(t, os.WriteFile(path, rolled.Metadata(), 0o644))
}

// explain runs the command and returns its exit status and output.
func explain(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	if stdin != nil {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		go func() { _, _ = w.Write(stdin); _ = w.Close() }()
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old }()
	}
	var out, errOut bytes.Buffer
	code := run(append([]string{"explain"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// fixtureArgs are the flags for the fixture's connection.
func fixtureArgs(extra ...string) []string {
	return append([]string{
		"-idp-metadata", filepath.Join(fixtureDir, "idp-metadata.xml"),
		"-sp-entity-id", fixtureSP,
		"-acs-url", fixtureACS,
		"-preset", "entra",
		"-now", issuedAt.Add(30 * time.Second).Format(time.RFC3339),
		"-config", filepath.Join(fixtureDir, "policy.json"),
	}, extra...)
}

// golden compares got with testdata/explain/NAME, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(fixtureDir, name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./cmd/samljit -run Explain -update to create it")
	assert.Equal(t, string(want), got, "output differs from %s (rerun with -update if the change is intended)", path)
}

func TestExplainGolden(t *testing.T) {
	if *update && *regenerate {
		writeFixture(t)
	}
	if *update {
		writeRolledMetadata(t)
	}
	t.Run("FirstSignIn", func(t *testing.T) {
		code, out, errOut := explain(t, nil, fixtureArgs(filepath.Join(fixtureDir, "response.b64"))...)
		require.Equal(t, 0, code, errOut+out)
		golden(t, "first-sign-in.golden", out)
		assert.Contains(t, out, "subject: "+fixtureTenant+"/"+fixtureObject)
		assert.Contains(t, out, "roles granted: admin, editor, viewer")
	})
	t.Run("XMLFromStdin", func(t *testing.T) {
		xml, err := os.ReadFile(filepath.Join(fixtureDir, "response.xml"))
		require.NoError(t, err)
		code, out, errOut := explain(t, xml, fixtureArgs()...)
		require.Equal(t, 0, code, errOut+out)
		want, err := os.ReadFile(filepath.Join(fixtureDir, "first-sign-in.golden"))
		require.NoError(t, err)
		assert.Equal(t, string(want), out, "base64 and XML give the same trace")
	})
	t.Run("FormBodyFromDevTools", func(t *testing.T) {
		b64, err := os.ReadFile(filepath.Join(fixtureDir, "response.b64"))
		require.NoError(t, err)
		body := "SAMLResponse=" + url.QueryEscape(strings.TrimSpace(string(b64))) + "&RelayState=4f1c"
		code, out, errOut := explain(t, []byte(body), fixtureArgs()...)
		require.Equal(t, 0, code, errOut+out)
		want, err := os.ReadFile(filepath.Join(fixtureDir, "first-sign-in.golden"))
		require.NoError(t, err)
		assert.Equal(t, string(want), out, "a posted form body gives the same trace")
	})
	t.Run("WrongAudience", func(t *testing.T) {
		args := fixtureArgs(filepath.Join(fixtureDir, "response.b64"))
		args[3] = "https://other.example.com/saml/metadata"
		code, out, _ := explain(t, nil, args...)
		require.Equal(t, 1, code, out)
		golden(t, "wrong-audience.golden", out)
	})
	t.Run("Expired", func(t *testing.T) {
		code, out, _ := explain(t, nil, fixtureArgs("-now", issuedAt.Add(time.Hour).Format(time.RFC3339), filepath.Join(fixtureDir, "response.b64"))...)
		require.Equal(t, 1, code, out)
		golden(t, "expired.golden", out)
		// The -now it suggests is one the response passes at.
		rerun := "-now " + issuedAt.Add(time.Second).Format(time.RFC3339)
		require.Contains(t, out, "Rerun with "+rerun+" ")
		code, out, errOut := explain(t, nil, fixtureArgs(strings.Fields(rerun)[0], strings.Fields(rerun)[1], filepath.Join(fixtureDir, "response.b64"))...)
		assert.Equal(t, 0, code, errOut+out)
	})
	t.Run("NotYetIssued", func(t *testing.T) {
		code, out, _ := explain(t, nil, fixtureArgs("-now", issuedAt.Add(-time.Hour).Format(time.RFC3339), filepath.Join(fixtureDir, "response.b64"))...)
		require.Equal(t, 1, code, out)
		assert.Contains(t, out, "Rerun with -now "+issuedAt.Add(time.Second).Format(time.RFC3339))
	})
	t.Run("RefusedInsideItsWindowGetsNoRerun", func(t *testing.T) {
		args := fixtureArgs(filepath.Join(fixtureDir, "response.b64"))
		args[3] = "https://other.example.com/saml/metadata"
		_, out, _ := explain(t, nil, args...)
		assert.NotContains(t, out, "Rerun with")
	})
	t.Run("CertificateNotInMetadata", func(t *testing.T) {
		args := fixtureArgs(filepath.Join(fixtureDir, "response.b64"))
		args[1] = filepath.Join(fixtureDir, "rolled-idp-metadata.xml")
		code, out, _ := explain(t, nil, args...)
		require.Equal(t, 1, code, out)
		golden(t, "certificate-not-in-metadata.golden", out)
		assert.Contains(t, out, "signed with (NOT in the IdP metadata): subject CN=jittest IdP")
		assert.Contains(t, out, "trusted (IdP metadata): subject CN=jittest IdP")
	})
	t.Run("NoConfig", func(t *testing.T) {
		args := fixtureArgs(filepath.Join(fixtureDir, "response.b64"))
		args = append(args[:10], args[12:]...) // without -config
		require.NotContains(t, args, "-config")
		code, out, errOut := explain(t, nil, args...)
		require.Equal(t, 0, code, errOut+out)
		assert.Contains(t, out, "policy: none given, judged with the zero Policy")
		assert.Contains(t, out, "roles granted: none")
	})
	t.Run("EmailNameID", func(t *testing.T) {
		// The fixture's NameID is an emailAddress, as ADFS, PingFederate
		// and OneLogin send by default: refused as a key, unless the
		// mapping allows it.
		args := fixtureArgs(filepath.Join(fixtureDir, "response.b64"))
		args[7] = "generic"
		code, out, _ := explain(t, nil, args...)
		require.Equal(t, 1, code, out)
		assert.Contains(t, out, "FAIL mapping")
		assert.Contains(t, out, "warning mapping-refused: a sign-in was refused: the IdP sent an emailAddress NameID", "the trace names the fixes")
		assert.Contains(t, out, "-allow-email-nameid", "and the flag to judge it with the opt-in")
		code, out, errOut := explain(t, nil, append([]string{"-allow-email-nameid"}, args...)...)
		require.Equal(t, 0, code, errOut+out)
		assert.Contains(t, out, "subject: ada@contoso.example")
	})
}

func TestExplainJSONGolden(t *testing.T) {
	code, out, errOut := explain(t, nil, fixtureArgs("-json", filepath.Join(fixtureDir, "response.b64"))...)
	require.Equal(t, 0, code, errOut)
	golden(t, "first-sign-in.json.golden", out)

	code, out, errOut = explain(t, nil, fixtureArgs("-json", "-now", issuedAt.Add(time.Hour).Format(time.RFC3339), filepath.Join(fixtureDir, "response.b64"))...)
	require.Equal(t, 1, code, errOut)
	golden(t, "expired.json.golden", out)
	assert.Contains(t, errOut, "rerun with -now "+issuedAt.Add(time.Second).Format(time.RFC3339))
}

// TestExplainJSONIsSnakeCase: every key of the JSON form, at any depth, is
// snake_case (the attribute names of a profile are data, not keys).
func TestExplainJSONIsSnakeCase(t *testing.T) {
	dbPath := returningUserDB(t)
	code, out, errOut := explain(t, nil, fixtureArgs("-json", "-db", dbPath, filepath.Join(fixtureDir, "response.b64"))...)
	require.Equal(t, 0, code, errOut)
	var doc any
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	var keys []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if strings.HasSuffix(path, ".attributes") && !strings.HasPrefix(path, ".identity") {
					continue // a profile's kept attributes, keyed by attribute Name
				}
				keys = append(keys, k)
				assert.Regexp(t, snake, k, "key at %s", path)
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path, e)
			}
		}
	}
	walk("", doc)
	for _, k := range []string{"version", "steps", "decision", "action", "before", "after", "roles_removed", "identity", "name_id_format", "known_name", "key", "subject", "profile", "display_name", "signing_certificates", "sha256_fingerprint"} {
		assert.Contains(t, keys, k)
	}
}

// TestEveryOptInHasAFlag: every exported Allow… or Insecure… field of
// jit.Connection and claims.Mapping has an explain flag, and the flag sets
// that very field, which reaches the request explain judges with.
func TestEveryOptInHasAFlag(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[jit.Connection](), reflect.TypeFor[claims.Mapping]()} {
		for field := range typ.Fields() {
			if !field.IsExported() || !(strings.HasPrefix(field.Name, "Allow") || strings.HasPrefix(field.Name, "Insecure")) {
				continue
			}
			name := typ.Name() + "." + field.Name
			t.Run(name, func(t *testing.T) {
				require.Equal(t, reflect.Bool, field.Type.Kind(), "an opt-in is a bool")
				flagName, ok := optInFlags[name]
				require.True(t, ok, "%s has no explain flag: add it to optInFlags and newExplainFlags", name)
				f := newExplainFlags(io.Discard)
				require.NotNil(t, f.fs.Lookup(flagName), "-%s is not defined", flagName)
				require.NoError(t, f.fs.Parse([]string{"-" + flagName}))
				holder := reflect.ValueOf(f.conn)
				if typ.Name() == "Mapping" {
					holder = reflect.ValueOf(f.mapping)
				}
				require.True(t, holder.FieldByName(field.Name).Bool(), "-%s does not set %s", flagName, name)

				req, err := f.request()
				require.NoError(t, err)
				switch {
				case typ.Name() == "Mapping":
					m, ok := req.Mapper.(claims.Mapping)
					require.True(t, ok)
					assert.True(t, reflect.ValueOf(m).FieldByName(field.Name).Bool(), "%s does not reach the mapping", name)
				case field.Name == "InsecureAllowHTTPMetadata":
					// It governs fetching -idp-metadata, which runExplain
					// does with f.conn.InsecureAllowHTTPMetadata.
				default:
					v := reflect.ValueOf(req).FieldByName(field.Name)
					require.True(t, v.IsValid(), "jit.ExplainRequest has no %s", field.Name)
					assert.True(t, v.Bool(), "%s does not reach the request", name)
				}
			})
		}
	}
	for name := range optInFlags {
		typ, field, _ := strings.Cut(name, ".")
		var ok bool
		switch typ {
		case "Connection":
			_, ok = reflect.TypeFor[jit.Connection]().FieldByName(field)
		case "Mapping":
			_, ok = reflect.TypeFor[claims.Mapping]().FieldByName(field)
		}
		assert.True(t, ok, "optInFlags names %s, which does not exist", name)
	}
}

func TestExplainJSON(t *testing.T) {
	code, out, errOut := explain(t, nil, fixtureArgs("-json", filepath.Join(fixtureDir, "response.b64"))...)
	require.Equal(t, 0, code, errOut)
	var tr jit.Trace
	require.NoError(t, json.Unmarshal([]byte(out), &tr))
	assert.Equal(t, "create", tr.Decision.Action)
	assert.Equal(t, userstore.Key{Issuer: "https://sts.windows.net/" + fixtureTenant + "/", Subject: fixtureTenant + "/" + fixtureObject}, tr.Key)
	require.NotEmpty(t, tr.Steps)
	for _, s := range tr.Steps {
		assert.True(t, s.OK, "%s: %s", s.Name, s.Detail)
	}
	assert.Contains(t, strings.Join(tr.Notes, "\n"), `InResponseTo "_req-7f3a": not checkable`)
}

// TestExplainReturningUser reads a real SQLite store without writing it:
// the trace shows the update's diff and the roles removed.
func TestExplainReturningUser(t *testing.T) {
	dbPath := returningUserDB(t)
	sum := fileSum(t, dbPath)

	code, out, errOut := explain(t, nil, fixtureArgs("-db", dbPath, filepath.Join(fixtureDir, "response.b64"))...)
	require.Equal(t, 0, code, errOut+out)
	assert.Contains(t, out, "update user ")
	assert.Contains(t, out, "changed: display_name, given_name, family_name, groups, roles")
	assert.Contains(t, out, "roles granted: admin")
	assert.Contains(t, out, "roles removed: operator")
	assert.Equal(t, sum, fileSum(t, dbPath), "explain writes nothing")
}

// returningUserDB is an SQLite store holding the fixture's person as
// stored a day before, under another name and with other roles.
func returningUserDB(t *testing.T) string {
	dbPath := filepath.Join(t.TempDir(), "users.db")
	db, err := sql.Open("sqlite3", sqlitestore.DSN(dbPath))
	require.NoError(t, err)
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)
	key := userstore.Key{Issuer: "https://sts.windows.net/" + fixtureTenant + "/", Subject: fixtureTenant + "/" + fixtureObject}
	_, err = st.Provision(context.Background(), key, userstore.Profile{
		Email: "ada@contoso.example", DisplayName: "Ada Byron", Groups: []string{groupEng, "b1d6e1f0-0000-4000-8000-000000000001"},
		Roles: []string{"editor", "operator", "viewer"},
	}, issuedAt.Add(-24*time.Hour))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return dbPath
}

func TestExplainUsage(t *testing.T) {
	resp := filepath.Join(fixtureDir, "response.b64")
	for name, args := range map[string][]string{
		"NoFlags":       {resp},
		"BadNow":        fixtureArgs("-now", "yesterday", resp),
		"BadPreset":     fixtureArgs("-preset", "nonesuch", resp),
		"KeyWithout":    fixtureArgs("-sp-key", resp, resp),
		"MissingConfig": fixtureArgs("-config", "/nonexistent.json", resp),
		"TwoResponses":  fixtureArgs(resp, resp),
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := explain(t, nil, args...)
			assert.Equal(t, 2, code, errOut)
		})
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err == nil {
			all = append(all, b...)
		}
	}
	return sha256.Sum256(all)
}

// TestExplainEncryptedAssertion: -sp-key and -sp-cert decrypt an
// encrypted assertion; without them the trace says the structure check
// cannot decrypt it.
func TestExplainEncryptedAssertion(t *testing.T) {
	spKey, spCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	idp := jittest.New(t, func(o *jittest.Options) { o.Now = func() time.Time { return issuedAt } })
	idp.AddUser(jittest.User{NameID: "p-enc", Attributes: map[string][]string{claims.OIDMail: {"enc@example.com"}}})
	idp.SetMutateResponse(func(resp *etree.Element) {
		require.NoError(t, forge.EncryptAssertion(resp, spCert, forge.Encryption{}))
	})
	f, err := idp.ResponseFor(jittest.Request{ID: "_req-enc", SPEntityID: fixtureSP, ACSURL: fixtureACS}, "p-enc")
	require.NoError(t, err)

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	der, err := x509.MarshalPKCS8PrivateKey(spKey)
	require.NoError(t, err)
	keyFile := write("sp.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	certFile := write("sp.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: spCert.Raw}))
	args := []string{"-idp-metadata", write("idp.xml", idp.Metadata()), "-sp-entity-id", fixtureSP, "-acs-url", fixtureACS,
		"-now", issuedAt.Add(10 * time.Second).Format(time.RFC3339)}
	resp := write("response.b64", []byte(f.SAMLResponse))

	code, out, errOut := explain(t, nil, append(args, "-sp-key", keyFile, "-sp-cert", certFile, resp)...)
	require.Equal(t, 0, code, errOut+out)
	assert.Contains(t, out, "subject: p-enc")
	assert.Contains(t, out, "Decision:\n  create")

	code, out, _ = explain(t, nil, append(args, resp)...)
	require.Equal(t, 1, code, out)
	assert.Contains(t, out, "FAIL structure")
}

func TestAttributeLabel(t *testing.T) {
	for want, a := range map[string]claims.Attribute{
		"urn:oid:0.9.2342.19200300.100.1.3 (mail)":        {Name: claims.OIDMail},
		"urn:oid:0.9.2342.19200300.100.1.3 (mail, email)": {Name: claims.OIDMail, FriendlyName: "email"},
		"urn:oid:2.5.4.42 (givenName)":                    {Name: claims.OIDGivenName, FriendlyName: "givenName"},
		claims.ClaimEntraTenantID:                         {Name: claims.ClaimEntraTenantID},
		"urn:oid:9.9.9 (custom)":                          {Name: "urn:oid:9.9.9", FriendlyName: "custom"},
		"urn:oid:9.9.9":                                   {Name: "urn:oid:9.9.9"},
	} {
		assert.Equal(t, want, attributeLabel(a))
	}
}
