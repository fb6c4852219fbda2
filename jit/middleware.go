package jit

import (
	"context"
	"crypto/rsa"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// Middleware signs people in through the configured IdP connections and
// provisions their user records. It serves the SAML endpoints itself (mount
// it at [Options.PathPrefix]) and protects application handlers with
// [Middleware.RequireUser]. It is safe for concurrent use. When a
// connection's metadata comes from [Connection.IDPMetadataURL], New starts
// one goroutine that keeps it fresh; call [Middleware.Close] to stop it.
type Middleware struct {
	store       userstore.Store
	replay      userstore.ReplayCache
	records     userstore.Sessions     // the session records; the cookie holds their IDs
	lazy        userstore.LazySessions // records, when it can leave a user's lists undecoded; else nil
	sessions    sessions.Store         // the cookie's values
	codecs      []securecookie.Codec
	sessionName string
	lifetime    time.Duration
	secure      bool
	root        *url.URL
	prefix      string
	afterSignIn string
	afterLogout string
	now         func() time.Time
	skew        time.Duration
	maxBytes    int
	maxDepth    int
	log         *slog.Logger
	onEvent     func(context.Context, Event)
	renderError func(http.ResponseWriter, *http.Request, *Failure)
	spKey       *rsa.PrivateKey       // Options.Key, when it is an RSA key
	decryptKeys []*rsa.PrivateKey     // spKey (if any), then Options.NextKey and Options.DecryptionKeys
	rollover    keyRollover           // the SP's next key pair (keyrollover.go)
	linker      userstore.Linker      // set when the store can look users up by email and link
	signInStore userstore.SignInStore // set when the store is the replay cache and can do both at once
	activity    *activity             // Options.Activity; nil when nothing is reported

	// signInWith is set when signInStore can also read a first
	// sign-in's email holders in its transaction; sessionInTx when it is
	// the session records too, which it then records in that transaction.
	signInWith  userstore.SignInWithStore
	sessionInTx bool

	// crossCheck, set only by this package's tests, sees every response
	// that passes the structural checks, to run it through both the fast
	// path and crewjam (fastpath_oracle_test.go).
	crossCheck func(s *signIn, raw []byte, root *etree.Element, st structure, ids []string)

	conns  []*connection
	byName map[string]*connection
	routes map[string]http.HandlerFunc

	chooser http.Handler // Options.Chooser; nil for the email page

	// Stored connections (registry.go): reg is nil without
	// Options.ConnectionStore; opts builds them as New built the others.
	reg         *registry
	opts        Options
	codeDomains map[string]*connection // verified domains of Options.Connections

	httpClient   *http.Client  // fetches IDPMetadataURL
	refreshEvery time.Duration // the longest a fetched metadata copy is kept
	stop         context.CancelFunc
	closeOnce    sync.Once
	wg           sync.WaitGroup
}

// connection is a configured IdP connection, resolved.
type connection struct {
	name, display string
	issuer        string // the IdP's entity ID; every user key's Issuer
	entityID      string // this SP's entity ID towards the IdP
	acsURL        string
	acsPath       string
	sloPath       string // the Single Logout endpoint, both bindings
	loginPath     string
	metadataPath  string
	mapper        claims.Mapper
	allowIDPInit  bool
	allowSHA1     bool
	allowCBC      bool // Connection.AllowCBCWithoutSignedResponse
	policy        Policy
	lint          lint
	spBase        saml.ServiceProvider // the SP, without IdP metadata
	mdURL         *url.URL             // IDPMetadataURL; nil when the metadata was given
	idp           atomic.Pointer[idpSnapshot]
	domains       []string    // Connection.Domains: the verified email domains
	stored        bool        // read from Options.ConnectionStore
	health        *connHealth // carried over when a stored connection is rebuilt
}

var connName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// New validates opts, loads every connection's IdP metadata (fetching it
// from IDPMetadataURL where given) and returns the middleware. Metadata
// whose validUntil has passed is refused. When a connection has an
// IDPMetadataURL, New also starts the background refresh described at
// [Connection.IDPMetadataURL]; the returned Middleware must then be stopped
// with [Middleware.Close]. ctx bounds the initial fetches only.
func New(ctx context.Context, opts Options) (*Middleware, error) {
	m, err := newMiddleware(&opts)
	if err != nil {
		return nil, err
	}
	if m.refreshEvery < 0 {
		return nil, fmt.Errorf("jit: Options.MetadataRefreshInterval %s is negative", m.refreshEvery)
	}
	if m.store == nil {
		return nil, errors.New("jit: Options.Store is required")
	}
	if m.replay == nil {
		rc, ok := m.store.(userstore.ReplayCache)
		if !ok {
			return nil, errors.New("jit: Options.Replay is required: the store does not keep a replay record")
		}
		m.replay = rc
	}
	if m.records == nil {
		rs, ok := m.store.(userstore.Sessions)
		if !ok {
			return nil, errors.New("jit: Options.Sessions is required: the store does not keep sessions (userstore.Sessions), and a session only a cookie holds cannot be ended by a logout, an administrator or a suspension")
		}
		m.records = rs
	}
	m.lazy, _ = m.records.(userstore.LazySessions)
	if m.activity, err = newActivity(opts.Activity); err != nil {
		return nil, err
	}
	if sameValue(m.replay, m.store) {
		// The store is its own replay cache: record and provision in
		// one transaction when it can.
		m.signInStore, _ = m.store.(userstore.SignInStore)
		m.signInWith, _ = m.store.(userstore.SignInWithStore)
		m.sessionInTx = m.signInWith != nil && sameValue(m.records, m.store)
	}
	root, err := checkRootURL(opts.RootURL)
	if err != nil {
		return nil, err
	}
	root.Path = strings.TrimSuffix(root.Path, "/")
	m.root = root
	m.secure = root.Scheme == "https"
	m.sessionName = m.cookieName(m.sessionName)
	m.prefix = root.Path + "/" + strings.Trim(orDefault(opts.PathPrefix, DefaultPathPrefix), "/")
	if !isLocalPath(m.afterSignIn) {
		return nil, fmt.Errorf("jit: Options.AfterSignInPath %q must be a local path", m.afterSignIn)
	}
	if m.afterLogout = orDefault(opts.AfterLogoutPath, m.afterSignIn); !isLocalPath(m.afterLogout) {
		return nil, fmt.Errorf("jit: Options.AfterLogoutPath %q must be a local path", m.afterLogout)
	}
	if opts.Key == nil || opts.Certificate == nil {
		return nil, errors.New("jit: Options.Key and Options.Certificate are required")
	}
	if len(opts.SessionKeys) == 0 {
		if opts.SessionStore != nil {
			return nil, errors.New("jit: Options.SessionKeys is required even with a SessionStore: they seal the cookie that ties an IdP's response to the browser that started the sign-in")
		}
		return nil, errors.New("jit: Options.SessionKeys is required")
	}
	for i, k := range opts.SessionKeys {
		switch {
		case i%2 == 0 && len(k) < 32:
			return nil, fmt.Errorf("jit: session authentication key %d (SessionKeys[%d]) is %d bytes; use 32 or 64 random bytes", i/2, i, len(k))
		case i%2 == 1 && len(k) != 0 && len(k) != 16 && len(k) != 24 && len(k) != 32:
			// Usually an older authentication key put where the pair's
			// encryption key goes: keys come in pairs.
			return nil, fmt.Errorf("jit: session encryption key %d (SessionKeys[%d]) is %d bytes; keys come in pairs (authentication key, then a 16-, 24- or 32-byte encryption key or nil)", i/2, i, len(k))
		}
	}
	m.codecs = securecookie.CodecsFromPairs(opts.SessionKeys...)
	for _, c := range m.codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int(requestLifetime / time.Second))
			sc.SetSerializer(cookieSerializer{})
		}
	}
	if m.sessions == nil {
		cs := sessions.NewCookieStore(opts.SessionKeys...)
		cs.MaxAge(int(m.lifetime / time.Second))
		for _, c := range cs.Codecs {
			if sc, ok := c.(*securecookie.SecureCookie); ok {
				sc.SetSerializer(cookieSerializer{})
			}
		}
		m.sessions = cs
	}
	if len(opts.Connections) == 0 && opts.ConnectionStore == nil {
		return nil, errors.New("jit: at least one Connection, or a ConnectionStore, is required")
	}
	issuers := map[string]string{}
	for i := range opts.Connections {
		c, err := m.servedConnection(ctx, &opts, &opts.Connections[i], len(opts.Connections))
		if err != nil {
			return nil, err
		}
		if _, dup := m.byName[c.name]; dup {
			return nil, fmt.Errorf("jit: two connections are named %q", c.name)
		}
		if other, dup := issuers[c.issuer]; dup {
			return nil, fmt.Errorf("jit: connections %q and %q trust the same IdP %q; users must be bound to one connection", other, c.name, c.issuer)
		}
		issuers[c.issuer] = c.name
		m.byName[c.name] = c
		m.conns = append(m.conns, c)
		m.routes[c.metadataPath] = func(w http.ResponseWriter, r *http.Request) { m.serveMetadata(w, r, c) }
		m.routes[c.loginPath] = func(w http.ResponseWriter, r *http.Request) { m.serveLogin(w, r, c) }
		m.routes[c.acsPath] = func(w http.ResponseWriter, r *http.Request) { m.serveACS(w, r, c) }
		m.routes[c.sloPath] = func(w http.ResponseWriter, r *http.Request) { m.serveSLO(w, r, c) }
	}
	if _, ok := m.routes[m.prefix+"/login"]; !ok {
		m.routes[m.prefix+"/login"] = m.serveChooser
	}
	m.routes[m.prefix+"/logout"] = m.serveLogout
	m.routes[m.prefix+"/failed"] = m.serveFailed
	if err := m.indexConnections(&opts); err != nil {
		return nil, err
	}
	m.startRefresher(ctx)
	if m.reg != nil {
		if err := m.startConnectionSync(ctx); err != nil {
			_ = m.Close()
			return nil, err
		}
	}
	return m, nil
}

