package sqlitestore

import (
	"context"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// Interface check: userstore.ConnectionAdmin.
var _ sqlcore.ConnectionInterfaces = (*Store)(nil)

// connectionColumns are the columns of a connection sqlcore reads, with
// its domains joined.
const connectionColumns = `c.name, c.display_name, c.idp_metadata, c.idp_metadata_url, c.preset, c.entity_id, c.enabled, c.revision, c.updated_at,
	d.domain, d.verified
	FROM connections c LEFT JOIN connection_domains d ON d.connection = c.name`

// connectionQueries are the store's statements for
// userstore.ConnectionAdmin, taking the arguments
// [sqlcore.ConnectionQueries] lists. A name is found through the unique
// index on connections.name, a domain through connection_domains' primary
// key, a connection's domains through connection_domains_connection.
var connectionQueries = sqlcore.ConnectionQueries{
	Version:     `SELECT version FROM connections_version WHERE id = 1`,
	Bump:        `UPDATE connections_version SET version = version + 1 WHERE id = 1 RETURNING version`,
	List:        `SELECT (SELECT version FROM connections_version WHERE id = 1), ` + connectionColumns + ` ORDER BY c.name, d.position`,
	ByName:      `SELECT ` + connectionColumns + ` WHERE c.name = ?1 ORDER BY d.position`,
	Enabled:     `SELECT enabled FROM connections WHERE name = ?`,
	DomainOwner: `SELECT connection FROM connection_domains WHERE domain = ?`,
	Upsert: `INSERT INTO connections (name, display_name, idp_metadata, idp_metadata_url, preset, entity_id, enabled, revision, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
		ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, idp_metadata = excluded.idp_metadata,
			idp_metadata_url = excluded.idp_metadata_url, preset = excluded.preset, entity_id = excluded.entity_id,
			enabled = excluded.enabled, revision = excluded.revision, updated_at = excluded.updated_at`,
	SetEnabled:    `UPDATE connections SET enabled = ?2, revision = ?3, updated_at = ?4 WHERE name = ?1`,
	Delete:        `DELETE FROM connections WHERE name = ?`,
	DeleteDomains: `DELETE FROM connection_domains WHERE connection = ?`,
	InsertDomain:  `INSERT INTO connection_domains (domain, connection, position, verified) VALUES (?, ?, ?, ?)`,
	EndSessions:   `DELETE FROM sessions WHERE connection = ?`,
}

// connectionsSchema is migration 6, to schema version 7: connections kept
// as data. A connection's name is unique, and so is a domain, which
// belongs to at most one connection; the change version is one row. The
// sessions are indexed by connection, which disabling one ends.
var connectionsSchema = sqlcore.Statements(
	`CREATE TABLE connections (
		name             TEXT    NOT NULL UNIQUE COLLATE BINARY,
		display_name     TEXT    NOT NULL,
		idp_metadata     BLOB    NOT NULL,
		idp_metadata_url TEXT    NOT NULL,
		preset           TEXT    NOT NULL,
		entity_id        TEXT    NOT NULL,
		enabled          INTEGER NOT NULL,
		revision         INTEGER NOT NULL,
		updated_at       INTEGER NOT NULL
	)`,
	`CREATE TABLE connection_domains (
		domain     TEXT    NOT NULL PRIMARY KEY COLLATE BINARY,
		connection TEXT    NOT NULL COLLATE BINARY,
		position   INTEGER NOT NULL,
		verified   INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX connection_domains_connection ON connection_domains (connection, position)`,
	`CREATE TABLE connections_version (
		id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	)`,
	`INSERT INTO connections_version (id, version) VALUES (1, 0)`,
	`CREATE INDEX sessions_connection ON sessions (connection)`,
)

// ConnectionsVersion returns the connections' change version, as
// [userstore.Connections.ConnectionsVersion] describes: one row read by
// its primary key.
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
// holding SQLite's write lock. A domain another connection claims is
// refused with an error wrapping [userstore.ErrDomainTaken].
func (s *Store) PutConnection(ctx context.Context, c userstore.Connection, now time.Time) (userstore.Connection, error) {
	return s.core.PutConnection(ctx, c, now)
}

// SetConnectionEnabled enables or disables the connection named name.
// Disabling ends the sessions made through it, in the same transaction,
// so that every process sharing the file refuses them at their next
// request.
func (s *Store) SetConnectionEnabled(ctx context.Context, name string, enabled bool, now time.Time) error {
	return s.core.SetConnectionEnabled(ctx, name, enabled, now)
}

// RemoveConnection removes the connection named name, frees its domains
// and ends the sessions made through it. Its users are kept.
func (s *Store) RemoveConnection(ctx context.Context, name string) error {
	return s.core.RemoveConnection(ctx, name)
}
