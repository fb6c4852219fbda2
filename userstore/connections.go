package userstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Connection is an identity provider connection (a customer's tenant) kept
// as data, so that it can be added, changed, disabled and removed while
// the application runs. It is what a connection store keeps; jit builds
// the connection it serves from it.
//
// Removing or disabling a connection never deletes or suspends its users:
// they simply cannot sign in through it, and their sessions end at their
// next request.
type Connection struct {
	// Name identifies the connection in endpoint paths: lower-case
	// letters, digits, '-' and '_', at most 64. Required, unique.
	Name string
	// DisplayName is the connection's label for people. Default: Name.
	DisplayName string
	// IDPMetadata is the IdP's metadata document; exactly one of it and
	// IDPMetadataURL is set.
	IDPMetadata []byte
	// IDPMetadataURL is where the IdP publishes its metadata.
	IDPMetadataURL string
	// Preset names the claims mapping: "generic" (the default), "entra",
	// "okta" or "adfs".
	Preset string
	// EntityID is the SP's entity ID towards this IdP. Default: the
	// connection's SP metadata URL.
	EntityID string
	// Domains are the email domains the connection claims. A domain
	// belongs to at most one connection; only verified ones route a
	// sign-in to the connection.
	Domains []Domain
	// Enabled connections are served; a disabled one is kept but serves
	// nothing, and its users' sessions end. The zero value is disabled.
	Enabled bool
	// Revision is set by the store: it changes whenever the connection
	// does, and is the store's version (see [Connections]) at that
	// change.
	Revision int64
	// UpdatedAt is set by the store: when the connection last changed.
	UpdatedAt time.Time
}

// Domain is an email domain claimed by a connection.
type Domain struct {
	// Name is the domain, lower case, without a trailing dot:
	// "example.com".
	Name string
	// Verified says the application has established that the connection's
	// customer controls the domain (by a DNS TXT record, or an operator's
	// word). Discovery by email uses verified domains only.
	Verified bool
}

// Clone returns a deep copy of c.
func (c Connection) Clone() Connection {
	if len(c.IDPMetadata) > 0 {
		c.IDPMetadata = append([]byte(nil), c.IDPMetadata...)
	}
	c.Domains = append([]Domain(nil), c.Domains...)
	return c
}

// VerifiedDomains returns the names of the connection's verified domains.
func (c Connection) VerifiedDomains() []string {
	var out []string
	for _, d := range c.Domains {
		if d.Verified {
			out = append(out, d.Name)
		}
	}
	return out
}

// Connections is a source of stored connections that jit reads: it lists
// them when its version has changed since the last read. Implementations
// must be safe for concurrent use.
type Connections interface {
	// ConnectionsVersion returns the store's change version: a number that
	// grows with every change to any connection (added, changed,
	// enabled, disabled, removed). It is cheap: it is polled.
	ConnectionsVersion(ctx context.Context) (int64, error)
	// ListConnections returns every stored connection, enabled or not,
	// ordered by name, and the version they are as of.
	ListConnections(ctx context.Context) ([]Connection, int64, error)
	// GetConnection returns the connection named name, or an error
	// wrapping [ErrConnectionNotFound].
	GetConnection(ctx context.Context, name string) (Connection, error)
}

// ConnectionAdmin changes stored connections. It checks what the store
// keeps (a valid name, unique domains) but not the IdP metadata: jit's
// PutConnection and CheckConnection do that before anything is stored.
type ConnectionAdmin interface {
	Connections
	// PutConnection adds c, or replaces the connection with c's name, and
	// returns it as stored (Revision and UpdatedAt set). A domain another
	// connection claims is refused with [ErrDomainTaken].
	PutConnection(ctx context.Context, c Connection, now time.Time) (Connection, error)
	// SetConnectionEnabled enables or disables the connection named name.
	// A store that also keeps sessions ([Sessions]) ends the sessions made
	// through the connection when it disables it, atomically with the
	// change, so that no instance sharing the store serves them again.
	SetConnectionEnabled(ctx context.Context, name string, enabled bool, now time.Time) error
	// RemoveConnection removes the connection named name. Its users are
	// kept; a store that also keeps sessions ends those made through it,
	// as SetConnectionEnabled does.
	RemoveConnection(ctx context.Context, name string) error
}

// Errors of connection stores.
var (
	// ErrConnectionNotFound: no connection has the name.
	ErrConnectionNotFound = errors.New("userstore: connection not found")
	// ErrDomainTaken: another connection claims the domain.
	ErrDomainTaken = errors.New("userstore: domain claimed by another connection")
	// ErrInvalidConnection: the connection cannot be stored as it is.
	ErrInvalidConnection = errors.New("userstore: invalid connection")
)

var (
	connectionName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	domainLabel    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// CheckConnection checks what every store requires of a connection: a
// valid name, one metadata source, and well-formed, distinct domain names.
// Errors wrap [ErrInvalidConnection].
func CheckConnection(c Connection) error {
	if !connectionName.MatchString(c.Name) {
		return fmt.Errorf("%w: name %q must match %s", ErrInvalidConnection, c.Name, connectionName)
	}
	if (len(c.IDPMetadata) > 0) == (c.IDPMetadataURL != "") {
		return fmt.Errorf("%w: connection %q: set the IdP metadata or its URL, one of them", ErrInvalidConnection, c.Name)
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		if err := CheckDomain(d.Name); err != nil {
			return fmt.Errorf("%w: connection %q: %w", ErrInvalidConnection, c.Name, err)
		}
		if seen[d.Name] {
			return fmt.Errorf("%w: connection %q lists domain %q twice", ErrInvalidConnection, c.Name, d.Name)
		}
		seen[d.Name] = true
	}
	return nil
}

// CheckDomain checks that name is a lower-case DNS domain name with at
// least two labels, as found after the "@" of an email address.
func CheckDomain(name string) error {
	labels := strings.Split(name, ".")
	if len(name) > 253 || len(labels) < 2 {
		return fmt.Errorf("domain %q is not a domain name of two labels or more", name)
	}
	for _, l := range labels {
		if !domainLabel.MatchString(l) {
			return fmt.Errorf("domain %q is not a lower-case domain name", name)
		}
	}
	return nil
}

// EmailDomain returns the lower-cased domain of an email address, or ""
// when email is not one (a domain with a character outside ASCII is not:
// internationalized domains are written in their xn-- form).
func EmailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return ""
	}
	raw := email[at+1:]
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			// Lower-casing non-ASCII can yield ASCII (the Kelvin sign
			// becomes "k"); IDNs are given in their xn-- form.
			return ""
		}
	}
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(raw)), ".")
	if CheckDomain(d) != nil {
		return ""
	}
	return d
}
