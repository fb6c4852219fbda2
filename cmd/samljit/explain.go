package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// usageError makes run exit with status 2.
type usageError struct{ error }

// refusedError makes run exit with status 1 without printing anything
// more: the trace already said why.
type refusedError struct{}

func (refusedError) Error() string { return "the sign-in would be refused" }

const explainUsage = `Usage: samljit explain [flags] [RESPONSE_FILE]

Judges a captured SAMLResponse (base64 as posted to the ACS, the whole form
body SAMLResponse=…&RelayState=… as developer tools show it, or its XML; from
RESPONSE_FILE or standard input) the way the samljit middleware would, and
prints the decision trace: each check, the identity and key derived, and what
the connection's policy would do. It writes nothing.

Exit status: 0 the sign-in would succeed, 1 it would be refused, 2 usage error.

Flags:
`

// explainConfig is the connection configuration file read by -config: the
// declarative part of a jit.Policy.
type explainConfig struct {
	DisableCreate bool              `json:"disable_create"`
	Sync          map[string]string `json:"sync"`
	Roles         struct {
		GroupRoles     map[string][]string `json:"group_roles"`
		RequiredGroups []string            `json:"required_groups"`
		AdminGroups    []string            `json:"admin_groups"`
		DefaultRoles   []string            `json:"default_roles"`
	} `json:"roles"`
	Brownfield struct {
		Mode            string   `json:"mode"`
		VerifiedDomains []string `json:"verified_domains"`
	} `json:"brownfield"`
}

func runExplain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, explainUsage)
		fs.PrintDefaults()
	}
	var (
		mdSource   = fs.String("idp-metadata", "", "IdP metadata: a file or an http(s) URL (required)")
		entityID   = fs.String("sp-entity-id", "", "this SP's entity ID towards the IdP, the audience (required)")
		acsURL     = fs.String("acs-url", "", "the connection's ACS URL, the Recipient and Destination (required)")
		preset     = fs.String("preset", claims.PresetGeneric, "claims mapping preset: "+strings.Join(claims.PresetNames(), ", "))
		nowFlag    = fs.String("now", "", "judge the response at this RFC 3339 instant, certificate validity included (default: now)")
		asJSON     = fs.Bool("json", false, "print the trace as JSON")
		allowSHA1  = fs.Bool("allow-sha1", false, "accept RSA-SHA1 signatures, as a connection with AllowSHA1")
		allowIDPI  = fs.Bool("allow-idp-initiated", false, "accept an unsolicited response, as a connection with AllowIDPInitiated")
		insecureMD = fs.Bool("insecure-http-metadata", false, "fetch -idp-metadata over plain http from a host that is not loopback, as a connection with InsecureAllowHTTPMetadata")
		allowCBC   = fs.Bool("allow-cbc-without-signed-response", false, "decrypt an AES-CBC assertion in an unsigned Response, as a connection with AllowCBCWithoutSignedResponse")
		keyFile    = fs.String("sp-key", "", "the SP's private key (PEM), to decrypt an encrypted assertion")
		certFile   = fs.String("sp-cert", "", "the SP's certificate (PEM), with -sp-key")
		config     = fs.String("config", "", "the connection's policy as JSON: disable_create, sync, roles, brownfield")
		dbFile     = fs.String("db", "", "an SQLite user store, read only, to judge a returning user and brownfield conflicts")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *mdSource == "" || *entityID == "" || *acsURL == "" {
		fs.Usage()
		return usageError{errors.New("-idp-metadata, -sp-entity-id and -acs-url are required")}
	}
	if fs.NArg() > 1 {
		return usageError{errors.New("at most one RESPONSE_FILE")}
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return usageError{fmt.Errorf("-now: %w", err)}
		}
		now = t
	}
	mapper, err := claims.Preset(*preset)
	if err != nil {
		return usageError{err}
	}
	req := jit.ExplainRequest{SPEntityID: *entityID, ACSURL: *acsURL, Mapper: mapper, Now: now,
		AllowSHA1: *allowSHA1, AllowIDPInitiated: *allowIDPI, AllowCBCWithoutSignedResponse: *allowCBC}
	if *config != "" {
		if req.Policy, err = readPolicy(*config); err != nil {
			return usageError{err}
		}
	}
	ctx := context.Background()
	if req.IDPMetadata, err = readSource(ctx, *mdSource, *insecureMD); err != nil {
		return usageError{fmt.Errorf("-idp-metadata: %w", err)}
	}
	if (*keyFile == "") != (*certFile == "") {
		return usageError{errors.New("-sp-key and -sp-cert go together")}
	}
	if *keyFile != "" {
		if req.Key, req.Certificate, err = readKeyPair(*keyFile, *certFile); err != nil {
			return usageError{err}
		}
	}
	if *dbFile != "" {
		if _, err := os.Stat(*dbFile); err != nil {
			return usageError{fmt.Errorf("-db: %w", err)}
		}
		db, err := sql.Open("sqlite3", "file:"+*dbFile+"?mode=ro&_busy_timeout=5000")
		if err != nil {
			return usageError{fmt.Errorf("-db: %w", err)}
		}
		defer db.Close()
		st, err := sqlitestore.Open(ctx, db, sqlitestore.Options{})
		if err != nil {
			return usageError{fmt.Errorf("-db: %w", err)}
		}
		req.Store = st
	}
	if fs.NArg() == 1 {
		req.Response, err = os.ReadFile(fs.Arg(0))
	} else {
		req.Response, err = io.ReadAll(io.LimitReader(os.Stdin, 4<<20))
	}
	if err != nil {
		return usageError{fmt.Errorf("read the response: %w", err)}
	}

	t, err := jit.Explain(ctx, req)
	if err != nil {
		return usageError{err}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(t); err != nil {
			return err
		}
	} else {
		printTrace(stdout, t)
	}
	if t.Decision.Action == "refuse" {
		return refusedError{}
	}
	return nil
}