// newMiddleware is the part of New that [Explain] shares: every setting a
// sign-in is judged with (clock, tolerance, bounds, keys, logger) and what
// the store can do. It requires nothing only serving needs; New checks
// those.
func newMiddleware(opts *Options) (*Middleware, error) {
	m := &Middleware{
		store:        opts.Store,
		replay:       opts.Replay,
		records:      opts.Sessions,
		sessions:     opts.SessionStore,
		sessionName:  orDefault(opts.SessionName, DefaultSessionName),
		lifetime:     orDefault(opts.SessionLifetime, DefaultSessionLifetime),
		afterSignIn:  orDefault(opts.AfterSignInPath, "/"),
		now:          opts.Now,
		skew:         orDefault(opts.ClockSkew, DefaultClockSkew),
		maxBytes:     orDefault(opts.MaxResponseBytes, DefaultMaxResponseBytes),
		maxDepth:     orDefault(opts.MaxXMLDepth, DefaultMaxXMLDepth),
		log:          opts.Logger,
		onEvent:      opts.OnEvent,
		renderError:  opts.RenderError,
		chooser:      opts.Chooser,
		byName:       map[string]*connection{},
		routes:       map[string]http.HandlerFunc{},
		httpClient:   opts.HTTPClient,
		refreshEvery: orDefault(opts.MetadataRefreshInterval, DefaultMetadataRefreshInterval),
	}
	m.httpClient = metadataClient(m.httpClient)
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.renderError == nil {
		m.renderError = defaultRenderError
	}
	m.linker, _ = m.store.(userstore.Linker)
	if rk, ok := opts.Key.(*rsa.PrivateKey); ok {
		m.spKey = rk
	}
	if err := m.setKeys(opts); err != nil {
		return nil, err
	}
	return m, nil
}

