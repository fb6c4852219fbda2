package jittest_test

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

// crewjamSP is a crewjam/saml service provider at an httptest server,
// registered with idp by its metadata, whose SLO endpoint records what
// the IdP sends it.
func crewjamSP(t *testing.T, idp *jittest.IdP) (*saml.ServiceProvider, chan *http.Request) {
	t.Helper()
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	got := make(chan *http.Request, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		got <- r
	}))
	t.Cleanup(srv.Close)
	md := &saml.EntityDescriptor{}
	require.NoError(t, xml.Unmarshal(idp.Metadata(), md))
	base := mustParse(t, srv.URL)
	sp := &saml.ServiceProvider{
		Key: key, Certificate: cert, IDPMetadata: md,
		MetadataURL: *base.JoinPath("metadata"), AcsURL: *base.JoinPath("acs"), SloURL: *base.JoinPath("slo"),
		LogoutBindings:        []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding},
		LogoutSignatureMethod: dsig.RSASHA256SignatureMethod,
	}
	buf, err := xml.Marshal(sp.Metadata())
	require.NoError(t, err)
	require.NoError(t, idp.AddServiceProvider(buf))
	return sp, got
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// noRedirects is a client that shows every hop.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestSPInitiatedLogoutAnsweredForCrewjam: the IdP ends the session a
// signed LogoutRequest names and answers with a LogoutResponse that
// crewjam's service provider accepts; an unsigned request ends nothing.
func TestSPInitiatedLogoutAnsweredForCrewjam(t *testing.T) {
	idp := jittest.New(t, func(o *jittest.Options) { o.SingleLogout = true })
	idp.AddUser(jittest.User{NameID: "alice"})
	sp, got := crewjamSP(t, idp)
	_, err := idp.ResponseFor(jittest.Request{SPEntityID: sp.MetadataURL.String(), ACSURL: sp.AcsURL.String()}, "alice")
	require.NoError(t, err)
	sessions := idp.Sessions("alice")
	require.Len(t, sessions, 1)
	assert.Equal(t, sp.MetadataURL.String(), sessions[0].SPEntityID)

	unsigned := *sp
	unsigned.LogoutSignatureMethod = ""
	u, err := unsigned.MakeRedirectLogoutRequest("alice", "relay")
	require.NoError(t, err)
	resp, err := noRedirects.Get(u.String())
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "an unsigned LogoutRequest is refused")
	require.Len(t, idp.Sessions("alice"), 1, "and ends nothing")

	req, err := sp.MakeLogoutRequest(idp.SLOURL(), "alice", saml.WithSessionIndex(sessions[0].SessionIndex))
	require.NoError(t, err)
	u, err = sp.RedirectLogoutRequestURL(req, "relay")
	require.NoError(t, err)
	resp, err = noRedirects.Get(u.String())
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Empty(t, idp.Sessions("alice"), "the session ended")
	resp, err = http.Get(resp.Header.Get("Location"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	answer := <-got
	lr, err := sp.ParseLogoutResponse(answer, []string{req.ID})
	require.NoError(t, err, "crewjam accepts the signed LogoutResponse")
	assert.Equal(t, saml.StatusSuccess, lr.Status.StatusCode.Value)
	assert.Equal(t, "relay", answer.Form.Get("RelayState"))
}

// TestIdPInitiatedLogoutRequestForCrewjam: a LogoutRequest made by
// LogoutRequestFor validates in crewjam's service provider with either
// binding; its forgeries do not.
func TestIdPInitiatedLogoutRequestForCrewjam(t *testing.T) {
	idp := jittest.New(t)
	sp, got := crewjamSP(t, idp)
	other, otherCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		lr jittest.LogoutRequest
		ok bool
	}{
		"redirect":         {jittest.LogoutRequest{SessionIndex: "s1", RelayState: "r"}, true},
		"post":             {jittest.LogoutRequest{Binding: saml.HTTPPostBinding}, true},
		"unsigned":         {jittest.LogoutRequest{Unsigned: true}, false},
		"another key":      {jittest.LogoutRequest{Key: other, Certificate: otherCert, Binding: saml.HTTPPostBinding}, false},
		"another issuer":   {jittest.LogoutRequest{Issuer: "https://evil.example/"}, false},
		"wrong destintion": {jittest.LogoutRequest{Destination: "https://app.example/slo"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			tc.lr.SPEntityID, tc.lr.NameID = sp.MetadataURL.String(), "alice"
			msg, err := idp.LogoutRequestFor(tc.lr)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(msg.URL, sp.SloURL.String()))
			resp, err := msg.Send(context.Background(), nil)
			require.NoError(t, err)
			_ = resp.Body.Close()
			r := <-got
			req, err := sp.ValidateLogoutRequest(r)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, msg.ID, req.ID)
			assert.Equal(t, "alice", req.NameID.Value)
			assert.Equal(t, tc.lr.RelayState, r.Form.Get("RelayState"))
			if tc.lr.SessionIndex != "" {
				require.NotNil(t, req.SessionIndex)
				assert.Equal(t, tc.lr.SessionIndex, req.SessionIndex.Value)
			}
		})
	}
}
