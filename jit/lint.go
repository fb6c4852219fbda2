package jit

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/crewjam/saml"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// Warning is a configuration or IdP behaviour that works but is risky or
// probably a mistake, found at start-up or at a connection's first sign-in.
// Warnings are logged and returned by [Middleware.Warnings]; they never
// refuse a sign-in on their own.
type Warning struct {
	// Connection is the IdP connection's name.
	Connection string
	// Code is a stable identifier: one of the Warn… constants.
	Code string
	// Message explains the risk and the fix.
	Message string
}

// The warning codes.
const (
	// WarnNameIDKey: the key is an email-format, transient or otherwise
	// not persistent NameID, which can change or be reassigned.
	WarnNameIDKey = "nameid-key"
	// WarnEntraKey: an Entra ID connection is not keyed on
	// tenantid/objectidentifier (Entra's NameID is the user principal
	// name by default, which changes on rename).
	WarnEntraKey = "entra-key"
	// WarnEntraTenantID: an Entra ID assertion carried no tenantid claim.
	WarnEntraTenantID = "entra-tenantid"
	// WarnUnmappedGroups: the assertion's groups are object IDs (GUIDs)
	// that the connection's role mapping does not name.
	WarnUnmappedGroups = "unmapped-group-ids"
	// WarnSHA1: the connection accepts SHA-1 signatures, or its IdP used
	// one.
	WarnSHA1 = "sha1"
	// WarnUnsignedCBC: the connection decrypts AES-CBC assertions in a
	// Response that is not signed (Connection.AllowCBCWithoutSignedResponse).
	WarnUnsignedCBC = "unsigned-cbc"
	// WarnInsecureMetadata: the connection fetches IdP metadata over plain
	// http from a host that is not loopback
	// (Connection.InsecureAllowHTTPMetadata).
	WarnInsecureMetadata = "insecure-metadata"
	// WarnGroupsOverage: the IdP omitted a user's groups (Entra ID's
	// groups overage) and no GroupResolver is configured, so the sign-in
	// dropped the group-derived roles or was refused.
	WarnGroupsOverage = "groups-overage"
	// WarnGroupResolver: the connection's GroupResolver failed with an
	// error that names something an administrator must do (its Warning
	// method's text, such as a Microsoft Graph tenant that has not granted
	// admin consent); such sign-ins are refused until it is done.
	WarnGroupResolver = "group-resolver"
)

// lint is what one connection has warned about so far.
type lint struct {
	mu       sync.Mutex
	warnings []Warning
	seen     map[string]bool
	signedIn atomic.Bool // the first sign-in was examined; read on every sign-in without the lock
}

// warn records w once per code and logs it.
func (m *Middleware) warn(ctx context.Context, c *connection, code, format string, args ...any) {
	m.warnCorr(ctx, "", c, code, format, args...)
}

// warnCorr is warn during a sign-in: the log record carries its
// correlation id.
func (m *Middleware) warnCorr(ctx context.Context, corr string, c *connection, code, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.lint.record(Warning{Connection: c.name, Code: code, Message: msg}, code) {
		attrs := []slog.Attr{slog.String("connection", c.name), slog.String("code", code), slog.String("warning", msg)}
		if corr != "" {
			attrs = append(attrs, slog.String("correlation_id", corr))
		}
		m.log.LogAttrs(ctx, slog.LevelWarn, "connection lint", attrs...)
	}
}

// record keeps w the first time key (its code, or its code and a kind) is
// seen on the connection, and reports whether it was new.
func (l *lint) record(w Warning, key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[key] {
		return false
	}
	l.seen[key] = true
	l.warnings = append(l.warnings, w)
	return true
}

// Warnings returns the warnings found so far for every connection: at
// start-up from the configuration, and at each connection's first sign-in
// from what its IdP actually sent.
func (m *Middleware) Warnings() []Warning {
	var out []Warning
	for _, c := range append(slices.Clip(m.conns), m.storedConnections()...) {
		c.lint.mu.Lock()
		out = append(out, c.lint.warnings...)
		c.lint.mu.Unlock()
	}
	return out
}

// isEntra reports whether an IdP entity ID is Microsoft Entra ID's.
func isEntra(issuer string) bool {
	return strings.HasPrefix(issuer, "https://sts.windows.net/") || strings.HasPrefix(issuer, "https://login.microsoftonline.com/")
}

// mappingOf returns the declarative mapping behind a mapper, if it is one.
func mappingOf(mp claims.Mapper) (claims.Mapping, bool) {
	switch v := mp.(type) {
	case claims.Mapping:
		return v, true
	case *claims.Mapping:
		if v != nil {
			return *v, true
		}
	}
	return claims.Mapping{}, false
}

