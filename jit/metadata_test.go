package jit_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// spMetadataBytes fetches the SP metadata of connection name straight
// from the middleware.
func (h *harness) spMetadataBytes(t testing.TB, name string) []byte {
	t.Helper()
	u, ok := h.mw.MetadataURL(name)
	require.True(t, ok, "connection %q", name)
	rec := httptest.NewRecorder()
	h.mw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.Bytes()
}

// spMetadata fetches the SP metadata of connection name and decodes it
// with crewjam's saml.EntityDescriptor, as an IdP built on crewjam/saml
// imports it (it refuses, among others, endpoints without a location).
func (h *harness) spMetadata(t testing.TB, name string) *saml.EntityDescriptor {
	t.Helper()
	var md saml.EntityDescriptor
	require.NoError(t, xml.Unmarshal(h.spMetadataBytes(t, name), &md))
	return &md
}

// spCertificate is the certificate the SP publishes for encryption in the
// metadata of its first connection: what an IdP encrypts assertions to.
func (h *harness) spCertificate(t testing.TB) *x509.Certificate {
	t.Helper()
	ed := h.spMetadata(t, h.mw.Connections()[0])
	require.Len(t, ed.SPSSODescriptors, 1)
	for _, kd := range ed.SPSSODescriptors[0].KeyDescriptors {
		if kd.Use != "encryption" && kd.Use != "" {
			continue
		}
		require.NotEmpty(t, kd.KeyInfo.X509Data.X509Certificates)
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(kd.KeyInfo.X509Data.X509Certificates[0].Data))
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert
	}
	require.FailNow(t, "the SP metadata has no encryption KeyDescriptor")
	return nil
}

// TestSPMetadataServed fetches each connection's SP metadata over HTTP, as
// the IdP's administrator does, and checks what the IdP will act on: the
// entity ID (the audience), where and how to post the response, the key to
// encrypt to, the NameID format to send, and that it agrees with
// Middleware.MetadataURL and with where the middleware really accepts
// responses.
func TestSPMetadataServed(t *testing.T) {
	_, spCert := spKeyPair()
	spCertB64 := base64.StdEncoding.EncodeToString(spCert.Raw)
	check := func(t *testing.T, h *harness, name, base string) *saml.EntityDescriptor {
		t.Helper()
		mdURL := h.app.URL + base + "/metadata"
		acsURL := h.app.URL + base + "/acs"
		got, ok := h.mw.MetadataURL(name)
		require.True(t, ok)
		assert.Equal(t, mdURL, got, "MetadataURL names the document served")

		resp, err := h.client().Get(mdURL)
		require.NoError(t, err)
		body := readBody(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, "application/samlmetadata+xml", resp.Header.Get("Content-Type"))
		var ed saml.EntityDescriptor
		require.NoError(t, xml.Unmarshal([]byte(body), &ed), body)

		assert.Equal(t, mdURL, ed.EntityID, "the default entity ID is the metadata URL")
		require.Len(t, ed.SPSSODescriptors, 1)
		sp := ed.SPSSODescriptors[0]
		var acs []string
		for _, e := range sp.AssertionConsumerServices {
			acs = append(acs, e.Binding+" "+e.Location)
		}
		assert.Equal(t, []string{saml.HTTPPostBinding + " " + acsURL}, acs, "one ACS, HTTP-POST, at this connection's ACS: the only binding it accepts")
		sloURL := strings.TrimSuffix(acsURL, "/acs") + "/slo"
		var slo []string
		for _, e := range sp.SingleLogoutServices {
			slo = append(slo, e.Binding+" "+e.Location+" "+e.ResponseLocation)
		}
		assert.Equal(t, []string{saml.HTTPRedirectBinding + " " + sloURL + " " + sloURL, saml.HTTPPostBinding + " " + sloURL + " " + sloURL}, slo,
			"the connection's Single Logout endpoint, both bindings")
		var certs []string
		for _, kd := range sp.KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				certs = append(certs, strings.Join(strings.Fields(c.Data), ""))
			}
		}
		assert.Contains(t, certs, spCertB64, "the SP certificate is published in a KeyDescriptor")
		assert.Equal(t, spCert.Raw, h.spCertificate(t).Raw, "and it is the encryption key")
		var formats []string
		for _, f := range sp.NameIDFormats {
			formats = append(formats, string(f))
		}
		assert.Contains(t, formats, string(saml.PersistentNameIDFormat))
		require.NotNil(t, sp.WantAssertionsSigned)
		assert.True(t, *sp.WantAssertionsSigned)

		// The metadata's ACS is where the IdP is told to post, and where
		// the middleware accepts the response.
		user := "p-md-" + name
		h.idp(name).AddUser(person(user, user+"@example.com", "M", "D"))
		c := h.client()
		f := h.respond(c, name, user)
		assert.Equal(t, acsURL, f.ACS)
		resp, body = h.post(c, f)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			req, err := http.NewRequest(method, mdURL, strings.NewReader("x=1"))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := h.client().Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, method)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), method)
		}
		resp, err = h.client().Head(mdURL)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "HEAD")
		return &ed
	}

	t.Run("one unnamed connection", func(t *testing.T) {
		h := newHarness(t, harnessConfig{})
		check(t, h, "", jit.DefaultPathPrefix)
		_, ok := h.mw.MetadataURL("acme")
		assert.False(t, ok, "no such connection")
	})

	t.Run("two named connections", func(t *testing.T) {
		h := newHarness(t, harnessConfig{connections: []string{"acme", "globex"}})
		a := check(t, h, "acme", "/saml/acme")
		g := check(t, h, "globex", "/saml/globex")
		assert.NotEqual(t, a.EntityID, g.EntityID, "each connection is its own SP towards its IdP")
		_, ok := h.mw.MetadataURL("")
		assert.False(t, ok, "no unnamed connection among named ones")
		resp, err := h.client().Get(h.app.URL + "/saml/metadata")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	})

	t.Run("configured entity ID and NameID format, injected clock", func(t *testing.T) {
		const entityID = "urn:example:sp"
		now := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
		h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
			o.Connections[0].EntityID = entityID
			o.Connections[0].NameIDFormat = saml.UnspecifiedNameIDFormat
			o.Now = func() time.Time { return now }
		}})
		ed := h.spMetadata(t, "")
		assert.Equal(t, entityID, ed.EntityID)
		assert.True(t, now.Add(saml.DefaultValidDuration).Equal(ed.ValidUntil), "valid until %s by Options.Now", ed.ValidUntil)
		require.Len(t, ed.SPSSODescriptors, 1)
		assert.Equal(t, []saml.NameIDFormat{saml.UnspecifiedNameIDFormat}, ed.SPSSODescriptors[0].NameIDFormats)
		got, ok := h.mw.MetadataURL("")
		require.True(t, ok)
		assert.Equal(t, h.app.URL+"/saml/metadata", got, "MetadataURL is where the document is, whatever the entity ID")
	})
}
