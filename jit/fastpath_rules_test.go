package jit_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest/forge"
	"github.com/samljit/samljit/userstore"
)

// TestFastPathAudienceIsTheConnectionsEntityID: with Connection.EntityID
// set, the audience the fast path requires is that entity ID, not the SP
// metadata URL: an assertion restricted to the metadata URL is refused,
// by both paths alike (the harness fails the test when they disagree),
// and one restricted to the entity ID signs the person in.
func TestFastPathAudienceIsTheConnectionsEntityID(t *testing.T) {
	const entityID = "urn:example:sp"
	for _, tc := range []struct {
		audience func(h *harness) string
		ok       bool
	}{
		{func(h *harness) string { return spEntityID(h) }, false},
		{func(*harness) string { return entityID }, true},
	} {
		h, before := hostileHarness(t, harnessConfig{configure: func(o *jit.Options) { o.Connections[0].EntityID = entityID }})
		aud := tc.audience(h)
		h.idp().SetMutateAssertion(func(a *saml.Assertion) {
			a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{{Audience: saml.Audience{Value: aud}}}
		})
		c := h.client()
		resp, body := h.signIn(c, "", victim)
		signedInOrRefused(t, h, resp, body, tc.ok, before, "")
	}
}

// signedInOrRefused requires the sign-in that answered resp and body to
// have succeeded when ok, and otherwise to have been refused as an invalid
// response whose reason contains reason, with the store as before.
func signedInOrRefused(t *testing.T, h *harness, resp *http.Response, body string, ok bool, before []userstore.User, reason string) {
	t.Helper()
	if ok {
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		return
	}
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrInvalidResponse)
	assert.ErrorContains(t, h.lastRefusal(), reason)
	assert.Equal(t, before, h.users(), "nobody created or changed")
}

// TestFastPathKeyInfoAndNamespaces holds the fast path to crewjam where
// the signed bytes stay the same but what surrounds them does not. The
// IdP's metadata lists a second signing certificate; the harness fails a
// test when the paths disagree, or when the fast path declines what
// crewjam accepts.
//   - KeyInfo naming the other trusted certificate: crewjam verifies with
//     the certificate KeyInfo names, which did not sign, and refuses. So
//     must the fast path, though a trusted certificate did sign.
//   - KeyInfo without a certificate: crewjam removes it and tries each
//     trusted certificate; the person signs in.
//   - the assertion's namespace declared on the Response only: exclusive
//     canonicalization digests the same bytes, and the fast path must
//     read the namespace from the Response to verify them.
func TestFastPathKeyInfoAndNamespaces(t *testing.T) {
	_, other := spKeyPair()
	const nsSAML = "urn:oasis:names:tc:SAML:2.0:assertion"
	for _, tc := range []struct {
		name string
		edit func(r, assertion, keyInfo *etree.Element)
		ok   bool
	}{
		{"KeyInfo names the other trusted certificate", func(_, _, keyInfo *etree.Element) {
			c := keyInfo.FindElement("./X509Data/X509Certificate")
			c.SetText(base64.StdEncoding.EncodeToString(other.Raw))
		}, false},
		{"KeyInfo without a certificate", func(_, _, keyInfo *etree.Element) {
			for _, c := range keyInfo.ChildElements() {
				keyInfo.RemoveChild(c)
			}
			keyInfo.CreateElement("ds:KeyName").SetText("idp")
		}, true},
		{"namespace declared on the Response only", func(r, assertion, _ *etree.Element) {
			r.CreateAttr("xmlns:saml", nsSAML)
			require.Equal(t, nsSAML, assertion.SelectAttrValue("xmlns:saml", ""))
			assertion.RemoveAttr("xmlns:saml")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, before := hostileHarness(t, harnessConfig{configure: func(o *jit.Options) {
				md := string(o.Connections[0].IDPMetadata)
				require.Equal(t, 1, strings.Count(md, `<md:KeyDescriptor use="signing">`))
				o.Connections[0].IDPMetadata = []byte(strings.Replace(md, `<md:KeyDescriptor use="signing">`,
					`<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>`+
						base64.StdEncoding.EncodeToString(other.Raw)+`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:KeyDescriptor use="signing">`, 1))
			}})
			h.idp().SetMutateResponse(func(r *etree.Element) {
				a := r.FindElement("./Assertion")
				require.NotNil(t, a)
				require.Nil(t, r.FindElement("./Signature"), "only the assertion is signed")
				keyInfo := a.FindElement("./Signature/KeyInfo")
				require.NotNil(t, keyInfo)
				tc.edit(r, a, keyInfo)
			})
			c := h.client()
			resp, body := h.signIn(c, "", victim)
			signedInOrRefused(t, h, resp, body, tc.ok, before, "")
		})
	}
}

