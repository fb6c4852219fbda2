package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// app is the example application: the samljit middleware, a SQLite store,
// and a few pages.
type app struct {
	cfg   config
	log   *slog.Logger
	db    *sql.DB
	store appStore
	mw    *jit.Middleware
	dev   *devIdP
	mux   *http.ServeMux

	audit    auditLog         // in the same database as the users
	activity *sessionActivity // each session's last use, IP and browser (sessions.go)
	scim     []scimEndpoint
	sso      setupState // the Set up SSO page's test sign-ins (setup.go)
}

// auditPageSize is how many audit entries the admin page shows at once.
const auditPageSize = 50

// appStore is what the example needs of a store: the sign-in contract, the
// replay record, and the admin operations its admin page performs.
type appStore interface {
	userstore.Store
	userstore.ReplayCache
	userstore.Admin
	userstore.Directory       // for SCIM (-scim-token)
	userstore.GroupDirectory  //
	userstore.ConnectionAdmin // connections kept as data (connections.go)
}

// private makes the SQLite file at path readable by its owner only,
// creating it empty if need be. SQLite gives its -wal and -shm files the
// database file's permissions.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// isPostgres reports whether -db names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openStore opens PostgreSQL for a postgres:// URL (several instances can
// share it) and SQLite for anything else (a file path).
func openStore(ctx context.Context, dsn string) (*sql.DB, appStore, error) {
	if isPostgres(dsn) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, nil, err
		}
		st, err := pgstore.Open(ctx, db, pgstore.Options{})
		if err != nil {
			_ = db.Close()
			return nil, nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return db, st, nil
	}
	if err := private(dsn); err != nil {
		return nil, nil, err
	}
	db, err := sql.Open("sqlite3", sqlitestore.DSN(dsn))
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("open %s: %w", dsn, err)
	}
	return db, st, nil
}