// sameValue reports whether a and b are the same value, such as one store
// given as both Store and Replay, without panicking on values Go cannot
// compare.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.ValueOf(a).Comparable() && a == b
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ServeHTTP serves the SAML endpoints: for each connection its metadata,
// login and ACS, plus PathPrefix+"/login" (a chooser when there are
// several connections), PathPrefix+"/logout" (a same-origin POST) and
// PathPrefix+"/failed" (the page a refused sign-in redirects to). Other
// paths get 404.
//
// When RootURL has a path ("https://example.com/app"), the endpoints are
// under it ("/app/saml/acs", as the SP metadata says) and are served at
// that path, or without it when a proxy in front strips it. Mount the
// middleware at [Middleware.Prefix] + "/".
func (m *Middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m.routes[r.URL.Path]
	if !ok && m.root.Path != "" {
		h, ok = m.routes[m.root.Path+r.URL.Path]
	}
	if !ok {
		h, ok = m.storedRoute(r.URL.Path)
	}
	if !ok && m.root.Path != "" {
		h, ok = m.storedRoute(m.root.Path + r.URL.Path)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// Prefix returns the path the middleware's endpoints live under: RootURL's
// path followed by PathPrefix ("/saml" by default). Mount the middleware
// there: mux.Handle(mw.Prefix()+"/", mw).
func (m *Middleware) Prefix() string { return m.prefix }

// checkRootURL parses Options.RootURL, refusing what would start cleanly
// and then break every sign-in: no scheme or host, a host browsers cannot
// reach (0.0.0.0, ::), a query or a fragment.
func checkRootURL(raw string) (*url.URL, error) {
	root, err := url.Parse(raw)
	if err != nil || (root.Scheme != "https" && root.Scheme != "http") || root.Host == "" || root.RawQuery != "" || root.Fragment != "" {
		return nil, fmt.Errorf("jit: Options.RootURL %q must be an absolute http(s) URL with no query", raw)
	}
	host := root.Hostname()
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("jit: Options.RootURL %q names no host a browser can reach; use the address people open, such as http://localhost%s", raw, portOf(root))
	}
	return root, nil
}

// portOf returns ":port" of u, or "".
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return ":" + p
	}
	return ""
}

