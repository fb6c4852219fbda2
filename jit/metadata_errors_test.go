package jit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestMetadataErrorsSayWhatTheFileIs: a document given as IdP metadata
// that is not that is refused with ErrNotIDPMetadata, saying what it is
// and what was expected.
func TestMetadataErrorsSayWhatTheFileIs(t *testing.T) {
	idp := jittest.New(t)
	// This application's own SP metadata, as a newcomer passes it by
	// mistake.
	h := newHarness(t, harnessConfig{})
	resp, err := http.Get(h.app.URL + "/saml/metadata")
	require.NoError(t, err)
	spMetadata := readBody(t, resp)

	for name, tc := range map[string]struct {
		doc  string
		want []string
	}{
		"Empty":       {"  \n", []string{"the document is empty", "want the IdP's SAML metadata"}},
		"HTML":        {"<!DOCTYPE html><html><body>Sign in</body></html>", []string{"an HTML page", "rather than the metadata URL"}},
		"Certificate": {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", []string{"a PEM certificate", "give the metadata itself"}},
		"JSON":        {`{"issuer":"https://idp.example.com"}`, []string{"JSON", "not XML"}},
		"Binary":      {"\x00\x01PK", []string{"not XML: it starts with"}},
		"SPMetadata":  {spMetadata, []string{"a service provider's metadata", h.app.URL + "/saml/metadata", "SPSSODescriptor", "the connection needs the identity provider's metadata"}},
		"Response":    {`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1"/>`, []string{"a SAML Response, not metadata", "want the IdP's SAML metadata"}},
		"OtherXML":    {`<feed xmlns="http://www.w3.org/2005/Atom"/>`, []string{"another XML document", "{http://www.w3.org/2005/Atom}feed"}},
		"Assertion":   {`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1"/>`, []string{"a SAML Assertion, not metadata"}},
		// The right namespace with another element, and the right
		// element in another namespace, are neither.
		"AssertionNamespace": {`<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">x</saml:Issuer>`, []string{"another XML document", "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"}},
		"AssertionElsewhere": {`<Assertion xmlns="urn:example:other"/>`, []string{"another XML document", "{urn:example:other}Assertion"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := jit.ParseIDPMetadata([]byte(tc.doc))
			require.ErrorIs(t, err, jit.ErrNotIDPMetadata)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err = jit.ParseIDPMetadata(idp.Metadata())
	require.NoError(t, err, "the IdP's own metadata is fine")

	// jit.New says it too, for a connection's metadata given or fetched.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Portal</body></html>"))
	}))
	defer srv.Close()
	key, cert := spKeyPair()
	for _, conn := range []jit.Connection{{IDPMetadata: []byte(spMetadata)}, {IDPMetadataURL: srv.URL + "/metadata"}} {
		_, err := jit.New(context.Background(), jit.Options{RootURL: "http://127.0.0.1:1", Key: key, Certificate: cert,
			Store: newMem(), SessionKeys: [][]byte{make32()}, Connections: []jit.Connection{conn}})
		require.ErrorIs(t, err, jit.ErrNotIDPMetadata)
	}
}

// FuzzParseIDPMetadata: any document is parsed without panicking, and a
// document accepted describes an identity provider.
func FuzzParseIDPMetadata(f *testing.F) {
	idp, err := jittest.NewServer(jittest.Options{})
	require.NoError(f, err)
	defer idp.Close()
	f.Add(idp.Metadata())
	f.Add([]byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="sp"><md:SPSSODescriptor/></md:EntityDescriptor>`))
	f.Add([]byte(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>`))
	f.Add([]byte("<!doctype html><p>x"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----"))
	f.Add([]byte("\xef\xbb\xbf<x/>"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, doc []byte) {
		md, err := jit.ParseIDPMetadata(doc)
		if err == nil {
			require.NotEmpty(t, md.IDPSSODescriptors)
		}
	})
}
