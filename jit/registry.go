package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// Defaults of the connections read from [Options.ConnectionStore].
const (
	// DefaultConnectionPollInterval is how often the store's change
	// version is read when [Options.ConnectionPollInterval] is zero: a
	// change is live on every instance within it.
	DefaultConnectionPollInterval = 5 * time.Second
	// storedRetryAfter is how long a stored connection that could not be
	// built (its metadata URL unreachable) waits before it is tried again.
	storedRetryAfter = 30 * time.Second
)

// registry holds the connections read from Options.ConnectionStore, beside
// the code-configured ones of Options.Connections, which never change and
// are looked up first. Requests read it under a read lock: a name or a
// domain is one map lookup, however many connections there are. A sync
// builds what changed outside the lock and swaps it in under it, so a
// sign-in in flight keeps the connection it started with, and its ACS
// post finds the connection by name, as it is then.
type registry struct {
	store     userstore.Connections
	admin     userstore.ConnectionAdmin // nil when the store is read-only
	configure func(context.Context, userstore.Connection, *Connection) error
	poll      time.Duration

	syncMu  sync.Mutex // one sync at a time; guards applied and dirty
	applied int64      // the store version last applied; -1 before the first sync
	dirty   bool       // a build failed: list again at the next poll

	mu       sync.RWMutex
	byName   map[string]*connection   // served (enabled and built) stored connections
	byDomain map[string]*connection   // verified domains of served stored connections
	byIssuer map[string]string        // IdP entity ID -> stored connection name
	states   map[string]*storedState  // every stored connection, served or not
	codeDom  map[string]*connection   // verified domains of code-configured connections; fixed at New
	codeIss  map[string]string        // IdP entity ID -> code-configured connection name; fixed at New
	refresh  map[string]*refreshState // URL-backed served connections; guarded by syncMu
}

// storedState is what the registry knows of one stored connection.
type storedState struct {
	rec     userstore.Connection // as last read from the store
	conn    *connection          // served; nil when disabled or never built
	rev     int64                // the revision conn was built from (or found disabled at)
	err     error                // why the latest revision could not be served
	retryAt time.Time            // when a failed build is tried again
}

func newRegistry(opts *Options) *registry {
	r := &registry{
		store:     opts.ConnectionStore,
		configure: opts.ConfigureConnection,
		poll:      orDefault(opts.ConnectionPollInterval, DefaultConnectionPollInterval),
		applied:   -1,
		byName:    map[string]*connection{},
		byDomain:  map[string]*connection{},
		byIssuer:  map[string]string{},
		states:    map[string]*storedState{},
		codeDom:   map[string]*connection{},
		codeIss:   map[string]string{},
		refresh:   map[string]*refreshState{},
	}
	r.admin, _ = opts.ConnectionStore.(userstore.ConnectionAdmin)
	return r
}

// connection returns the served connection named name: a code-configured
// one, or a stored one that is enabled.
func (m *Middleware) connection(name string) (*connection, bool) {
	if c, ok := m.byName[name]; ok {
		return c, true
	}
	if m.reg == nil {
		return nil, false
	}
	m.reg.mu.RLock()
	c, ok := m.reg.byName[name]
	m.reg.mu.RUnlock()
	return c, ok
}

// storedRoute returns the handler of PathPrefix/NAME/ENDPOINT for a served
// stored connection.
func (m *Middleware) storedRoute(path string) (http.HandlerFunc, bool) {
	rest, ok := strings.CutPrefix(path, m.prefix+"/")
	if !ok || m.reg == nil {
		return nil, false
	}
	name, endpoint, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, false
	}
	m.reg.mu.RLock()
	c, ok := m.reg.byName[name]
	m.reg.mu.RUnlock()
	if !ok {
		return nil, false
	}
	switch endpoint {
	case "metadata":
		return func(w http.ResponseWriter, r *http.Request) { m.serveMetadata(w, r, c) }, true
	case "login":
		return func(w http.ResponseWriter, r *http.Request) { m.serveLogin(w, r, c) }, true
	case "acs":
		return func(w http.ResponseWriter, r *http.Request) { m.serveACS(w, r, c) }, true
	case "slo":
		if c.sloPath != "" {
			return func(w http.ResponseWriter, r *http.Request) { m.serveSLO(w, r, c) }, true
		}
	}
	return nil, false
}

