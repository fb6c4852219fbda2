package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// cli runs samljit with args and returns its exit status and output.
func cli(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// appDB returns the path of a SQLite database an application has created,
// and the store on it, for the test's own reads.
func appDB(t *testing.T) (string, *sqlitestore.Store) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite3", sqlitestore.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlitestore.Open(t.Context(), db, sqlitestore.Options{})
	require.NoError(t, err)
	return path, st
}

// TestConnectionsLifecycle drives every subcommand on a SQLite database:
// add (metadata by URL, fetched and checked), list, show, disable, enable
// and remove, each checked in the store.
func TestConnectionsLifecycle(t *testing.T) {
	ctx := t.Context()
	path, st := appDB(t)
	idp := jittest.New(t)

	code, out, errOut := cli("connections", "add", "-db", path, "-name", "contoso", "-idp-metadata", idp.MetadataURL(),
		"-preset", "entra", "-domain", "Contoso.Example", "-domain", "contoso.test")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Stored connection contoso (enabled), trusting the IdP "+idp.EntityID())
	assert.Contains(t, out, "/saml/contoso/metadata")
	c, err := st.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.Equal(t, idp.MetadataURL(), c.IDPMetadataURL)
	assert.Empty(t, c.IDPMetadata)
	assert.Equal(t, "entra", c.Preset)
	assert.True(t, c.Enabled)
	assert.Equal(t, []userstore.Domain{{Name: "contoso.example", Verified: true}, {Name: "contoso.test", Verified: true}}, c.Domains,
		"domains given by the operator are verified, in lower case")

	code, out, errOut = cli("connections", "list", "-db", path)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, regexp.MustCompile(`(?m)^contoso\s+enabled\s+entra\s+contoso\.example, contoso\.test\s+`+regexp.QuoteMeta(idp.MetadataURL())+`$`), out)

	code, out, errOut = cli("connections", "show", "-db", path, "-name", "contoso")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "IdP entity ID: "+idp.EntityID())
	assert.Contains(t, out, "Signing certificate: ")
	assert.Contains(t, out, "State:         enabled")

	code, _, errOut = cli("connections", "add", "-db", path, "-name", "contoso", "-idp-metadata", idp.MetadataURL())
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `connection "contoso" exists`)

	other := jittest.New(t)
	code, _, errOut = cli("connections", "add", "-db", path, "-name", "globex", "-idp-metadata", other.MetadataURL(), "-domain", "contoso.test")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "domain claimed by another connection")
	_, err = st.GetConnection(ctx, "globex")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound, "nothing stored")

	code, out, errOut = cli("connections", "disable", "-db", path, "-name", "contoso")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Disabled connection contoso")
	c, err = st.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.False(t, c.Enabled)
	_, out, _ = cli("connections", "list", "-db", path)
	assert.Regexp(t, `(?m)^contoso\s+disabled\s`, out)

	code, _, errOut = cli("connections", "enable", "-db", path, "-name", "contoso")
	require.Equal(t, 0, code, errOut)
	c, err = st.GetConnection(ctx, "contoso")
	require.NoError(t, err)
	assert.True(t, c.Enabled)

	code, out, errOut = cli("connections", "remove", "-db", path, "-name", "contoso")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Removed connection contoso")
	_, err = st.GetConnection(ctx, "contoso")
	require.ErrorIs(t, err, userstore.ErrConnectionNotFound)
	_, out, _ = cli("connections", "list", "-db", path)
	assert.Equal(t, "No stored connections.\n", out)
	code, _, errOut = cli("connections", "remove", "-db", path, "-name", "contoso")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "connection not found")
	code, _, _ = cli("connections", "enable", "-db", path, "-name", "contoso")
	assert.Equal(t, 1, code)

	// A domain freed by the removal can be claimed.
	code, _, errOut = cli("connections", "add", "-db", path, "-name", "globex", "-idp-metadata", other.MetadataURL(), "-domain", "contoso.test", "-disabled")
	require.Equal(t, 0, code, errOut)
	c, err = st.GetConnection(ctx, "globex")
	require.NoError(t, err)
	assert.False(t, c.Enabled, "-disabled")
}

