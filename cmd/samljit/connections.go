package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

const connectionsUsage = `Usage: samljit connections <subcommand> -db DSN [flags]

Manages the connections (customers' IdPs) an application keeps as data in
its database, while it runs: each instance applies a change within its
poll interval (jit.Options.ConnectionPollInterval, 5 s by default).

Subcommands:
  add      -name NAME -idp-metadata URL-or-FILE [-preset P] [-domain D]...
           check a new connection as the middleware would serve it (the
           metadata parsed, signed, unexpired; the IdP and the domains
           not another connection's) and store it, enabled
  list     list the connections
  show     -name NAME: a connection, its IdP and its metadata's health
  disable  -name NAME: stop serving it; its users' sessions end
  enable   -name NAME: serve it again
  remove   -name NAME: remove it and free its domains; its users are kept

-db is the application's database: a SQLite file or a postgres:// URL.
Run "samljit connections <subcommand> -h" for its flags.
`

// connStore is the store the connections subcommands work on: the
// application's user store, which keeps the connections too.
type connStore interface {
	userstore.Store
	userstore.ConnectionAdmin
}

// runConnections dispatches a connections subcommand.
func runConnections(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, connectionsUsage)
		return usageError{errors.New("a subcommand is required")}
	}
	sub, args := args[0], args[1:]
	run, ok := map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
		"add": connAdd, "list": connList, "show": connShow,
		"disable": connSetEnabled(false), "enable": connSetEnabled(true), "remove": connRemove,
	}[sub]
	if !ok {
		if sub == "-h" || sub == "-help" || sub == "--help" || sub == "help" {
			fmt.Fprint(stderr, connectionsUsage)
			return flag.ErrHelp
		}
		fmt.Fprint(stderr, connectionsUsage)
		return usageError{fmt.Errorf("unknown subcommand %q", sub)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return run(ctx, args, stdout, stderr)
}

// connFlags is a subcommand's flag set with the flags every subcommand
// has: -db, and -name unless it is list.
type connFlags struct {
	fs       *flag.FlagSet
	db, name string
}

func newConnFlags(sub, usage string, stderr io.Writer, withName bool) *connFlags {
	f := &connFlags{fs: flag.NewFlagSet("connections "+sub, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: samljit connections %s\n\nFlags:\n", usage)
		f.fs.PrintDefaults()
	}
	f.fs.StringVar(&f.db, "db", "", "the application's database: a SQLite file, or a postgres:// URL (required)")
	if withName {
		f.fs.StringVar(&f.name, "name", "", "the connection's name, as in /saml/NAME/login (required)")
	}
	return f
}

// parse parses args and checks the required flags.
func (f *connFlags) parse(args []string, withName bool) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	switch {
	case f.fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", f.fs.Arg(0))}
	case f.db == "":
		return usageError{errors.New("-db is required")}
	case withName && f.name == "":
		return usageError{errors.New("-name is required")}
	}
	return nil
}

// openConnStore opens the store of dsn: PostgreSQL for a postgres:// URL,
// otherwise the SQLite file at that path, which must exist (a mistyped
// path would otherwise make a new, empty database that no app reads).
// Opening migrates an older schema, as the application would.
func openConnStore(ctx context.Context, dsn string) (connStore, func(), error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, nil, err
		}
		st, err := pgstore.Open(ctx, db, pgstore.Options{})
		if err != nil {
			_ = db.Close()
			return nil, nil, err
		}
		return st, func() { _ = db.Close() }, nil
	}
	if fi, err := os.Stat(dsn); err != nil {
		return nil, nil, fmt.Errorf("no database at %s (start the application once to create it): %w", dsn, err)
	} else if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory, not a database file", dsn)
	}
	db, err := sql.Open("sqlite3", sqlitestore.DSN(dsn))
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return st, func() { _ = db.Close() }, nil
}