// startConnectionSync reads Options.ConnectionStore once, then starts the
// goroutine that polls its version and refreshes the URL-backed stored
// connections' metadata until Close.
func (m *Middleware) startConnectionSync(ctx context.Context) error {
	if err := m.SyncConnections(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	prev := m.stop
	m.stop = func() {
		if prev != nil {
			prev()
		}
		cancel()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.reg.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := m.SyncConnections(ctx); err != nil && ctx.Err() == nil {
				m.log.LogAttrs(ctx, slog.LevelWarn, "connection store unreadable; serving the connections last read", slog.String("err", err.Error()))
			}
			m.refreshStored(ctx)
		}
	}()
	return nil
}

// SyncConnections applies the changes of [Options.ConnectionStore] now,
// rather than at the next poll: connections added or enabled are served,
// changed ones rebuilt, disabled or removed ones stop being served (their
// endpoints 404 and their users' sessions end at their next request; the
// users are kept). A stored connection that cannot be built (its metadata
// URL unreachable) keeps its previous version, if any, and is retried; its
// reason is logged. The error is for a store that cannot be read.
func (m *Middleware) SyncConnections(ctx context.Context) error {
	if m.reg == nil {
		return nil
	}
	m.reg.syncMu.Lock()
	defer m.reg.syncMu.Unlock()
	return m.syncLocked(ctx)
}

// syncLocked is SyncConnections with syncMu held.
func (m *Middleware) syncLocked(ctx context.Context) error {
	r := m.reg
	v, err := r.store.ConnectionsVersion(ctx)
	if err != nil {
		return fmt.Errorf("jit: read the connection store's version: %w", err)
	}
	if v == r.applied && !r.dirty {
		return nil
	}
	recs, v, err := r.store.ListConnections(ctx)
	if err != nil {
		return fmt.Errorf("jit: list stored connections: %w", err)
	}
	now := time.Now()
	next := make(map[string]*storedState, len(recs))
	changed := false
	dirty := false
	for _, rec := range recs {
		old := r.states[rec.Name]
		st := &storedState{rec: rec}
		if old != nil {
			*st = *old
			st.rec = rec
		}
		next[rec.Name] = st
		if old != nil && old.rev == rec.Revision && old.err == nil {
			continue
		}
		changed = true
		if !rec.Enabled {
			st.conn, st.rev, st.err = nil, rec.Revision, nil
			continue
		}
		if old != nil && old.err != nil && rec.Revision == old.rec.Revision && now.Before(old.retryAt) {
			dirty = true
			continue
		}
		c, err := m.buildStored(ctx, rec)
		if err != nil {
			// Keep serving the previous version, if any, and retry.
			st.err, st.retryAt = err, now.Add(storedRetryAfter)
			if old == nil || !old.rec.Enabled {
				st.conn = nil
			}
			dirty = true
			m.log.LogAttrs(ctx, slog.LevelError, "stored connection not served", slog.String("connection", rec.Name), slog.Int64("revision", rec.Revision), slog.String("err", err.Error()))
			continue
		}
		if old != nil && old.conn != nil {
			c.health = old.conn.health
		}
		st.conn, st.rev, st.err = c, rec.Revision, nil
	}
	if len(next) != len(r.states) {
		changed = true
	}
	if changed {
		m.applyStored(ctx, next)
	}
	r.applied, r.dirty = v, dirty
	return nil
}

