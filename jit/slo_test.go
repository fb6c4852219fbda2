package jit_test

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
)

// SAML Single Logout through the jittest IdP: real signatures both ways,
// real HTTP, a real SQLite store.

const (
	statusRequester        = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	statusUnknownPrincipal = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
)

// sloHarness is a harness whose IdPs list a SingleLogoutService and know
// the SP of their connection by its metadata.
func sloHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	idpOpts := cfg.idpOptions
	cfg.idpOptions = func(o *jittest.Options) {
		o.SingleLogout = true
		if idpOpts != nil {
			idpOpts(o)
		}
	}
	h := newHarness(t, cfg)
	for _, name := range h.mw.Connections() {
		registerSP(t, h, name, h.idp(name))
	}
	return h
}

// registerSP gives idp the SP metadata of connection name.
func registerSP(t testing.TB, h *harness, name string, idp *jittest.IdP) {
	t.Helper()
	mdURL, ok := h.mw.MetadataURL(name)
	require.True(t, ok)
	resp, err := h.client().Get(mdURL)
	require.NoError(t, err)
	require.NoError(t, idp.AddServiceProvider([]byte(readBody(t, resp))))
}

// spIDOf is the SP entity ID of connection name (its metadata URL).
func spIDOf(t testing.TB, h *harness, name string) string {
	u, ok := h.mw.MetadataURL(name)
	require.True(t, ok)
	return u
}

// sloPath is the Single Logout endpoint of connection name.
func sloPath(name string) string {
	if name == "" {
		return "/saml/slo"
	}
	return "/saml/" + name + "/slo"
}

var (
	formAction  = regexp.MustCompile(`(?is)<form[^>]*\baction="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`(?is)<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// hop takes one step of a browser's journey from resp, whose body it
// reads: it follows a redirect or submits an auto-posting SAML form. It
// returns nil when resp is neither.
func hop(t *testing.T, c *http.Client, resp *http.Response) (*http.Response, string) {
	t.Helper()
	body := readBody(t, resp)
	var req *http.Request
	var err error
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc, lerr := resp.Request.URL.Parse(resp.Header.Get("Location"))
		require.NoError(t, lerr)
		req, err = http.NewRequest(http.MethodGet, loc.String(), nil)
	case resp.StatusCode == http.StatusOK && formAction.MatchString(body) && strings.Contains(body, `name="SAML`):
		action, aerr := resp.Request.URL.Parse(html.UnescapeString(formAction.FindStringSubmatch(body)[1]))
		require.NoError(t, aerr)
		req, err = http.NewRequest(http.MethodPost, action.String(), strings.NewReader(formValues(body).Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host)
	default:
		return nil, body
	}
	require.NoError(t, err)
	next, err := c.Do(req)
	require.NoError(t, err)
	return next, body
}

// formValues are the hidden inputs of an auto-posting form.
func formValues(page string) url.Values {
	vals := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		vals.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return vals
}

// follow continues a browser's journey from resp until an answer that is
// neither a redirect nor an auto-posting SAML form, which it returns with
// its body.
func follow(t *testing.T, c *http.Client, resp *http.Response) (*http.Response, string) {
	t.Helper()
	for range 10 {
		next, body := hop(t, c, resp)
		if next == nil {
			return resp, body
		}
		resp = next
	}
	t.Fatal("more than 10 hops")
	return nil, ""
}

// startLogout posts the logout form of the app's own page, leaving the
// answer's body unread.
func startLogout(t *testing.T, h *harness, c *http.Client) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.app.URL+"/saml/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", h.app.URL)
	resp, err := c.Do(req)
	require.NoError(t, err)
	return resp
}

// idpSessions counts the test IdP's live sessions of nameID.
func idpSessions(h *harness, name, nameID string) int { return len(h.idp(name).Sessions(nameID)) }

