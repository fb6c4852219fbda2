package entragraph_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/entragraph"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
)

const (
	testClientID = "11111111-2222-4333-8444-555555555555"
	testSecret   = "s3cr3t~value"
)

// guid returns a random, lower-case GUID.
func guid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func guids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = guid()
	}
	return out
}

// fixture is a double with one consenting tenant, a user in 250 groups
// (three pages of at most 100), and a resolver using a client secret.
type fixture struct {
	g      *graphDouble
	tenant string
	user   string
	groups []string
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{g: newGraphDouble(t, testClientID), tenant: guid(), user: guid(), groups: guids(250)}
	f.g.set(func(g *graphDouble) { g.secret = testSecret })
	f.g.addTenant(f.tenant)
	f.g.setMembers(f.tenant, f.user, f.groups)
	return f
}

func (f *fixture) resolver(t testing.TB, edit ...func(*entragraph.Options)) *entragraph.Resolver {
	opts := entragraph.Options{
		Credential:   entragraph.Credential{ClientID: testClientID, ClientSecret: testSecret},
		AuthorityURL: f.g.URL(),
		GraphURL:     f.g.URL(),
	}
	for _, e := range edit {
		e(&opts)
	}
	r, err := entragraph.New(opts)
	require.NoError(t, err)
	return r
}

func TestMemberGroupsPagesAndCachesTheToken(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t)
	got, err := r.MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Equal(t, f.groups, got, "all three pages, in order")
	tokens, pages := f.g.calls()
	assert.Equal(t, 1, tokens)
	assert.Equal(t, 3, pages)

	got, err = r.MemberGroups(t.Context(), strings.ToUpper(f.tenant), strings.ToUpper(f.user))
	require.NoError(t, err)
	assert.Equal(t, f.groups, got)
	tokens, _ = f.g.calls()
	assert.Equal(t, 1, tokens, "the tenant's token is reused until it expires")

	other, otherUser := guid(), guid()
	f.g.addTenant(other)
	f.g.setMembers(other, otherUser, nil)
	got, err = r.MemberGroups(t.Context(), other, otherUser)
	require.NoError(t, err)
	assert.Equal(t, []string{}, got, "a complete, empty list")
	tokens, _ = f.g.calls()
	assert.Equal(t, 2, tokens, "one token per tenant")
}

func TestTokenExpiryRefetches(t *testing.T) {
	f := newFixture(t)
	// oauth2 treats a token as expired 10 s early: 5 s is already stale.
	f.g.set(func(g *graphDouble) { g.tokenExpires = 5 })
	r := f.resolver(t)
	for range 2 {
		_, err := r.MemberGroups(t.Context(), f.tenant, f.user)
		require.NoError(t, err)
	}
	tokens, _ := f.g.calls()
	assert.Equal(t, 2, tokens)
}

func TestRevokedTokenIsDropped(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t)
	_, err := r.MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	f.g.set(func(g *graphDouble) { clear(g.tokens) })
	_, err = r.MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrGraph)
	assert.Contains(t, err.Error(), "InvalidAuthenticationToken")
	_, err = r.MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err, "the refused token was forgotten")
	tokens, _ := f.g.calls()
	assert.Equal(t, 2, tokens)
}

func TestCertificateCredential(t *testing.T) {
	f := newFixture(t)
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	f.g.set(func(g *graphDouble) { g.cert, g.secret = cert, "" })
	r := f.resolver(t, func(o *entragraph.Options) {
		o.Credential = entragraph.Credential{ClientID: testClientID, Certificate: cert, Key: key}
	})
	got, err := r.MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Equal(t, f.groups, got)

	// A key the tenant does not know is a token error, not a consent one.
	otherKey, otherCert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	r = f.resolver(t, func(o *entragraph.Options) {
		o.Credential = entragraph.Credential{ClientID: testClientID, Certificate: otherCert, Key: otherKey}
	})
	_, err = r.MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrToken)
	assert.NotErrorIs(t, err, entragraph.ErrConsentRequired)
	assert.Contains(t, err.Error(), "invalid_client")
}

func TestPerTenantCredential(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, func(o *entragraph.Options) {
		o.Credential.ClientSecret = "the wrong one"
		o.Tenants = map[string]entragraph.Credential{f.tenant: {ClientID: testClientID, ClientSecret: testSecret}}
	})
	got, err := r.MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Len(t, got, 250)
}

func TestWrongSecretIsATokenError(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t, func(o *entragraph.Options) { o.Credential.ClientSecret = "expired" })
	_, err := r.MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrToken)
	assert.NotErrorIs(t, err, entragraph.ErrConsentRequired)
	assert.Contains(t, err.Error(), "AADSTS7000215")
	assert.NotContains(t, err.Error(), "expired", "the secret is never in the error")
}