// applyStored swaps in the stored connections next, checking that none
// takes a name, an IdP or a domain another connection has. Called with
// syncMu held.
func (m *Middleware) applyStored(ctx context.Context, next map[string]*storedState) {
	r := m.reg
	names := make([]string, 0, len(next))
	for n := range next {
		names = append(names, n)
	}
	slices.Sort(names) // conflicts resolve the same way on every instance
	byName := make(map[string]*connection, len(next))
	byDomain := make(map[string]*connection, len(r.byDomain))
	byIssuer := make(map[string]string, len(next))
	refresh := make(map[string]*refreshState)
	for _, n := range names {
		st := next[n]
		c := st.conn
		if c == nil {
			continue
		}
		switch {
		case m.byName[n] != nil:
			st.err = fmt.Errorf("%w: connection %q: the name is taken by a connection configured in code", userstore.ErrInvalidConnection, n)
		case r.codeIss[c.issuer] != "":
			st.err = fmt.Errorf("%w: connection %q: connection %q already trusts the IdP %q", userstore.ErrInvalidConnection, n, r.codeIss[c.issuer], c.issuer)
		case byIssuer[c.issuer] != "":
			st.err = fmt.Errorf("%w: connection %q: connection %q already trusts the IdP %q", userstore.ErrInvalidConnection, n, byIssuer[c.issuer], c.issuer)
		}
		if st.err != nil {
			m.log.LogAttrs(ctx, slog.LevelError, "stored connection not served", slog.String("connection", n), slog.String("err", st.err.Error()))
			continue
		}
		byName[n], byIssuer[c.issuer] = c, n
		for _, d := range st.rec.VerifiedDomains() {
			if other, ok := r.codeDom[d]; ok {
				m.log.LogAttrs(ctx, slog.LevelWarn, "stored connection's domain ignored: a connection configured in code has it", slog.String("connection", n), slog.String("domain", d), slog.String("owner", other.name))
				continue
			}
			if other, ok := byDomain[d]; ok {
				m.log.LogAttrs(ctx, slog.LevelWarn, "stored connection's domain ignored: another connection has it", slog.String("connection", n), slog.String("domain", d), slog.String("owner", other.name))
				continue
			}
			byDomain[d] = c
		}
		if c.mdURL != nil {
			if old := r.refresh[n]; old != nil && old.c == c {
				refresh[n] = old
			} else {
				due := time.Now().Add(m.nextRefresh(c.current()))
				c.health.refreshAt(due)
				refresh[n] = &refreshState{c: c, due: due}
			}
		}
	}
	r.mu.Lock()
	r.byName, r.byDomain, r.byIssuer, r.states = byName, byDomain, byIssuer, next
	r.mu.Unlock()
	r.refresh = refresh
}

// refreshStored fetches the metadata of URL-backed stored connections that
// are due, as the refresher does for code-configured ones.
func (m *Middleware) refreshStored(ctx context.Context) {
	r := m.reg
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	for _, s := range r.refresh {
		if ctx.Err() != nil {
			return
		}
		if !time.Now().Before(s.due) {
			m.refresh(ctx, s)
		}
	}
}

// buildStored builds the connection a stored record describes, as New
// builds a code-configured one, then lets Options.ConfigureConnection
// adjust it.
func (m *Middleware) buildStored(ctx context.Context, rec userstore.Connection) (*connection, error) {
	cfg, err := m.storedConfig(ctx, rec)
	if err != nil {
		return nil, err
	}
	c, err := m.servedConnection(ctx, &m.opts, &cfg, 2)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", userstore.ErrInvalidConnection, err)
	}
	if signingCerts(c.current().sp.IDPMetadata) == 0 {
		return nil, fmt.Errorf("%w: connection %q: the IdP metadata lists no signing certificate", userstore.ErrInvalidConnection, rec.Name)
	}
	c.stored, c.domains = true, cfg.Domains
	return c, nil
}

// storedConfig is the Connection a stored record describes.
func (m *Middleware) storedConfig(ctx context.Context, rec userstore.Connection) (Connection, error) {
	if err := userstore.CheckConnection(rec); err != nil {
		return Connection{}, err
	}
	preset := rec.Preset
	if preset == "" {
		preset = claims.PresetGeneric
	}
	mapper, err := claims.Preset(preset)
	if err != nil {
		return Connection{}, fmt.Errorf("%w: connection %q: %w", userstore.ErrInvalidConnection, rec.Name, err)
	}
	cfg := Connection{
		Name:           rec.Name,
		DisplayName:    rec.DisplayName,
		IDPMetadata:    rec.IDPMetadata,
		IDPMetadataURL: rec.IDPMetadataURL,
		EntityID:       rec.EntityID,
		Mapper:         mapper,
		Domains:        rec.VerifiedDomains(),
	}
	if m.reg != nil && m.reg.configure != nil {
		if err := m.reg.configure(ctx, rec, &cfg); err != nil {
			return Connection{}, fmt.Errorf("%w: connection %q: Options.ConfigureConnection: %w", userstore.ErrInvalidConnection, rec.Name, err)
		}
		cfg.Name = rec.Name // the name is the record's
	}
	return cfg, nil
}