// TestSPInitiatedSingleLogout: the logout button ends the local session,
// sends the IdP a signed LogoutRequest with the session's NameID and
// SessionIndex, and the IdP's signed LogoutResponse lands the person on
// the signed-out page, with the IdP's session ended too; with either
// binding the IdP offers.
func TestSPInitiatedSingleLogout(t *testing.T) {
	for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		t.Run(binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
			h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) {
				o.AfterLogoutPath = "/signed-out"
				if binding == saml.HTTPPostBinding {
					o.Connections[0].IDPMetadata = onlySLOBinding(t, o.Connections[0].IDPMetadata, saml.HTTPPostBinding)
				}
			}})
			h.idp().AddUser(person("p-slo", "slo@example.com", "S", "Lo"))
			c := signedIn(t, h, "p-slo")
			stolen := copyBrowser(h, c)
			other := signedIn(t, h, "p-slo") // another device: SP-initiated SLO ends this session only
			require.Equal(t, 2, idpSessions(h, "", "p-slo"))

			resp := startLogout(t, h, c)
			if binding == saml.HTTPRedirectBinding {
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				loc := resp.Header.Get("Location")
				require.True(t, strings.HasPrefix(loc, h.idp().SLOURL()+"?SAMLRequest="), loc)
				assert.Contains(t, loc, "&SigAlg="+url.QueryEscape("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"))
				assert.Contains(t, loc, "&Signature=")
			} else {
				require.Equal(t, http.StatusOK, resp.StatusCode)
				csp := resp.Header.Get("Content-Security-Policy")
				assert.Contains(t, csp, "script-src 'nonce-")
				assert.Contains(t, csp, "form-action "+h.idp().URL()+";", "the form may go to the IdP only")
			}
			assert.Equal(t, http.StatusUnauthorized, status(h, c), "the local session ends before the IdP is asked")
			assert.Equal(t, http.StatusUnauthorized, status(h, stolen))

			final, body := follow(t, c, resp)
			assert.Equal(t, http.StatusOK, final.StatusCode, body)
			assert.Equal(t, "/signed-out", final.Request.URL.Path, "landed on the signed-out page")
			assert.Equal(t, 1, idpSessions(h, "", "p-slo"), "the IdP ended the session it was asked to")
			assert.Equal(t, http.StatusOK, status(h, other), "the other device's session is another SessionIndex")

			// A second logout finds no session: local, landing at once.
			resp = logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
			assert.Equal(t, "/signed-out", resp.Header.Get("Location"))
			assert.Contains(t, h.logs.String(), `"msg":"single logout confirmed"`)
		})
	}
}

// onlySLOBinding keeps only binding's SingleLogoutService in IdP metadata.
func onlySLOBinding(t *testing.T, md []byte, binding string) []byte {
	t.Helper()
	re := regexp.MustCompile(`\s*<md:SingleLogoutService Binding="([^"]*)" Location="[^"]*"/>`)
	out := re.ReplaceAllFunc(md, func(m []byte) []byte {
		if strings.Contains(string(m), `"`+binding+`"`) {
			return m
		}
		return nil
	})
	require.Contains(t, string(out), binding)
	return out
}

// TestLogoutWithoutIdPSLO: an IdP whose metadata lists no
// SingleLogoutService gets a local logout, as before.
func TestLogoutWithoutIdPSLO(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-local", "local@example.com", "Lo", "Cal"))
	c := signedIn(t, h, "p-local")
	resp := logout(t, h, c, http.MethodPost, map[string]string{"Origin": h.app.URL})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/", resp.Header.Get("Location"))
	assert.Equal(t, http.StatusUnauthorized, status(h, c))
	assert.NotContains(t, h.logs.String(), "single logout started")
}

