package jit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// Bounds of the background refresh of IdP metadata fetched from
// [Connection.IDPMetadataURL].
const (
	// DefaultMetadataRefreshInterval is the longest a fetched IdP metadata
	// document is kept before it is fetched again, when
	// [Options.MetadataRefreshInterval] is zero. A shorter cacheDuration or
	// an earlier validUntil in the document brings the refresh forward.
	DefaultMetadataRefreshInterval = 24 * time.Hour
	// minMetadataRefreshInterval is the shortest delay between two fetches
	// that a document's cacheDuration or validUntil can ask for. An
	// explicit, shorter [Options.MetadataRefreshInterval] is honoured.
	minMetadataRefreshInterval = time.Minute
	// metadataRetryBase and metadataRetryMax bound the exponential backoff
	// after a failed refresh (never later than the regular refresh).
	metadataRetryBase = 5 * time.Second
	metadataRetryMax  = 15 * time.Minute
)

// idpSnapshot is one accepted copy of a connection's IdP metadata and what
// derives from it. It is immutable once published: a refresh builds a new
// one and swaps the connection's pointer, and a request reads the pointer
// once and uses that snapshot throughout.
type idpSnapshot struct {
	sp         saml.ServiceProvider // a template, copied per use; IDPMetadata is this copy
	binding    string               // how the AuthnRequest is sent
	ssoURL     string
	sloBinding string        // how LogoutRequests and LogoutResponses are sent; "" when the IdP has no SLO
	sloURL     string        // where LogoutRequests go
	sloRespURL string        // where LogoutResponses go
	validUntil time.Time     // zero when the metadata sets none
	cache      time.Duration // the metadata's cacheDuration; zero when none
	fast       *fastVerifier // the sign-in fast path for sp; nil when sp is configured beyond it
}

// newSnapshot builds the snapshot of c for the IdP metadata md.
func (c *connection) newSnapshot(md *saml.EntityDescriptor) (*idpSnapshot, error) {
	s := &idpSnapshot{sp: c.spBase}
	s.sp.IDPMetadata = md
	s.fast = newFastVerifier(&s.sp)
	s.validUntil, s.cache = metadataValidity(md)
	for _, b := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		if loc := s.sp.GetSSOBindingLocation(b); loc != "" {
			s.binding, s.ssoURL = b, loc
			break
		}
	}
	if s.ssoURL == "" {
		return nil, errors.New("IdP metadata has no HTTP-Redirect or HTTP-POST SingleSignOnService")
	}
	s.sloBinding, s.sloURL, s.sloRespURL = idpSLO(md)
	return s, nil
}

// current returns the connection's IdP metadata snapshot in force. Read it
// once per request.
func (c *connection) current() *idpSnapshot { return c.idp.Load() }

// checkFresh refuses a sign-in through a snapshot whose validUntil has
// passed at now.
func (c *connection) checkFresh(s *idpSnapshot, now time.Time) error {
	if s.validUntil.IsZero() || now.Before(s.validUntil) {
		return nil
	}
	src := "IDPMetadata"
	if c.mdURL != nil {
		src = redactURL(c.mdURL)
	}
	return fmt.Errorf("%w: connection %q: the IdP metadata from %s was valid until %s and no fresh copy has been accepted since",
		ErrMetadataExpired, c.name, src, s.validUntil.UTC().Format(time.RFC3339))
}

// redactURL renders u for logs without its password or query, either of
// which may carry a secret.
func redactURL(u *url.URL) string {
	v := *u
	if v.RawQuery != "" || v.ForceQuery {
		v.RawQuery, v.ForceQuery = "", false
		return v.Redacted() + "?[redacted]"
	}
	return v.Redacted()
}

// refreshState is what the refresher keeps per URL-backed connection.
type refreshState struct {
	c        *connection
	due      time.Time // on the real clock, which the timer runs on
	failures int
}

// startRefresher starts the one goroutine that refreshes every URL-backed
// connection, if there is any.
func (m *Middleware) startRefresher(ctx context.Context) {
	var states []*refreshState
	for _, c := range m.conns {
		if c.mdURL != nil {
			due := time.Now().Add(m.nextRefresh(c.current()))
			c.health.refreshAt(due)
			states = append(states, &refreshState{c: c, due: due})
		}
	}
	if len(states) == 0 {
		return
	}
	// The goroutine outlives New's context, whose values it keeps.
	ctx, m.stop = context.WithCancel(context.WithoutCancel(ctx))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.refreshLoop(ctx, states)
	}()
}

// refreshLoop fetches each connection's metadata when it is due, until ctx
// is cancelled.
func (m *Middleware) refreshLoop(ctx context.Context, states []*refreshState) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := states[0].due
		for _, s := range states[1:] {
			if s.due.Before(next) {
				next = s.due
			}
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for _, s := range states {
			if ctx.Err() != nil {
				return
			}
			if !time.Now().Before(s.due) {
				m.refresh(ctx, s)
			}
		}
	}
}

