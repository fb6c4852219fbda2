// This file holds no tests: it is the Microsoft Graph double the tests and
// benchmarks of the package run against. It answers with the request and
// response shapes Microsoft documents:
//
//   - the identity platform's token endpoint, POST /{tenant}/oauth2/v2.0/token
//     (client credentials with a client_secret or a client_assertion; errors
//     as {"error", "error_description": "AADSTS…", "error_codes": […]});
//   - Graph's GET /v1.0/users/{id}/transitiveMemberOf/microsoft.graph.group
//     ({"@odata.context", "@odata.nextLink", "value": [{"@odata.type", "id"}]}),
//     paged with an opaque $skiptoken;
//   - Graph's errors ({"error": {"code", "message", "innerError"}}): 403
//     Authorization_RequestDenied, 404 Request_ResourceNotFound, 401
//     InvalidAuthenticationToken, 429 TooManyRequests with Retry-After.

package entragraph_test

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// graphDouble is Entra ID's token endpoint and Microsoft Graph in one
// httptest server on 127.0.0.1.
type graphDouble struct {
	srv *httptest.Server

	mu           sync.Mutex
	clientID     string
	secret       string            // accepted client secret
	cert         *x509.Certificate // accepted client assertion signer
	consented    map[string]bool   // tenants where the app is installed
	permitted    map[string]bool   // tenants that granted the Graph permission
	members      map[string]map[string][]string
	pageSize     int
	throttle     int               // 429 answers left before pages are served
	retryAfter   string            // Retry-After of those answers
	slowPage     int               // page number (1-based) answered slowly; 0 none
	slowBy       time.Duration     // how slowly
	tokens       map[string]string // access token → tenant
	tokenCalls   int
	graphCalls   int
	tokenExpires int                 // expires_in of issued tokens
	nextLinkBase string              // host of @odata.nextLink; default the double's
	scope        string              // the scope a token request must ask; default {URL}/.default
	others       []map[string]string // objects served ahead of the groups on the first page
	padTo        int                 // pad each page with spaces to this many bytes; 0 none
}

func newGraphDouble(t testing.TB, clientID string) *graphDouble {
	g := &graphDouble{
		clientID:     clientID,
		consented:    map[string]bool{},
		permitted:    map[string]bool{},
		members:      map[string]map[string][]string{},
		pageSize:     100,
		tokens:       map[string]string{},
		tokenExpires: 3599,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", g.token)
	mux.HandleFunc("GET /v1.0/users/{user}/transitiveMemberOf/microsoft.graph.group", g.memberOf)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// URL is both the authority and the Graph base URL of the double.
func (g *graphDouble) URL() string { return g.srv.URL }

// addTenant installs the app in tenant with the Graph permission granted.
func (g *graphDouble) addTenant(tenant string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.consented[tenant] = true
	g.permitted[tenant] = true
	g.members[tenant] = map[string][]string{}
}

func (g *graphDouble) setMembers(tenant, user string, groups []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members[tenant][user] = groups
}

func (g *graphDouble) set(f func(g *graphDouble)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *graphDouble) calls() (token, graph int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokenCalls, g.graphCalls
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// aadError is the token endpoint's error body.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0b1f3c52-8e77-4f1e-a1a4-2c6f0c9f0100\r\nCorrelation ID: 7d2f5b1e-3c4a-4a8e-9f10-5b6c7d8e9f00\r\nTimestamp: 2026-12-06 09:00:00Z", aadsts, desc),
		"error_codes":       []int{aadsts},
		"timestamp":         "2026-12-06 09:00:00Z",
		"trace_id":          "0b1f3c52-8e77-4f1e-a1a4-2c6f0c9f0100",
		"correlation_id":    "7d2f5b1e-3c4a-4a8e-9f10-5b6c7d8e9f00",
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

// graphErr is Graph's error body.
func graphErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"innerError": map[string]string{"date": "2026-12-06T09:00:00", "request-id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "client-request-id": "5f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
	}})
}

