package jit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// policyHarness starts an app whose connections all have policy p.
func policyHarness(t *testing.T, p jit.Policy, names ...string) *harness {
	t.Helper()
	return newHarness(t, harnessConfig{connections: names, configure: func(o *jit.Options) {
		for i := range o.Connections {
			o.Connections[i].Policy = p
		}
	}})
}

// localAccount creates a brownfield account, as an application that had
// users before JIT does.
func localAccount(t *testing.T, h *harness, id, email string) userstore.User {
	t.Helper()
	p, err := h.store.Provision(context.Background(), userstore.Key{Issuer: userstore.LocalIssuer, Subject: id},
		userstore.Profile{Email: email, DisplayName: "Local " + id}, time.Now())
	require.NoError(t, err)
	return p.User
}

// lastRefusal returns the reason of the latest refused event.
func (h *harness) lastRefusal() error {
	evs := h.eventsOf(jit.EventRefused)
	if len(evs) == 0 {
		return nil
	}
	return evs[len(evs)-1].Err
}

func TestBrownfield(t *testing.T) {
	const email = "ada@example.com"
	tests := []struct {
		name     string
		policy   jit.Brownfield
		asserted string // the email the IdP asserts
		cookie   string // a local session the Prove hook accepts
		wantErr  error
		wantLink bool
	}{
		{name: "DenyByDefault", asserted: email, wantErr: jit.ErrEmailConflict},
		{name: "VerifiedDomainLinks", policy: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}},
			asserted: email, wantLink: true},
		{name: "VerifiedDomainASCIICase", policy: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"Example.COM"}},
			asserted: "ADA@example.com", wantLink: true},
		{name: "UnverifiedDomainRefused", policy: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.org"}},
			asserted: email, wantErr: jit.ErrEmailConflict},
		{name: "SubdomainIsNotVerified", policy: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"com"}},
			asserted: email, wantErr: jit.ErrEmailConflict},
		{name: "ProofAccepted", policy: jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof, Prove: proveByCookie},
			asserted: email, cookie: "acct-1", wantLink: true},
		{name: "ProofMissing", policy: jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof, Prove: proveByCookie},
			asserted: email, wantErr: jit.ErrProofRequired},
		{name: "ProofOfAnotherAccount", policy: jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof, Prove: proveByCookie},
			asserted: email, cookie: "acct-2", wantErr: jit.ErrProofRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := policyHarness(t, jit.Policy{Brownfield: tt.policy})
			local := localAccount(t, h, "acct-1", email)
			h.idp().AddUser(person("p-ada", tt.asserted, "Ada", "Lovelace", "staff"))
			c := h.client()
			if tt.cookie != "" {
				c.Jar.SetCookies(mustURL(h.app.URL), []*http.Cookie{{Name: "local_session", Value: tt.cookie, Path: "/"}})
			}
			resp, body := h.signIn(c, "", "p-ada")
			idpKey := userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-ada"}
			if tt.wantErr != nil {
				refusal(t, resp, body, http.StatusForbidden)
				require.ErrorIs(t, h.lastRefusal(), tt.wantErr)
				us := h.users()
				require.Len(t, us, 1, "nothing created")
				assert.Equal(t, local, us[0], "the local account is untouched")
				return
			}
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			us := h.users()
			require.Len(t, us, 1, "linked, not duplicated")
			assert.Equal(t, local.ID, us[0].ID, "the account keeps its ID")
			assert.Equal(t, idpKey, us[0].Key)
			assert.Equal(t, tt.asserted, us[0].Profile.Email)
			linked := h.eventsOf(jit.EventLinked)
			require.Len(t, linked, 1)
			assert.Equal(t, "Local acct-1", linked[0].Before.DisplayName)
			assert.Contains(t, linked[0].Changed, "display_name")
			_, err := h.store.Lookup(context.Background(), local.Key)
			require.ErrorIs(t, err, userstore.ErrNotFound, "the local key no longer finds the account")

			// The next sign-in is an ordinary update of the same record.
			resp, body = h.signIn(h.client(), "", "p-ada")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			assert.Equal(t, jit.EventUpdated, h.lastEvent().Kind)
			require.Len(t, h.users(), 1)
		})
	}
}

