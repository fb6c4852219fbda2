package jit

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// maxMetadataBytes bounds an IdP metadata document. Federation aggregates
// are far larger, but a connection trusts one IdP, not a federation.
const maxMetadataBytes = 4 << 20

// ParseIDPMetadata parses an identity provider's SAML metadata: an
// EntityDescriptor, or an EntitiesDescriptor holding exactly one entity with
// an IDPSSODescriptor. The document is checked for round-trip stability
// before it is decoded.
func ParseIDPMetadata(data []byte) (*saml.EntityDescriptor, error) {
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("metadata is %d bytes, over %d", len(data), maxMetadataBytes)
	}
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("metadata is not round-trip safe XML: %w", err)
	}
	var probe struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("metadata does not parse: %w", err)
	}
	const nsMD = "urn:oasis:names:tc:SAML:2.0:metadata"
	switch probe.XMLName {
	case xml.Name{Space: nsMD, Local: "EntityDescriptor"}:
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, fmt.Errorf("metadata does not parse: %w", err)
		}
		if len(ed.IDPSSODescriptors) == 0 {
			return nil, errors.New("metadata has no IDPSSODescriptor")
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
			return nil, errors.New("metadata has no IDPSSODescriptor")
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
		return nil, fmt.Errorf("metadata root is {%s}%s, want a SAML metadata EntityDescriptor", probe.XMLName.Space, probe.XMLName.Local)
	}
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

// fetchIDPMetadata downloads and parses IdP metadata.
func fetchIDPMetadata(ctx context.Context, client *http.Client, url string) (*saml.EntityDescriptor, error) {
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
	return ParseIDPMetadata(data)
}