// TestLogoutResponseMustAnswerThisBrowsersRequest: the IdP's answer to
// one logout cannot complete another (InResponseTo: with HTTP-POST the
// RelayState is outside the signature, so it can be swapped), a tampered
// one is refused (signature), and one this browser never asked for is
// refused.
func TestLogoutResponseMustAnswerThisBrowsersRequest(t *testing.T) {
	h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Connections[0].IDPMetadata = onlySLOBinding(t, o.Connections[0].IDPMetadata, saml.HTTPPostBinding)
	}})
	h.idp().AddUser(person("p-lr", "lr@example.com", "L", "R"))
	// answer runs a logout of a new session of browser c up to the IdP's
	// answer, which it returns undelivered.
	answer := func(c *http.Client) url.Values {
		resp := startLogout(t, h, c)
		toIdP, _ := hop(t, c, resp)
		require.Equal(t, http.StatusOK, toIdP.StatusCode)
		page := readBody(t, toIdP)
		vals := formValues(page)
		require.NotEmpty(t, vals.Get("SAMLResponse"), page)
		return vals
	}
	deliver := func(c *http.Client, vals url.Values) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, h.app.URL+sloPath(""), strings.NewReader(vals.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		require.NoError(t, err)
		return resp, readBody(t, resp)
	}
	c1 := signedIn(t, h, "p-lr")
	answer1 := answer(c1)
	c2 := signedIn(t, h, "p-lr")
	answer2 := answer(c2)

	mixed := url.Values{"SAMLResponse": {answer1.Get("SAMLResponse")}, "RelayState": {answer2.Get("RelayState")}}
	resp, body := deliver(c2, mixed)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another request's answer: refused (%s)", body)
	assert.Contains(t, h.logs.String(), "InResponseTo", "the log says why")

	raw, err := base64.StdEncoding.DecodeString(answer2.Get("SAMLResponse"))
	require.NoError(t, err)
	forged := strings.Replace(string(raw), saml.StatusSuccess, saml.StatusSuccess+" ", 1)
	require.NotEqual(t, string(raw), forged)
	resp, _ = deliver(c2, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte(forged))}, "RelayState": {answer2.Get("RelayState")}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a changed answer fails its signature")

	resp, _ = deliver(h.client(), answer1)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a browser that sent no LogoutRequest")

	for _, tc := range []struct {
		c    *http.Client
		vals url.Values
	}{{c1, answer1}, {c2, answer2}} {
		resp, body = deliver(tc.c, tc.vals)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "the genuine answer, in the browser that asked, completes: %s", body)
		assert.Equal(t, "/", resp.Header.Get("Location"))
		resp, _ = deliver(tc.c, tc.vals)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "once")
	}
}

// idpLogout makes the IdP of connection name send a LogoutRequest for
// nameID through browser c, and returns the app's answer, followed to the
// IdP, and the request's ID.
func idpLogout(t *testing.T, h *harness, name string, c *http.Client, lr jittest.LogoutRequest) (*http.Response, string, string) {
	t.Helper()
	if lr.SPEntityID == "" {
		lr.SPEntityID = spIDOf(t, h, name)
	}
	msg, err := h.idp(name).LogoutRequestFor(lr)
	require.NoError(t, err)
	resp, err := msg.Send(context.Background(), c)
	require.NoError(t, err)
	final, body := follow(t, c, resp)
	return final, body, msg.ID
}

// TestIdPInitiatedSingleLogout: the IdP's signed LogoutRequest ends every
// session of the person (every device) or only the sessions of the
// SessionIndex it names, and the IdP gets a signed Success.
func TestIdPInitiatedSingleLogout(t *testing.T) {
	for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		t.Run(binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
			h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) {
				if binding == saml.HTTPPostBinding {
					o.Connections[0].IDPMetadata = onlySLOBinding(t, o.Connections[0].IDPMetadata, saml.HTTPPostBinding)
				}
			}})
			h.idp().AddUser(person("p-idp", "idp@example.com", "I", "Dp"))
			h.idp().AddUser(person("p-bystander", "by@example.com", "By", "Stander"))
			a := signedIn(t, h, "p-idp")
			indexA := h.idp().Sessions("p-idp")[0].SessionIndex
			b := signedIn(t, h, "p-idp")
			d := signedIn(t, h, "p-idp")
			bystander := signedIn(t, h, "p-bystander")

			// One session, by its SessionIndex.
			final, body, id := idpLogout(t, h, "", a, jittest.LogoutRequest{NameID: "p-idp", SessionIndex: indexA, Binding: binding})
			require.Equal(t, http.StatusOK, final.StatusCode, body)
			res, ok := h.idp().LogoutResult(id)
			require.True(t, ok, "the IdP received a signed LogoutResponse")
			assert.Equal(t, saml.StatusSuccess, res.Status)
			assert.Equal(t, binding, res.Binding, "answered with the IdP's binding")
			assert.Equal(t, http.StatusUnauthorized, status(h, a))
			assert.Equal(t, http.StatusOK, status(h, b), "another SessionIndex lives on")

			for _, ck := range a.Jar.Cookies(mustURL(h.app.URL)) {
				assert.NotEqual(t, "samljit_session", ck.Name, "the browser that carried the request lost its ended session's cookie")
			}

			// Every session: no SessionIndex, sent through another
			// person's browser, which keeps its own session and cookie.
			final, body, id = idpLogout(t, h, "", bystander, jittest.LogoutRequest{NameID: "p-idp", Binding: binding})
			require.Equal(t, http.StatusOK, final.StatusCode, body)
			res, ok = h.idp().LogoutResult(id)
			require.True(t, ok)
			assert.Equal(t, saml.StatusSuccess, res.Status)
			assert.Equal(t, http.StatusUnauthorized, status(h, b), "every device")
			assert.Equal(t, http.StatusUnauthorized, status(h, d), "every device")
			assert.Equal(t, http.StatusOK, status(h, bystander), "another person is untouched")
			assert.Empty(t, sessionsOf(t, h, "p-idp"))
		})
	}
}

