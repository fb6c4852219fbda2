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
//
// With a real IdP:
//
//	go run ./example -root-url https://app.example.com -idp-metadata https://login.microsoftonline.com/…/federationmetadata.xml -preset entra
//	go run ./example -idp-metadata acme=acme.xml -idp-metadata globex=https://idp.globex.example/metadata
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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
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
	fs.StringVar(&c.preset, "preset", "generic", "claims mapping preset: generic, entra, okta, adfs")
	fs.StringVar(&c.db, "db", "", "SQLite database file, or a postgres:// URL to share users between instances (default DATA/samljit.db)")
	fs.StringVar(&c.data, "data", "samljit-data", "data directory for keys, session secret and database")
	fs.BoolVar(&c.allowIDPInitiated, "allow-idp-initiated", false, "accept IdP-initiated sign-in")
	fs.StringVar(&c.adminGroup, "admin-group", "", "IdP group whose members may use /admin (default: \"admins\" with the development IdP)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.idpMetadata = md
	if c.rootURL == "" {
		c.rootURL = "http://" + c.addr
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

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("example stopped", "err", err)
		os.Exit(1)
	}
}

// run serves the app until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("example app listening", "url", cfg.rootURL, "dev_idp", a.dev != nil, "db", redactDSN(cfg.db))
	fmt.Fprintf(os.Stderr, "\n  samljit example: open %s\n\n", cfg.rootURL)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