// ErrNoConnectionStore is returned by the methods that change stored
// connections when [Options.ConnectionStore] is not set, or cannot be
// changed (it does not implement [userstore.ConnectionAdmin]).
var ErrNoConnectionStore = errors.New("jit: no connection store that can be changed (Options.ConnectionStore)")

// CheckConnection builds the connection rec describes as the middleware
// would serve it, without storing or serving it: the name, the preset,
// the domains, and the IdP metadata (fetched from its URL) with its
// entity ID, signing certificates, sign-in endpoint and validity. It also
// refuses a name or an IdP another connection has, or a domain a
// connection configured in code has. Errors wrap
// [userstore.ErrInvalidConnection] (or [userstore.ErrDomainTaken]) and say
// why. When it passes, it returns what a setup page shows on the spot: the
// IdP's entity ID, its signing certificates and their expiry, the
// metadata's validity, and warnings (a certificate near its end, an IdP
// that offers no persistent NameID to a mapping keyed on it, risky
// settings).
func (m *Middleware) CheckConnection(ctx context.Context, rec userstore.Connection) (ConnectionHealth, error) {
	h, err := m.checkConnection(ctx, rec)
	if err != nil {
		return ConnectionHealth{}, err
	}
	return h, nil
}

func (m *Middleware) checkConnection(ctx context.Context, rec userstore.Connection) (ConnectionHealth, error) {
	c, err := m.buildStored(ctx, rec)
	if err != nil {
		return ConnectionHealth{}, err
	}
	h := m.health(c, nil)
	h.Stored, h.Enabled, h.Served = true, rec.Enabled, false
	h.NextMetadataRefresh = time.Time{}
	if _, ok := m.byName[rec.Name]; ok {
		return h, fmt.Errorf("%w: connection %q: the name is taken by a connection configured in code", userstore.ErrInvalidConnection, rec.Name)
	}
	if owner := m.issuerOwner(c.issuer); owner != "" && owner != rec.Name {
		return h, fmt.Errorf("%w: connection %q: connection %q already trusts the IdP %q; users are bound to one connection", userstore.ErrInvalidConnection, rec.Name, owner, c.issuer)
	}
	for _, d := range rec.Domains {
		if other, ok := m.codeDomains[d.Name]; ok {
			return h, fmt.Errorf("%w: %q belongs to connection %q", userstore.ErrDomainTaken, d.Name, other.name)
		}
	}
	return h, nil
}

// issuerOwner returns the name of the connection trusting the IdP with
// entity ID issuer, or "".
func (m *Middleware) issuerOwner(issuer string) string {
	if m.reg == nil {
		return ""
	}
	if n := m.reg.codeIss[issuer]; n != "" {
		return n
	}
	m.reg.mu.RLock()
	defer m.reg.mu.RUnlock()
	return m.reg.byIssuer[issuer]
}

// PutConnection checks rec ([Middleware.CheckConnection]), stores it in
// [Options.ConnectionStore] and applies it at once on this instance
// (others see it at their next poll). A connection that fails the check is
// not stored: a bad metadata document is refused here, with the reason,
// never at sign-in time. rec.Enabled decides whether it is served.
func (m *Middleware) PutConnection(ctx context.Context, rec userstore.Connection) (userstore.Connection, error) {
	if m.reg == nil || m.reg.admin == nil {
		return userstore.Connection{}, ErrNoConnectionStore
	}
	if _, err := m.CheckConnection(ctx, rec); err != nil {
		return userstore.Connection{}, err
	}
	stored, err := m.reg.admin.PutConnection(ctx, rec, m.now())
	if err != nil {
		return userstore.Connection{}, fmt.Errorf("jit: store connection %q: %w", rec.Name, err)
	}
	return stored, m.SyncConnections(ctx)
}