// TestIdPLogoutRequestHostile: forged, replayed, misdirected, expired and
// cross-connection LogoutRequests end nothing; a request naming a person
// with no session here is answered UnknownPrincipal; a cross-site GET
// without a signed message ends nothing.
func TestIdPLogoutRequestHostile(t *testing.T) {
	h := sloHarness(t, harnessConfig{connections: []string{"acme", "globex"}})
	h.idp("acme").AddUser(person("p-victim", "victim@acme.example", "Vic", "Tim"))
	h.idp("globex").AddUser(person("p-g", "g@globex.example", "G", "X"))
	victim := h.client()
	resp, body := h.signIn(victim, "acme", "p-victim")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, http.StatusOK, status(h, victim))
	acmeSP := spIDOf(t, h, "acme")
	attackerKey, attackerCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	// The globex IdP knows acme's SP too, as a rogue tenant's IdP could
	// learn its public metadata.
	registerSP(t, h, "acme", h.idp("globex"))

	now := time.Now()
	for name, tc := range map[string]struct {
		from   *jittest.IdP
		lr     jittest.LogoutRequest
		reason string
	}{
		"unsigned redirect":          {h.idp("acme"), jittest.LogoutRequest{Unsigned: true}, "signature element not present"},
		"unsigned post":              {h.idp("acme"), jittest.LogoutRequest{Unsigned: true, Binding: saml.HTTPPostBinding}, "signature element not present"},
		"signed by another key":      {h.idp("acme"), jittest.LogoutRequest{Key: attackerKey, Certificate: attackerCert}, "verification error"},
		"post signed by another":     {h.idp("acme"), jittest.LogoutRequest{Key: attackerKey, Certificate: attackerCert, Binding: saml.HTTPPostBinding}, "Could not verify certificate against trusted certs"},
		"another connection's IdP":   {h.idp("globex"), jittest.LogoutRequest{}, "verification error"},
		"issuer of acme, globex key": {h.idp("globex"), jittest.LogoutRequest{Issuer: h.idp("acme").EntityID()}, "verification error"},
		"expired NotOnOrAfter":       {h.idp("acme"), jittest.LogoutRequest{NotOnOrAfter: now.Add(-5 * time.Minute)}, "request expired at"},
		"issued long ago":            {h.idp("acme"), jittest.LogoutRequest{IssueInstant: now.Add(-30 * time.Minute)}, "issueInstant expired at"},
		"issued in the future":       {h.idp("acme"), jittest.LogoutRequest{IssueInstant: now.Add(30 * time.Minute)}, "is in the future"},
		"NameID of another SP":       {h.idp("acme"), jittest.LogoutRequest{SPNameQualifier: "https://other-sp.example/"}, "qualified for SP"},
		"wrong destination":          {h.idp("acme"), jittest.LogoutRequest{Destination: h.app.URL + sloPath("globex")}, "does not match SloURL"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.lr.SPEntityID, tc.lr.NameID = acmeSP, "p-victim"
			msg, err := tc.from.LogoutRequestFor(tc.lr)
			require.NoError(t, err)
			before := len(h.logs.String())
			resp, err := msg.Send(context.Background(), h.client())
			require.NoError(t, err)
			body := readBody(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
			assert.Empty(t, resp.Header.Get("Location"), "no LogoutResponse is sent for a refused request")
			assert.Equal(t, http.StatusOK, status(h, victim), "the session lives on")
			_, answered := tc.from.LogoutResult(msg.ID)
			assert.False(t, answered)
			assert.Contains(t, h.logs.String()[before:], tc.reason, "refused for the right reason")
		})
	}

	t.Run("another connection's user", func(t *testing.T) {
		// globex's IdP, at globex's endpoint, names acme's user: the
		// NameID is scoped by the issuer, so no acme session matches.
		_, _, id := idpLogout(t, h, "globex", h.client(), jittest.LogoutRequest{NameID: "p-victim"})
		res, ok := h.idp("globex").LogoutResult(id)
		require.True(t, ok)
		assert.Equal(t, statusRequester, res.Status)
		assert.Equal(t, statusUnknownPrincipal, res.SubStatus)
		assert.Equal(t, http.StatusOK, status(h, victim))
	})

	t.Run("unknown NameID", func(t *testing.T) {
		_, _, id := idpLogout(t, h, "acme", h.client(), jittest.LogoutRequest{NameID: "p-nobody"})
		res, ok := h.idp("acme").LogoutResult(id)
		require.True(t, ok)
		assert.Equal(t, statusRequester, res.Status, "the SP does not recognize the principal")
		assert.Equal(t, statusUnknownPrincipal, res.SubStatus)
		assert.Equal(t, http.StatusOK, status(h, victim))
	})

	t.Run("cross-site GET without a signed message", func(t *testing.T) {
		for _, q := range []string{"", "?SAMLRequest=", "?SAMLRequest=bm90IHhtbA%3D%3D", "?SAMLResponse=bm90IHhtbA%3D%3D",
			"?SAMLRequest=a&SAMLResponse=b"} {
			req, err := http.NewRequest(http.MethodGet, h.app.URL+sloPath("acme")+q, nil)
			require.NoError(t, err)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			resp, err := victim.Do(req)
			require.NoError(t, err)
			readBody(t, resp)
			assert.GreaterOrEqual(t, resp.StatusCode, 400, q)
			assert.Equal(t, http.StatusOK, status(h, victim), "%q ended nothing", q)
		}
		resp, err := victim.Head(h.app.URL + sloPath("acme"))
		require.NoError(t, err)
		readBody(t, resp)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})

	t.Run("replayed", func(t *testing.T) {
		msg, err := h.idp("acme").LogoutRequestFor(jittest.LogoutRequest{SPEntityID: acmeSP, NameID: "p-victim"})
		require.NoError(t, err)
		resp, err := msg.Send(context.Background(), h.client())
		require.NoError(t, err)
		readBody(t, resp)
		require.Equal(t, http.StatusFound, resp.StatusCode, "the first delivery is answered")
		require.Equal(t, http.StatusUnauthorized, status(h, victim))

		again := h.client()
		resp, body := h.signIn(again, "acme", "p-victim")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		resp, err = msg.Send(context.Background(), h.client())
		require.NoError(t, err)
		readBody(t, resp)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the same request again is refused")
		assert.Equal(t, http.StatusOK, status(h, again), "and ends nothing")
		assert.Contains(t, h.logs.String(), "replayed")
	})
}

