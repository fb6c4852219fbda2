package jit_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

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
	// Every forgery of hostile_test.go, as a seed.
	resign := func(r *etree.Element) {
		signed, err := jittest.Sign(r, idp.Key(), idp.Certificate())
		require.NoError(f, err)
		replaceInPlace(r, signed)
	}
	for x := jittest.XSW1; x <= jittest.XSW8; x++ {
		seed(nil, func(r *etree.Element) {
			if x <= jittest.XSW2 {
				resign(r)
			}
			require.NoError(f, jittest.Wrap(r, x, becomeAdmin))
		})
	}
	seed(nil, func(r *etree.Element) { require.NoError(f, jittest.DuplicateID(r, becomeAdmin)) })
	seed(nil, func(r *etree.Element) { becomeAdmin(childNamed(r, "Assertion")) })
	seed(nil, func(r *etree.Element) {
		key, cert, err := jittest.GenerateKeyPair()
		require.NoError(f, err)
		a := childNamed(r, "Assertion")
		becomeAdmin(a)
		forged, err := jittest.Sign(a, key, cert)
		require.NoError(f, err)
		replaceInPlace(a, forged)
	})
	seed(nil, func(r *etree.Element) {
		si := childNamed(childNamed(childNamed(r, "Assertion"), "Signature"), "SignedInfo")
		si.AddChild(childNamed(si, "Reference").Copy())
	})
	seed(nil, func(r *etree.Element) {
		nid := r.FindElement("./Assertion/Subject/NameID")
		nid.CreateComment("")
		nid.CreateText(".evil.example")
	})
	seed(nil, func(r *etree.Element) {
		r.FindElement("./Status/StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")
	})
	seed(nil, func(r *etree.Element) { r.CreateAttr("Destination", "https://evil.example/acs") })
	seed(func(a *saml.Assertion) { a.Conditions.AudienceRestrictions[0].Audience.Value = "https://evil.example/" }, nil)
	seed(func(a *saml.Assertion) { a.Subject.SubjectConfirmations[0].SubjectConfirmationData = nil }, nil)
	seed(func(a *saml.Assertion) {
		a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = time.Time{}
	}, nil)
	seed(func(a *saml.Assertion) {
		a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-unknown"
	}, nil)
	seed(func(a *saml.Assertion) { a.Issuer.Value = "https://evil.example/" }, nil)
	_, spCert := spKeyPair()
	for _, enc := range []jittest.Encryption{
		{},
		{Block: jittest.BlockAES256CBC},
		{KeyTransport: jittest.KeyTransportPKCS1v15},
		{Block: jittest.BlockTripleDES},
	} {
		seed(nil, func(r *etree.Element) { require.NoError(f, jittest.EncryptAssertion(r, spCert, enc)) })
	}
	for _, n := range []int{5, 16, 20, 40} {
		seed(nil, func(r *etree.Element) {
			require.NoError(f, jittest.EncryptAssertion(r, spCert, jittest.Encryption{Block: jittest.BlockAES256CBC}))
			require.NoError(f, jittest.TruncateCiphertext(r, n))
		})
		seed(nil, func(r *etree.Element) {
			require.NoError(f, jittest.EncryptAssertion(r, spCert, jittest.Encryption{}))
			require.NoError(f, jittest.TruncateCiphertext(r, n))
		})
	}
	idp.SetMutateAssertion(nil)
	idp.SetMutateResponse(nil)
	f.Add([]byte(billionLaughs))
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
