package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/samljit/samljit/userstore"
)

// ConnectionInterfaces are the connection interfaces of package userstore
// that a SQL store implements.
type ConnectionInterfaces interface {
	userstore.ConnectionAdmin
}

// ConnectionQueries are a dialect's statements for
// [userstore.ConnectionAdmin]. The change version is one row of a table of
// its own, so that reading it is one lookup by primary key, and every
// change to a connection writes that row first in its transaction: where
// the database locks rows, that serializes the changes, so that a check
// of a domain's owner stays true until the change commits.
//
// "A connection" is, in order: name, display name, IdP metadata (bytes),
// IdP metadata URL, preset, entity ID, enabled, revision and the update
// time, then the domain and its verified flag, NULL both when the
// connection has none: one row per domain, ordered by name then the
// domain's position.
type ConnectionQueries struct {
	// Version reads the change version.
	Version string
	// Bump adds one to the change version and returns the new version.
	Bump string
	// List reads the change version then every connection, ordered by
	// name; the version is read by the same statement, so that both are
	// of one snapshot.
	List string
	// ByName reads the connection (name).
	ByName string
	// Enabled reads whether the connection (name) is enabled.
	Enabled string
	// DomainOwner reads the name of the connection that claims (domain).
	DomainOwner string
	// Upsert creates or replaces the connection row: (name, display name,
	// metadata, metadata URL, preset, entity ID, enabled, revision, now).
	Upsert string
	// SetEnabled writes (name, enabled, revision, now).
	SetEnabled string
	// Delete deletes the connection (name).
	Delete string
	// DeleteDomains deletes the domains of (connection).
	DeleteDomains string
	// InsertDomain inserts (domain, connection, position, verified); the
	// domain is the table's primary key, so that it belongs to one
	// connection.
	InsertDomain string
	// EndSessions deletes the sessions made through (connection), through
	// an index on the sessions' connection.
	EndSessions string
}

// errUnchanged ends, rolled back, a change that would change nothing.
var errUnchanged = errors.New("unchanged")

// ConnectionsVersion returns the change version, as
// [userstore.Connections.ConnectionsVersion] describes.
func (c *Core) ConnectionsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := c.db.QueryRowContext(ctx, c.d.Connections.Version).Scan(&v); err != nil {
		return 0, c.errorf(err, "read connections version")
	}
	return v, nil
}