// TestConnectionsAddFromFile stores the metadata document a file holds.
func TestConnectionsAddFromFile(t *testing.T) {
	path, st := appDB(t)
	idp := jittest.New(t)
	file := filepath.Join(t.TempDir(), "idp.xml")
	require.NoError(t, os.WriteFile(file, idp.Metadata(), 0o600))
	code, _, errOut := cli("connections", "add", "-db", path, "-name", "acme", "-idp-metadata", file, "-preset", "okta")
	require.Equal(t, 0, code, errOut)
	c, err := st.GetConnection(t.Context(), "acme")
	require.NoError(t, err)
	assert.Equal(t, idp.Metadata(), c.IDPMetadata)
	assert.Empty(t, c.IDPMetadataURL)
}

// TestConnectionsAddRefusesBadMetadata: metadata that the middleware
// could not serve is refused with its reason, and nothing is stored.
func TestConnectionsAddRefusesBadMetadata(t *testing.T) {
	path, st := appDB(t)
	idp := jittest.New(t)
	noKey := regexp.MustCompile(`(?s)<(md:)?KeyDescriptor.*</(md:)?KeyDescriptor>`).ReplaceAll(idp.Metadata(), nil)
	require.NotEqual(t, idp.Metadata(), noKey, "the fixture removed the signing certificate")
	dir := t.TempDir()
	for _, tc := range []struct {
		name, doc, preset, reason string
	}{
		{"NotXML", "this is not metadata", "generic", "metadata"},
		{"NoSigningCertificate", string(noKey), "generic", "signing certificate"},
		{"UnknownPreset", string(idp.Metadata()), "shibboleth", "shibboleth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name+".xml")
			require.NoError(t, os.WriteFile(file, []byte(tc.doc), 0o600))
			code, _, errOut := cli("connections", "add", "-db", path, "-name", "bad", "-idp-metadata", file, "-preset", tc.preset)
			assert.Equal(t, 1, code)
			assert.Contains(t, errOut, "refused: ")
			assert.Contains(t, errOut, tc.reason)
			_, err := st.GetConnection(t.Context(), "bad")
			require.ErrorIs(t, err, userstore.ErrConnectionNotFound)
		})
	}
}

// TestConnectionsUsage: missing flags are usage errors (status 2); a
// database file that does not exist is refused, not created.
func TestConnectionsUsage(t *testing.T) {
	path, _ := appDB(t)
	for _, args := range [][]string{
		{"connections"},
		{"connections", "frobnicate", "-db", path},
		{"connections", "list"},
		{"connections", "show", "-db", path},
		{"connections", "add", "-db", path, "-name", "acme"},
		{"connections", "remove", "-db", path, "-name", "acme", "extra"},
	} {
		code, _, _ := cli(args...)
		assert.Equal(t, 2, code, "%q", args)
	}
	code, _, _ := cli("connections", "add", "-h")
	assert.Equal(t, 0, code)
	missing := filepath.Join(t.TempDir(), "typo.db")
	code, _, errOut := cli("connections", "list", "-db", missing)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no database at")
	assert.NoFileExists(t, missing)
}

// TestConnectionsPostgreSQL: -db takes a postgres:// URL.
func TestConnectionsPostgreSQL(t *testing.T) {
	dsn := os.Getenv("SAMLJIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		testenv.Need(t, "SAMLJIT_TEST_POSTGRES_DSN is not set", testenv.PostgresHowTo)
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	admin, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	defer admin.Close()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "samljit_test_" + hex.EncodeToString(b[:])
	_, err = admin.ExecContext(t.Context(), `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	idp := jittest.New(t)
	code, _, errOut := cli("connections", "add", "-db", u.String(), "-name", "contoso", "-idp-metadata", idp.MetadataURL(), "-domain", "contoso.example")
	require.Equal(t, 0, code, errOut)
	db, err := sql.Open("pgx", u.String())
	require.NoError(t, err)
	defer db.Close()
	st, err := pgstore.Open(t.Context(), db, pgstore.Options{})
	require.NoError(t, err)
	c, err := st.GetConnection(t.Context(), "contoso")
	require.NoError(t, err)
	assert.Equal(t, []string{"contoso.example"}, c.VerifiedDomains())
	code, out, errOut := cli("connections", "list", "-db", u.String())
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(strings.Split(out, "\n")[1], "contoso "), out)
	code, _, errOut = cli("connections", "remove", "-db", u.String(), "-name", "contoso")
	require.Equal(t, 0, code, errOut)
}
