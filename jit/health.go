package jit

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// Warning codes of [ConnectionHealth] only: judged when asked, against the
// middleware's clock.
const (
	// WarnCertificateExpiring: a signing certificate in the IdP metadata
	// expires within 30 days, or has expired.
	WarnCertificateExpiring = "certificate-expiring"
	// WarnMetadataExpiring: the IdP metadata's validUntil is within 7
	// days, or has passed.
	WarnMetadataExpiring = "metadata-expiring"
	// WarnNotServed: a stored connection is enabled but not served (its
	// reason is in ConnectionHealth.Error).
	WarnNotServed = "not-served"
)

// ConnectionHealth is how one connection is doing, for an operator's or a
// customer administrator's page.
type ConnectionHealth struct {
	// Connection is the connection's name.
	Connection string
	// Stored is true for a connection read from Options.ConnectionStore.
	Stored bool
	// Enabled is false for a disabled stored connection.
	Enabled bool
	// Served says the connection signs people in now.
	Served bool
	// IdPEntityID is the IdP's entity ID, the issuer of its assertions
	// and of its users' keys.
	IdPEntityID string
	// Error, for a stored connection that is enabled but not served (or
	// served at an older revision), says why.
	Error string
	// LastSignIn is when a sign-in through the connection last succeeded
	// on this instance; zero when none has since it started.
	LastSignIn time.Time
	// LastRefusal and LastRefusalReason are when and why a sign-in through
	// the connection was last refused on this instance. The reason is for
	// operators: it may quote what the poster sent.
	LastRefusal       time.Time
	LastRefusalReason string
	// MetadataValidUntil is the IdP metadata's validUntil; zero when it
	// sets none.
	MetadataValidUntil time.Time
	// NextMetadataRefresh is when the metadata is next fetched from its
	// URL; zero when it was given as a document.
	NextMetadataRefresh time.Time
	// SigningCertificates are the IdP's signing certificates, from its
	// metadata.
	SigningCertificates []CertificateInfo
	// SigningCertificateExpiry is the earliest NotAfter among them.
	SigningCertificateExpiry time.Time
	// Warnings are the connection's lint warnings ([Middleware.Warnings])
	// and those judged now: a certificate or the metadata near its end, a
	// stored connection not served.
	Warnings []Warning
}

// CertificateInfo describes a certificate.
type CertificateInfo struct {
	Subject   string
	NotBefore time.Time
	NotAfter  time.Time
	// SHA256 is the fingerprint of the DER certificate, hex.
	SHA256 string
}

// connHealth is what a connection has seen of its sign-ins and refreshes.
// A rebuilt stored connection keeps its predecessor's.
type connHealth struct {
	mu          sync.Mutex
	lastSignIn  time.Time
	lastRefusal time.Time
	reason      string
	nextRefresh time.Time
}

func (h *connHealth) signedIn(t time.Time) {
	h.mu.Lock()
	h.lastSignIn = t
	h.mu.Unlock()
}

func (h *connHealth) refused(t time.Time, err error) {
	h.mu.Lock()
	h.lastRefusal, h.reason = t, truncate(err.Error(), maxLoggedReason)
	h.mu.Unlock()
}

func (h *connHealth) refreshAt(t time.Time) {
	h.mu.Lock()
	h.nextRefresh = t
	h.mu.Unlock()
}

// recordOutcome notes a sign-in's outcome in its connection's health.
func (m *Middleware) recordOutcome(e Event) {
	var ok bool
	switch e.Kind {
	case EventCreated, EventUpdated, EventLinked:
		ok = true
	case EventRefused:
	default:
		return
	}
	c, found := m.connection(e.Connection)
	if !found || c.health == nil {
		return
	}
	if ok {
		c.health.signedIn(e.Time)
	} else if e.Err != nil {
		c.health.refused(e.Time, e.Err)
	}
}

// ConnectionHealth returns the health of the connection name: configured
// in code, or stored (served or not). ok is false when there is no such
// connection.
func (m *Middleware) ConnectionHealth(name string) (ConnectionHealth, bool) {
	if c, ok := m.byName[name]; ok {
		return m.health(c, nil), true
	}
	if m.reg == nil {
		return ConnectionHealth{}, false
	}
	m.reg.mu.RLock()
	st, ok := m.reg.states[name]
	m.reg.mu.RUnlock()
	if !ok {
		return ConnectionHealth{}, false
	}
	return m.health(st.conn, st), true
}

// Health returns the health of every connection: those configured in
// code in order, then the stored ones by name.
func (m *Middleware) Health() []ConnectionHealth {
	out := make([]ConnectionHealth, 0, len(m.conns))
	for _, c := range m.conns {
		out = append(out, m.health(c, nil))
	}
	if m.reg == nil {
		return out
	}
	m.reg.mu.RLock()
	states := make([]*storedState, 0, len(m.reg.states))
	for _, st := range m.reg.states {
		states = append(states, st)
	}
	m.reg.mu.RUnlock()
	stored := make([]ConnectionHealth, 0, len(states))
	for _, st := range states {
		stored = append(stored, m.health(st.conn, st))
	}
	slices.SortFunc(stored, func(a, b ConnectionHealth) int { return strings.Compare(a.Connection, b.Connection) })
	return append(out, stored...)
}

