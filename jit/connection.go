package jit

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// servedConnection is a connection New serves: its name is checked, its
// endpoints derive from the root URL, the path prefix and the name, and its
// IdP metadata must not have expired.
func (m *Middleware) servedConnection(ctx context.Context, opts *Options, cfg *Connection, n int) (*connection, error) {
	if cfg.Name == "" && n > 1 {
		return nil, errors.New("jit: every connection needs a Name when there are several")
	}
	if cfg.Name != "" && !connName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("jit: connection name %q must match %s", cfg.Name, connName)
	}
	base := m.prefix
	if cfg.Name != "" {
		base += "/" + cfg.Name
	}
	abs := func(p string) url.URL {
		u := *m.root
		u.Path = p
		return u
	}
	c, err := m.newConnection(ctx, opts, cfg, abs(base+"/metadata"), abs(base+"/acs"))
	if err == nil {
		err = c.checkFresh(c.current(), m.now())
	}
	if err != nil {
		return nil, fmt.Errorf("jit: connection %q: %w", cfg.Name, err)
	}
	c.metadataPath, c.loginPath, c.acsPath = base+"/metadata", base+"/login", base+"/acs"
	if err := c.enableSLO(abs(base+"/slo"), opts.Key); err != nil {
		return nil, fmt.Errorf("jit: connection %q: %w", cfg.Name, err)
	}
	return c, nil
}

// newConnection resolves the connection cfg whose SP metadata and ACS are
// at metadataURL and acsURL: its policy, mapper, IdP metadata and
// crewjam/saml ServiceProvider. New (through servedConnection) and
// [Explain] both build connections here, so that they judge alike.
func (m *Middleware) newConnection(ctx context.Context, opts *Options, cfg *Connection, metadataURL, acsURL url.URL) (*connection, error) {
	c := &connection{
		name:         cfg.Name,
		display:      orDefault(cfg.DisplayName, cfg.Name),
		mapper:       cfg.Mapper,
		allowIDPInit: cfg.AllowIDPInitiated,
		allowSHA1:    cfg.AllowSHA1,
		allowCBC:     cfg.AllowCBCWithoutSignedResponse,
		policy:       cfg.Policy,
		acsURL:       acsURL.String(),
		entityID:     orDefault(cfg.EntityID, metadataURL.String()),
		health:       &connHealth{},
	}
	if err := checkPolicy(&c.policy); err != nil {
		return nil, err
	}
	if c.policy.Brownfield.Mode != BrownfieldDeny && m.store != nil && m.linker == nil {
		return nil, errors.New("its Brownfield policy links accounts, which needs a store implementing userstore.Linker")
	}
	if c.mapper == nil {
		c.mapper = claims.Generic()
	}
	idp, err := m.loadMetadata(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	if idp.EntityID == "" {
		return nil, errors.New("IdP metadata has no entityID")
	}
	if idp.EntityID == userstore.LocalIssuer {
		return nil, fmt.Errorf("IdP entityID %q is reserved for local accounts", userstore.LocalIssuer)
	}
	c.issuer = idp.EntityID
	m.lintConfig(ctx, c, cfg)
	c.spBase = c.serviceProvider(opts.Key, opts.Certificate, m.rollover.older, metadataURL, acsURL, m.now)
	c.spBase.AuthnNameIDFormat = orDefault(cfg.NameIDFormat, saml.PersistentNameIDFormat)
	if opts.SignRequests {
		c.spBase.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	snap, err := c.newSnapshot(idp)
	if err != nil {
		return nil, err
	}
	c.idp.Store(snap)
	return c, nil
}

func (m *Middleware) loadMetadata(ctx context.Context, c *connection, cfg *Connection) (*saml.EntityDescriptor, error) {
	switch {
	case len(cfg.IDPMetadata) > 0 && cfg.IDPMetadataURL != "":
		return nil, errors.New("set IDPMetadata or IDPMetadataURL, not both")
	case len(cfg.IDPMetadata) > 0:
		md, err := ParseIDPMetadata(cfg.IDPMetadata)
		if err != nil {
			return nil, fmt.Errorf("parse IdP metadata: %w", err)
		}
		return md, nil
	case cfg.IDPMetadataURL != "":
		u, err := checkMetadataURL(cfg.IDPMetadataURL, cfg.InsecureAllowHTTPMetadata)
		if err != nil {
			return nil, err
		}
		c.mdURL = u
		md, err := fetchIDPMetadata(ctx, m.httpClient, u.String())
		if err != nil {
			return nil, fmt.Errorf("fetch IdP metadata from %s: %w", redactURL(u), err)
		}
		return md, nil
	default:
		return nil, errors.New("IDPMetadata or IDPMetadataURL is required")
	}
}