// FuzzSLOEndpoint posts arbitrary LogoutRequest XML to the SLO endpoint,
// with the HTTP-POST binding. No panic may escape, nothing but a signed
// LogoutRequest is answered with a redirect or a form for the IdP, and a
// session the seeds do not name is never ended: a mutation cannot keep
// the IdP's signature. The seeds are a signed request (accepted once,
// then a replay), an unsigned one, one signed by another key, and junk.
func FuzzSLOEndpoint(f *testing.F) {
	h := sloHarness(f, harnessConfig{store: newMem()})
	h.idp().AddUser(person("p-fuzz-victim", "v@example.com", "V", "Ic"))
	h.idp().AddUser(person("p-fuzz-other", "o@example.com", "O", "Ther"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-fuzz-victim")
	require.Equal(f, http.StatusSeeOther, resp.StatusCode, body)
	sp := spIDOf(f, h, "")
	otherKey, otherCert, err := jittest.GenerateKeyPair()
	require.NoError(f, err)
	for _, lr := range []jittest.LogoutRequest{
		{}, {Unsigned: true}, {Key: otherKey, Certificate: otherCert}, {SessionIndex: "s-1"},
	} {
		lr.SPEntityID, lr.NameID, lr.Binding = sp, "p-fuzz-other", saml.HTTPPostBinding
		msg, err := h.idp().LogoutRequestFor(lr)
		require.NoError(f, err)
		raw, err := base64.StdEncoding.DecodeString(msg.Form.Get("SAMLRequest"))
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Add([]byte("<samlp:LogoutRequest/>"))
	f.Add([]byte("not xml"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		form := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}}
		req := httptest.NewRequest(http.MethodPost, h.app.URL+"/saml/slo", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.mw.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusFound, http.StatusOK:
			// Only a signed request is answered, at the IdP.
			assert.True(t, strings.HasPrefix(rec.Header().Get("Location"), h.idp().SLOURL()) ||
				strings.Contains(rec.Body.String(), `action="`+h.idp().SLOURL()), "answered elsewhere: %d %s", rec.Code, rec.Header())
		default:
			assert.GreaterOrEqual(t, rec.Code, 400)
		}
		me, err := http.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
		require.NoError(t, err)
		me.Header.Set("Accept", "application/json")
		r, err := c.Do(me)
		require.NoError(t, err)
		_ = r.Body.Close()
		require.Equal(t, http.StatusOK, r.StatusCode, "the victim's session lives on")
	})
}

// TestEndOneSession: EndSession signs out one device of a person, and
// cannot end another person's session whatever ID it is given.
func TestEndOneSession(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-dev", "dev@example.com", "De", "Vice"))
	h.idp().AddUser(person("p-else", "else@example.com", "El", "Se"))
	laptop, phone := signedIn(t, h, "p-dev"), signedIn(t, h, "p-dev")
	someoneElse := signedIn(t, h, "p-else")
	ctx := context.Background()
	key := userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-dev"}
	list := sessionsOf(t, h, "p-dev")
	require.Len(t, list, 2)
	others := sessionsOf(t, h, "p-else")
	require.Len(t, others, 1)

	err := h.mw.EndSession(ctx, key, others[0].ID)
	assert.ErrorIs(t, err, userstore.ErrNotFound, "another person's session is not this person's to end")
	assert.Equal(t, http.StatusOK, status(h, someoneElse))

	require.NoError(t, h.mw.EndSession(ctx, key, list[0].ID))
	assert.ElementsMatch(t, []int{http.StatusOK, http.StatusUnauthorized}, []int{status(h, laptop), status(h, phone)},
		"one device signed out, the other not")
	assert.Len(t, sessionsOf(t, h, "p-dev"), 1)
	assert.ErrorIs(t, h.mw.EndSession(ctx, key, list[0].ID), userstore.ErrNotFound, "once")
	assert.Contains(t, h.logs.String(), `"msg":"session ended","reason":"end session"`)
}

// TestLogoutRequestJudgedWithOurSkew: NotOnOrAfter is judged with
// Options.ClockSkew, not only crewjam's fixed 180 s: with a 10 s skew, a
// request that expired a minute ago is refused, though crewjam alone
// would take it.
func TestLogoutRequestJudgedWithOurSkew(t *testing.T) {
	h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) { o.ClockSkew = 10 * time.Second }})
	h.idp().AddUser(person("p-skew", "skew@example.com", "S", "Kew"))
	c := signedIn(t, h, "p-skew")
	msg, err := h.idp().LogoutRequestFor(jittest.LogoutRequest{SPEntityID: spIDOf(t, h, ""), NameID: "p-skew",
		NotOnOrAfter: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	resp, err := msg.Send(context.Background(), h.client())
	require.NoError(t, err)
	readBody(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, h.logs.String(), "LogoutRequest expired at")
	assert.Equal(t, http.StatusOK, status(h, c))
}

// TestAfterLogoutPathMustBeLocal: the signed-out page is a local path, so
// that a logout can never be turned into an open redirect.
func TestAfterLogoutPathMustBeLocal(t *testing.T) {
	idp := jittest.New(t)
	key, cert := spKeyPair()
	for _, p := range []string{"https://evil.example/", "//evil.example", "javascript:alert(1)"} {
		_, err := jit.New(context.Background(), jit.Options{RootURL: "https://app.example", Key: key, Certificate: cert, Store: newMem(),
			SessionKeys: [][]byte{make32()}, AfterLogoutPath: p, Connections: []jit.Connection{{IDPMetadata: idp.Metadata()}}})
		assert.ErrorContains(t, err, "AfterLogoutPath", p)
	}
}

// TestSessionFromContext: behind RequireUser the handler finds the
// request's own session record, one of the person's listed sessions, so
// that a sessions page can mark "this device" and sign the others out.
func TestSessionFromContext(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-ctx", "ctx@example.com", "C", "Tx"))
	laptop, phone := signedIn(t, h, "p-ctx"), signedIn(t, h, "p-ctx")
	var got []userstore.Session
	handler := h.mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := jit.SessionFromContext(r.Context())
		require.True(t, ok)
		got = append(got, s)
	}))
	for _, c := range []*http.Client{laptop, phone} {
		req := httptest.NewRequest(http.MethodGet, h.app.URL+"/sessions", nil)
		for _, ck := range c.Jar.Cookies(mustURL(h.app.URL)) {
			req.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		require.Equal(t, http.StatusOK, w.Code)
	}
	require.Len(t, got, 2)
	assert.NotEqual(t, got[0].ID, got[1].ID, "each device its own session")
	listed := sessionsOf(t, h, "p-ctx")
	var ids []string
	for _, s := range listed {
		ids = append(ids, s.ID)
	}
	assert.ElementsMatch(t, ids, []string{got[0].ID, got[1].ID})
	_, ok := jit.SessionFromContext(context.Background())
	assert.False(t, ok)

	// "Sign out my other devices", from the laptop.
	require.NoError(t, h.mw.EndSession(context.Background(), got[1].Key, got[1].ID))
	assert.Equal(t, http.StatusOK, status(h, laptop))
	assert.Equal(t, http.StatusUnauthorized, status(h, phone))
}