func TestNoConsent(t *testing.T) {
	t.Run("AppNotInTenant", func(t *testing.T) {
		f := newFixture(t)
		stranger := guid()
		r := f.resolver(t)
		_, err := r.MemberGroups(t.Context(), stranger, f.user)
		require.ErrorIs(t, err, entragraph.ErrConsentRequired)
		var ce *entragraph.ConsentError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, stranger, ce.Tenant)
		assert.Equal(t, "AADSTS700016", ce.Reason)
		assert.Equal(t, f.g.URL()+"/"+stranger+"/adminconsent?client_id="+testClientID, ce.URL)
		assert.Contains(t, err.Error(), ce.URL)
		assert.Contains(t, ce.Warning(), ce.URL)
		_, pages := f.g.calls()
		assert.Zero(t, pages)
	})
	t.Run("PermissionNotGranted", func(t *testing.T) {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) { g.permitted[f.tenant] = false })
		_, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
		require.ErrorIs(t, err, entragraph.ErrConsentRequired)
		assert.Contains(t, err.Error(), "Authorization_RequestDenied")
		assert.Contains(t, err.Error(), "/"+f.tenant+"/adminconsent?client_id="+testClientID)
	})
	t.Run("MicrosoftEndpoints", func(t *testing.T) {
		// The default authority and Graph URLs, with every request
		// delivered to the double: the token path, the scope, the paging
		// host and the consent URL are Microsoft's.
		f := newFixture(t)
		f.g.set(func(g *graphDouble) {
			g.scope, g.nextLinkBase = "https://graph.microsoft.com/.default", "https://graph.microsoft.com"
		})
		var hosts []string
		client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			hosts = append(hosts, req.URL.Host+req.URL.Path)
			to, _ := url.Parse(f.g.URL())
			req = req.Clone(req.Context())
			req.URL.Scheme, req.URL.Host = to.Scheme, to.Host
			return http.DefaultTransport.RoundTrip(req)
		})}
		r, err := entragraph.New(entragraph.Options{Credential: entragraph.Credential{ClientID: testClientID, ClientSecret: testSecret}, HTTPClient: client})
		require.NoError(t, err)
		got, err := r.MemberGroups(t.Context(), f.tenant, f.user)
		require.NoError(t, err)
		assert.Len(t, got, 250)
		require.Len(t, hosts, 4)
		assert.Equal(t, "login.microsoftonline.com/"+f.tenant+"/oauth2/v2.0/token", hosts[0])
		assert.Equal(t, "graph.microsoft.com/v1.0/users/"+f.user+"/transitiveMemberOf/microsoft.graph.group", hosts[1])

		_, err = r.MemberGroups(t.Context(), guid(), f.user)
		var ce *entragraph.ConsentError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "https://login.microsoftonline.com/"+ce.Tenant+"/adminconsent?client_id="+testClientID, ce.URL)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUnknownUserIsAGraphError(t *testing.T) {
	f := newFixture(t)
	_, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, guid())
	require.ErrorIs(t, err, entragraph.ErrGraph)
	assert.Contains(t, err.Error(), "Request_ResourceNotFound")
}

func TestThrottling(t *testing.T) {
	t.Run("RetryAfterWithinBudget", func(t *testing.T) {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) { g.throttle, g.retryAfter = 1, "1" })
		start := time.Now()
		got, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
		require.NoError(t, err)
		assert.Len(t, got, 250)
		assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After honoured")
		_, pages := f.g.calls()
		assert.Equal(t, 4, pages)
	})
	t.Run("RetryAfterPastBudget", func(t *testing.T) {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) { g.throttle, g.retryAfter = 1, "30" })
		start := time.Now()
		_, err := f.resolver(t, func(o *entragraph.Options) { o.Timeout = 2 * time.Second }).MemberGroups(t.Context(), f.tenant, f.user)
		require.ErrorIs(t, err, entragraph.ErrThrottled)
		assert.Less(t, time.Since(start), time.Second, "no pointless wait")
	})
	t.Run("RetriesRunOut", func(t *testing.T) {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) { g.throttle, g.retryAfter = 100, "0" })
		_, err := f.resolver(t, func(o *entragraph.Options) { o.MaxRetries = 2 }).MemberGroups(t.Context(), f.tenant, f.user)
		require.ErrorIs(t, err, entragraph.ErrThrottled)
		_, pages := f.g.calls()
		assert.Equal(t, 3, pages)
	})
	t.Run("HTTPDate", func(t *testing.T) {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) {
			g.throttle, g.retryAfter = 1, time.Now().Add(time.Hour).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
		})
		_, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
		require.ErrorIs(t, err, entragraph.ErrThrottled)
	})
}

func TestSlowPagePastBudget(t *testing.T) {
	f := newFixture(t)
	f.g.set(func(g *graphDouble) { g.slowPage, g.slowBy = 2, 10*time.Second })
	start := time.Now()
	_, err := f.resolver(t, func(o *entragraph.Options) { o.Timeout = 300 * time.Millisecond }).MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrTimeout)
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestCaps(t *testing.T) {
	f := newFixture(t)
	_, err := f.resolver(t, func(o *entragraph.Options) { o.MaxPages = 2 }).MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrTooManyGroups)
	_, err = f.resolver(t, func(o *entragraph.Options) { o.MaxGroups = 200 }).MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrTooManyGroups)
	got, err := f.resolver(t, func(o *entragraph.Options) { o.MaxPages, o.MaxGroups = 3, 250 }).MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Len(t, got, 250)
}