// refresh fetches s's connection's metadata once, publishes it if it is
// acceptable, and schedules the next fetch.
func (m *Middleware) refresh(ctx context.Context, s *refreshState) {
	c := s.c
	snap, err := m.fetchSnapshot(ctx, c)
	if ctx.Err() != nil {
		return // closing: a cancelled fetch is no failure
	}
	if err != nil {
		s.failures++
		retry := min(metadataRetryBase<<min(s.failures-1, 20), metadataRetryMax, m.nextRefresh(c.current()))
		s.due = time.Now().Add(retry)
		c.health.refreshAt(s.due)
		attrs := []slog.Attr{
			slog.String("connection", c.name),
			slog.String("url", redactURL(c.mdURL)),
			slog.String("err", err.Error()),
			slog.Int("failures", s.failures),
			slog.Duration("retry_in", retry),
		}
		level, msg := slog.LevelWarn, "IdP metadata refresh failed; keeping the last good copy"
		if old := c.current(); c.checkFresh(old, m.now()) != nil {
			level, msg = slog.LevelError, "IdP metadata refresh failed and the last good copy has expired; sign-ins through this connection are refused"
			attrs = append(attrs, slog.Time("valid_until", old.validUntil))
		}
		m.log.LogAttrs(ctx, level, msg, attrs...)
		return
	}
	prev := c.idp.Swap(snap)
	s.failures = 0
	if before, after := signingCertSet(prev.sp.IDPMetadata), signingCertSet(snap.sp.IDPMetadata); !slices.Equal(before, after) {
		m.log.LogAttrs(ctx, slog.LevelInfo, "IdP signing certificates changed",
			slog.String("connection", c.name),
			slog.String("url", redactURL(c.mdURL)),
			slog.Any("before", before),
			slog.Any("after", after))
	}
	next := m.nextRefresh(snap)
	s.due = time.Now().Add(next)
	c.health.refreshAt(s.due)
	m.log.LogAttrs(ctx, slog.LevelDebug, "IdP metadata refreshed",
		slog.String("connection", c.name),
		slog.String("url", redactURL(c.mdURL)),
		slog.Time("valid_until", snap.validUntil),
		slog.Duration("next_refresh_in", next))
}

// fetchSnapshot fetches and vets a fresh copy of c's metadata.
func (m *Middleware) fetchSnapshot(ctx context.Context, c *connection) (*idpSnapshot, error) {
	md, err := fetchIDPMetadata(ctx, m.httpClient, c.mdURL.String())
	if err != nil {
		return nil, err
	}
	if md.EntityID != c.issuer {
		// Users are bound to the issuer: a new entity ID is a new IdP,
		// and needs a new connection, not a refresh.
		return nil, fmt.Errorf("metadata refused: its entityID %q is not the connection's IdP %q", md.EntityID, c.issuer)
	}
	snap, err := c.newSnapshot(md)
	if err != nil {
		return nil, fmt.Errorf("metadata refused: %w", err)
	}
	if signingCerts(md) == 0 {
		return nil, errors.New("metadata refused: it lists no signing certificate")
	}
	if err := c.checkFresh(snap, m.now()); err != nil {
		return nil, fmt.Errorf("metadata refused: it is already expired: %w", err)
	}
	return snap, nil
}

// nextRefresh is the delay before the next regular fetch of a connection
// holding snapshot s: the refresh interval, brought forward by the
// document's cacheDuration and validUntil, but not below the floor.
func (m *Middleware) nextRefresh(s *idpSnapshot) time.Duration {
	d := m.refreshEvery
	if s.cache > 0 && s.cache < d {
		d = s.cache
	}
	if !s.validUntil.IsZero() {
		if left := s.validUntil.Sub(m.now()); left < d {
			d = left
		}
	}
	return max(d, min(minMetadataRefreshInterval, m.refreshEvery))
}

// Close stops the background refresh of IdP metadata and waits for it to
// end. A Middleware with a connection configured by
// [Connection.IDPMetadataURL] runs that refresh in a goroutine and must be
// closed when it is no longer used. Close may be called more than once, and
// on a Middleware that started no goroutine; it always returns nil. The
// Middleware keeps serving sign-ins with the metadata it holds.
func (m *Middleware) Close() error {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			m.stop()
		}
	})
	m.wg.Wait()
	return nil
}

// signingCertSet returns the SHA-256 fingerprints (hex) of the signing
// certificates md lists, sorted, for logs.
func signingCertSet(md *saml.EntityDescriptor) []string {
	var out []string
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					out = append(out, "unparseable")
					continue
				}
				sum := sha256.Sum256(der)
				out = append(out, hex.EncodeToString(sum[:]))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// signingCerts counts the certificates md offers for signing: those of
// KeyDescriptors with use "signing" or no use, as crewjam trusts every one.
func signingCerts(md *saml.EntityDescriptor) int {
	n := 0
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use == "" || kd.Use == "signing" {
				n += len(kd.KeyInfo.X509Data.X509Certificates)
			}
		}
	}
	return n
}