// proveByCookie accepts the link when the request carries the
// application's local session for the existing account.
func proveByCookie(r *http.Request, existing userstore.User, _ userstore.Key, _ userstore.Profile) error {
	ck, err := r.Cookie("local_session")
	if err != nil || ck.Value != existing.Key.Subject {
		return jit.Veto("Sign in to your existing account with your password first, then use your organisation's sign-in again.")
	}
	return nil
}

func TestBrownfieldProofMessageShown(t *testing.T) {
	h := policyHarness(t, jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof, Prove: proveByCookie}})
	localAccount(t, h, "acct-1", "ada@example.com")
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	refusal(t, resp, body, http.StatusForbidden)
	assert.Contains(t, body, "Sign in to your existing account with your password first")
}

func TestBrownfieldSuspendedLocalAccountNotLinked(t *testing.T) {
	h := policyHarness(t, jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}}})
	local := localAccount(t, h, "acct-1", "ada@example.com")
	require.NoError(t, h.store.Suspend(context.Background(), local.Key))
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrSuspended)
	u, err := h.store.Lookup(context.Background(), local.Key)
	require.NoError(t, err)
	assert.Equal(t, userstore.Suspended, u.Status)
}

// TestBrownfieldTakeoverRefused: an IdP asserting the email of a user of
// another connection gets a user of its own, never that one, even where
// the policy links verified domains; a second subject of the same IdP
// with the address is refused.
func TestBrownfieldTakeoverRefused(t *testing.T) {
	link := jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}}}
	h := policyHarness(t, link, "acme", "evil")
	h.idp("acme").AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", "staff"))
	resp, body := h.signIn(h.client(), "acme", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	before := h.users()
	require.Len(t, before, 1)

	// Another tenant claims the same address: a user of its own, and
	// acme's Ada is untouched.
	h.idp("evil").AddUser(person("p-mallory", "ada@example.com", "Ada", "Lovelace", "admins"))
	resp, body = h.signIn(h.client(), "evil", "p-mallory")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, jit.EventCreated, h.lastEvent().Kind)
	after := h.users()
	require.Len(t, after, 2)
	assert.Equal(t, before[0], after[0], "acme's user is untouched")
	assert.Equal(t, h.idp("evil").EntityID(), after[1].Key.Issuer)
	before = after

	// The same IdP asserts the address for a new subject: the address was
	// reassigned, or the subject changed. Refused and reported.
	h.idp("acme").AddUser(person("p-ada-2", "Ada@Example.com", "Ada", "Lovelace", "staff"))
	resp, body = h.signIn(h.client(), "acme", "p-ada-2")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrIdentifierConflict)
	assert.Equal(t, before, h.users())
}

// TestEmailLookalikeIsAnotherAddress: a Unicode look-alike is not folded
// onto the existing address, so it neither links nor conflicts.
func TestEmailLookalikeIsAnotherAddress(t *testing.T) {
	h := policyHarness(t, jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}}})
	local := localAccount(t, h, "acct-1", "kate@example.com")
	h.idp().AddUser(person("p-kate", "\u212Ate@example.com", "Kate", "K")) // Kelvin sign
	resp, body := h.signIn(h.client(), "", "p-kate")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, jit.EventCreated, h.lastEvent().Kind)
	u, err := h.store.Lookup(context.Background(), local.Key)
	require.NoError(t, err, "the local account is not linked")
	assert.Equal(t, local, u)
	assert.Len(t, h.users(), 2)
}