// LoginURL returns the local path that starts a sign-in and comes back to
// returnTo (a local path; anything else is replaced by AfterSignInPath).
// With several connections it leads to the chooser.
func (m *Middleware) LoginURL(returnTo string) string {
	p := m.prefix + "/login"
	if len(m.conns) == 1 && m.reg == nil {
		p = m.conns[0].loginPath
	}
	if isLocalPath(returnTo) {
		p += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	return p
}

// Connections returns the names of the served connections: those of
// Options.Connections in order, then the enabled stored ones by name.
func (m *Middleware) Connections() []string {
	names := make([]string, len(m.conns))
	for i, c := range m.conns {
		names[i] = c.name
	}
	for _, c := range m.storedConnections() {
		names = append(names, c.name)
	}
	return names
}

// MetadataURL returns the absolute URL of a connection's SP metadata, the
// document to give the IdP's administrator.
func (m *Middleware) MetadataURL(connection string) (string, bool) {
	c, ok := m.connection(connection)
	if !ok {
		return "", false
	}
	u := *m.root
	u.Path = c.metadataPath
	return u.String(), true
}

func (m *Middleware) serveMetadata(w http.ResponseWriter, r *http.Request, c *connection) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sp := c.current().sp
	buf, err := xml.MarshalIndent(m.spMetadata(&sp), "", "  ")
	if err != nil {
		m.log.ErrorContext(r.Context(), "SP metadata", "connection", c.name, "err", err)
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(buf)
}

// spMetadata is crewjam's SP metadata trimmed to what this SP serves: one
// HTTP-POST assertion consumer service (crewjam also lists HTTP-Artifact,
// which the ACS does not accept), the Single Logout endpoint with the
// HTTP-Redirect and HTTP-POST bindings when the connection serves one
// (crewjam would list one with an empty Location otherwise), valid for
// saml.DefaultValidDuration by this middleware's clock.
func (m *Middleware) spMetadata(sp *saml.ServiceProvider) *saml.EntityDescriptor {
	md := sp.Metadata()
	validUntil := m.now().Add(saml.DefaultValidDuration).UTC()
	md.ValidUntil = validUntil
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		d.ValidUntil = &validUntil
		if sp.SloURL.String() == "" {
			d.SingleLogoutServices = nil
		}
		var acs []saml.IndexedEndpoint
		for _, e := range d.AssertionConsumerServices {
			if e.Binding == saml.HTTPPostBinding {
				acs = append(acs, e)
			}
		}
		d.AssertionConsumerServices = acs
	}
	m.publishNextKey(md)
	return md
}

