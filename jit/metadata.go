package jit

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// maxMetadataBytes bounds an IdP metadata document. Federation aggregates
// are far larger, but a connection trusts one IdP, not a federation.
const maxMetadataBytes = 4 << 20

// ErrNotIDPMetadata means a document given or fetched as an identity
// provider's metadata is not that: not XML, another kind of document, or
// metadata without an identity provider (such as a service provider's).
// The error says what the document is and what was expected.
var ErrNotIDPMetadata = errors.New("jit: not identity provider metadata")

// ParseIDPMetadata parses an identity provider's SAML metadata: an
// EntityDescriptor, or an EntitiesDescriptor holding exactly one entity with
// an IDPSSODescriptor. The document is checked for round-trip stability
// before it is decoded. A document that is not IdP metadata is refused
// with an error wrapping [ErrNotIDPMetadata] that says what it is (an HTML
// page, a certificate, JSON, a SAML response, a service provider's
// metadata…) and what was expected.
func ParseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("metadata is %d bytes, over %d", len(data), maxMetadataBytes)
	}
	if what := notXML(data); what != "" {
		return nil, fmt.Errorf("%w: the document is %s; want the IdP's SAML metadata, an XML EntityDescriptor with an IDPSSODescriptor", ErrNotIDPMetadata, what)
	}
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("metadata is not round-trip safe XML: %w", err)
	}
	var probe struct {
		XMLName  xml.Name
		EntityID string `xml:"entityID,attr"`
	}
	if err := xml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("metadata does not parse as XML: %w", err)
	}
	const nsMD = "urn:oasis:names:tc:SAML:2.0:metadata"
	switch probe.XMLName {
	case xml.Name{Space: nsMD, Local: "EntityDescriptor"}:
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, fmt.Errorf("metadata does not parse: %w", err)
		}
		if len(ed.IDPSSODescriptors) == 0 {
			return nil, fmt.Errorf("%w: metadata has no IDPSSODescriptor: %s", ErrNotIDPMetadata, describeEntity(&ed))
		}
		return &ed, nil
	case xml.Name{Space: nsMD, Local: "EntitiesDescriptor"}:
		var eds saml.EntitiesDescriptor
		if err := xml.Unmarshal(data, &eds); err != nil {
			return nil, fmt.Errorf("metadata does not parse: %w", err)
		}
		var found *saml.EntityDescriptor
		for i := range eds.EntityDescriptors {
			if len(eds.EntityDescriptors[i].IDPSSODescriptors) > 0 {
				if found != nil {
					return nil, errors.New("metadata holds several identity providers; give the connection one")
				}
				found = &eds.EntityDescriptors[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%w: metadata has no IDPSSODescriptor: an EntitiesDescriptor of %d entities, none of them an identity provider; want the IdP's own metadata", ErrNotIDPMetadata, len(eds.EntityDescriptors))
		}
		// The entity inherits the wrapper's validity: the earlier
		// validUntil and the shorter cacheDuration win.
		if eds.ValidUntil != nil && !eds.ValidUntil.IsZero() && (found.ValidUntil.IsZero() || eds.ValidUntil.Before(found.ValidUntil)) {
			found.ValidUntil = *eds.ValidUntil
		}
		if eds.CacheDuration != nil && *eds.CacheDuration > 0 && (found.CacheDuration <= 0 || *eds.CacheDuration < found.CacheDuration) {
			found.CacheDuration = *eds.CacheDuration
		}
		return found, nil
	default:
		return nil, fmt.Errorf("%w: the document is %s (root element {%s}%s); want the IdP's SAML metadata, an EntityDescriptor in namespace %s", ErrNotIDPMetadata, describeRoot(probe.XMLName), probe.XMLName.Space, probe.XMLName.Local, nsMD)
	}
}

// notXML says what a document that cannot be XML is, or returns "" for
// one that may be.
func notXML(data []byte) string {
	t := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	lower := bytes.ToLower(t[:min(len(t), 64)])
	switch {
	case len(t) == 0:
		return "empty"
	case bytes.HasPrefix(t, []byte("-----BEGIN CERTIFICATE")):
		return "a PEM certificate (the IdP's metadata holds its certificates; give the metadata itself)"
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		return "a PEM file, not metadata"
	case bytes.HasPrefix(lower, []byte("<!doctype html")), bytes.HasPrefix(lower, []byte("<html")):
		return "an HTML page (a sign-in or portal page, or an error page, rather than the metadata URL)"
	case t[0] == '{' || t[0] == '[':
		return "JSON (an OpenID Connect discovery document or an API answer?), not XML"
	case t[0] != '<':
		return fmt.Sprintf("not XML: it starts with %q", truncate(string(t), 24))
	}
	return ""
}

// describeRoot says what a document with this root element is.
func describeRoot(n xml.Name) string {
	switch {
	case n.Space == "urn:oasis:names:tc:SAML:2.0:protocol" && n.Local == "Response":
		return "a SAML Response, not metadata"
	case n.Space == "urn:oasis:names:tc:SAML:2.0:assertion" && n.Local == "Assertion":
		return "a SAML Assertion, not metadata"
	case n.Local == "EntityDescriptor" || n.Local == "EntitiesDescriptor":
		return "metadata in another namespace (SAML 1.x or WS-Federation?)"
	case n.Local == "html":
		return "an HTML page"
	}
	return "another XML document"
}