func TestIdentifierChangeUpdatesInPlace(t *testing.T) {
	h := policyHarness(t, jit.Policy{})
	h.idp().AddUser(person("p-ada", "ada@old.example", "Ada", "Lovelace"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	first := h.users()[0]

	h.idp().AddUser(person("p-ada", "ada.king@new.example", "Ada", "King"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	us := h.users()
	require.Len(t, us, 1)
	assert.Equal(t, first.ID, us[0].ID)
	assert.Equal(t, "ada.king@new.example", us[0].Profile.Email)
	e := h.lastEvent()
	assert.Equal(t, jit.EventUpdated, e.Kind)
	assert.Equal(t, []string{"email", "display_name", "family_name"}, e.Changed)
	assert.Equal(t, "ada@old.example", e.Before.Email)
	assert.Equal(t, "ada.king@new.example", e.After.Email)
}

func TestRolesFromGroups(t *testing.T) {
	roles := jit.RoleMapping{
		GroupRoles:     map[string][]string{"g-eng": {"editor"}, "g-ops": {"editor", "operator"}},
		RequiredGroups: []string{"g-eng", "g-ops", "g-admin"},
		AdminGroups:    []string{"g-admin"},
		DefaultRoles:   []string{"viewer"},
	}
	h := policyHarness(t, jit.Policy{Roles: roles})
	signIn := func(groups ...string) (*http.Response, string) {
		h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", groups...))
		return h.signIn(h.client(), "", "p-ada")
	}
	key := userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-ada"}
	lookup := func() userstore.User {
		u, err := h.store.Lookup(context.Background(), key)
		require.NoError(t, err)
		return u
	}

	resp, body := signIn("g-eng", "g-unmapped")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, []string{"editor", "viewer"}, lookup().Profile.Roles)

	// A role granted in the application survives every re-sync.
	require.NoError(t, h.store.GrantRole(context.Background(), key, "auditor"))

	resp, body = signIn("g-ops", "g-admin")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	u := lookup()
	assert.Equal(t, []string{"admin", "editor", "operator", "viewer"}, u.Profile.Roles)
	assert.Equal(t, []string{"auditor"}, u.LocalRoles)
	assert.Contains(t, h.lastEvent().Changed, "roles")

	// The group that granted admin is gone at the IdP: so is the role.
	resp, body = signIn("g-eng")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	u = lookup()
	assert.Equal(t, []string{"editor", "viewer"}, u.Profile.Roles)
	assert.Equal(t, []string{"auditor", "editor", "viewer"}, u.Roles())
	assert.True(t, u.HasRole("auditor"))
	assert.False(t, u.HasRole(jit.RoleAdmin))

	// In no required group: refused, nothing written.
	resp, body = signIn("g-unmapped")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrNotAuthorized)
	assert.Contains(t, body, "not in a group that may use this application")
	assert.Equal(t, u, lookup())

	// A newcomer in no required group is not created.
	h.idp().AddUser(person("p-eve", "eve@example.com", "Eve", "E", "g-unmapped"))
	resp, body = h.signIn(h.client(), "", "p-eve")
	refusal(t, resp, body, http.StatusForbidden)
	assert.Len(t, h.users(), 1)
}

// overagePerson is a person whose assertion carries Entra ID's groups
// overage claim instead of groups.
func overagePerson(nameID, email string) jittest.User {
	p := person(nameID, email, "Ada", "Lovelace")
	delete(p.Attributes, "urn:oid:1.3.6.1.4.1.5923.1.5.1.1")
	p.Attributes[claims.ClaimGroupsLink] = []string{"https://graph.windows.net/tenant/users/oid/getMemberObjects"}
	return p
}

func TestGroupsOverage(t *testing.T) {
	roles := jit.RoleMapping{GroupRoles: map[string][]string{"g-eng": {"editor"}, "g-admin": {"owner"}}, DefaultRoles: []string{"viewer"}}

	// An admin removed from the admin group at the IdP once kept "owner"
	// for as long as their assertion carried an overage instead of
	// groups, which a user can often arrange by joining groups. Without a
	// resolver the sign-in now fails closed: group-derived roles go, the
	// default roles stay, and the connection warns.
	t.Run("NoResolverDropsGroupDerivedRoles", func(t *testing.T) {
		h := policyHarness(t, jit.Policy{Roles: roles})
		h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", "g-eng", "g-admin"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		before := h.users()[0]
		require.Equal(t, []string{"editor", "owner", "viewer"}, before.Profile.Roles)

		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		c := h.client()
		resp, body = h.signIn(c, "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		after := h.users()[0]
		assert.Nil(t, after.Profile.Groups, "unknown groups are not kept")
		assert.Equal(t, []string{"viewer"}, after.Profile.Roles, "only the default roles remain")
		r, u := h.me(c)
		require.Equal(t, http.StatusOK, r.StatusCode)
		assert.False(t, u.HasRole("owner"), "a revoked admin group grants nothing under an overage")
		over := h.eventsOf(jit.EventGroupsOverage)
		require.Len(t, over, 1)
		assert.False(t, over[0].Resolved)
		assert.Contains(t, h.lastEvent().Changed, "roles")
		require.NotEmpty(t, h.mw.Warnings())
		assert.Equal(t, jit.WarnGroupsOverage, h.mw.Warnings()[len(h.mw.Warnings())-1].Code)
	})

	// RequiredGroups decide admission; under an overage they cannot be
	// checked, so a returning user is refused rather than admitted on the
	// groups stored at an earlier sign-in.
	t.Run("NoResolverRequiredGroupsRefused", func(t *testing.T) {
		gated := roles
		gated.RequiredGroups = []string{"g-eng"}
		h := policyHarness(t, jit.Policy{Roles: gated})
		h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", "g-eng"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		before := h.users()

		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body = h.signIn(h.client(), "", "p-ada")
		refusal(t, resp, body, http.StatusForbidden)
		require.ErrorIs(t, h.lastRefusal(), jit.ErrGroupsOverage)
		assert.Equal(t, before[0].Profile, h.users()[0].Profile, "nothing written")
	})

	t.Run("NoResolverFirstSignInRefused", func(t *testing.T) {
		h := policyHarness(t, jit.Policy{Roles: roles})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		refusal(t, resp, body, http.StatusForbidden)
		require.ErrorIs(t, h.lastRefusal(), jit.ErrGroupsOverage)
		assert.Empty(t, h.users(), "never created with no roles")
		require.Len(t, h.eventsOf(jit.EventGroupsOverage), 1)
	})

	t.Run("DefaultRolesOnlyFirstSignInCreated", func(t *testing.T) {
		h := policyHarness(t, jit.Policy{Roles: jit.RoleMapping{DefaultRoles: []string{"viewer"}}})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		assert.Equal(t, []string{"viewer"}, h.users()[0].Profile.Roles, "no role depends on groups: the default is complete")
	})

	t.Run("NoRoleMappingFirstSignInCreated", func(t *testing.T) {
		h := policyHarness(t, jit.Policy{})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		us := h.users()
		require.Len(t, us, 1)
		assert.Nil(t, us[0].Profile.Groups)
	})

	t.Run("Resolver", func(t *testing.T) {
		var asked atomic.Value
		resolver := jit.GroupResolverFunc(func(_ context.Context, q jit.GroupsQuery) ([]string, error) {
			asked.Store(q)
			return []string{"g-admin", "", "g-admin", "g-eng"}, nil
		})
		h := policyHarness(t, jit.Policy{Roles: roles, GroupResolver: resolver})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		u := h.users()[0]
		assert.Equal(t, []string{"g-admin", "g-eng"}, u.Profile.Groups)
		assert.Equal(t, []string{"editor", "owner", "viewer"}, u.Profile.Roles)
		q := asked.Load().(jit.GroupsQuery)
		assert.Equal(t, "p-ada", q.Key.Subject)
		assert.Contains(t, q.Link, "getMemberObjects")
		over := h.eventsOf(jit.EventGroupsOverage)
		require.Len(t, over, 1)
		assert.True(t, over[0].Resolved)
	})

	t.Run("ResolverFailureIs503", func(t *testing.T) {
		fail := jit.GroupResolverFunc(func(context.Context, jit.GroupsQuery) ([]string, error) {
			return nil, errors.New("graph: 429 too many requests")
		})
		h := policyHarness(t, jit.Policy{Roles: roles, GroupResolver: fail})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		corr := refusal(t, resp, body, http.StatusServiceUnavailable)
		require.ErrorIs(t, h.lastRefusal(), jit.ErrGroupsUnavailable)
		assert.True(t, h.logged(corr, "429"))
		assert.Empty(t, h.users())
		over := h.eventsOf(jit.EventGroupsOverage)
		require.Len(t, over, 1, "the overage is recorded also when its resolution fails")
		assert.False(t, over[0].Resolved)
		require.ErrorIs(t, over[0].Err, jit.ErrGroupsUnavailable)
	})
}

func TestDisableCreate(t *testing.T) {
	h := policyHarness(t, jit.Policy{DisableCreate: true})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrUnknownUser)
	assert.Contains(t, body, "has not been set up in this application")
	assert.Empty(t, h.users())

	// Provisioned ahead of time (by an admin, SCIM or an import): allowed.
	_, err := h.store.Provision(context.Background(), userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-ada"}, userstore.Profile{}, time.Now())
	require.NoError(t, err)
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "ada@example.com", h.users()[0].Profile.Email)
}

func TestSyncRules(t *testing.T) {
	p := jit.Policy{Sync: map[string]jit.SyncRule{
		"email":        jit.SyncOnCreate,
		"display_name": jit.SyncIfEmpty,
		"given_name":   jit.SyncNever,
		"groups":       jit.SyncAlways,
	}}
	h := policyHarness(t, p)
	ada := person("p-ada", "ada@example.com", "Ada", "Lovelace", "staff")
	ada.Attributes["urn:oid:2.16.840.1.113730.3.1.241"] = []string{""}
	h.idp().AddUser(ada)
	resp, body := h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	u := h.users()[0]
	assert.Equal(t, "ada@example.com", u.Profile.Email)
	assert.Equal(t, "", u.Profile.DisplayName)
	assert.Equal(t, "", u.Profile.GivenName, "never synced")
	assert.Equal(t, "Lovelace", u.Profile.FamilyName)

	h.idp().AddUser(person("p-ada", "ada.king@example.com", "Augusta", "King", "admins"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	u = h.users()[0]
	assert.Equal(t, "ada@example.com", u.Profile.Email, "only on create")
	assert.Equal(t, "Augusta King", u.Profile.DisplayName, "was empty")
	assert.Equal(t, "", u.Profile.GivenName, "never synced")
	assert.Equal(t, "King", u.Profile.FamilyName, "always")
	assert.Equal(t, []string{"admins"}, u.Profile.Groups)

	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Byron", "admins"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	u = h.users()[0]
	assert.Equal(t, "Augusta King", u.Profile.DisplayName, "no longer empty")
	assert.Equal(t, "Byron", u.Profile.FamilyName)
}

func TestHooks(t *testing.T) {
	var created atomic.Int32
	p := jit.Policy{
		BeforeCreate: func(_ context.Context, u jit.NewUser) error {
			created.Add(1)
			switch {
			case strings.HasSuffix(u.Profile.Email, "@contractor.example"):
				return jit.Veto("Contractors are not admitted to this application.")
			case strings.HasPrefix(u.Profile.Email, "broken"):
				return errors.New("licence server down")
			}
			require.NotNil(t, u.Request)
			return nil
		},
	}
	h := policyHarness(t, p)
	written := func() []jit.Event {
		return append(h.eventsOf(jit.EventCreated), h.eventsOf(jit.EventUpdated)...)
	}

	h.idp().AddUser(person("p-con", "carl@contractor.example", "Carl", "C"))
	resp, body := h.signIn(h.client(), "", "p-con")
	refusal(t, resp, body, http.StatusForbidden)
	assert.Contains(t, body, "Contractors are not admitted to this application.")
	require.ErrorIs(t, h.lastRefusal(), jit.ErrVetoed)

	h.idp().AddUser(person("p-broken", "broken@example.com", "B", "B"))
	resp, body = h.signIn(h.client(), "", "p-broken")
	corr := refusal(t, resp, body, http.StatusServiceUnavailable)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrHook)
	assert.NotContains(t, body, "licence server")
	assert.True(t, h.logged(corr, "licence server down"))
	assert.Empty(t, h.users())
	assert.Empty(t, written())

	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "King"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.EqualValues(t, 3, created.Load(), "BeforeCreate runs for first sign-ins only")
	events := written()
	require.Len(t, events, 2, "OnEvent sees each write once")
	assert.Equal(t, jit.EventCreated, events[0].Kind)
	assert.Equal(t, jit.EventUpdated, events[1].Kind)
	assert.Equal(t, "Lovelace", events[1].Before.FamilyName)
	assert.Equal(t, "King", events[1].After.FamilyName)
	assert.Contains(t, events[1].Changed, "family_name")
}

func TestPolicyValidatedAtNew(t *testing.T) {
	tests := []struct {
		name  string
		p     jit.Policy
		store testStore
		want  string
	}{
		{name: "UnknownSyncField", p: jit.Policy{Sync: map[string]jit.SyncRule{"mail": jit.SyncNever}}, want: `unknown field "mail"`},
		{name: "DirectoryAttribute", p: jit.Policy{Sync: map[string]jit.SyncRule{"attributes/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": jit.SyncAlways}}, want: "a provisioning directory owns"},
		{name: "LinkWithoutDomains", p: jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains}}, want: "VerifiedDomains is empty"},
		{name: "ProofWithoutHook", p: jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof}}, want: "Prove is nil"},
		{name: "LinkNeedsLinker", p: jit.Policy{Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}}},
			store: noLinker{memstore.New()}, want: "userstore.Linker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := jittest.New(t)
			key, cert := spKeyPair()
			store := tt.store
			if store == nil {
				store = memstore.New()
			}
			_, err := jit.New(context.Background(), jit.Options{
				RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: store, SessionKeys: [][]byte{make32()},
				Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), Policy: tt.p}},
			})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// noLinker is a store without the brownfield side.
