package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/json"
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

// optInFlags names the explain flag of every opt-in of a connection
// (jit.Connection) and of a claims mapping (claims.Mapping): every field
// named Allow… or Insecure…, so that a response judged by explain can be
// judged as a connection with that option would. TestEveryOptInHasAFlag
// keeps it complete.
var optInFlags = map[string]string{
	"Connection.AllowSHA1":                     "allow-sha1",
	"Connection.AllowIDPInitiated":             "allow-idp-initiated",
	"Connection.AllowCBCWithoutSignedResponse": "allow-cbc-without-signed-response",
	"Connection.InsecureAllowHTTPMetadata":     "insecure-http-metadata",
	"Mapping.AllowEmailNameID":                 "allow-email-nameid",
	"Mapping.InsecureAllowTransientNameID":     "insecure-allow-transient-nameid",
}

// explainFlags are the parsed flags of explain.
type explainFlags struct {
	fs                                     *flag.FlagSet
	mdSource, entityID, acsURL, preset     string
	nowFlag, keyFile, certFile, config, db string
	asJSON                                 bool
	// conn and mapping hold the opt-ins, under their own field names.
	conn    jit.Connection
	mapping claims.Mapping
}

// newExplainFlags defines explain's flags on a new flag set.
func newExplainFlags(stderr io.Writer) *explainFlags {
	f := &explainFlags{fs: flag.NewFlagSet("explain", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, explainUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.mdSource, "idp-metadata", "", "IdP metadata: a file or an http(s) URL (required)")
	fs.StringVar(&f.entityID, "sp-entity-id", "", "this SP's entity ID towards the IdP, the audience (required)")
	fs.StringVar(&f.acsURL, "acs-url", "", "the connection's ACS URL, the Recipient and Destination (required)")
	fs.StringVar(&f.preset, "preset", claims.PresetGeneric, "claims mapping preset: "+strings.Join(claims.PresetNames(), ", "))
	fs.StringVar(&f.nowFlag, "now", "", "judge the response at this RFC 3339 instant, certificate validity included (default: now; a refusal for a stale response prints the -now to rerun with)")
	fs.BoolVar(&f.asJSON, "json", false, "print the trace as JSON (stable, snake_case, version "+fmt.Sprint(jit.TraceFormatVersion)+")")
	fs.BoolVar(&f.conn.AllowSHA1, optInFlags["Connection.AllowSHA1"], false, "accept RSA-SHA1 signatures, as a connection with AllowSHA1")
	fs.BoolVar(&f.conn.AllowIDPInitiated, optInFlags["Connection.AllowIDPInitiated"], false, "accept an unsolicited response, as a connection with AllowIDPInitiated")
	fs.BoolVar(&f.conn.InsecureAllowHTTPMetadata, optInFlags["Connection.InsecureAllowHTTPMetadata"], false, "fetch -idp-metadata over plain http from a host that is not loopback, as a connection with InsecureAllowHTTPMetadata")
	fs.BoolVar(&f.conn.AllowCBCWithoutSignedResponse, optInFlags["Connection.AllowCBCWithoutSignedResponse"], false, "decrypt an AES-CBC assertion in an unsigned Response, as a connection with AllowCBCWithoutSignedResponse")
	fs.BoolVar(&f.mapping.AllowEmailNameID, optInFlags["Mapping.AllowEmailNameID"], false, "let an emailAddress NameID be the key, as a mapping with AllowEmailNameID (ADFS, PingFederate and OneLogin defaults; emails are reassigned)")
	fs.BoolVar(&f.mapping.InsecureAllowTransientNameID, optInFlags["Mapping.InsecureAllowTransientNameID"], false, "let a transient NameID be the key, as a mapping with InsecureAllowTransientNameID (a new user at every sign-in)")
	fs.StringVar(&f.keyFile, "sp-key", "", "the SP's private key (PEM), to decrypt an encrypted assertion")
	fs.StringVar(&f.certFile, "sp-cert", "", "the SP's certificate (PEM), with -sp-key")
	fs.StringVar(&f.config, "config", "", "the connection's policy as JSON: disable_create, sync, roles, brownfield (default: the zero policy, no roles)")
	fs.StringVar(&f.db, "db", "", "an SQLite user store, read only, to judge a returning user and brownfield conflicts")
	return f
}

// request builds the ExplainRequest of the parsed flags, but for the
// inputs read from files.
func (f *explainFlags) request() (jit.ExplainRequest, error) {
	now := time.Now()
	if f.nowFlag != "" {
		t, err := time.Parse(time.RFC3339, f.nowFlag)
		if err != nil {
			return jit.ExplainRequest{}, usageError{fmt.Errorf("-now: %w", err)}
		}
		now = t
	}
	mapping, err := claims.Preset(f.preset)
	if err != nil {
		return jit.ExplainRequest{}, usageError{err}
	}
	mapping.AllowEmailNameID = f.mapping.AllowEmailNameID
	mapping.InsecureAllowTransientNameID = f.mapping.InsecureAllowTransientNameID
	return jit.ExplainRequest{SPEntityID: f.entityID, ACSURL: f.acsURL, Mapper: mapping, Now: now,
		AllowSHA1: f.conn.AllowSHA1, AllowIDPInitiated: f.conn.AllowIDPInitiated,
		AllowCBCWithoutSignedResponse: f.conn.AllowCBCWithoutSignedResponse}, nil
}

func runExplain(args []string, stdout, stderr io.Writer) error {
	f := newExplainFlags(stderr)
	fs := f.fs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if f.mdSource == "" || f.entityID == "" || f.acsURL == "" {
		fs.Usage()
		return usageError{errors.New("-idp-metadata, -sp-entity-id and -acs-url are required")}
	}
	if fs.NArg() > 1 {
		return usageError{errors.New("at most one RESPONSE_FILE")}
	}
	req, err := f.request()
	if err != nil {
		return err
	}
	if f.config != "" {
		if req.Policy, err = readPolicy(f.config); err != nil {
			return usageError{err}
		}
	}
	ctx := context.Background()
	if req.IDPMetadata, err = readSource(ctx, f.mdSource, f.conn.InsecureAllowHTTPMetadata); err != nil {
		return usageError{fmt.Errorf("-idp-metadata: %w", err)}
	}
	if (f.keyFile == "") != (f.certFile == "") {
		return usageError{errors.New("-sp-key and -sp-cert go together")}
	}
	if f.keyFile != "" {
		if req.Key, req.Certificate, err = readKeyPair(f.keyFile, f.certFile); err != nil {
			return usageError{err}
		}
	}
	if f.db != "" {
		if _, err := os.Stat(f.db); err != nil {
			return usageError{fmt.Errorf("-db: %w", err)}
		}
		db, err := sql.Open("sqlite3", "file:"+f.db+"?mode=ro&_busy_timeout=5000")
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
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(t); err != nil {
			return err
		}
		if !t.RetryAt.IsZero() {
			fmt.Fprintf(stderr, "samljit explain: the response was judged outside its issue window; rerun with -now %s\n", t.RetryAt.Format(time.RFC3339))
		}
	} else {
		printTrace(stdout, t)
		if !t.RetryAt.IsZero() {
			fmt.Fprintf(stdout, "The response was judged outside its issue window (a captured response is stale within minutes).\nRerun with -now %s to judge it as of when it was issued.\n", t.RetryAt.Format(time.RFC3339))
		}
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
	if untrusted := t.Untrusted(); len(untrusted) > 0 || signatureFailed(t) {
		fmt.Fprintln(w, "Certificates:")
		for _, c := range t.SigningCertificates {
			mark := "trusted"
			if slices.Contains(untrusted, c) {
				mark = "NOT in the IdP metadata"
			}
			fmt.Fprintf(w, "  signed with (%s): %s\n", mark, describeCert(c))
		}
		if len(t.SigningCertificates) == 0 {
			fmt.Fprintln(w, "  signed with: no certificate in the signatures' KeyInfo")
		}
		for _, c := range t.TrustedCertificates {
			fmt.Fprintf(w, "  trusted (IdP metadata): %s\n", describeCert(c))
		}
	}
	if id := t.Identity; id != nil {
		fmt.Fprintln(w, "Identity:")
		fmt.Fprintf(w, "  issuer: %s\n", id.Issuer)
		fmt.Fprintf(w, "  NameID: %s (format %s)\n", id.NameID, orNone(id.NameIDFormat))
		for _, a := range id.Attributes {
			fmt.Fprintf(w, "  %s: %s\n", attributeLabel(a), strings.Join(a.Values, ", "))
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
	if errors.Is(d.Err, claims.ErrEmailNameID) || errors.Is(d.Err, claims.ErrTransientNameID) {
		fmt.Fprintln(w, "  to judge it as a mapping that allows this NameID: add -allow-email-nameid or -insecure-allow-transient-nameid")
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

// attributeLabel is an attribute's Name, followed by the names a person
// knows it by: its well-known short name and the FriendlyName the IdP sent.
func attributeLabel(a claims.Attribute) string {
	var aka []string
	if k := claims.KnownName(a.Name); k != "" && !strings.HasSuffix(a.Name, "/"+k) {
		aka = append(aka, k)
	}
	if a.FriendlyName != "" && !slices.Contains(aka, a.FriendlyName) {
		aka = append(aka, a.FriendlyName)
	}
	if len(aka) == 0 {
		return a.Name
	}
	return a.Name + " (" + strings.Join(aka, ", ") + ")"
}

// describeCert is a certificate on one line.
func describeCert(c jit.CertificateSummary) string {
	return fmt.Sprintf("subject %s, SHA-256 %s, valid %s to %s", c.Subject, c.SHA256,
		c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
}

// signatureFailed reports whether the signature check is what failed:
// the protocol step, with a detail about a signature or certificate.
func signatureFailed(t *jit.Trace) bool {
	n := len(t.Steps)
	if n == 0 || t.Steps[n-1].OK || t.Steps[n-1].Name != "protocol" {
		return false
	}
	d := strings.ToLower(t.Steps[n-1].Detail)
	return strings.Contains(d, "signature") || strings.Contains(d, "certificate")
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

// readKeyPair reads a PEM private key and certificate.
func readKeyPair(keyFile, certFile string) (crypto.Signer, *x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	key, cert, err := jit.ParseKeyPair(kb, cb)
	if err != nil {
		return nil, nil, fmt.Errorf("-sp-key, -sp-cert: %w", err)
	}
	return key, cert, nil
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