// health reports on connection c (nil when a stored one is not built) and
// its stored state st (nil for a code-configured one).
func (m *Middleware) health(c *connection, st *storedState) ConnectionHealth {
	now := m.now()
	h := ConnectionHealth{Enabled: true}
	if st != nil {
		h.Connection, h.Stored, h.Enabled = st.rec.Name, true, st.rec.Enabled
		if st.err != nil {
			h.Error = st.err.Error()
		}
		served, _ := m.connection(st.rec.Name)
		h.Served = served != nil && served == c
		if h.Enabled && !h.Served {
			msg := "the connection is enabled but not served"
			if h.Error != "" {
				msg += ": " + h.Error
			}
			h.Warnings = append(h.Warnings, Warning{Connection: h.Connection, Code: WarnNotServed, Message: msg})
		}
	} else {
		h.Served = true
	}
	if c == nil {
		return h
	}
	h.Connection, h.IdPEntityID = c.name, c.issuer
	if c.health != nil {
		c.health.mu.Lock()
		h.LastSignIn, h.LastRefusal, h.LastRefusalReason = c.health.lastSignIn, c.health.lastRefusal, c.health.reason
		if c.mdURL != nil {
			h.NextMetadataRefresh = c.health.nextRefresh
		}
		c.health.mu.Unlock()
	}
	snap := c.current()
	h.MetadataValidUntil = snap.validUntil
	if !snap.validUntil.IsZero() && snap.validUntil.Sub(now) < 7*24*time.Hour {
		h.Warnings = append(h.Warnings, Warning{Connection: c.name, Code: WarnMetadataExpiring,
			Message: fmt.Sprintf("the IdP metadata is valid until %s; a fresh copy is needed before then", snap.validUntil.UTC().Format(time.RFC3339))})
	}
	certs, err := signingCertificates(snap)
	if err != nil {
		h.Warnings = append(h.Warnings, Warning{Connection: c.name, Code: WarnCertificateExpiring, Message: err.Error()})
	}
	for _, ci := range certs {
		h.SigningCertificates = append(h.SigningCertificates, ci)
		if h.SigningCertificateExpiry.IsZero() || ci.NotAfter.Before(h.SigningCertificateExpiry) {
			h.SigningCertificateExpiry = ci.NotAfter
		}
		if ci.NotAfter.Sub(now) < 30*24*time.Hour {
			verb := "expires"
			if now.After(ci.NotAfter) {
				verb = "expired"
			}
			h.Warnings = append(h.Warnings, Warning{Connection: c.name, Code: WarnCertificateExpiring,
				Message: fmt.Sprintf("the IdP signing certificate %s (%s) %s on %s: the IdP must publish its next certificate in its metadata", ci.Subject, ci.SHA256[:16], verb, ci.NotAfter.UTC().Format(time.RFC3339))})
		}
	}
	if w, ok := nameIDOffer(c, snap); ok {
		h.Warnings = append(h.Warnings, w)
	}
	c.lint.mu.Lock()
	h.Warnings = append(h.Warnings, c.lint.warnings...)
	c.lint.mu.Unlock()
	return h
}

// signingCertificates describes the signing certificates of snapshot s's
// metadata.
func signingCertificates(s *idpSnapshot) ([]CertificateInfo, error) {
	var out []CertificateInfo
	var errs []error
	for _, d := range s.sp.IDPMetadata.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
				if err != nil {
					errs = append(errs, fmt.Errorf("an IdP signing certificate is not base64: %w", err))
					continue
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					errs = append(errs, fmt.Errorf("an IdP signing certificate does not parse: %w", err))
					continue
				}
				sum := sha256.Sum256(der)
				out = append(out, CertificateInfo{Subject: cert.Subject.String(), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, SHA256: hex.EncodeToString(sum[:])})
			}
		}
	}
	return out, errors.Join(errs...)
}

// nameIDOffer warns when the connection keys users on the NameID and the
// IdP's metadata lists NameID formats, none of them persistent: the IdP
// will likely send an email or a transient NameID, which the mapping
// refuses (or, when allowed, which changes or is reassigned).
func nameIDOffer(c *connection, s *idpSnapshot) (Warning, bool) {
	mp, ok := mappingOf(c.mapper)
	if !ok || len(mp.Subject.Names) > 0 {
		return Warning{}, false
	}
	var formats []string
	for _, d := range s.sp.IDPMetadata.IDPSSODescriptors {
		for _, f := range d.NameIDFormats {
			if string(f) == string(saml.PersistentNameIDFormat) {
				return Warning{}, false
			}
			formats = append(formats, string(f))
		}
	}
	if len(formats) == 0 {
		return Warning{}, false
	}
	return Warning{Connection: c.name, Code: WarnNameIDKey, Message: fmt.Sprintf(
		"users are keyed on the NameID, and the IdP's metadata offers no persistent NameID (only %s): an email NameID changes and is reassigned, a transient one changes at every sign-in. Ask the IdP for a persistent NameID, or key on an immutable attribute (a preset such as entra)", strings.Join(formats, ", "))}, true
}