type noLinker struct{ s *memstore.Store }

func (n noLinker) Lookup(ctx context.Context, k userstore.Key) (userstore.User, error) {
	return n.s.Lookup(ctx, k)
}

func (n noLinker) Provision(ctx context.Context, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	return n.s.Provision(ctx, k, p, now)
}

func (n noLinker) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	return n.s.ConsumeAssertion(ctx, issuer, id, expires, now)
}

func (n noLinker) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	return n.s.ReleaseAssertion(ctx, issuer, id)
}

func (n noLinker) List(ctx context.Context) ([]userstore.User, error) { return n.s.List(ctx) }

func (n noLinker) Suspend(ctx context.Context, k userstore.Key) error { return n.s.Suspend(ctx, k) }

func (n noLinker) Unsuspend(ctx context.Context, k userstore.Key) error { return n.s.Unsuspend(ctx, k) }

func (n noLinker) Delete(ctx context.Context, k userstore.Key) error { return n.s.Delete(ctx, k) }

func (n noLinker) NotSignedInSince(ctx context.Context, t time.Time) ([]userstore.User, error) {
	return n.s.NotSignedInSince(ctx, t)
}

func (n noLinker) GrantRole(ctx context.Context, k userstore.Key, role string) error {
	return n.s.GrantRole(ctx, k, role)
}