// checker returns a middleware over st, which the connections are checked
// with exactly as the application's middleware checks them. Its SP and
// session keys are throwaway ones: checking a connection does not involve
// them, and the CLI must not need the application's secrets.
func checker(ctx context.Context, st connStore, stderr io.Writer) (*jit.Middleware, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samljit connections check"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	sessionKey := make([]byte, 32)
	if _, err := rand.Read(sessionKey); err != nil {
		return nil, err
	}
	return jit.New(ctx, jit.Options{
		RootURL: "https://app.invalid", Key: key, Certificate: cert, SessionKeys: [][]byte{sessionKey},
		Store: st, ConnectionStore: st,
		// Only what would stop a stored connection being served is
		// worth a line here.
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
}

// domainFlags is a repeatable -domain flag.
type domainFlags []string

func (d *domainFlags) String() string { return strings.Join(*d, ",") }

func (d *domainFlags) Set(v string) error {
	*d = append(*d, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v)), "."))
	return nil
}

func connAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newConnFlags("add", "add -db DSN -name NAME -idp-metadata URL-or-FILE [-preset generic|entra|okta|adfs] [-domain DOMAIN]...", stderr, true)
	metadata := f.fs.String("idp-metadata", "", "the IdP's metadata: an https URL (http on a loopback host) it is fetched from and refreshed, or a file holding it (required)")
	preset := f.fs.String("preset", "generic", "the claims mapping: generic, entra, okta or adfs")
	display := f.fs.String("display-name", "", "the connection's label for people (default: the name)")
	entityID := f.fs.String("entity-id", "", "the SP's entity ID towards this IdP (default: the connection's SP metadata URL)")
	disabled := f.fs.Bool("disabled", false, "store it disabled, to enable later")
	replace := f.fs.Bool("replace", false, "replace a connection of that name")
	var domains domainFlags
	f.fs.Var(&domains, "domain", "an email domain of the customer's people, verified by you, the operator (repeatable): /saml/login?email= sends them to this connection")
	if err := f.parse(args, true); err != nil {
		return err
	}
	if *metadata == "" {
		return usageError{errors.New("-idp-metadata is required")}
	}
	rec := userstore.Connection{Name: f.name, DisplayName: *display, Preset: *preset, EntityID: *entityID, Enabled: !*disabled}
	if strings.HasPrefix(*metadata, "https://") || strings.HasPrefix(*metadata, "http://") {
		rec.IDPMetadataURL = *metadata
	} else {
		b, err := os.ReadFile(*metadata)
		if err != nil {
			return fmt.Errorf("read the IdP metadata: %w", err)
		}
		rec.IDPMetadata = b
	}
	for _, d := range domains {
		rec.Domains = append(rec.Domains, userstore.Domain{Name: d, Verified: true})
	}
	st, closeDB, err := openConnStore(ctx, f.db)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := st.GetConnection(ctx, rec.Name); err == nil && !*replace {
		return fmt.Errorf("connection %q exists; pass -replace to replace it, or remove it first", rec.Name)
	} else if err != nil && !errors.Is(err, userstore.ErrConnectionNotFound) {
		return err
	}
	mw, err := checker(ctx, st, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = mw.Close() }()
	stored, err := mw.PutConnection(ctx, rec)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	h, err := mw.CheckConnection(ctx, stored)
	if err != nil {
		return err
	}
	state := "enabled"
	if !stored.Enabled {
		state = "disabled"
	}
	fmt.Fprintf(stdout, "Stored connection %s (%s), trusting the IdP %s.\n", stored.Name, state, h.IdPEntityID)
	fmt.Fprintf(stdout, "Give the IdP the SP metadata at ROOT_URL/saml/%s/metadata; its sign-in starts at ROOT_URL/saml/%s/login.\n", stored.Name, stored.Name)
	printWarnings(stdout, h)
	return nil
}

func connList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withConnStore(ctx, "list", "list -db DSN", args, stderr, false, func(st connStore, f *connFlags) error {
		list, _, err := st.ListConnections(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No stored connections.")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tPRESET\tDOMAINS\tIDP METADATA")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, stateOf(c), orDash(c.Preset), orDash(domainList(c)), metadataSource(c))
		}
		return tw.Flush()
	})
}

func connShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withConnStore(ctx, "show", "show -db DSN -name NAME", args, stderr, true, func(st connStore, f *connFlags) error {
		c, err := st.GetConnection(ctx, f.name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Name:          %s\n", c.Name)
		if c.DisplayName != "" {
			fmt.Fprintf(stdout, "Display name:  %s\n", c.DisplayName)
		}
		fmt.Fprintf(stdout, "State:         %s\n", stateOf(c))
		fmt.Fprintf(stdout, "Preset:        %s\n", orDash(c.Preset))
		fmt.Fprintf(stdout, "Domains:       %s\n", orDash(domainList(c)))
		fmt.Fprintf(stdout, "IdP metadata:  %s\n", metadataSource(c))
		if c.EntityID != "" {
			fmt.Fprintf(stdout, "SP entity ID:  %s\n", c.EntityID)
		}
		fmt.Fprintf(stdout, "Revision:      %d, changed %s\n", c.Revision, c.UpdatedAt.Format(time.RFC3339))
		mw, err := checker(ctx, st, io.Discard)
		if err != nil {
			return err
		}
		defer func() { _ = mw.Close() }()
		h, err := mw.CheckConnection(ctx, c)
		if err != nil {
			fmt.Fprintf(stdout, "Check:         FAILS: %v\n", err)
			return nil
		}
		fmt.Fprintf(stdout, "IdP entity ID: %s\n", h.IdPEntityID)
		if !h.MetadataValidUntil.IsZero() {
			fmt.Fprintf(stdout, "Metadata valid until %s\n", h.MetadataValidUntil.Format(time.RFC3339))
		}
		for _, ci := range h.SigningCertificates {
			fmt.Fprintf(stdout, "Signing certificate: %s, valid until %s, SHA-256 %s\n", ci.Subject, ci.NotAfter.Format(time.RFC3339), ci.SHA256)
		}
		printWarnings(stdout, h)
		return nil
	})
}

func connSetEnabled(enabled bool) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := map[bool]string{true: "enable", false: "disable"}[enabled]
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		return withConnStore(ctx, sub, sub+" -db DSN -name NAME", args, stderr, true, func(st connStore, f *connFlags) error {
			if err := st.SetConnectionEnabled(ctx, f.name, enabled, time.Now()); err != nil {
				return err
			}
			if enabled {
				fmt.Fprintf(stdout, "Enabled connection %s.\n", f.name)
			} else {
				fmt.Fprintf(stdout, "Disabled connection %s: its sessions are ended, its users kept.\n", f.name)
			}
			return nil
		})
	}
}

func connRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withConnStore(ctx, "remove", "remove -db DSN -name NAME", args, stderr, true, func(st connStore, f *connFlags) error {
		if err := st.RemoveConnection(ctx, f.name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed connection %s: its domains are free, its sessions ended, its users kept.\n", f.name)
		return nil
	})
}

// withConnStore parses the flags of a subcommand that takes -db (and
// -name when withName), opens the store the DSN names and runs fn on it,
// closing the store afterwards.
func withConnStore(ctx context.Context, sub, usage string, args []string, stderr io.Writer, withName bool, fn func(st connStore, f *connFlags) error) error {
	f := newConnFlags(sub, usage, stderr, withName)
	if err := f.parse(args, withName); err != nil {
		return err
	}
	st, closeDB, err := openConnStore(ctx, f.db)
	if err != nil {
		return err
	}
	defer closeDB()
	return fn(st, f)
}

func printWarnings(w io.Writer, h jit.ConnectionHealth) {
	for _, x := range h.Warnings {
		fmt.Fprintf(w, "warning: %s: %s\n", x.Code, x.Message)
	}
}

func stateOf(c userstore.Connection) string {
	if c.Enabled {
		return "enabled"
	}
	return "disabled"
}

func domainList(c userstore.Connection) string {
	var out []string
	for _, d := range c.Domains {
		if d.Verified {
			out = append(out, d.Name)
		} else {
			out = append(out, d.Name+" (unverified)")
		}
	}
	return strings.Join(out, ", ")
}

func metadataSource(c userstore.Connection) string {
	if c.IDPMetadataURL != "" {
		return c.IDPMetadataURL
	}
	return fmt.Sprintf("document of %d bytes", len(c.IDPMetadata))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