// TestFastPathDeclarations: the namespace declarations a response may
// carry where the fast path reads, and those crewjam refuses. An
// assertion in the default namespace, as Entra ID sends it, and a Status
// declaring the xml prefix as the XML namespace, another default
// namespace or even the reserved xmlns prefix (crewjam reads the Status
// with encoding/xml, which lets it be) sign in by the fast path (the
// harness fails a test when it declines what crewjam accepts). The
// Response declaring the xml prefix as another namespace, or the signed
// assertion declaring the xmlns prefix or the xmlns namespace as its
// default, which exclusive canonicalization leaves out of the signed
// bytes, is refused by both paths.
func TestFastPathDeclarations(t *testing.T) {
	const nsSAML = "urn:oasis:names:tc:SAML:2.0:assertion"
	declare := func(path, key, value string) func(*harness, *etree.Element) {
		return func(_ *harness, r *etree.Element) {
			el := r
			if path != "" {
				el = r.FindElement(path)
			}
			require.NotNil(t, el)
			el.CreateAttr(key, value)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(h *harness, r *etree.Element)
		ok   bool
	}{
		{"assertion in the default namespace", func(h *harness, r *etree.Element) {
			a := r.FindElement("./Assertion")
			require.NotNil(t, a)
			if sig := a.FindElement("./Signature"); sig != nil {
				a.RemoveChild(sig)
			}
			var unprefix func(el *etree.Element)
			unprefix = func(el *etree.Element) {
				if el.Space == "saml" {
					el.Space = ""
				}
				for _, c := range el.ChildElements() {
					unprefix(c)
				}
			}
			unprefix(a)
			a.RemoveAttr("xmlns:saml")
			a.CreateAttr("xmlns", nsSAML)
			signed, err := forge.Sign(a, h.idp().Key(), h.idp().Certificate())
			require.NoError(t, err)
			replaceInPlace(a, signed)
		}, true},
		{"Status declares the xml prefix as the XML namespace", declare("./Status", "xmlns:xml", "http://www.w3.org/XML/1998/namespace"), true},
		{"Status declares another default namespace", declare("./Status", "xmlns", "urn:example:other"), true},
		{"Status declares the xmlns prefix", declare("./Status", "xmlns:xmlns", "urn:example:other"), true},
		{"Response declares the xml prefix as another namespace", declare("", "xmlns:xml", "urn:example:other"), false},
		{"assertion declares the xmlns prefix", declare("./Assertion", "xmlns:xmlns", "urn:example:other"), false},
		{"assertion declares the xmlns namespace as its default", declare("./Assertion", "xmlns", "http://www.w3.org/2000/xmlns/"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, before := hostileHarness(t, harnessConfig{})
			h.idp().SetMutateResponse(func(r *etree.Element) { tc.edit(h, r) })
			c := h.client()
			resp, body := h.signIn(c, "", victim)
			signedInOrRefused(t, h, resp, body, tc.ok, before, "namespace")
		})
	}
}

// TestFastPathTakesOptionalElements: a OneTimeUse condition and a
// SubjectLocality, which IdPs may send and crewjam reads, sign in by the
// fast path (the harness fails a test when it declines what crewjam
// accepts).
func TestFastPathTakesOptionalElements(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(a *saml.Assertion)
	}{
		{"OneTimeUse", func(a *saml.Assertion) { a.Conditions.OneTimeUse = &saml.OneTimeUse{} }},
		{"SubjectLocality", func(a *saml.Assertion) {
			a.AuthnStatements[0].SubjectLocality = &saml.SubjectLocality{Address: "192.0.2.7", DNSName: "client.example"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{})
			h.idp().AddUser(person("p-optional", "optional@example.com", "Opt", "Ional"))
			h.idp().SetMutateAssertion(tc.mutate)
			resp, body := h.signIn(h.client(), "", "p-optional")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		})
	}
}

// inScopeMax is the most namespace declarations in scope at any element
// of el's subtree, counting from el's own.
func inScopeMax(el *etree.Element) int {
	n := 0
	for _, at := range el.Attr {
		if at.Space == "xmlns" || at.Space == "" && at.Key == "xmlns" {
			n++
		}
	}
	most := 0
	for _, c := range el.ChildElements() {
		most = max(most, inScopeMax(c))
	}
	return n + most
}