func (n noLinker) RevokeRole(ctx context.Context, k userstore.Key, role string) error {
	return n.s.RevokeRole(ctx, k, role)
}

func (n noLinker) CreateSession(ctx context.Context, s userstore.Session) error {
	return n.s.CreateSession(ctx, s)
}

func (n noLinker) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	return n.s.LookupSession(ctx, id, now)
}

func (n noLinker) EndSession(ctx context.Context, id string) error { return n.s.EndSession(ctx, id) }

func (n noLinker) EndSessions(ctx context.Context, k userstore.Key, index string, now time.Time) (int, error) {
	return n.s.EndSessions(ctx, k, index, now)
}

func (n noLinker) EndSessionsByNameID(ctx context.Context, issuer, nameID, index string, now time.Time) (int, error) {
	return n.s.EndSessionsByNameID(ctx, issuer, nameID, index, now)
}

func (n noLinker) ListSessions(ctx context.Context, k userstore.Key, now time.Time) ([]userstore.Session, error) {
	return n.s.ListSessions(ctx, k, now)
}

// stepStore hides memstore's SignIn, so the middleware records the
// assertion and writes the user in separate steps, as with a store of an
// application's own.
type stepStore struct {
	noLinker
}

func (s stepStore) LookupEmail(ctx context.Context, email string) ([]userstore.User, error) {
	return s.s.LookupEmail(ctx, email)
}

