package entragraph

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// maxTenants bounds the token cache; past it, entries without a valid
// token are dropped.
const maxTenants = 4096

// tokenCache holds one app-only token per tenant, reused until shortly
// before it expires (oauth2.Token.Valid). At most one fetch per tenant runs
// at a time; others wait for it, as long as their own context allows.
//
// oauth2.ReuseTokenSource caches in the same way, but its token source
// fetches with the context it was built with: here every fetch uses the
// context of the sign-in that needs it, so the sign-in's budget bounds it.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*tenantToken
}

type tenantToken struct {
	lock chan struct{} // held during a fetch; guards tok
	tok  *oauth2.Token
}

// get returns tenant's cached token, or one from fetch.
func (c *tokenCache) get(ctx context.Context, tenant string, fetch func(context.Context) (*oauth2.Token, error)) (*oauth2.Token, error) {
	e := c.entry(tenant)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a token: %w", ErrToken, ctx.Err())
	}
	defer func() { <-e.lock }()
	if e.tok.Valid() {
		return e.tok, nil
	}
	tok, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	e.tok = tok
	return tok, nil
}

// drop forgets tok if it is still tenant's cached token (Graph refused it).
func (c *tokenCache) drop(tenant string, tok *oauth2.Token) {
	e := c.entry(tenant)
	e.lock <- struct{}{}
	if e.tok == tok {
		e.tok = nil
	}
	<-e.lock
}

func (c *tokenCache) entry(tenant string) *tenantToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[tenant]; ok {
		return e
	}
	if c.m == nil {
		c.m = map[string]*tenantToken{}
	}
	if len(c.m) >= maxTenants {
		for t, e := range c.m {
			select {
			case e.lock <- struct{}{}:
				if !e.tok.Valid() {
					delete(c.m, t)
				}
				<-e.lock
			default:
			}
		}
	}
	e := &tenantToken{lock: make(chan struct{}, 1)}
	c.m[tenant] = e
	return e
}

// jwtBearer is RFC 7523's client assertion type.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// fetchToken runs the client-credentials grant for tenant.
func (r *Resolver) fetchToken(ctx context.Context, tenant string, cred Credential) (*oauth2.Token, error) {
	tokenURL := r.authority + "/" + tenant + "/oauth2/v2.0/token"
	cfg := clientcredentials.Config{
		ClientID:     cred.ClientID,
		ClientSecret: cred.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       []string{r.scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	if cred.Key != nil {
		assertion, err := clientAssertion(cred, tokenURL, r.opts.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: signing the client assertion: %w", ErrToken, err)
		}
		cfg.EndpointParams = url.Values{"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, r.client))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			if code, ok := consentCode(re); ok {
				return nil, r.consent(tenant, cred.ClientID, "AADSTS"+code)
			}
			return nil, fmt.Errorf("%w: tenant %s: %s %q", ErrToken, tenant, re.ErrorCode, truncate(re.ErrorDescription))
		}
		return nil, fmt.Errorf("%w: tenant %s: %w", ErrToken, tenant, err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: tenant %s: the token endpoint returned no access token", ErrToken, tenant)
	}
	if tok.Expiry.IsZero() {
		// Entra always says when a token expires; never cache one forever.
		tok.Expiry = time.Now().Add(5 * time.Minute)
	}
	return tok, nil
}

// consentCodes are the AADSTS errors of a tenant where the application is
// not installed or its permissions are not granted.
var consentCodes = []string{
	"65001",   // the user or administrator has not consented
	"700016",  // application not found in the directory
	"7000229", // the application has no service principal in the tenant
	"500011",  // the resource principal was not found in the tenant
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// consentCode finds a consent AADSTS code in a token error: in
// error_codes, or in error_description ("AADSTS700016: Application with
// identifier … was not found in the directory …").
func consentCode(re *oauth2.RetrieveError) (string, bool) {
	var body struct {
		Codes []int `json:"error_codes"`
	}
	_ = json.Unmarshal(re.Body, &body)
	codes := make([]string, 0, len(body.Codes)+1)
	for _, c := range body.Codes {
		codes = append(codes, strconv.Itoa(c))
	}
	if m := aadstsRE.FindStringSubmatch(re.ErrorDescription); m != nil {
		codes = append(codes, m[1])
	}
	for _, c := range codes {
		if slices.Contains(consentCodes, c) {
			return c, true
		}
	}
	return "", false
}

// clientAssertion is the JWT that proves possession of the certificate's
// key at the token endpoint (Microsoft identity platform "certificate
// credentials"): PS256, the certificate's SHA-256 thumbprint in x5t#S256
// (and SHA-1 in x5t for older endpoints), audience the token endpoint,
// issuer and subject the client ID, valid for five minutes.
func clientAssertion(cred Credential, tokenURL string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.RegisteredClaims{
		Audience:  jwt.ClaimStrings{tokenURL},
		Issuer:    cred.ClientID,
		Subject:   cred.ClientID,
		ID:        base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	})
	s256 := sha256.Sum256(cred.Certificate.Raw)
	s1 := sha1.Sum(cred.Certificate.Raw)
	t.Header["x5t#S256"] = base64.RawURLEncoding.EncodeToString(s256[:])
	t.Header["x5t"] = base64.RawURLEncoding.EncodeToString(s1[:])
	return t.SignedString(cred.Key)
}