// SetConnectionEnabled enables or disables the stored connection name and
// applies it at once on this instance. Disabling keeps the connection and
// its users; their sessions end at their next request.
func (m *Middleware) SetConnectionEnabled(ctx context.Context, name string, enabled bool) error {
	if m.reg == nil || m.reg.admin == nil {
		return ErrNoConnectionStore
	}
	if err := m.reg.admin.SetConnectionEnabled(ctx, name, enabled, m.now()); err != nil {
		return fmt.Errorf("jit: set connection %q enabled=%t: %w", name, enabled, err)
	}
	return m.SyncConnections(ctx)
}

// RemoveConnection removes the stored connection name and applies it at
// once on this instance. Its users are kept (deleting them would not
// deprovision them anyway); their sessions end at their next request.
func (m *Middleware) RemoveConnection(ctx context.Context, name string) error {
	if m.reg == nil || m.reg.admin == nil {
		return ErrNoConnectionStore
	}
	if err := m.reg.admin.RemoveConnection(ctx, name); err != nil {
		return fmt.Errorf("jit: remove connection %q: %w", name, err)
	}
	return m.SyncConnections(ctx)
}

// storedConnections returns the served stored connections.
func (m *Middleware) storedConnections() []*connection {
	if m.reg == nil {
		return nil
	}
	m.reg.mu.RLock()
	defer m.reg.mu.RUnlock()
	out := make([]*connection, 0, len(m.reg.byName))
	for _, c := range m.reg.byName {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *connection) int { return strings.Compare(a.name, b.name) })
	return out
}

// indexConnections indexes the code-configured connections' domains, and
// sets up the registry of stored connections when there is a store.
func (m *Middleware) indexConnections(opts *Options) error {
	m.codeDomains = map[string]*connection{}
	for i := range opts.Connections {
		cfg := &opts.Connections[i]
		c := m.byName[cfg.Name]
		for _, d := range cfg.Domains {
			if err := userstore.CheckDomain(d); err != nil {
				return fmt.Errorf("jit: connection %q: %w", cfg.Name, err)
			}
			if other, dup := m.codeDomains[d]; dup {
				return fmt.Errorf("jit: connections %q and %q both list the domain %q; a domain belongs to one connection", other.name, c.name, d)
			}
			m.codeDomains[d] = c
		}
		c.domains = slices.Clone(cfg.Domains)
	}
	if opts.ConnectionStore == nil {
		return nil
	}
	if _, unnamed := m.byName[""]; unnamed {
		return errors.New("jit: with a ConnectionStore, every connection of Options.Connections needs a Name: an unnamed one would take PathPrefix/login, where people choose theirs")
	}
	if opts.ConnectionPollInterval < 0 {
		return fmt.Errorf("jit: Options.ConnectionPollInterval %s is negative", opts.ConnectionPollInterval)
	}
	m.opts = *opts
	m.opts.Connections = nil
	m.reg = newRegistry(opts)
	m.reg.codeDom = m.codeDomains
	for _, c := range m.conns {
		m.reg.codeIss[c.issuer] = c.name
	}
	return nil
}

// unservedSession is called when the session cookie id names a connection
// this instance does not serve. The connection may have been added on
// another instance since the last poll: the store is read again first.
// If it is still not served (disabled or removed), the session record is
// ended, so that re-enabling the connection does not bring it back.
func (m *Middleware) unservedSession(ctx context.Context, id, conn string) (*connection, bool) {
	if m.reg == nil || id == "" {
		return nil, false
	}
	// A request does not wait behind a sync in progress (which may be
	// fetching metadata): it is refused, and nothing is ended.
	if !m.reg.syncMu.TryLock() {
		return nil, false
	}
	err := m.syncLocked(ctx)
	m.reg.syncMu.Unlock()
	if err != nil {
		return nil, false // the store failed: refuse, but end nothing
	}
	if c, ok := m.connection(conn); ok {
		return c, true
	}
	if err := m.endSession(ctx, id, "connection "+conn+" no longer served"); err != nil {
		m.log.LogAttrs(ctx, slog.LevelWarn, "end the session of an unserved connection", slog.String("connection", conn), slog.String("err", err.Error()))
	}
	return nil, false
}