func (s stepStore) Link(ctx context.Context, id string, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	return s.s.Link(ctx, id, k, p, now)
}

// TestPolicyWithoutSignInStore runs the policies through the step-by-step
// path: link, roles, a refusal that writes nothing.
func TestPolicyWithoutSignInStore(t *testing.T) {
	var _ userstore.Linker = stepStore{}
	_, isSignIn := any(stepStore{}).(userstore.SignInStore)
	require.False(t, isSignIn)

	st := stepStore{noLinker{memstore.New()}}
	h := newHarness(t, harnessConfig{store: st, configure: func(o *jit.Options) {
		o.Connections[0].Policy = jit.Policy{
			Brownfield: jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}},
			Roles:      jit.RoleMapping{GroupRoles: map[string][]string{"staff": {"editor"}}, RequiredGroups: []string{"staff"}},
		}
	}})
	local := localAccount(t, h, "acct-1", "ada@example.com")
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", "staff"))
	resp, body := h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	us := h.users()
	require.Len(t, us, 1)
	assert.Equal(t, local.ID, us[0].ID)
	assert.Equal(t, []string{"editor"}, us[0].Profile.Roles)

	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace", "visitors"))
	resp, body = h.signIn(h.client(), "", "p-ada")
	refusal(t, resp, body, http.StatusForbidden)
	require.ErrorIs(t, h.lastRefusal(), jit.ErrNotAuthorized)
	assert.Equal(t, us, h.users())
}