func newApp(ctx context.Context, cfg config, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: logger}
	if root, err := url.Parse(cfg.rootURL); err != nil || root.Host == "" {
		return nil, fmt.Errorf("-root-url %q is not an absolute URL", cfg.rootURL)
	}
	// The data directory holds the SP key and the users: private, also
	// when an earlier run or another tool created it more open.
	if err := os.MkdirAll(cfg.data, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(cfg.data, 0o700); err != nil {
		return nil, err
	}
	key, cert, err := loadOrCreateKeyPair(filepath.Join(cfg.data, "sp-key.pem"), filepath.Join(cfg.data, "sp-cert.pem"), "samljit example SP")
	if err != nil {
		return nil, err
	}
	secret, err := loadOrCreateSecret(filepath.Join(cfg.data, "session-secret"))
	if err != nil {
		return nil, err
	}
	mapping, err := claims.Preset(cfg.preset)
	if err != nil {
		return nil, err
	}

	var conns []jit.Connection
	if len(cfg.idpMetadata) == 0 {
		if a.dev, err = startDevIdP(cfg.rootURL); err != nil {
			return nil, err
		}
		conns = a.dev.connections()
		if a.cfg.adminGroup == "" {
			a.cfg.adminGroup = "admins"
		}
	} else if conns, err = connectionsFromFlags(cfg.idpMetadata, mapping); err != nil {
		return nil, err
	}
	for i := range conns {
		conns[i].AllowIDPInitiated = cfg.allowIDPInitiated
		// Roles follow the IdP's groups at every sign-in: members of the
		// admin group hold jit.RoleAdmin until the group is taken away.
		conns[i].Policy.Roles = jit.RoleMapping{DefaultRoles: []string{"member"}}
		if a.cfg.adminGroup != "" {
			conns[i].Policy.Roles.AdminGroups = []string{a.cfg.adminGroup}
		}
	}

	graph, err := graphResolver(cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	if graph != nil { // Entra ID only: checkGraphFlags saw to it
		for i := range conns {
			conns[i].Policy.GroupResolver = graph
		}
	}

	if a.db, a.store, err = openStore(ctx, cfg.db); err != nil {
		a.Close()
		return nil, err
	}
	if a.audit, err = openAudit(ctx, a.db, isPostgres(cfg.db)); err != nil {
		a.Close()
		return nil, err
	}
	if a.activity, err = openSessionActivity(ctx, a.db, isPostgres(cfg.db), logger); err != nil {
		a.Close()
		return nil, err
	}
	opts := jit.Options{
		RootURL:     cfg.rootURL,
		Key:         key,
		Certificate: cert,
		Store:       a.store,
		SessionKeys: [][]byte{secret[:32], secret[32:]},
		Connections: conns,
		Logger:      logger,
		OnEvent:     a.record,
		Chooser:     a.chooser(conns),
		Activity:    jit.ActivityOptions{Recorder: a.activity, TrustedProxies: cfg.trustedProxies},
	}
	a.storedConnections(&opts)
	a.mw, err = jit.New(ctx, opts)
	if err != nil {
		a.Close()
		return nil, err
	}
	scimHandlers, err := a.newSCIM(ctx, conns)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.routes()
	a.mountSCIM(scimHandlers)
	return a, nil
}

// Close stops the middleware's metadata refresh, releases the database and
// stops the development IdP.
func (a *app) Close() {
	if a.mw != nil {
		_ = a.mw.Close()
	}
	if a.activity != nil {
		a.activity.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
	if a.dev != nil {
		a.dev.Close()
	}
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	a.mux.ServeHTTP(w, r)
}

func (a *app) routes() {
	a.mux = http.NewServeMux()
	a.mux.Handle(a.mw.Prefix()+"/", a.mw)
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /api/me", a.apiMe)
	a.mux.Handle("GET /admin", a.mw.RequireUser(a.requireAdmin(http.HandlerFunc(a.admin))))
	a.mux.Handle("POST /admin/users/{id}/{action}", a.mw.RequireUser(a.requireAdmin(http.HandlerFunc(a.adminAction))))
	a.sessionRoutes()
	a.mux.HandleFunc("GET /jit-vs-scim", a.jitVsSCIM)
	a.mux.HandleFunc("GET /favicon.svg", serveFavicon)
	a.mux.HandleFunc("GET /favicon.ico", serveFavicon) // asked for by pages the example did not draw
	if a.dev != nil {
		a.devRoutes()
	}
	a.setupRoutes()
}

// record writes a sign-in event to the audit trail. The sign-in has
// happened by then; a failure to record it is logged.
func (a *app) record(ctx context.Context, e jit.Event) {
	if err := a.audit.Record(ctx, signInEntry(e)); err != nil {
		a.log.ErrorContext(ctx, "audit", "correlation_id", e.CorrelationID, "err", err)
	}
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	u, err := a.mw.CurrentUser(r)
	switch {
	case errors.Is(err, jit.ErrSuspended):
		a.render(w, http.StatusForbidden, "suspended", pageData{Title: "Suspended"})
		return
	case errors.Is(err, jit.ErrNotSignedIn), errors.Is(err, jit.ErrSessionExpired):
		a.render(w, http.StatusOK, "landing", pageData{Dev: a.dev != nil, LoginURL: a.mw.LoginURL("/")})
		return
	case err != nil:
		a.log.ErrorContext(r.Context(), "home", "err", err)
		a.render(w, http.StatusServiceUnavailable, "error", pageData{Title: "Unavailable", Message: "The user store is unavailable. Try again in a moment."})
		return
	}
	a.render(w, http.StatusOK, "home", pageData{Title: "Signed in", User: &u, Admin: a.isAdmin(u), Dev: a.dev != nil, SSOSetup: ssoConnection(u)})
}

// apiMe returns the signed-in user's record as JSON: 401 when not signed
// in, 403 when suspended.
func (a *app) apiMe(w http.ResponseWriter, r *http.Request) {
	u, err := a.mw.CurrentUser(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case errors.Is(err, jit.ErrSuspended):
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "suspended"})
	case errors.Is(err, jit.ErrNotSignedIn), errors.Is(err, jit.ErrSessionExpired):
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not signed in"})
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "unavailable"})
	default:
		_ = json.NewEncoder(w).Encode(apiUser(u))
	}
}

