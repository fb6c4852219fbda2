// Command example is a small web app that signs people in through SAML and
// provisions them just in time into SQLite with samljit.
//
//	go run ./example
//
// With no -idp-metadata it starts a built-in development IdP (two sample
// tenants, "acme" and "globex") so it works with no IdP of your own. Its
// picker lists each tenant's sample people with their names, emails and
// groups; /dev-idp lists them all and edits their attributes, which reach the
// app at the person's next sign-in through JIT. Members of "admins" may use
// /admin. That IdP and the /dev-idp pages are for development only: they sign
// in, and let anyone edit, anyone, and exist only without -idp-metadata.
// Each development tenant also has a SCIM endpoint with a token made at the
// first run (DATA/scim-tokens, shown on /admin to its administrators), and
// /dev-idp pushes changes to it over HTTP as the tenant's IdP would:
// disable or re-enable a person, change their groups.
//
// With a real IdP:
//
//	go run ./example -root-url https://app.example.com -idp-metadata https://login.microsoftonline.com/…/federationmetadata.xml -preset entra
//	go run ./example -idp-metadata acme=acme.xml -idp-metadata globex=https://idp.globex.example/metadata
//
// With -scim-token TOKEN (or tenant=TOKEN per connection) the app also
// serves SCIM 2.0 at /scim/v2 (/scim/TENANT/v2 with several connections),
// over the same records, so the IdP can create, disable and group people.
// The tokens' hashes are kept in the app's database (scim.TokenTable),
// which every instance sharing it reads at each request.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/samljit/samljit/claims"
)

// config is the command line.
type config struct {
	addr              string
	rootURL           string
	idpMetadata       []string
	preset            string
	db                string
	data              string
	allowIDPInitiated bool
	adminGroup        string
	scimTokens        []string
	scimTokenFiles    []string
	trustedProxies    []netip.Prefix

	graphClientID, graphClientSecret, graphClientSecretFile string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.rootURL, "root-url", "", "public base URL, used in SP metadata and the ACS URL (default http://ADDR)")
	var md multiFlag
	fs.Var(&md, "idp-metadata", "IdP metadata URL or file; repeat as tenant=URL-or-file for several tenants (default: the built-in development IdP)")
	fs.StringVar(&c.preset, "preset", "generic", "claims mapping preset: "+strings.Join(claims.PresetNames(), ", "))
	fs.StringVar(&c.db, "db", "", "SQLite database file, or a postgres:// URL to share users between instances (default DATA/samljit.db)")
	fs.StringVar(&c.data, "data", "samljit-data", "data directory for keys, session secret and database")
	fs.BoolVar(&c.allowIDPInitiated, "allow-idp-initiated", false, "accept IdP-initiated sign-in")
	var scimTokens, scimTokenFiles, proxies multiFlag
	fs.Var(&proxies, "trusted-proxy", "address or prefix (10.0.0.0/8) of a reverse proxy whose X-Forwarded-For gives the client IP shown on the sessions pages; repeat for several (default: none, the header is ignored)")
	fs.Var(&scimTokens, "scim-token", "serve SCIM 2.0 at /scim/v2 (several connections: /scim/TENANT/v2) with this bearer token; repeat as tenant=TOKEN per connection (visible to other local users: prefer -scim-token-file)")
	fs.Var(&scimTokenFiles, "scim-token-file", "file holding -scim-token values, one per line (TOKEN or tenant=TOKEN)")
	fs.StringVar(&c.adminGroup, "admin-group", "", "IdP group whose members may use /admin (default: \"admins\" with the development IdP)")
	fs.StringVar(&c.graphClientID, "graph-client-id", "", "Entra app registration (client) ID: resolve the groups of people in over 150 groups through Microsoft Graph (needs -preset entra)")
	fs.StringVar(&c.graphClientSecret, "graph-client-secret", "", "client secret for -graph-client-id (visible to other local users: prefer -graph-client-secret-file)")
	fs.StringVar(&c.graphClientSecretFile, "graph-client-secret-file", "", "file holding the client secret for -graph-client-id")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// usage reports a mistake the flag package cannot see the way it
	// reports its own: the error, then the usage, on stderr.
	usage := func(err error) (config, error) {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return c, err
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if _, err := claims.Preset(c.preset); err != nil {
		return usage(fmt.Errorf("-preset: %w", err))
	}
	c.idpMetadata = md
	c.scimTokens, c.scimTokenFiles = scimTokens, scimTokenFiles
	var err error
	if c.trustedProxies, err = trustedProxyFlag(proxies); err != nil {
		return usage(err)
	}
	if err := checkGraphFlags(c); err != nil {
		return usage(err)
	}
	if c.rootURL == "" {
		c.rootURL = "http://" + browserHost(c.addr)
	}
	if u, err := url.Parse(c.rootURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usage(fmt.Errorf("-root-url %q is not an absolute http(s) URL", c.rootURL))
	}
	if c.db == "" {
		c.db = c.data + string(os.PathSeparator) + "samljit.db"
	}
	return c, nil
}

// redactDSN hides a password in a database URL before it is logged.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// newLogger is the app's logger: one slog JSON object per line.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

func main() {
	logger := newLogger(os.Stderr)
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		logger.Error("example cannot listen", "addr", cfg.addr, "err", err)
		os.Exit(1)
	}
	if err := run(ctx, cfg, ln, logger, os.Stdout); err != nil {
		logger.Error("example stopped", "err", err)
		os.Exit(1)
	}
}

// Server limits. The timeouts bound how long a slow or idle client can hold
// a connection; shutdownTimeout is how long in-flight requests get to
// finish after SIGINT or SIGTERM.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 10 * time.Second
)

// newServer is the HTTP server run uses: every timeout set, and the
// server's own error log sent through logger.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// run serves the app on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting connections, lets in-flight requests
// finish (for at most shutdownTimeout), and returns. It closes ln. Logs go
// to logger; the one line for the person who started the app goes to
// stdout.
func run(ctx context.Context, cfg config, ln net.Listener, logger *slog.Logger, stdout io.Writer) error {
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer a.Close()
	srv := newServer(a, logger)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("example app listening", "addr", ln.Addr().String(), "url", cfg.rootURL, "dev_idp", a.dev != nil, "db", redactDSN(cfg.db))
	fmt.Fprintf(stdout, "\n  samljit example: open %s\n\n", cfg.rootURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("example app shutting down", "timeout", shutdownTimeout.String())
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close() // requests still running past the timeout are cut off
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("example app stopped")
	return nil
}

// browserHost turns a listen address into the host:port a browser on this
// machine opens: ":8080" and "0.0.0.0:8080" listen everywhere but are no
// address to open, so they become "localhost:8080".
func browserHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