// serveLogin starts an SP-initiated sign-in: it records the request in a
// short-lived cookie bound to this browser and sends the browser to the
// IdP. RelayState is an opaque random key to that cookie.
func (m *Middleware) serveLogin(w http.ResponseWriter, r *http.Request, c *connection) {
	returnTo := r.URL.Query().Get("return_to")
	if !isLocalPath(returnTo) || len(returnTo) > maxReturnTo {
		returnTo = m.afterSignIn
	}
	idp := c.current()
	if err := c.checkFresh(idp, m.now()); err != nil {
		m.fail(w, r, failure(err, newCorrelationID(), c.name))
		return
	}
	sp := idp.sp
	req, err := sp.MakeAuthenticationRequest(idp.ssoURL, idp.binding, saml.HTTPPostBinding)
	if err != nil {
		m.fail(w, r, failure(fmt.Errorf("make AuthnRequest: %w", err), newCorrelationID(), c.name))
		return
	}
	relay := newID(16)
	if err := m.track(w, r, trackedRequest{Relay: relay, ID: req.ID, Conn: c.name, ReturnTo: returnTo, Expires: m.now().Add(requestLifetime).Unix()}); err != nil {
		m.fail(w, r, failure(fmt.Errorf("track AuthnRequest: %w", err), newCorrelationID(), c.name))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if idp.binding == saml.HTTPRedirectBinding {
		u, err := req.Redirect(relay, &sp)
		if err != nil {
			m.fail(w, r, failure(fmt.Errorf("encode AuthnRequest: %w", err), newCorrelationID(), c.name))
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src; script-src 'sha256-AjPdJSbZmeWHnEc5ykvJFay8FTWeTeRbs9dutfZ0HqE='; referrer no-referrer;")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(req.Post(relay))
}

func withReturnTo(p, returnTo string) string {
	if !isLocalPath(returnTo) {
		return p
	}
	return p + "?" + url.Values{"return_to": {returnTo}}.Encode()
}

// isLocalPath reports whether s is a same-origin relative path that is
// safe to redirect to: it starts with one "/", and has no scheme, host,
// backslash or control character, so "//evil", "/\evil", "https:evil" and
// "javascript:" are all refused.
func isLocalPath(s string) bool {
	if len(s) == 0 || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//")
}

func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, f *Failure) {
	m.logFailure(r.Context(), f)
	m.renderError(w, r, f)
}

// logFailure logs why a request was refused, under its correlation id.
func (m *Middleware) logFailure(ctx context.Context, f *Failure) {
	attrs := []slog.Attr{
		slog.String("correlation_id", f.CorrelationID),
		slog.String("connection", f.Connection),
		slog.Int("status", f.Status),
		slog.String("reason", truncate(f.Err.Error(), maxLoggedReason)),
	}
	if f.fix != "" {
		attrs = append(attrs, slog.String("fix", truncate(f.fix, 2*maxLoggedReason)))
	}
	m.log.LogAttrs(ctx, slog.LevelWarn, "request refused", attrs...)
}

// maxLoggedReason bounds the reason in a log line: reasons quote parts of
// the posted response (element names, namespace URIs), which an
// unauthenticated poster chooses.
const maxLoggedReason = 1024
