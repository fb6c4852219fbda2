package entragraph

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
)

// Defaults of [Options].
const (
	// DefaultAuthorityURL is Entra ID's global sign-in authority.
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	// DefaultGraphURL is Microsoft Graph's global endpoint.
	DefaultGraphURL = "https://graph.microsoft.com"
	// DefaultTimeout is the time budget of one sign-in's resolution.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxPages caps the pages of memberships read per sign-in.
	DefaultMaxPages = 25
	// DefaultMaxRetries is how often a 429 or 503 answer is retried.
	DefaultMaxRetries = 3
)

const (
	// maxBodyBytes bounds one Graph page (999 IDs are about 60 KB).
	maxBodyBytes = 2 << 20
	// defaultRetryAfter is the wait when a 429 or 503 names none.
	defaultRetryAfter = time.Second
)

// Credential is an application (client) ID with one secret: a client
// secret, or a certificate and its private key (the token request then
// carries a client assertion signed with the key).
type Credential struct {
	// ClientID is the app registration's application (client) ID.
	ClientID string
	// ClientSecret is a client secret of the app registration.
	ClientSecret string
	// Certificate is a certificate uploaded to the app registration, and
	// Key its private key; used instead of a secret when set.
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
}

func (c Credential) validate() error {
	if c.ClientID == "" {
		return errors.New("entragraph: ClientID is required")
	}
	hasCert := c.Certificate != nil || c.Key != nil
	switch {
	case c.ClientSecret != "" && hasCert:
		return errors.New("entragraph: set ClientSecret or Certificate and Key, not both")
	case c.ClientSecret == "" && !hasCert:
		return errors.New("entragraph: a ClientSecret, or a Certificate and Key, is required")
	case hasCert && (c.Certificate == nil || c.Key == nil):
		return errors.New("entragraph: Certificate and Key go together")
	case hasCert && !c.Key.PublicKey.Equal(c.Certificate.PublicKey):
		return errors.New("entragraph: Key is not the Certificate's private key")
	}
	return nil
}

// Options configures a [Resolver]. Credential is required; every other
// zero value is a safe default.
type Options struct {
	// Credential is the application's identity, used for every tenant
	// not in Tenants: a multi-tenant app registration resolves for every
	// tenant that has granted it admin consent.
	Credential Credential
	// Tenants holds credentials for tenants (keyed by tenant ID) that
	// registered the application in their own directory.
	Tenants map[string]Credential
	// AuthorityURL is the sign-in authority; the token endpoint is
	// {AuthorityURL}/{tenant}/oauth2/v2.0/token. Default
	// [DefaultAuthorityURL]; set it for a national cloud or a test double.
	AuthorityURL string
	// GraphURL is Microsoft Graph's base URL; tokens are requested for
	// {GraphURL}/.default. Default [DefaultGraphURL].
	GraphURL string
	// HTTPClient makes the token and Graph requests; default a client
	// that follows no redirects. Its timeouts add to Timeout's bound.
	HTTPClient *http.Client
	// Timeout is the time budget of one sign-in, token included; default
	// [DefaultTimeout].
	Timeout time.Duration
	// MaxPages caps the pages of memberships read; default
	// [DefaultMaxPages].
	MaxPages int
	// MaxGroups caps the groups returned; default
	// claims.DefaultMaxValues, jit's own limit.
	MaxGroups int
	// MaxRetries is how often a 429 or 503 answer is retried within the
	// budget; default [DefaultMaxRetries]; negative means never.
	MaxRetries int
	// InsecureSkipIssuerCheck resolves groups for the assertion's tenantid
	// even when the assertion's issuer is not that tenant's Entra issuer
	// (https://sts.windows.net/{tenant}/). Without the check, an IdP that
	// is not Entra ID could name another tenant's user and read their
	// memberships.
	InsecureSkipIssuerCheck bool
	// Now is the clock for client assertions; default time.Now.
	Now func() time.Time
}

// Resolver resolves Entra ID's groups overage through Microsoft Graph. It
// implements [jit.GroupResolver]; set it as a connection's
// Policy.GroupResolver. It is safe for concurrent use and starts no
// goroutine.
type Resolver struct {
	opts      Options
	authority string
	graph     *url.URL
	scope     string
	client    *http.Client
	tokens    tokenCache
}

var _ jit.GroupResolver = (*Resolver)(nil)