func (g *graphDouble) token(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokenCalls++
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	case f.Get("scope") != cmp.Or(g.scope, g.srv.URL+"/.default"):
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid.")
		return
	case f.Get("client_id") != g.clientID:
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), tenant))
		return
	case !g.consented[tenant]:
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", g.clientID, tenant))
		return
	}
	tokenURL := g.srv.URL + "/" + tenant + "/oauth2/v2.0/token"
	switch {
	case f.Has("client_assertion"):
		if g.cert == nil || f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Has("client_secret") {
			aadError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
			return
		}
		if err := g.checkAssertion(f.Get("client_assertion"), tokenURL); err != nil {
			aadError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation: "+err.Error())
			return
		}
	case g.secret == "" || f.Get("client_secret") != g.secret:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "eyJ0eXAiOiJKV1Qi." + hex.EncodeToString(b)
	g.tokens[tok] = tenant
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": g.tokenExpires, "ext_expires_in": g.tokenExpires, "access_token": tok})
}

// checkAssertion verifies a client assertion as Entra ID does: signed by
// the registered certificate's key, named by its thumbprint, for this
// token endpoint, by the client, within its validity.
func (g *graphDouble) checkAssertion(s, tokenURL string) error {
	var c jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(s, &c, func(t *jwt.Token) (any, error) {
		sum := sha256.Sum256(g.cert.Raw)
		if t.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, fmt.Errorf("unknown x5t#S256 %v", t.Header["x5t#S256"])
		}
		return g.cert.PublicKey.(*rsa.PublicKey), nil
	}, jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithAudience(tokenURL), jwt.WithIssuer(g.clientID), jwt.WithSubject(g.clientID), jwt.WithExpirationRequired())
	if err != nil {
		return err
	}
	if !tok.Valid || c.ID == "" {
		return fmt.Errorf("no jti")
	}
	return nil
}

func (g *graphDouble) memberOf(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.graphCalls++
	auth := r.Header.Get("Authorization")
	tenant, ok := g.tokens[strings.TrimPrefix(auth, "Bearer ")]
	if !strings.HasPrefix(auth, "Bearer ") || !ok {
		g.mu.Unlock()
		graphErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return
	}
	if g.throttle > 0 {
		g.throttle--
		ra := g.retryAfter
		g.mu.Unlock()
		w.Header().Set("Retry-After", ra)
		graphErr(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return
	}
	if !g.permitted[tenant] {
		g.mu.Unlock()
		graphErr(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	q := r.URL.Query()
	if q.Get("$select") != "id" {
		g.mu.Unlock()
		graphErr(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Expected $select=id.")
		return
	}
	user := r.PathValue("user")
	groups, ok := g.members[tenant][user]
	if !ok {
		g.mu.Unlock()
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", user))
		return
	}
	size := g.pageSize
	if top, err := strconv.Atoi(q.Get("$top")); err == nil && top < size {
		size = top
	}
	start, _ := strconv.Atoi(q.Get("$skiptoken"))
	slow, slowBy, nextLinkBase, others, padTo := g.slowPage, g.slowBy, g.nextLinkBase, g.others, g.padTo
	g.mu.Unlock()

	if slow > 0 && start/size+1 == slow {
		select {
		case <-time.After(slowBy):
		case <-r.Context().Done():
			return
		}
	}
	end := min(start+size, len(groups))
	value := []map[string]string{}
	if start == 0 {
		value = append(value, others...)
	}
	for _, id := range groups[start:end] {
		value = append(value, map[string]string{"@odata.type": "#microsoft.graph.group", "id": id})
	}
	body := map[string]any{"@odata.context": g.srv.URL + "/v1.0/$metadata#groups(id)", "value": value}
	if end < len(groups) {
		base := g.srv.URL
		if nextLinkBase != "" {
			base = nextLinkBase
		}
		body["@odata.nextLink"] = base + r.URL.Path + "?$select=id&$top=" + q.Get("$top") + "&$skiptoken=" + strconv.Itoa(end)
	}
	if padTo == 0 {
		writeJSON(w, http.StatusOK, body)
		return
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(append(b, bytes.Repeat([]byte{' '}, max(padTo-len(b), 0))...))
}
