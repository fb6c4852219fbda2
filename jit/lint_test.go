package jit_test

import (
	"net/http"
	"testing"

	dsig "github.com/russellhaering/goxmldsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

const (
	lintTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	lintGroup  = "5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69"
)

// codes returns the warning codes in order.
func codes(ws []jit.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

// entraPerson is an Entra ID user as its SAML token carries them.
func entraPerson(nameID string, withTenant bool, groups ...string) jittest.User {
	attrs := map[string][]string{
		claims.ClaimEntraObjectID: {"00000000-0000-0000-0000-0000000000a1"},
		claims.ClaimEmailAddress:  {"ada@contoso.example"},
		claims.ClaimGroups:        groups,
	}
	if withTenant {
		attrs[claims.ClaimEntraTenantID] = []string{lintTenant}
	}
	return jittest.User{NameID: nameID, NameIDFormat: claims.NameIDFormatEmailAddress, Attributes: attrs}
}

func entraIdP(o *jittest.Options) { o.EntityID = "https://sts.windows.net/" + lintTenant + "/" }

func TestLintEntraNameIDKeyAndUnmappedGroups(t *testing.T) {
	// Keyed on the NameID (Entra sends the UPN there), emails allowed as
	// keys, and group object IDs nobody mapped.
	mapper := claims.Generic()
	mapper.AllowEmailNameID = true
	mapper.Groups.Names = append(mapper.Groups.Names, claims.ClaimGroups)
	h := newHarness(t, harnessConfig{mapper: mapper, idpOptions: entraIdP})
	assert.Equal(t, []string{jit.WarnNameIDKey, jit.WarnEntraKey}, codes(h.mw.Warnings()), "start-up")

	h.idp().AddUser(entraPerson("ada@contoso.example", false, lintGroup, "not-a-guid"))
	resp, body := h.signIn(h.client(), "", "ada@contoso.example")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	ws := h.mw.Warnings()
	assert.Equal(t, []string{jit.WarnNameIDKey, jit.WarnEntraKey, jit.WarnEntraTenantID, jit.WarnUnmappedGroups}, codes(ws))
	assert.Contains(t, ws[3].Message, "1 of the 2 groups")
	assert.Contains(t, h.logs.String(), `"code":"unmapped-group-ids"`)

	// Warnings are reported once; later sign-ins add nothing.
	resp, body = h.signIn(h.client(), "", "ada@contoso.example")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Len(t, h.mw.Warnings(), 4)
}

func TestLintEntraPresetClean(t *testing.T) {
	h := newHarness(t, harnessConfig{mapper: claims.Entra(), idpOptions: entraIdP, configure: func(o *jit.Options) {
		o.Connections[0].Policy.Roles.GroupRoles = map[string][]string{lintGroup: {"editor"}}
	}})
	h.idp().AddUser(entraPerson("ada@contoso.example", true, lintGroup))
	resp, body := h.signIn(h.client(), "", "ada@contoso.example")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Empty(t, h.mw.Warnings())
	assert.Equal(t, []string{"editor"}, h.users()[0].Profile.Roles)
}

func TestLintNonPersistentNameIDAndSHA1(t *testing.T) {
	h := newHarness(t, harnessConfig{
		idpOptions: func(o *jittest.Options) { o.SignatureMethod = dsig.RSASHA1SignatureMethod },
		configure:  func(o *jit.Options) { o.Connections[0].AllowSHA1 = true },
	})
	assert.Equal(t, []string{jit.WarnSHA1}, codes(h.mw.Warnings()))
	u := person("p-ada", "ada@example.com", "Ada", "Lovelace")
	u.NameIDFormat = claims.NameIDFormatUnspecified
	h.idp().AddUser(u)
	resp, body := h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, []string{jit.WarnSHA1, jit.WarnNameIDKey}, codes(h.mw.Warnings()))
}