// New checks the options and returns a Resolver.
func New(opts Options) (*Resolver, error) {
	if err := opts.Credential.validate(); err != nil {
		return nil, err
	}
	for t, c := range opts.Tenants {
		if !isGUID(t) {
			return nil, fmt.Errorf("entragraph: Tenants: %q is not a tenant ID", t)
		}
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t, err)
		}
	}
	if opts.AuthorityURL == "" {
		opts.AuthorityURL = DefaultAuthorityURL
	}
	if opts.GraphURL == "" {
		opts.GraphURL = DefaultGraphURL
	}
	if _, err := baseURL("AuthorityURL", opts.AuthorityURL); err != nil {
		return nil, err
	}
	graph, err := baseURL("GraphURL", opts.GraphURL)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = DefaultMaxPages
	}
	if opts.MaxGroups <= 0 {
		opts.MaxGroups = claims.DefaultMaxValues
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Resolver{
		opts:      opts,
		authority: strings.TrimSuffix(opts.AuthorityURL, "/"),
		graph:     graph,
		scope:     strings.TrimSuffix(opts.GraphURL, "/") + "/.default",
		client:    client,
	}, nil
}

// baseURL parses an absolute http(s) URL with no query.
func baseURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("entragraph: %s %q is not an absolute http(s) URL without a query", name, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

// ResolveGroups returns the group object IDs of the user in q: the
// assertion's tenantid and objectidentifier claims name the tenant and
// the user. It implements [jit.GroupResolver].
func (r *Resolver) ResolveGroups(ctx context.Context, q jit.GroupsQuery) ([]string, error) {
	tenant, err := single(q.Identity, claims.ClaimEntraTenantID)
	if err != nil {
		return nil, err
	}
	user, err := single(q.Identity, claims.ClaimEntraObjectID)
	if err != nil {
		return nil, err
	}
	if !r.opts.InsecureSkipIssuerCheck && !strings.EqualFold(q.Key.Issuer, "https://sts.windows.net/"+tenant+"/") {
		return nil, fmt.Errorf("%w: tenantid %s, issuer %q (want https://sts.windows.net/%s/)", ErrTenantMismatch, tenant, q.Key.Issuer, tenant)
	}
	return r.MemberGroups(ctx, tenant, user)
}

// single returns the one value of a claim that must be a GUID.
func single(id *claims.Identity, name string) (string, error) {
	if id == nil {
		return "", fmt.Errorf("%w: no identity", ErrIdentity)
	}
	vs := id.Values(name)
	if len(vs) != 1 || !isGUID(vs[0]) {
		return "", fmt.Errorf("%w: %s must be one GUID, got %d values", ErrIdentity, name, len(vs))
	}
	return strings.ToLower(vs[0]), nil
}

// MemberGroups returns the IDs of the groups the user (by object ID) is a
// member of in tenant, directly or through nested groups, within the time
// budget. Every failure is an error; a nil error means the complete list.
func (r *Resolver) MemberGroups(ctx context.Context, tenant, user string) ([]string, error) {
	if !isGUID(tenant) || !isGUID(user) {
		return nil, fmt.Errorf("%w: tenant and user must be GUIDs", ErrIdentity)
	}
	tenant, user = strings.ToLower(tenant), strings.ToLower(user)
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	groups, err := r.memberGroups(ctx, tenant, user)
	if err != nil && ctx.Err() == context.DeadlineExceeded && !errors.Is(err, ErrTimeout) {
		return nil, fmt.Errorf("%w (%s) resolving groups of %s in tenant %s: %w", ErrTimeout, r.opts.Timeout, user, tenant, err)
	}
	return groups, err
}

func (r *Resolver) memberGroups(ctx context.Context, tenant, user string) ([]string, error) {
	cred := r.opts.Credential
	if c, ok := r.opts.Tenants[tenant]; ok {
		cred = c
	}
	tok, err := r.tokens.get(ctx, tenant, func(ctx context.Context) (*oauth2.Token, error) {
		return r.fetchToken(ctx, tenant, cred)
	})
	if err != nil {
		return nil, err
	}
	next := r.graph.JoinPath("v1.0", "users", user, "transitiveMemberOf", "microsoft.graph.group")
	next.RawQuery = "$select=id&$top=999"
	var groups []string
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > r.opts.MaxPages {
			return nil, fmt.Errorf("%w: more than %d pages of memberships for %s in tenant %s", ErrTooManyGroups, r.opts.MaxPages, user, tenant)
		}
		p, err := r.getPage(ctx, tenant, cred.ClientID, next, tok)
		if err != nil {
			return nil, err
		}
		for _, g := range p.Value {
			if g.Type != "" && g.Type != "#microsoft.graph.group" {
				continue
			}
			if !isGUID(g.ID) {
				return nil, fmt.Errorf("%w: page %d holds a group ID %q that is not a GUID", ErrGraph, page, truncate(g.ID))
			}
			id := strings.ToLower(g.ID)
			if !seen[id] {
				seen[id] = true
				groups = append(groups, id)
			}
		}
		if len(groups) > r.opts.MaxGroups {
			return nil, fmt.Errorf("%w: over %d groups for %s in tenant %s", ErrTooManyGroups, r.opts.MaxGroups, user, tenant)
		}
		if p.NextLink == "" {
			break
		}
		if next, err = r.sameGraph(p.NextLink); err != nil {
			return nil, err
		}
	}
	if groups == nil {
		groups = []string{}
	}
	return groups, nil
}