// TestPanicInHookRefused: a panic in application code called during a
// sign-in (here BeforeCreate) gives the person a page with a correlation
// id and the log the panic, writes nothing, and the next sign-in works.
func TestPanicInHookRefused(t *testing.T) {
	h := policyHarness(t, jit.Policy{BeforeCreate: func(_ context.Context, u jit.NewUser) error {
		if u.Key.Subject == "p-boom" {
			panic("licence table missing")
		}
		return nil
	}})
	h.idp().AddUser(person("p-boom", "boom@example.com", "B", "Oom"))
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-boom")
	corr := refusal(t, resp, body, http.StatusInternalServerError)
	assert.NotContains(t, body, "licence table")
	require.ErrorIs(t, h.lastRefusal(), jit.ErrInternal)
	assert.True(t, h.logged(corr, "panic in sign-in", "licence table missing"))
	assert.Empty(t, h.users())
	assert.Empty(t, sessionCookie(c, h))

	resp, body = h.signIn(h.client(), "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
}

// TestAnotherTenantCannotBlockAFirstSignIn: a globex user who sets his
// email to an acme user's address (a returning user may change it to
// anything his IdP asserts) once locked her out of her first sign-in. Only
// local accounts take part in brownfield matching: her sign-in creates her.
func TestAnotherTenantCannotBlockAFirstSignIn(t *testing.T) {
	h := policyHarness(t, jit.Policy{}, "acme", "globex")
	h.idp("globex").AddUser(person("p-hank", "hank@globex.example", "Hank", "Scorpio"))
	resp, body := h.signIn(h.client(), "globex", "p-hank")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	h.idp("globex").AddUser(person("p-hank", "grace@acme.example", "Hank", "Scorpio"))
	resp, body = h.signIn(h.client(), "globex", "p-hank")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

	h.idp("acme").AddUser(person("p-grace", "grace@acme.example", "Grace", "Hopper"))
	resp, body = h.signIn(h.client(), "acme", "p-grace")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(t, jit.EventCreated, h.lastEvent().Kind)
	require.Len(t, h.users(), 2)
}

// TestConcurrentSubjectsOneEmailMakeOneUser: two subjects of one IdP with
// one email signing in at once once made two users with that email (the
// conflict check ran outside the sign-in transaction); the store now
// refuses the second atomically, so exactly one is created and the other
// refused as an identifier conflict. (pgstore's multi-instance test does
// the same on PostgreSQL.)
func TestConcurrentSubjectsOneEmailMakeOneUser(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store testStore
	}{{"sqlitestore", nil}, {"memstore", newMem()}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{store: tc.store})
			const n = 16
			forms := make([]jittest.Form, n)
			clients := make([]*http.Client, n)
			for i := range forms {
				nameID := fmt.Sprint("p-twin-", i)
				h.idp().AddUser(person(nameID, "twin@example.com", "Twin", fmt.Sprint(i)))
				clients[i] = h.client()
				forms[i] = h.respond(clients[i], "", nameID)
			}
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range forms {
				wg.Go(func() {
					resp, err := forms[i].Post(context.Background(), clients[i])
					if err == nil {
						codes[i] = resp.StatusCode
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			created := 0
			for _, c := range codes {
				if c == http.StatusSeeOther {
					created++
				} else {
					assert.Equal(t, http.StatusForbidden, c)
				}
			}
			assert.Equal(t, 1, created, "sign-ins that created a user")
			require.Len(t, h.users(), 1, "one user holds the email")
			assert.Len(t, h.eventsOf(jit.EventRefused), n-1)
			for _, e := range h.eventsOf(jit.EventRefused) {
				assert.ErrorIs(t, e.Err, jit.ErrIdentifierConflict)
			}
		})
	}
}