// ListConnections returns every connection and the version they are as
// of, as [userstore.Connections.ListConnections] describes.
func (c *Core) ListConnections(ctx context.Context) ([]userstore.Connection, int64, error) {
	// The version read first is no newer than the list read after it;
	// when the list is empty it is the version returned, so that a
	// caller never takes an older list for a newer version.
	v, err := c.ConnectionsVersion(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := c.db.QueryContext(ctx, c.d.Connections.List)
	if err != nil {
		return nil, 0, c.errorf(err, "list connections")
	}
	out, listed, err := c.scanConnections(rows, true)
	if err != nil {
		return nil, 0, c.errorf(err, "list connections")
	}
	if len(out) > 0 {
		v = listed
	}
	return out, v, nil
}

// GetConnection returns the connection named name, as
// [userstore.Connections.GetConnection] describes.
func (c *Core) GetConnection(ctx context.Context, name string) (userstore.Connection, error) {
	rows, err := c.db.QueryContext(ctx, c.d.Connections.ByName, name)
	if err != nil {
		return userstore.Connection{}, c.errorf(err, "get connection %q", name)
	}
	out, _, err := c.scanConnections(rows, false)
	if err != nil {
		return userstore.Connection{}, c.errorf(err, "get connection %q", name)
	}
	if len(out) == 0 {
		return userstore.Connection{}, c.errorf(userstore.ErrConnectionNotFound, "get connection %q", name)
	}
	return out[0], nil
}

// scanConnections reads the rows of List (withVersion) or ByName, closes
// them, and returns the connections and the version List read.
func (c *Core) scanConnections(rows *sql.Rows, withVersion bool) ([]userstore.Connection, int64, error) {
	defer rows.Close()
	var (
		out      []userstore.Connection
		version  int64
		conn     userstore.Connection
		metadata []byte
		domain   sql.NullString
		verified sql.NullBool
	)
	dest := make([]any, 0, 13)
	if withVersion {
		dest = append(dest, &version)
	}
	dest = append(dest, &conn.Name, &conn.DisplayName, &metadata, &conn.IDPMetadataURL, &conn.Preset, &conn.EntityID, &conn.Enabled, &conn.Revision)
	dest = c.d.Time.AppendDest(dest, &conn.UpdatedAt)
	dest = append(dest, &domain, &verified)
	for rows.Next() {
		conn.Domains = nil
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, err
		}
		if n := len(out); n == 0 || out[n-1].Name != conn.Name {
			conn.IDPMetadata = nil
			if len(metadata) > 0 {
				conn.IDPMetadata = append([]byte(nil), metadata...)
			}
			out = append(out, conn)
		}
		if domain.Valid {
			last := &out[len(out)-1]
			last.Domains = append(last.Domains, userstore.Domain{Name: domain.String, Verified: verified.Bool})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return out, version, rows.Close()
}

// PutConnection adds or replaces a connection, as
// [userstore.ConnectionAdmin.PutConnection] describes, in one write
// transaction that first takes the change version's row.
func (c *Core) PutConnection(ctx context.Context, conn userstore.Connection, now time.Time) (userstore.Connection, error) {
	if err := userstore.CheckConnection(conn); err != nil {
		return userstore.Connection{}, c.errorf(err, "put connection %q", conn.Name)
	}
	if c.d.TextRefusesNUL && (hasNUL(conn.DisplayName) || hasNUL(conn.IDPMetadataURL) || hasNUL(conn.Preset) || hasNUL(conn.EntityID)) {
		return userstore.Connection{}, c.errorf(fmt.Errorf("%w: a NUL character", userstore.ErrInvalidConnection), "put connection %q", conn.Name)
	}
	now, err := c.d.Time.Stored(now)
	if err != nil {
		return userstore.Connection{}, c.errorf(err, "put connection %q", conn.Name)
	}
	conn = conn.Clone()
	metadata := conn.IDPMetadata
	if metadata == nil {
		metadata = []byte{}
	}
	q := &c.d.Connections
	err = c.Write(ctx, func(tx *Tx) error {
		var v int64
		if err := tx.QueryRowContext(ctx, q.Bump).Scan(&v); err != nil {
			return err
		}
		for _, d := range conn.Domains {
			var owner string
			switch err := tx.QueryRowContext(ctx, q.DomainOwner, d.Name).Scan(&owner); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case owner != conn.Name:
				return fmt.Errorf("%w: %q belongs to connection %q", userstore.ErrDomainTaken, d.Name, owner)
			}
		}
		args := append(make([]any, 0, 10), conn.Name, conn.DisplayName, metadata, conn.IDPMetadataURL, conn.Preset, conn.EntityID, conn.Enabled, v)
		if _, err := tx.ExecContext(ctx, q.Upsert, c.appendTime(args, now)...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q.DeleteDomains, conn.Name); err != nil {
			return err
		}
		for i, d := range conn.Domains {
			if _, err := tx.ExecContext(ctx, q.InsertDomain, d.Name, conn.Name, i, d.Verified); err != nil {
				if c.d.DomainTaken != nil && c.d.DomainTaken(err) {
					return fmt.Errorf("%w: %q: %w", userstore.ErrDomainTaken, d.Name, err)
				}
				return err
			}
		}
		conn.Revision, conn.UpdatedAt = v, now
		return nil
	})
	if err != nil {
		return userstore.Connection{}, c.errorf(err, "put connection %q", conn.Name)
	}
	return conn.Clone(), nil
}

// SetConnectionEnabled enables or disables a connection, as
// [userstore.ConnectionAdmin.SetConnectionEnabled] describes; when it is
// so already, nothing changes, the version included. Disabling ends the
// sessions made through the connection in the same transaction, so that
// every instance refuses them at their next request, before it has
// polled the change.
func (c *Core) SetConnectionEnabled(ctx context.Context, name string, enabled bool, now time.Time) error {
	now, err := c.d.Time.Stored(now)
	if err != nil {
		return c.errorf(err, "set connection %q enabled", name)
	}
	q := &c.d.Connections
	err = c.Write(ctx, func(tx *Tx) error {
		var v int64
		if err := tx.QueryRowContext(ctx, q.Bump).Scan(&v); err != nil {
			return err
		}
		var was bool
		switch err := tx.QueryRowContext(ctx, q.Enabled, name).Scan(&was); {
		case errors.Is(err, sql.ErrNoRows):
			return userstore.ErrConnectionNotFound
		case err != nil:
			return err
		case was == enabled:
			return errUnchanged
		}
		if _, err := tx.ExecContext(ctx, q.SetEnabled, c.appendTime(append(make([]any, 0, 5), name, enabled, v), now)...); err != nil {
			return err
		}
		if !enabled {
			_, err := tx.ExecContext(ctx, q.EndSessions, name)
			return err
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return c.errorf(err, "set connection %q enabled", name)
	}
	return nil
}

// RemoveConnection removes a connection, frees its domains and ends the
// sessions made through it, as [userstore.ConnectionAdmin.RemoveConnection]
// describes.
func (c *Core) RemoveConnection(ctx context.Context, name string) error {
	q := &c.d.Connections
	err := c.Write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, q.Bump); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q.Delete, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return userstore.ErrConnectionNotFound
		}
		if _, err = tx.ExecContext(ctx, q.DeleteDomains, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, q.EndSessions, name)
		return err
	})
	if err != nil {
		return c.errorf(err, "remove connection %q", name)
	}
	return nil
}
