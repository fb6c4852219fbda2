package jit_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/jit/jittest/forge"
)

// TestLogNeverHoldsTheAssertion signs in, signs in again with changes, and
// has responses refused for a bad signature, an untrusted certificate, a
// replay and a missing required attribute. The whole log, at debug level,
// must hold neither a SAMLResponse nor any part of the XML it carried, nor
// the value of an attribute the mapping does not keep; and every record
// must carry the stable keys, agreeing with the events.
func TestLogNeverHoldsTheAssertion(t *testing.T) {
	const conn = "acme"
	marker := "unkept-" + rand.Text()
	mapping := claims.Generic()
	mapping.Email.Required = true
	h := newHarness(t, harnessConfig{connections: []string{conn}, mapper: mapping})
	idp := h.idp(conn)
	withMarker := func(u jittest.User) jittest.User {
		u.Attributes["urn:example:unkept"] = []string{marker}
		return u
	}
	idp.AddUser(withMarker(person("p-log", "log@example.com", "Lo", "Gger", "staff")))
	noEmail := withMarker(person("p-noemail", "", "No", "Email"))
	delete(noEmail.Attributes, "urn:oid:0.9.2342.19200300.100.1.3")
	idp.AddUser(noEmail)

	var posted []jittest.Form
	post := func(c *http.Client, f jittest.Form, status int) {
		t.Helper()
		posted = append(posted, f)
		resp, body := h.post(c, f)
		require.Equal(t, status, resp.StatusCode, body)
	}
	signIn := func(nameID string, status int) {
		t.Helper()
		c := h.client()
		post(c, h.respond(c, conn, nameID), status)
	}

	// Created, then updated.
	c := h.client()
	first := h.respond(c, conn, "p-log")
	replayer := h.replayer(c, first)
	post(c, first, http.StatusSeeOther)
	idp.AddUser(withMarker(person("p-log", "log@example.com", "Lou", "Gger", "staff")))
	post(c, h.respond(c, conn, "p-log"), http.StatusSeeOther)

	// Refused: the signed content changed; signed with a key the SP does
	// not trust; replayed with its request cookie; no email.
	idp.SetMutateResponse(func(r *etree.Element) { becomeAdmin(childNamed(r, "Assertion")) })
	signIn("p-log", http.StatusForbidden)
	idp.SetMutateResponse(func(r *etree.Element) {
		key, cert, err := jittest.GenerateKeyPair()
		require.NoError(t, err)
		a := childNamed(r, "Assertion")
		forged, err := forge.Sign(a, key, cert)
		require.NoError(t, err)
		replaceInPlace(a, forged)
	})
	signIn("p-log", http.StatusForbidden)
	idp.SetMutateResponse(nil)
	post(replayer, first, http.StatusForbidden)
	signIn("p-noemail", http.StatusForbidden)

	logs := h.logs.String()
	require.NotEmpty(t, logs)
	events := h.allEvents()
	kinds := map[jit.EventKind]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	require.Equal(t, map[jit.EventKind]int{jit.EventCreated: 1, jit.EventUpdated: 1, jit.EventRefused: 4}, kinds)
	refused := h.eventsOf(jit.EventRefused)
	assert.Contains(t, refused[0].Err.Error(), "Signature could not be verified")
	assert.Contains(t, refused[1].Err.Error(), "certificate")
	assert.ErrorIs(t, refused[2].Err, jit.ErrReplayed)
	assert.ErrorIs(t, refused[3].Err, claims.ErrMissingAttribute)

	// Nothing of the responses: not the base64, whole or in part (every
	// aligned 48-character slice is checked, so any excerpt of 96 or more
	// characters would be caught), not their XML.
	assert.NotContains(t, logs, marker, "the value of an attribute the mapping does not keep")
	for i, f := range posted {
		b64 := f.SAMLResponse
		for at := 0; at+48 <= len(b64); at += 48 {
			if !assert.NotContains(t, logs, b64[at:at+48], "response %d: base64 at offset %d", i, at) {
				break
			}
		}
		raw, err := f.XML()
		require.NoError(t, err)
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(raw))
		a := doc.FindElement("//Assertion")
		require.NotNil(t, a)
		id := a.SelectAttrValue("ID", "")
		require.NotEmpty(t, id)
		for _, s := range []string{`ID="` + id, `ID=\"` + id, "Assertion ID", "saml:Assertion", "samlp:Response", "SignatureValue", "X509Certificate", "AttributeValue"} {
			assert.NotContains(t, logs, s, "response %d", i)
		}
		for _, el := range doc.FindElements("//SignatureValue|//X509Certificate") {
			v := strings.Join(strings.Fields(el.Text()), "")
			require.Greater(t, len(v), 64)
			assert.NotContains(t, logs, v[:64], "response %d: %s", i, el.Tag)
		}
	}

	// Every record has the stable keys, and they agree with the events.
	byCorr := map[string]jit.Event{}
	for _, e := range events {
		byCorr[e.CorrelationID] = e
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		str := func(key string) string {
			t.Helper()
			v, ok := rec[key].(string)
			assert.True(t, ok, "record %q has a string %q: %s", rec["msg"], key, sc.Text())
			return v
		}
		corr := str("correlation_id")
		assert.Equal(t, conn, str("connection"), sc.Text())
		e, ok := byCorr[corr]
		require.True(t, ok, "the record's correlation id is an event's: %s", sc.Text())
		switch rec["msg"] {
		case "sign-in":
			assert.Equal(t, string(e.Kind), str("event"))
			assert.Equal(t, e.UserID, str("user_id"))
			assert.Equal(t, e.Key.Issuer, str("issuer"))
			assert.Equal(t, e.Key.Subject, str("subject"))
			assert.Equal(t, idp.EntityID(), e.Key.Issuer)
		case "request refused":
			require.Equal(t, jit.EventRefused, e.Kind)
			assert.Equal(t, e.Err.Error(), str("reason"))
			assert.Equal(t, float64(http.StatusForbidden), rec["status"], sc.Text())
		default:
			t.Errorf("a record the test does not know; check its keys: %s", sc.Text())
		}
		assert.False(t, seen[corr], "one record per outcome: %s", sc.Text())
		seen[corr] = true
	}
	require.NoError(t, sc.Err())
	assert.Len(t, seen, len(events), "every outcome is logged")
}

// TestLogCheckSeesTheResponse guards TestLogNeverHoldsTheAssertion: what
// it looks for in the log is in every response.
func TestLogCheckSeesTheResponse(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.idp().AddUser(person("p-x", "x@example.com", "X", "X"))
	f := h.respond(h.client(), "", "p-x")
	raw, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "saml:Assertion")
	assert.Contains(t, string(raw), "SignatureValue")
	assert.Contains(t, string(raw), "AttributeValue")
}

// allEvents returns a copy of every event so far.
func (h *harness) allEvents() []jit.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]jit.Event(nil), h.events...)
}
