package jit_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestMappingRefusalNamesTheFix: a sign-in refused by the mapping leaves
// a log record and a warning that say what the administrator changes, not
// only what went wrong; each kind of refusal is warned about once.
func TestMappingRefusalNamesTheFix(t *testing.T) {
	required := claims.Generic()
	required.Email.Required = true
	for _, tc := range []struct {
		name   string
		mapper claims.Mapper
		user   func() jittest.User
		want   []string
	}{
		{"EmailNameID", claims.Generic(), func() jittest.User {
			u := person("ada@example.com", "ada@example.com", "Ada", "L")
			u.NameIDFormat = claims.NameIDFormatEmailAddress
			return u
		}, []string{"emailAddress NameID", "persistent NameID", "Subject to an immutable attribute", "AllowEmailNameID", "whoever is given the address later", "urn:oid:0.9.2342.19200300.100.1.3"}},
		{"TransientNameID", claims.Generic(), func() jittest.User {
			u := person("_t-1", "t@example.com", "T", "R")
			u.NameIDFormat = claims.NameIDFormatTransient
			return u
		}, []string{"transient NameID", "persistent NameID", "InsecureAllowTransientNameID"}},
		{"MissingAttribute", required, func() jittest.User {
			u := person("p-1", "", "No", "Mail")
			delete(u.Attributes, claims.OIDMail)
			u.Attributes["emailaddress"] = []string{"n@example.com"}
			return u
		}, []string{"mapping's email needs one of", "release one of them", "the IdP sent", "emailaddress"}},
		{"AmbiguousSubject", claims.Mapping{Subject: claims.Field{Names: []string{"uid"}}}, func() jittest.User {
			u := person("p-2", "a@example.com", "A", "B")
			u.Attributes["uid"] = []string{"one", "two"}
			return u
		}, []string{"uid", "for the mapping's subject", "send it once with one value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{mapper: tc.mapper})
			u := tc.user()
			h.idp().AddUser(u)
			for range 2 {
				resp, body := h.signIn(h.client(), "", u.NameID)
				require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
				assert.NotContains(t, body, "AllowEmailNameID", "the fix is for the administrator, not the page")
			}
			e := h.lastEvent()
			require.ErrorIs(t, e.Err, jit.ErrMapping)
			for _, w := range tc.want {
				assert.True(t, h.logged(e.CorrelationID, `"msg":"request refused"`, `"fix":`, w), "log names %q", w)
			}
			var found []jit.Warning
			for _, w := range h.mw.Warnings() {
				if w.Code == jit.WarnMappingRefused {
					found = append(found, w)
				}
			}
			require.Len(t, found, 1, "warned once for two refusals alike")
			for _, w := range tc.want {
				assert.Contains(t, found[0].Message, w)
			}
		})
	}
}

// TestMappingRefusalWarningsPerKind: two kinds of mapping refusal on one
// connection are two warnings.
func TestMappingRefusalWarningsPerKind(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	email := person("e@example.com", "e@example.com", "E", "M")
	email.NameIDFormat = claims.NameIDFormatEmailAddress
	transient := person("_t-2", "t@example.com", "T", "R")
	transient.NameIDFormat = claims.NameIDFormatTransient
	h.idp().AddUser(email)
	h.idp().AddUser(transient)
	for _, u := range []jittest.User{email, transient, email} {
		resp, body := h.signIn(h.client(), "", u.NameID)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	}
	var msgs []string
	for _, w := range h.mw.Warnings() {
		if w.Code == jit.WarnMappingRefused {
			msgs = append(msgs, w.Message)
		}
	}
	require.Len(t, msgs, 2)
	assert.True(t, strings.Contains(msgs[0], "emailAddress") && strings.Contains(msgs[1], "transient"), "%q", msgs)
}
