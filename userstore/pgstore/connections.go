package pgstore

import (
	"context"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// Interface check: userstore.ConnectionAdmin.
var _ sqlcore.ConnectionInterfaces = (*Store)(nil)

// connectionColumns are the columns of a connection sqlcore reads, with
// its domains joined.
const connectionColumns = `c.name, c.display_name, c.idp_metadata, c.idp_metadata_url, c.preset, c.entity_id, c.enabled, c.revision,
	c.updated_at, c.updated_ns, d.domain, d.verified
	FROM samljit_connections c LEFT JOIN samljit_connection_domains d ON d.connection = c.name`

// domainKey is the primary key of samljit_connection_domains: a domain
// belongs to at most one connection.
const domainKey = "samljit_connection_domains_pkey"

// connectionQueries are the store's statements for
// userstore.ConnectionAdmin, taking the arguments
// [sqlcore.ConnectionQueries] lists; a time is two arguments. Bump
// updates the version's row, which every change writes first: the row
// lock orders the changes, and in READ COMMITTED each statement after it
// sees the changes committed before.
var connectionQueries = sqlcore.ConnectionQueries{
	Version:     `SELECT version FROM samljit_connections_version`,
	Bump:        `UPDATE samljit_connections_version SET version = version + 1 RETURNING version`,
	List:        `SELECT (SELECT version FROM samljit_connections_version), ` + connectionColumns + ` ORDER BY c.name, d.position`,
	ByName:      `SELECT ` + connectionColumns + ` WHERE c.name = $1 ORDER BY d.position`,
	Enabled:     `SELECT enabled FROM samljit_connections WHERE name = $1`,
	DomainOwner: `SELECT connection FROM samljit_connection_domains WHERE domain = $1`,
	Upsert: `INSERT INTO samljit_connections (name, display_name, idp_metadata, idp_metadata_url, preset, entity_id, enabled, revision, updated_at, updated_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::timestamptz, $10::smallint)
		ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name, idp_metadata = EXCLUDED.idp_metadata,
			idp_metadata_url = EXCLUDED.idp_metadata_url, preset = EXCLUDED.preset, entity_id = EXCLUDED.entity_id,
			enabled = EXCLUDED.enabled, revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at, updated_ns = EXCLUDED.updated_ns`,
	SetEnabled:    `UPDATE samljit_connections SET enabled = $2, revision = $3, updated_at = $4::timestamptz, updated_ns = $5::smallint WHERE name = $1`,
	Delete:        `DELETE FROM samljit_connections WHERE name = $1`,
	DeleteDomains: `DELETE FROM samljit_connection_domains WHERE connection = $1`,
	InsertDomain:  `INSERT INTO samljit_connection_domains (domain, connection, position, verified) VALUES ($1, $2, $3, $4)`,
	EndSessions:   `DELETE FROM samljit_sessions WHERE connection = $1`,
}

// connectionsSchema is migration 6, to schema version 7: connections kept
// as data. A connection's name is its primary key, and so is a domain's,
// which belongs to at most one connection; the change version is one row.
// The sessions are indexed by connection, which disabling one ends.
var connectionsSchema = sqlcore.Statements(
	`CREATE TABLE samljit_connections (
		name             text COLLATE "C" PRIMARY KEY,
		display_name     text NOT NULL,
		idp_metadata     bytea NOT NULL,
		idp_metadata_url text NOT NULL,
		preset           text NOT NULL,
		entity_id        text NOT NULL,
		enabled          boolean NOT NULL,
		revision         bigint NOT NULL,
		updated_at       timestamptz NOT NULL,
		updated_ns       smallint NOT NULL CHECK (updated_ns BETWEEN 0 AND 999)
	)`,
	`CREATE TABLE samljit_connection_domains (
		domain     text COLLATE "C" NOT NULL,
		connection text COLLATE "C" NOT NULL,
		position   integer NOT NULL,
		verified   boolean NOT NULL,
		CONSTRAINT `+domainKey+` PRIMARY KEY (domain)
	)`,
	`CREATE INDEX samljit_connection_domains_connection ON samljit_connection_domains (connection, position)`,
	`CREATE TABLE samljit_connections_version (
		singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
		version   bigint NOT NULL
	)`,
	`INSERT INTO samljit_connections_version (version) VALUES (0)`,
	`CREATE INDEX samljit_sessions_connection ON samljit_sessions (connection)`,
)

// domainTaken reports whether err is a unique_violation of domainKey,
// which the driver's message names.
func domainTaken(err error) bool {
	return sqlState(err) == "23505" && strings.Contains(err.Error(), domainKey)
}

// ConnectionsVersion returns the connections' change version, as
// [userstore.Connections.ConnectionsVersion] describes: one row.
func (s *Store) ConnectionsVersion(ctx context.Context) (int64, error) {
	return s.core.ConnectionsVersion(ctx)
}

// ListConnections returns every stored connection, ordered by name, and
// the version they are as of, as [userstore.Connections.ListConnections]
// describes.
func (s *Store) ListConnections(ctx context.Context) ([]userstore.Connection, int64, error) {
	return s.core.ListConnections(ctx)
}

// GetConnection returns the connection named name, or an error wrapping
// [userstore.ErrConnectionNotFound].
func (s *Store) GetConnection(ctx context.Context, name string) (userstore.Connection, error) {
	return s.core.GetConnection(ctx, name)
}

// PutConnection adds c, or replaces the connection with its name, as
// [userstore.ConnectionAdmin.PutConnection] describes, in one transaction
// that holds the lock of the version's row. A domain another connection
// claims is refused with an error wrapping [userstore.ErrDomainTaken].
func (s *Store) PutConnection(ctx context.Context, c userstore.Connection, now time.Time) (userstore.Connection, error) {
	return s.core.PutConnection(ctx, c, now)
}

// SetConnectionEnabled enables or disables the connection named name.
// Disabling ends the sessions made through it, in the same transaction,
// so that every instance refuses them at their next request, before it
// has polled the change.
func (s *Store) SetConnectionEnabled(ctx context.Context, name string, enabled bool, now time.Time) error {
	return s.core.SetConnectionEnabled(ctx, name, enabled, now)
}

// RemoveConnection removes the connection named name, frees its domains
// and ends the sessions made through it. Its users are kept.
func (s *Store) RemoveConnection(ctx context.Context, name string) error {
	return s.core.RemoveConnection(ctx, name)
}
