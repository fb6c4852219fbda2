package scim

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// TokenTable keeps the hashes of the connections' bearer tokens in a table
// of the application's database, scim_tokens, so that every instance
// sharing the database sees a new token, a rotation or a revocation at
// its next SCIM request: [TokenTable.Source] asks the table at every
// request, with no cache. It works over database/sql with SQLite
// (mattn/go-sqlite3, modernc.org/sqlite) and PostgreSQL (pgx), and never
// imports a driver.
//
// The table is this package's own, created by [OpenTokenTable] if missing
// and no part of a user store's schema, so it needs no store migration:
// it may sit in the same database as the users (sqlitestore, pgstore) or
// elsewhere. Each row is one valid token of one connection: its SHA-256
// hash in hex (never the token), when it was added, and when it stops
// being valid (0 for never).
type TokenTable struct {
	db  *sql.DB
	now func() time.Time
}

// TokenTableOptions configures a [TokenTable]; the zero value works.
type TokenTableOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// tokenTableSchema creates the table. The primary key serves the one
// query per request (connection =, then the connection's few rows).
// Times are Unix milliseconds, so both SQL dialects read them alike.
const tokenTableSchema = `CREATE TABLE IF NOT EXISTS scim_tokens (
	connection TEXT NOT NULL,
	hash TEXT NOT NULL,
	created_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (connection, hash)
)`

// OpenTokenTable returns the token table in db, creating it if missing.
// Statements use $1-style parameters, which PostgreSQL and SQLite both
// read.
func OpenTokenTable(ctx context.Context, db *sql.DB, opts TokenTableOptions) (*TokenTable, error) {
	if db == nil {
		return nil, errors.New("scim: OpenTokenTable: db is nil")
	}
	if _, err := db.ExecContext(ctx, tokenTableSchema); err != nil {
		// Two instances starting at once on PostgreSQL may race to
		// create the table, and the loser's CREATE ... IF NOT EXISTS
		// fails: the table is there all the same.
		if _, qerr := db.ExecContext(ctx, `SELECT 1 FROM scim_tokens WHERE 1 = 0`); qerr != nil {
			return nil, fmt.Errorf("scim: create the token table: %w", err)
		}
	}
	t := &TokenTable{db: db, now: opts.Now}
	if t.now == nil {
		t.now = time.Now
	}
	return t, nil
}

// Add makes the token with hash valid for connection, with no end, on
// every instance at once. Adding a hash again makes it valid with no end
// again.
func (t *TokenTable) Add(ctx context.Context, connection string, hash TokenHash) error {
	_, err := t.db.ExecContext(ctx, `INSERT INTO scim_tokens (connection, hash, created_ms, expires_ms) VALUES ($1, $2, $3, 0)
		ON CONFLICT (connection, hash) DO UPDATE SET expires_ms = 0`,
		connection, hex.EncodeToString(hash[:]), t.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("scim: add a token: %w", err)
	}
	return nil
}

// Revoke makes the token with hash invalid for connection, on every
// instance at once. Revoking a hash the table does not hold does nothing.
func (t *TokenTable) Revoke(ctx context.Context, connection string, hash TokenHash) error {
	if _, err := t.db.ExecContext(ctx, `DELETE FROM scim_tokens WHERE connection = $1 AND hash = $2`,
		connection, hex.EncodeToString(hash[:])); err != nil {
		return fmt.Errorf("scim: revoke a token: %w", err)
	}
	return nil
}

// Rotate makes a new token for connection, valid at once, and ends the
// connection's other tokens overlap from now (or sooner, if they were to
// end sooner), so that the IdP keeps working while it is given the new
// token: the "two valid during rotation" of a rotation. An overlap of 0
// ends them at once. It returns the new token, to give to the IdP; the
// table keeps only its hash. Tokens that have ended are deleted.
func (t *TokenTable) Rotate(ctx context.Context, connection string, overlap time.Duration) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	now := t.now()
	end := now.Add(max(overlap, 0)).UnixMilli()
	h := hex.EncodeToString(hash[:])
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("scim: rotate a token: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO scim_tokens (connection, hash, created_ms, expires_ms) VALUES ($1, $2, $3, 0)`, []any{connection, h, now.UnixMilli()}},
		{`UPDATE scim_tokens SET expires_ms = $1 WHERE connection = $2 AND hash <> $3 AND (expires_ms = 0 OR expires_ms > $1)`, []any{end, connection, h}},
		{`DELETE FROM scim_tokens WHERE connection = $1 AND expires_ms <> 0 AND expires_ms <= $2`, []any{connection, now.UnixMilli()}},
	} {
		if _, err := tx.ExecContext(ctx, s.q, s.args...); err != nil {
			return "", fmt.Errorf("scim: rotate a token: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("scim: rotate a token: %w", err)
	}
	return token, nil
}

// Hashes returns the hashes of connection's tokens valid now.
func (t *TokenTable) Hashes(ctx context.Context, connection string) ([]TokenHash, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT hash FROM scim_tokens WHERE connection = $1 AND (expires_ms = 0 OR expires_ms > $2)`,
		connection, t.now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("scim: read the tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenHash
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("scim: read the tokens: %w", err)
		}
		var h TokenHash
		if n, err := hex.Decode(h[:], []byte(s)); err != nil || n != len(h) || len(s) != 2*len(h) {
			return nil, fmt.Errorf("scim: read the tokens: a hash of %q is not %d hex bytes", connection, len(h))
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scim: read the tokens: %w", err)
	}
	return out, nil
}

// Source returns the [TokenSource] of connection, for [Options.Tokens]:
// it reads the table at every request, so that whatever any instance
// changed holds at once. An error reading it refuses the request (503).
func (t *TokenTable) Source(connection string) TokenSource {
	return tableSource{t: t, connection: connection}
}

// tableSource is the TokenSource of one connection of a TokenTable.
type tableSource struct {
	t          *TokenTable
	connection string
}

// TokenHashes returns the connection's valid hashes.
func (s tableSource) TokenHashes(ctx context.Context) ([]TokenHash, error) {
	return s.t.Hashes(ctx, s.connection)
}