// describeEntity says what an EntityDescriptor without an IdP is.
func describeEntity(ed *saml.EntityDescriptor) string {
	if len(ed.SPSSODescriptors) > 0 {
		return fmt.Sprintf("it is a service provider's metadata (entityID %q, an SPSSODescriptor), perhaps this application's own from %s/metadata; the connection needs the identity provider's metadata, with an IDPSSODescriptor", ed.EntityID, DefaultPathPrefix)
	}
	return fmt.Sprintf("entityID %q describes no identity provider; want the IdP's metadata, with an IDPSSODescriptor", ed.EntityID)
}

// metadataValidity returns when md stops being valid (the earliest
// validUntil of the entity and its IDPSSODescriptors; zero when none is
// set) and how long it may be cached (the shortest positive cacheDuration;
// zero when none is set).
func metadataValidity(md *saml.EntityDescriptor) (validUntil time.Time, cache time.Duration) {
	earlier := func(t time.Time) {
		if !t.IsZero() && (validUntil.IsZero() || t.Before(validUntil)) {
			validUntil = t
		}
	}
	shorter := func(d time.Duration) {
		if d > 0 && (cache == 0 || d < cache) {
			cache = d
		}
	}
	earlier(md.ValidUntil)
	shorter(md.CacheDuration)
	for _, d := range md.IDPSSODescriptors {
		if d.ValidUntil != nil {
			earlier(*d.ValidUntil)
		}
		shorter(d.CacheDuration)
	}
	return validUntil, cache
}

// fetchIDPMetadata downloads and parses IdP metadata with a client made by
// metadataClient, from a URL checkMetadataURL accepted.
func fetchIDPMetadata(ctx context.Context, client *http.Client, url string) (*saml.EntityDescriptor, error) {
	data, err := fetchMetadataBytes(ctx, client, url)
	if err != nil {
		return nil, err
	}
	return ParseIDPMetadata(data)
}

// ErrInsecureMetadataURL is returned for an IdP metadata URL that is not
// https (and not http to a loopback host), or a redirect that leaves https
// or the host. IdP metadata holds the certificates every signature is
// checked against: whoever can change it in transit chooses them.
var ErrInsecureMetadataURL = errors.New("jit: IdP metadata must be fetched over https")

// checkMetadataURL parses the URL of an IdP's metadata and refuses it unless
// it is https. Plain http is accepted for a loopback host (localhost,
// 127.0.0.0/8, ::1: a development IdP on the same machine), or for any host
// when insecureHTTP is set, which lets a network attacker choose the
// certificates the IdP's signatures are checked against.
func checkMetadataURL(raw string, insecureHTTP bool) (*neturl.URL, error) {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("IdP metadata URL %q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !insecureHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s is plain http (only a loopback host may use http without Connection.InsecureAllowHTTPMetadata)", ErrInsecureMetadataURL, redactURL(u))
	}
	return u, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// metadataClient returns a copy of client (a 10-second default when nil)
// that never follows a redirect to another host, nor from https to
// anything else, and follows at most five. A CheckRedirect of client's own
// still runs after these checks.
func metadataClient(client *http.Client) *http.Client {
	c := http.Client{Timeout: 10 * time.Second}
	if client != nil {
		c = *client
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		switch {
		case len(via) >= 5:
			return errors.New("stopped after 5 redirects")
		case req.URL.Host != first.Host:
			return fmt.Errorf("%w: redirect from %s to another host, %s", ErrInsecureMetadataURL, first.Host, req.URL.Host)
		case first.Scheme == "https" && req.URL.Scheme != "https":
			return fmt.Errorf("%w: redirect from https to %s", ErrInsecureMetadataURL, req.URL.Scheme)
		case next != nil:
			return next(req, via)
		}
		return nil
	}
	return &c
}

// FetchIDPMetadata downloads an IdP's metadata document, as the middleware
// does for [Connection.IDPMetadataURL]: the URL must be https (http only
// for a loopback host, or with insecureHTTP, as a connection's
// InsecureAllowHTTPMetadata allows), no redirect may leave https or the
// host, and the document is bounded to 4 MiB. client may be nil. It
// returns the raw document; [ParseIDPMetadata] reads it. Errors for an
// insecure URL or redirect wrap [ErrInsecureMetadataURL].
func FetchIDPMetadata(ctx context.Context, client *http.Client, rawURL string, insecureHTTP bool) ([]byte, error) {
	u, err := checkMetadataURL(rawURL, insecureHTTP)
	if err != nil {
		return nil, err
	}
	data, err := fetchMetadataBytes(ctx, metadataClient(client), u.String())
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata from %s: %w", redactURL(u), err)
	}
	return data, nil
}

// fetchMetadataBytes GETs url with client and returns the body of a 200
// answer, bounded.
func fetchMetadataBytes(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL, query and all; callers name it
		// themselves, redacted.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("metadata document over %d bytes", maxMetadataBytes)
	}
	return data, nil
}