func TestNextLinkStaysOnGraph(t *testing.T) {
	f := newFixture(t)
	evil := newGraphDouble(t, testClientID)
	f.g.set(func(g *graphDouble) { g.nextLinkBase = evil.URL() })
	_, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrGraph)
	assert.Contains(t, err.Error(), "nextLink")
	_, pages := evil.calls()
	assert.Zero(t, pages, "the token never left Graph")
}

// query is what jit asks of a resolver for an Entra user.
func query(issuer string, attrs map[string][]string) jit.GroupsQuery {
	id := &claims.Identity{Issuer: issuer}
	for name, vs := range attrs {
		id.Attributes = append(id.Attributes, claims.Attribute{Name: name, Values: vs})
	}
	return jit.GroupsQuery{Key: userstore.Key{Issuer: issuer, Subject: "x"}, Identity: id}
}

func TestResolveGroupsChecksTheIdentity(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t)
	issuer := "https://sts.windows.net/" + f.tenant + "/"
	ok := map[string][]string{claims.ClaimEntraTenantID: {f.tenant}, claims.ClaimEntraObjectID: {f.user}}
	got, err := r.ResolveGroups(t.Context(), query(issuer, ok))
	require.NoError(t, err)
	assert.Equal(t, f.groups, got)

	cases := map[string]struct {
		issuer string
		attrs  map[string][]string
		want   error
	}{
		"NoTenant":        {issuer, map[string][]string{claims.ClaimEntraObjectID: {f.user}}, entragraph.ErrIdentity},
		"NoObjectID":      {issuer, map[string][]string{claims.ClaimEntraTenantID: {f.tenant}}, entragraph.ErrIdentity},
		"TwoObjectIDs":    {issuer, map[string][]string{claims.ClaimEntraTenantID: {f.tenant}, claims.ClaimEntraObjectID: {f.user, guid()}}, entragraph.ErrIdentity},
		"ObjectIDPath":    {issuer, map[string][]string{claims.ClaimEntraTenantID: {f.tenant}, claims.ClaimEntraObjectID: {"../../groups"}}, entragraph.ErrIdentity},
		"OtherIssuer":     {"https://idp.example/", ok, entragraph.ErrTenantMismatch},
		"OtherTenantsIdP": {"https://sts.windows.net/" + guid() + "/", ok, entragraph.ErrTenantMismatch},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := r.ResolveGroups(t.Context(), query(c.issuer, c.attrs))
			require.ErrorIs(t, err, c.want)
		})
	}
	tokens, pages := f.g.calls()
	assert.Equal(t, 1, tokens, "nothing is asked for a refused identity")
	assert.Equal(t, 3, pages)

	insecure := f.resolver(t, func(o *entragraph.Options) { o.InsecureSkipIssuerCheck = true })
	_, err = insecure.ResolveGroups(t.Context(), query("https://idp.example/", ok))
	require.NoError(t, err)
}

func TestNewRefusesBadOptions(t *testing.T) {
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	otherKey, _, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	for name, o := range map[string]entragraph.Options{
		"NoClientID":       {Credential: entragraph.Credential{ClientSecret: "s"}},
		"NoSecret":         {Credential: entragraph.Credential{ClientID: testClientID}},
		"Both":             {Credential: entragraph.Credential{ClientID: testClientID, ClientSecret: "s", Certificate: cert, Key: key}},
		"CertWithoutKey":   {Credential: entragraph.Credential{ClientID: testClientID, Certificate: cert}},
		"KeyNotCert":       {Credential: entragraph.Credential{ClientID: testClientID, Certificate: cert, Key: otherKey}},
		"TenantNotGUID":    {Credential: entragraph.Credential{ClientID: testClientID, ClientSecret: "s"}, Tenants: map[string]entragraph.Credential{"contoso.com": {ClientID: testClientID, ClientSecret: "s"}}},
		"GraphURLRelative": {Credential: entragraph.Credential{ClientID: testClientID, ClientSecret: "s"}, GraphURL: "graph.microsoft.com"},
		"AuthorityQuery":   {Credential: entragraph.Credential{ClientID: testClientID, ClientSecret: "s"}, AuthorityURL: "https://login.microsoftonline.com/?x=1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := entragraph.New(o)
			require.Error(t, err)
		})
	}
	_, err = entragraph.New(entragraph.Options{Credential: entragraph.Credential{ClientID: testClientID, Certificate: cert, Key: key}})
	require.NoError(t, err)
}

func TestCancelledSignIn(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.resolver(t).MemberGroups(ctx, f.tenant, f.user)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled))
}

// Concurrent sign-ins of one tenant share one token request.
func TestConcurrentSignInsShareOneToken(t *testing.T) {
	f := newFixture(t)
	r := f.resolver(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := r.MemberGroups(t.Context(), f.tenant, f.user)
			if err == nil && len(got) != 250 {
				err = fmt.Errorf("%d groups", len(got))
			}
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	tokens, pages := f.g.calls()
	assert.Equal(t, 1, tokens)
	assert.Equal(t, 24, pages)
}