// sameGraph accepts a @odata.nextLink only on the configured Graph host
// and path, so that the token is never sent elsewhere.
func (r *Resolver) sameGraph(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != r.graph.Scheme || u.Host != r.graph.Host || !strings.HasPrefix(u.Path, r.graph.Path+"/v1.0/") || u.User != nil {
		return nil, fmt.Errorf("%w: @odata.nextLink %q is not on %s", ErrGraph, truncate(link), r.graph)
	}
	return u, nil
}

// page is one page of a Graph collection.
type page struct {
	Value []struct {
		ID   string `json:"id"`
		Type string `json:"@odata.type"`
	} `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// graphError is Graph's error body.
type graphError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// getPage GETs one page, retrying 429 and 503 after their Retry-After when
// the wait fits in the budget.
func (r *Resolver) getPage(ctx context.Context, tenant, clientID string, u *url.URL, tok *oauth2.Token) (*page, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrGraph, err)
		}
		tok.SetAuthHeader(req)
		req.Header.Set("Accept", "application/json")
		// $select on a cast of transitiveMemberOf is an advanced query.
		req.Header.Set("ConsistencyLevel", "eventual")
		resp, err := r.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrGraph, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: reading the answer: %w", ErrGraph, err)
		}
		if len(body) > maxBodyBytes {
			return nil, fmt.Errorf("%w: a page is over %d bytes", ErrGraph, maxBodyBytes)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var p page
			if err := json.Unmarshal(body, &p); err != nil {
				return nil, fmt.Errorf("%w: unreadable page: %w", ErrGraph, err)
			}
			return &p, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			wait := retryAfter(resp.Header.Get("Retry-After"), r.opts.Now())
			if attempt >= r.opts.MaxRetries {
				return nil, fmt.Errorf("%w: %s after %d retries", ErrThrottled, resp.Status, attempt)
			}
			if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
				return nil, fmt.Errorf("%w: %s, Retry-After %s is past the time budget", ErrThrottled, resp.Status, wait)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w: %s: %w", ErrThrottled, resp.Status, ctx.Err())
			}
			continue
		}
		var ge graphError
		_ = json.Unmarshal(body, &ge)
		switch {
		case resp.StatusCode == http.StatusForbidden && ge.Error.Code == "Authorization_RequestDenied":
			return nil, r.consent(tenant, clientID, "Graph 403 Authorization_RequestDenied")
		case resp.StatusCode == http.StatusUnauthorized:
			r.tokens.drop(tenant, tok)
		}
		return nil, fmt.Errorf("%w: %s %s: %s", ErrGraph, resp.Status, truncate(ge.Error.Code), truncate(ge.Error.Message))
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(min(s, 86400)) * time.Second // no overflow
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return defaultRetryAfter
}

// consent is the error of a tenant that has not granted admin consent.
func (r *Resolver) consent(tenant, clientID, reason string) error {
	u := r.authority + "/" + tenant + "/adminconsent?" + url.Values{"client_id": {clientID}}.Encode()
	return &ConsentError{Tenant: tenant, ClientID: clientID, URL: u, Reason: reason}
}

// truncate bounds text taken from a remote answer before it is logged.
func truncate(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
