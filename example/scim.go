package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/scim"
)

// minSCIMToken is the shortest -scim-token accepted: a bearer token is a
// password the IdP presents, so it must not be guessable.
const minSCIMToken = 32

// scimTokens reads the -scim-token values: TOKEN for the sole connection,
// or TENANT=TOKEN per connection. It returns the token of each connection
// by name ("" for the sole, unnamed one).
func scimTokens(values []string, conns []jit.Connection) (map[string]string, error) {
	names := map[string]bool{}
	for _, c := range conns {
		names[c.Name] = true
	}
	tokens := map[string]string{}
	for _, v := range values {
		name, token := "", v
		if i := strings.Index(v, "="); i > 0 && names[v[:i]] {
			name, token = v[:i], v[i+1:]
		} else if len(conns) != 1 {
			return nil, errors.New("-scim-token: with several connections, name each as tenant=TOKEN")
		} else {
			name = conns[0].Name
		}
		if len(token) < minSCIMToken {
			return nil, fmt.Errorf("-scim-token for %q: at least %d characters (use a random token, as `openssl rand -base64 32` makes)", name, minSCIMToken)
		}
		if _, dup := tokens[name]; dup {
			return nil, fmt.Errorf("-scim-token: %q given twice", name)
		}
		tokens[name] = token
	}
	return tokens, nil
}

// scimPath is where a connection's SCIM endpoint is served.
func scimPath(conn string) string {
	if conn == "" {
		return "/scim/v2"
	}
	return "/scim/" + conn + "/v2"
}

// entraIssuer matches the entity ID of an Entra ID tenant, and captures
// the tenant ID.
var entraIssuer = regexp.MustCompile(`^https://sts\.windows\.net/([0-9a-fA-F-]{36})/$`)

// newSCIM builds the SCIM endpoint of each connection that has a token:
// over the app's store, for the connection's IdP entity ID, with its role
// mapping, and with the externalId mapping of the -preset.
func (a *app) newSCIM(ctx context.Context, conns []jit.Connection) (map[string]http.Handler, error) {
	values := slices.Clone(a.cfg.scimTokens)
	for _, f := range a.cfg.scimTokenFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("-scim-token-file: %w", err)
		}
		for line := range strings.Lines(string(b)) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				values = append(values, line)
			}
		}
	}
	tokens, err := scimTokens(values, conns)
	if err != nil {
		return nil, err
	}
	// With the development IdP, each tenant the flags give no token gets
	// the one made at the first run.
	devTokens := map[string]string{}
	if a.dev != nil {
		var names []string
		for _, c := range conns {
			if _, ok := tokens[c.Name]; !ok {
				names = append(names, c.Name)
			}
		}
		saved, err := loadOrCreateDevSCIMTokens(filepath.Join(a.cfg.data, devSCIMTokenFile), names)
		if err != nil {
			return nil, fmt.Errorf("development SCIM tokens: %w", err)
		}
		for _, name := range names {
			tokens[name], devTokens[name] = saved[name], saved[name]
		}
	}
	if len(tokens) == 0 {
		return nil, nil
	}
	// The tokens' hashes are kept in the app's database, which every
	// instance reads at each SCIM request: a token one instance (or an
	// operator's tool with scim.TokenTable) adds, rotates or revokes holds
	// on all of them at once, with no restart.
	table, err := scim.OpenTokenTable(ctx, a.db, scim.TokenTableOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]http.Handler{}
	for _, c := range conns {
		token, ok := tokens[c.Name]
		if !ok {
			continue
		}
		issuer, err := entityID(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("SCIM for %q: %w", c.Name, err)
		}
		subject := scim.PersistentNameID()
		if a.cfg.preset == claims.PresetEntra && a.dev == nil { // the development IdP's connections are generic
			m := entraIssuer.FindStringSubmatch(issuer)
			if m == nil {
				return nil, fmt.Errorf("SCIM for %q: the entra preset needs an Entra ID entity ID (https://sts.windows.net/TENANT/), got %q", c.Name, issuer)
			}
			subject = scim.EntraObjectID(m[1])
		}
		if err := seedToken(ctx, table, c.Name, scim.HashToken(token)); err != nil {
			return nil, fmt.Errorf("SCIM for %q: %w", c.Name, err)
		}
		h, err := scim.New(scim.Options{
			Store: a.store, Issuer: issuer, Connection: c.Name, Subject: subject,
			Tokens: table.Source(c.Name), Roles: c.Policy.Roles.Derive,
			BaseURL: a.cfg.rootURL + scimPath(c.Name), Logger: a.log,
			OnEvent: func(ctx context.Context, e scim.Event) {
				// The admin page's audit trail shows SCIM's changes
				// beside the sign-ins', marked as SCIM's.
				entry := signInEntry(jit.Event{Kind: jit.EventKind("scim " + string(e.Kind)), Time: e.Time, Connection: e.Connection,
					Key: e.Key, UserID: e.UserID, Changed: e.Changed, Before: e.Before, After: e.After})
				entry.Actor = "SCIM"
				if err := a.audit.Record(ctx, entry); err != nil {
					a.log.ErrorContext(ctx, "audit", "err", err)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		out[c.Name] = http.StripPrefix(scimPath(c.Name), h)
		a.scim = append(a.scim, scimEndpoint{Connection: c.Name, Issuer: issuer, URL: a.cfg.rootURL + scimPath(c.Name), Token: devTokens[c.Name]})
		a.log.Info("SCIM endpoint", "connection", c.Name, "url", a.cfg.rootURL+scimPath(c.Name), "issuer", issuer)
	}
	return out, nil
}

// seedToken makes hash the one valid token of connection in table: the
// token the flags (or, for a development tenant, the data directory)
// give is the connection's token at each start, and any other, such as
// one an earlier start was given, is revoked. Between starts, the table
// is the authority: a rotation or revocation made in it holds on every
// instance at once until the next start gives the flags' token again.
func seedToken(ctx context.Context, table *scim.TokenTable, connection string, hash scim.TokenHash) error {
	if err := table.Add(ctx, connection, hash); err != nil {
		return err
	}
	valid, err := table.Hashes(ctx, connection)
	if err != nil {
		return err
	}
	for _, h := range valid {
		if h != hash {
			if err := table.Revoke(ctx, connection, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// mountSCIM serves the SCIM endpoints.
func (a *app) mountSCIM(handlers map[string]http.Handler) {
	for name, h := range handlers {
		a.mux.Handle(scimPath(name)+"/", h)
	}
}

// entityID returns the entity ID of the connection's IdP, from its
// metadata (fetched once for a URL).
func entityID(ctx context.Context, c jit.Connection) (string, error) {
	md := c.IDPMetadata
	if md == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.IDPMetadataURL, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("fetch IdP metadata: %w", err)
		}
		defer resp.Body.Close()
		if md, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20)); err != nil {
			return "", fmt.Errorf("fetch IdP metadata: %w", err)
		}
	}
	var ed struct {
		EntityID string `xml:"entityID,attr"`
	}
	if err := xml.Unmarshal(md, &ed); err != nil || ed.EntityID == "" {
		return "", fmt.Errorf("IdP metadata has no entityID (%v)", err)
	}
	return ed.EntityID, nil
}