// TestSingleLogoutNamedConnections: with several connections, the logout
// goes to the IdP of the session's connection, and the answer to an IdP's
// LogoutRequest goes to its SingleLogoutService's ResponseLocation.
func TestSingleLogoutNamedConnections(t *testing.T) {
	h := sloHarness(t, harnessConfig{connections: []string{"acme", "globex"}, configure: func(o *jit.Options) {
		md := string(o.Connections[1].IDPMetadata)
		re := regexp.MustCompile(`(<md:SingleLogoutService Binding="[^"]*HTTP-Redirect" Location="([^"]*)")`)
		md = re.ReplaceAllString(md, `$1 ResponseLocation="$2?answer=1"`)
		require.Contains(t, md, "ResponseLocation=")
		o.Connections[1].IDPMetadata = []byte(md)
	}})
	h.idp("acme").AddUser(person("p-a", "a@acme.example", "A", "Cme"))
	h.idp("globex").AddUser(person("p-g", "g@globex.example", "G", "Lobex"))
	a := h.client()
	resp, body := h.signIn(a, "acme", "p-a")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	g := h.client()
	resp, body = h.signIn(g, "globex", "p-g")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	resp = startLogout(t, h, g)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), h.idp("globex").SLOURL()+"?"), resp.Header.Get("Location"))
	final, body := follow(t, g, resp)
	assert.Equal(t, http.StatusOK, final.StatusCode, body)
	assert.Empty(t, h.idp("globex").Sessions("p-g"))
	assert.Len(t, h.idp("acme").Sessions("p-a"), 1, "the other connection's IdP is not involved")
	assert.Equal(t, http.StatusOK, status(h, a))

	msg, err := h.idp("globex").LogoutRequestFor(jittest.LogoutRequest{SPEntityID: spIDOf(t, h, "globex"), NameID: "p-g"})
	require.NoError(t, err)
	resp, err = msg.Send(context.Background(), h.client())
	require.NoError(t, err)
	readBody(t, resp)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), h.idp("globex").SLOURL()+"?answer=1&SAMLResponse="),
		"answered at the ResponseLocation: %s", resp.Header.Get("Location"))
}