// printTrace writes the trace for a person.
func printTrace(w io.Writer, t *jit.Trace) {
	fmt.Fprintln(w, "Checks:")
	for _, s := range t.Steps {
		if s.OK {
			fmt.Fprintf(w, "  ok   %s\n", s.Name)
		} else {
			fmt.Fprintf(w, "  FAIL %s: %s\n", s.Name, s.Detail)
		}
	}
	if n := len(t.Steps); n > 0 && !t.Steps[n-1].OK {
		for _, name := range jit.StepOrder() {
			if !slices.ContainsFunc(t.Steps, func(s jit.Step) bool { return s.Name == name }) {
				fmt.Fprintf(w, "  --   %s (not reached)\n", name)
			}
		}
	}
	if len(t.Notes) > 0 {
		fmt.Fprintln(w, "Notes:")
		for _, n := range t.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	if id := t.Identity; id != nil {
		fmt.Fprintln(w, "Identity:")
		fmt.Fprintf(w, "  issuer: %s\n", id.Issuer)
		fmt.Fprintf(w, "  NameID: %s (format %s)\n", id.NameID, orNone(id.NameIDFormat))
		for _, a := range id.Attributes {
			name := a.Name
			if a.FriendlyName != "" {
				name += " (" + a.FriendlyName + ")"
			}
			fmt.Fprintf(w, "  %s: %s\n", name, strings.Join(a.Values, ", "))
		}
		fmt.Fprintln(w, "Key:")
		fmt.Fprintf(w, "  issuer: %s\n  subject: %s\n", t.Key.Issuer, t.Key.Subject)
	}
	d := t.Decision
	fmt.Fprintln(w, "Decision:")
	fmt.Fprintf(w, "  %s", d.Action)
	if d.UserID != "" {
		fmt.Fprintf(w, " user %s", d.UserID)
	}
	fmt.Fprintln(w)
	if d.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", d.Reason)
	}
	if len(d.Changed) > 0 {
		fmt.Fprintf(w, "  changed: %s\n", strings.Join(d.Changed, ", "))
	}
	if d.Action == "refuse" {
		return
	}
	fmt.Fprintf(w, "  roles granted: %s\n", orNone(strings.Join(d.RolesGranted, ", ")))
	fmt.Fprintf(w, "  roles removed: %s\n", orNone(strings.Join(d.RolesRemoved, ", ")))
	if p := d.After; p != nil {
		fmt.Fprintln(w, "Record as written:")
		fmt.Fprintf(w, "  email: %s\n  display name: %s\n  given name: %s\n  family name: %s\n", p.Email, p.DisplayName, p.GivenName, p.FamilyName)
		fmt.Fprintf(w, "  groups: %s\n  roles: %s\n", orNone(strings.Join(p.Groups, ", ")), orNone(strings.Join(p.Roles, ", ")))
		for _, k := range slices.Sorted(maps.Keys(p.Attributes)) {
			fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(p.Attributes[k], ", "))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// readSource reads a file, or fetches IdP metadata from an http(s) URL as
// the middleware does: https only (http for a loopback host, or with
// insecureHTTP), no redirect off https or to another host.
func readSource(ctx context.Context, src string, insecureHTTP bool) ([]byte, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return os.ReadFile(src)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return jit.FetchIDPMetadata(ctx, nil, src, insecureHTTP)
}

// readKeyPair reads a PEM private key (PKCS #1 or PKCS #8) and certificate.
func readKeyPair(keyFile, certFile string) (crypto.Signer, *x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kp, _ := pem.Decode(kb)
	cp, _ := pem.Decode(cb)
	if kp == nil || cp == nil {
		return nil, nil, errors.New("-sp-key and -sp-cert must be PEM")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("-sp-cert: %w", err)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kp.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kp.Bytes); err != nil {
			return nil, nil, fmt.Errorf("-sp-key: %w", err)
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("-sp-key is not a signing key")
	}
	return signer, cert, nil
}

// readPolicy reads the -config file.
func readPolicy(path string) (jit.Policy, error) {
	var p jit.Policy
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("-config: %w", err)
	}
	var cfg explainConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return p, fmt.Errorf("-config %s: %w", path, err)
	}
	p.DisableCreate = cfg.DisableCreate
	p.Roles = jit.RoleMapping{GroupRoles: cfg.Roles.GroupRoles, RequiredGroups: cfg.Roles.RequiredGroups,
		AdminGroups: cfg.Roles.AdminGroups, DefaultRoles: cfg.Roles.DefaultRoles}
	rules := map[string]jit.SyncRule{}
	for _, r := range []jit.SyncRule{jit.SyncAlways, jit.SyncOnCreate, jit.SyncIfEmpty, jit.SyncNever} {
		rules[r.String()] = r
	}
	for field, name := range cfg.Sync {
		r, ok := rules[name]
		if !ok {
			return p, fmt.Errorf("-config: sync rule %q for %q: want always, on-create, if-empty or never", name, field)
		}
		if p.Sync == nil {
			p.Sync = map[string]jit.SyncRule{}
		}
		p.Sync[field] = r
	}
	switch cfg.Brownfield.Mode {
	case "", "deny":
	case "link-verified-domains":
		p.Brownfield = jit.Brownfield{Mode: jit.BrownfieldLinkVerifiedDomains, VerifiedDomains: cfg.Brownfield.VerifiedDomains}
	case "link-after-proof":
		// The proof is the application's hook; explain reports where it
		// would be asked.
		p.Brownfield = jit.Brownfield{Mode: jit.BrownfieldLinkAfterProof, Prove: func(*http.Request, userstore.User, userstore.Key, userstore.Profile) error {
			return errors.New("not run")
		}}
	default:
		return p, fmt.Errorf("-config: brownfield mode %q: want deny, link-verified-domains or link-after-proof", cfg.Brownfield.Mode)
	}
	return p, nil
}
