package jit_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

// FuzzACS posts arbitrary response XML to the ACS. No panic may escape,
// every refusal is a plain page with a correlation id, and a sign-in that
// is accepted must have produced a valid key bound to the connection.
func FuzzACS(f *testing.F) {
	h := newHarness(f, harnessConfig{
		store:     memstore.New(),
		configure: func(o *jit.Options) { o.Connections[0].AllowIDPInitiated = true },
	})
	idp := h.idp()
	idp.AddUser(person("p-fuzz", "fuzz@example.com", "Fuzz", "Er", "g1"))
	acs := h.app.URL + "/saml/acs"
	seed := func(mutA func(*saml.Assertion), mutR func(*etree.Element)) {
		idp.SetMutateAssertion(mutA)
		idp.SetMutateResponse(mutR)
		form, err := idp.Unsolicited(h.app.URL+"/saml/metadata", acs, "p-fuzz", "/")
		require.NoError(f, err)
		raw, err := form.XML()
		require.NoError(f, err)
		f.Add(raw)
	}
	seed(nil, nil)
	seed(func(a *saml.Assertion) { a.Conditions = nil }, nil)
	seed(func(a *saml.Assertion) { a.Subject = nil }, nil)
	seed(func(a *saml.Assertion) { a.AuthnStatements = nil }, nil)
	seed(func(a *saml.Assertion) { a.Conditions.AudienceRestrictions = nil }, nil)
	seed(nil, func(r *etree.Element) { r.AddChild(childNamed(r, "Assertion").Copy()) })
	seed(nil, func(r *etree.Element) {
		a := childNamed(r, "Assertion")
		a.RemoveChildAt(childNamed(a, "Signature").Index())
	})
	idp.SetMutateAssertion(nil)
	idp.SetMutateResponse(nil)
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>`))
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"></samlp:Response>`))
	f.Add([]byte(strings.Repeat("<a>", 100)))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, raw []byte) {
		before := len(h.eventsOf(jit.EventCreated)) + len(h.eventsOf(jit.EventUpdated))
		rec := postForm(t, h.mw, jittest.Form{ACS: acs, SAMLResponse: base64.StdEncoding.EncodeToString(raw)})
		switch rec.Code {
		case http.StatusSeeOther:
			e := h.lastEvent()
			require.Contains(t, []jit.EventKind{jit.EventCreated, jit.EventUpdated}, e.Kind)
			require.Equal(t, before+1, len(h.eventsOf(jit.EventCreated))+len(h.eventsOf(jit.EventUpdated)))
			require.False(t, e.Key.IsZero())
			require.Equal(t, idp.EntityID(), e.Key.Issuer)
		default:
			require.GreaterOrEqual(t, rec.Code, 400)
			require.Regexp(t, correlationRE, rec.Body.String())
		}
	})
}