// userJSON is the JSON shape of a user record.
type userJSON struct {
	ID           string              `json:"id"`
	Issuer       string              `json:"issuer"`
	Subject      string              `json:"subject"`
	Email        string              `json:"email"`
	DisplayName  string              `json:"display_name"`
	GivenName    string              `json:"given_name"`
	FamilyName   string              `json:"family_name"`
	Groups       []string            `json:"groups"`
	Roles        []string            `json:"roles"`
	Attributes   map[string][]string `json:"attributes,omitempty"`
	Status       string              `json:"status"`
	CreatedAt    time.Time           `json:"created_at"`
	UpdatedAt    time.Time           `json:"updated_at"`
	LastSignInAt time.Time           `json:"last_sign_in_at"`
}

func apiUser(u userstore.User) userJSON {
	return userJSON{
		ID: u.ID, Issuer: u.Key.Issuer, Subject: u.Key.Subject,
		Email: u.Profile.Email, DisplayName: u.Profile.DisplayName,
		GivenName: u.Profile.GivenName, FamilyName: u.Profile.FamilyName,
		Roles:  u.Roles(),
		Groups: u.Profile.Groups, Attributes: u.Profile.Attributes,
		Status: u.Status.String(), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, LastSignInAt: u.LastSignInAt,
	}
}

// jitVsSCIM is the public page comparing JIT with SCIM and Microsoft
// Graph, from the facts README.md states too.
func (a *app) jitVsSCIM(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "JIT vs SCIM", Facts: &jitVsSCIM, Dev: a.dev != nil}
	if u, err := a.mw.CurrentUser(r); err == nil {
		d.User, d.Admin = &u, a.isAdmin(u)
		if d.Live, err = a.liveComparison(r.Context(), u); err != nil {
			a.log.ErrorContext(r.Context(), "jit-vs-scim", "err", err)
		}
	}
	a.render(w, http.StatusOK, "jitvsscim", d)
}

// connectionsFromFlags turns -idp-metadata values into connections.
func connectionsFromFlags(values []string, m claims.Mapping) ([]jit.Connection, error) {
	var conns []jit.Connection
	for _, v := range values {
		name, src := "", v
		if i := strings.Index(v, "="); i > 0 && !strings.Contains(v[:i], "/") && !strings.Contains(v[:i], ":") {
			name, src = v[:i], v[i+1:]
		}
		c := jit.Connection{Name: name, DisplayName: name, Mapper: m}
		if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
			c.IDPMetadataURL = src
		} else {
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("-idp-metadata: %w", err)
			}
			c.IDPMetadata = b
		}
		conns = append(conns, c)
	}
	if len(conns) > 1 {
		for _, c := range conns {
			if c.Name == "" {
				return nil, errors.New("-idp-metadata: with several IdPs, name each as tenant=URL-or-file")
			}
		}
	}
	return conns, nil
}

// loadOrCreateKeyPair reads a PEM key pair, or creates a self-signed one on
// first run.
func loadOrCreateKeyPair(keyPath, certPath, cn string) (*rsa.PrivateKey, *x509.Certificate, error) {
	kb, kerr := os.ReadFile(keyPath)
	cb, cerr := os.ReadFile(certPath)
	if kerr == nil && cerr == nil {
		kblock, _ := pem.Decode(kb)
		cblock, _ := pem.Decode(cb)
		if kblock == nil || cblock == nil {
			return nil, nil, fmt.Errorf("%s or %s is not PEM", keyPath, certPath)
		}
		k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("%s: not an RSA key", keyPath)
		}
		cert, err := x509.ParseCertificate(cblock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", certPath, err)
		}
		return rk, cert, nil
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, nil, kerr
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// loadOrCreateSecret reads the 64-byte session secret (authentication and
// encryption keys), creating it on first run.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 64 {
			return nil, fmt.Errorf("%s: want 64 bytes, have %d", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}

// favicon is the example's icon: a key on the header's colour.
const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1e2a3a"/><circle cx="12" cy="16" r="6" fill="none" stroke="#dfe7f2" stroke-width="3"/><path d="M18 16h10m-3 0v5m-4-5v4" stroke="#dfe7f2" stroke-width="3" fill="none"/></svg>`

// serveFavicon serves the icon, so that browsers stop asking (and the log
// stops recording a 404 for every page).
func serveFavicon(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = io.WriteString(w, favicon)
}