// expiryRecorder is a replay cache that records the expiry asked of each
// record it keeps.
type expiryRecorder struct {
	userstore.ReplayCache
	mu      sync.Mutex
	expires map[string]time.Time
}

func (r *expiryRecorder) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	r.mu.Lock()
	r.expires[id] = expires
	r.mu.Unlock()
	return r.ReplayCache.ConsumeAssertion(ctx, issuer, id, expires, now)
}

func (r *expiryRecorder) expiryOf(t *testing.T, suffix string) time.Time {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.expires {
		if strings.HasSuffix(id, suffix) {
			return e
		}
	}
	t.Fatalf("no replay record ends in %q", suffix)
	return time.Time{}
}

// TestLogoutReplayRecordLastsUntilNotOnOrAfter: the replay record of an
// IdP's LogoutRequest is kept as long as the request could be accepted:
// until its NotOnOrAfter plus the clock skew when that comes first, else
// until its IssueInstant plus MaxIssueDelay plus the skew.
func TestLogoutReplayRecordLastsUntilNotOnOrAfter(t *testing.T) {
	rec := &expiryRecorder{expires: map[string]time.Time{}}
	h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) {
		rec.ReplayCache = o.Store.(userstore.ReplayCache)
		o.Replay = rec
	}})
	h.idp().AddUser(person("p-replay", "replay@example.com", "Re", "Play"))
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		want     func(issued time.Time) time.Time
	}{
		{"NotOnOrAfter first", time.Minute, func(issued time.Time) time.Time {
			return issued.Add(time.Minute + jit.DefaultClockSkew)
		}},
		{"IssueInstant first", 10 * time.Minute, func(issued time.Time) time.Time {
			return issued.Add(jit.MaxIssueDelay + jit.DefaultClockSkew)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := signedIn(t, h, "p-replay")
			issued := time.Now().UTC().Truncate(time.Second)
			final, body, id := idpLogout(t, h, "", c, jittest.LogoutRequest{NameID: "p-replay",
				IssueInstant: issued, NotOnOrAfter: issued.Add(tc.lifetime)})
			require.Equal(t, http.StatusOK, final.StatusCode, body)
			assert.WithinDuration(t, tc.want(issued), rec.expiryOf(t, id), time.Second)
		})
	}
}