// lintConfig warns about a connection's configuration at start-up.
func (m *Middleware) lintConfig(ctx context.Context, c *connection, cfg *Connection) {
	if c.allowSHA1 {
		m.warn(ctx, c, WarnSHA1, "AllowSHA1 is set: SHA-1 signatures are accepted from this IdP, and SHA-1 collisions are practical. Ask the IdP to sign with RSA-SHA256.")
	}
	if c.mdURL != nil && c.mdURL.Scheme == "http" && !isLoopback(c.mdURL.Hostname()) {
		m.warn(ctx, c, WarnInsecureMetadata, "IDPMetadataURL is plain http (InsecureAllowHTTPMetadata): whoever can change the metadata in transit chooses the certificates signatures are checked against. Use https.")
	}
	if c.allowCBC {
		m.warn(ctx, c, WarnUnsignedCBC, "AllowCBCWithoutSignedResponse is set: AES-CBC encrypted assertions are decrypted before any signature authenticates them, which padding-oracle attacks need. Ask the IdP to sign the response too, or to encrypt with AES-GCM.")
	}
	mp, ok := mappingOf(c.mapper)
	if !ok {
		return
	}
	keyedOnNameID := len(mp.Subject.Names) == 0
	if keyedOnNameID {
		switch {
		case mp.InsecureAllowTransientNameID:
			m.warn(ctx, c, WarnNameIDKey, "the mapping allows a transient NameID as the key: every sign-in creates a new user")
		case mp.AllowEmailNameID:
			m.warn(ctx, c, WarnNameIDKey, "the mapping allows an email-format NameID as the key: emails change and are reassigned, so a later holder of an address inherits the account")
		case cfg.NameIDFormat != "" && cfg.NameIDFormat != saml.PersistentNameIDFormat:
			m.warn(ctx, c, WarnNameIDKey, "the key is the NameID but the connection requests format %q, not persistent", cfg.NameIDFormat)
		}
	}
	if isEntra(c.issuer) && !slices.Contains(mp.Subject.Names, claims.ClaimEntraObjectID) {
		m.warn(ctx, c, WarnEntraKey, "this Entra ID connection is not keyed on the objectidentifier claim; Entra's NameID is the user principal name by default, which changes on rename. Use claims.Entra()")
	} else if isEntra(c.issuer) && !slices.Contains(mp.SubjectScope.Names, claims.ClaimEntraTenantID) {
		m.warn(ctx, c, WarnEntraKey, "this Entra ID connection's key is not scoped by the tenantid claim; object IDs are unique per tenant only. Use claims.Entra()")
	}
}

// guid matches an Entra ID object ID.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// lintSignIn examines a connection's first successful validation: what the
// IdP really sends.
func (m *Middleware) lintSignIn(ctx context.Context, corr string, c *connection, id *claims.Identity, p userstore.Profile, sha1 bool) {
	if c.lint.signedIn.Load() || !c.lint.signedIn.CompareAndSwap(false, true) {
		return
	}
	if sha1 {
		m.warnCorr(ctx, corr, c, WarnSHA1, "the IdP signed with SHA-1 (accepted because AllowSHA1 is set). Ask it to sign with RSA-SHA256.")
	}
	if mp, ok := mappingOf(c.mapper); ok && len(mp.Subject.Names) == 0 && id.NameIDFormat != claims.NameIDFormatPersistent {
		format := id.NameIDFormat
		if format == "" {
			format = "none"
		}
		m.warnCorr(ctx, corr, c, WarnNameIDKey, "the key is the NameID and the IdP sent format %s, not persistent: ask the IdP for a persistent NameID, or key on an immutable attribute", format)
	}
	if isEntra(c.issuer) && len(id.Find(claims.ClaimEntraTenantID)) == 0 {
		m.warnCorr(ctx, corr, c, WarnEntraTenantID, "the Entra ID assertion carried no tenantid claim; add it to the application's claims")
	}
	rm := &c.policy.Roles
	unmapped := 0
	for _, g := range p.Groups {
		if guid.MatchString(g) && len(rm.GroupRoles[g]) == 0 && !slices.Contains(rm.AdminGroups, g) && !slices.Contains(rm.RequiredGroups, g) {
			unmapped++
		}
	}
	if unmapped > 0 {
		m.warnCorr(ctx, corr, c, WarnUnmappedGroups, "%d of the %d groups sent are object IDs that Policy.Roles does not map to any role; Entra ID sends group object IDs, not names", unmapped, len(p.Groups))
	}
}