// TestFastPathNamesAndScope holds the fast path to crewjam's round-trip
// validator, which it does not run, on names and namespace declarations
// in the unsigned Response around a signed assertion: up to 64
// declarations in scope, default ones counted, an undeclared default
// namespace and ordinary attributes sign in by the fast path; a 65th
// declaration, a default one, is refused by both paths. A name with an
// empty prefix or local part (etree reads it as an unprefixed name with a
// colon) or a prefix declared empty, crewjam takes, and the fast path
// leaves to it.
func TestFastPathNamesAndScope(t *testing.T) {
	declare := func(r *etree.Element, n int) {
		for i := range n {
			r.CreateAttr(fmt.Sprintf("xmlns:n%d", i), fmt.Sprintf("urn:example:n%d", i))
		}
	}
	status := func(decl string) func(string) string {
		return func(x string) string {
			return strings.Replace(x, "<samlp:Status>", "<samlp:Status "+decl+">", 1)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(r *etree.Element)
		raw  func(string) string
		ok   bool
		// mayDecline: the fast path may leave the response to crewjam.
		mayDecline bool
	}{
		{name: "64 declarations in scope", edit: func(r *etree.Element) {
			declare(r, 64-inScopeMax(r))
			require.Equal(t, 64, inScopeMax(r))
		}, ok: true},
		{name: "64 declarations in scope and 20 more attributes", edit: func(r *etree.Element) {
			declare(r, 64-inScopeMax(r))
			for i := range 20 {
				r.CreateAttr(fmt.Sprintf("a%d", i), "x")
			}
		}, ok: true},
		{name: "65 declarations in scope, one a default namespace", edit: func(r *etree.Element) {
			declare(r, 64-inScopeMax(r))
			r.CreateAttr("xmlns", "urn:example:other")
			require.Equal(t, 65, inScopeMax(r))
		}},
		{name: "default namespace undeclared", raw: status(`xmlns=""`), ok: true},
		// crewjam takes these; the fast path, which cannot tell which
		// odd names encoding/xml would write back otherwise, leaves them
		// to it.
		{name: "an attribute with an empty local part", raw: status(`a:="x"`), ok: true, mayDecline: true},
		{name: "an attribute with an empty prefix", raw: status(`:a="x"`), ok: true, mayDecline: true},
		{name: "an element with an empty local part", raw: func(x string) string {
			return strings.Replace(x, "<samlp:Status>", "<samlp:Extensions><e:/></samlp:Extensions><samlp:Status>", 1)
		}, ok: true, mayDecline: true},
		{name: "a prefix declared empty", raw: status(`xmlns:a=""`), ok: true, mayDecline: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, before := hostileHarness(t, harnessConfig{fastMayDecline: tc.mayDecline})
			h.idp().SetMutateResponse(func(r *etree.Element) {
				require.Nil(t, r.FindElement("./Signature"), "only the assertion is signed")
				if tc.edit != nil {
					tc.edit(r)
				}
			})
			c := h.client()
			f := h.respond(c, "", victim)
			if tc.raw != nil {
				raw, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
				require.NoError(t, err)
				edited := tc.raw(string(raw))
				require.NotEqual(t, string(raw), edited)
				f.SAMLResponse = base64.StdEncoding.EncodeToString([]byte(edited))
			}
			resp, body := h.post(c, f)
			signedInOrRefused(t, h, resp, body, tc.ok, before, "namespace declarations in scope")
		})
	}
}

// TestFastPathTwoClassRefs: an AuthnContext with two
// AuthnContextClassRefs, which crewjam reads as the last, is left to
// crewjam, which signs the person in. Were the fast path to read it, the
// harness would see it read another class than crewjam.
func TestFastPathTwoClassRefs(t *testing.T) {
	h := newHarness(t, harnessConfig{fastMayDecline: true})
	h.idp().AddUser(person("p-classes", "classes@example.com", "Two", "Classes"))
	h.idp().SetMutateAssertionElement(func(a *etree.Element) {
		ac := a.FindElement("./AuthnStatement/AuthnContext")
		require.NotNil(t, ac)
		ac.CreateElement("saml:AuthnContextClassRef").SetText("urn:example:second")
	})
	resp, body := h.signIn(h.client(), "", "p-classes")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
}

// TestHookSeesTheACSForm: a hook given the ACS request finds its form
// values, as it did when the ACS called ParseForm.
func TestHookSeesTheACSForm(t *testing.T) {
	var response, relay string
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Connections[0].Policy.BeforeCreate = func(_ context.Context, u jit.NewUser) error {
			response, relay = u.Request.PostFormValue("SAMLResponse"), u.Request.FormValue("RelayState")
			return nil
		}
	}})
	h.idp().AddUser(person("p-hook", "hook@example.com", "Hoo", "K"))
	c := h.client()
	f := h.respond(c, "", "p-hook")
	resp, body := h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, f.SAMLResponse, response)
	assert.Equal(t, f.RelayState, relay)
	assert.NotEmpty(t, relay, "a solicited sign-in carries its RelayState")
}