// TestSLOBodyBound: the Single Logout endpoint reads a POST body of up to
// twice MaxResponseBytes plus 4 KiB (a message, base64 and form-encoded,
// with its RelayState), and refuses one byte more, ending nothing.
func TestSLOBodyBound(t *testing.T) {
	const maxBytes = 8 << 10
	const bound = 2*maxBytes + 4096
	h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.MaxResponseBytes = maxBytes
		o.Connections[0].IDPMetadata = onlySLOBinding(t, o.Connections[0].IDPMetadata, saml.HTTPPostBinding)
	}})
	h.idp().AddUser(person("p-bound", "bound@example.com", "Bo", "Und"))
	c := signedIn(t, h, "p-bound")
	post := func(size int) (*http.Response, string) {
		msg, err := h.idp().LogoutRequestFor(jittest.LogoutRequest{SPEntityID: spIDOf(t, h, ""), NameID: "p-bound", Binding: saml.HTTPPostBinding})
		require.NoError(t, err)
		body := msg.Form.Encode() + "&pad="
		require.Less(t, len(body), size)
		body += strings.Repeat("a", size-len(body))
		req, err := http.NewRequest(http.MethodPost, msg.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", msg.Origin)
		resp, err := h.client().Do(req)
		require.NoError(t, err)
		return resp, readBody(t, resp)
	}
	resp, body := post(bound + 1)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Contains(t, h.logs.String(), "cannot parse form")
	assert.Equal(t, http.StatusOK, status(h, c), "a refused message ends nothing")

	resp, body = post(bound)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, http.StatusUnauthorized, status(h, c), "a message at the bound is read and acted on")
}

// TestSLOMessageBound: a SAMLRequest or SAMLResponse of up to twice
// MaxResponseBytes is read (and then judged), one character more is
// refused as too large, whatever it holds.
func TestSLOMessageBound(t *testing.T) {
	const maxBytes = 4 << 10
	h := sloHarness(t, harnessConfig{configure: func(o *jit.Options) { o.MaxResponseBytes = maxBytes }})
	for _, field := range []string{"SAMLRequest", "SAMLResponse"} {
		for size, tooLarge := range map[int]bool{2 * maxBytes: false, 2*maxBytes + 1: true} {
			form := url.Values{field: {strings.Repeat("A", size)}}
			resp, err := h.client().PostForm(h.app.URL+sloPath(""), form)
			require.NoError(t, err)
			body := readBody(t, resp)
			if tooLarge {
				assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s of %d: %s", field, size, body)
			} else {
				assert.NotEqual(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s of %d: %s", field, size, body)
				assert.Less(t, resp.StatusCode, 500, "%s of %d", field, size)
			}
		}
	}
}
