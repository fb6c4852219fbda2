package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// The audit trail: every sign-in outcome the middleware reports through
// Options.OnEvent, and every administrator's action, with the values
// before and after, kept in the application's own database beside the
// users, so that it outlives a restart and every instance sees one trail.

// auditEntry is one line of the trail.
type auditEntry struct {
	ID   int64
	Time time.Time
	// Kind is a jit.EventKind for a sign-in ("created", "updated",
	// "linked", "refused", "groups_overage"), or an administrator's action:
	// "suspended", "unsuspended", "sessions_ended".
	Kind string
	// Actor is "sign-in" for the middleware's events, else the
	// administrator: their name and user ID.
	Actor         string
	Connection    string
	Key           userstore.Key // the user's, when known
	UserID        string
	CorrelationID string
	Reason        string // why a sign-in was refused
	Changes       []fieldChange
}

// fieldChange is one field's value before and after.
type fieldChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// auditQuery selects a page of the trail, newest first.
type auditQuery struct {
	Before int64  // entries older than this ID; 0 for the newest
	Limit  int    // at most this many
	Issuer string // only this IdP's users' entries; "" for all
	// Subject, with Issuer, selects one user's entries.
	Subject string
}

// auditLog keeps the audit trail.
type auditLog interface {
	// Record appends e; its ID is assigned.
	Record(ctx context.Context, e auditEntry) error
	// Page returns the entries q selects, newest first.
	Page(ctx context.Context, q auditQuery) ([]auditEntry, error)
}

// sqlAudit is an auditLog in a table of the application's database,
// SQLite or PostgreSQL. The table is the example's own: it is created
// here if missing and is no part of the user store's schema.
type sqlAudit struct {
	db       *sql.DB
	postgres bool
}

// openAudit creates the audit table in db if it does not exist.
func openAudit(ctx context.Context, db *sql.DB, postgres bool) (*sqlAudit, error) {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if postgres {
		id = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS example_audit (
			id ` + id + `,
			at_unix_ms BIGINT NOT NULL,
			kind TEXT NOT NULL,
			actor TEXT NOT NULL,
			connection TEXT NOT NULL,
			issuer TEXT NOT NULL,
			subject TEXT NOT NULL,
			user_id TEXT NOT NULL,
			correlation_id TEXT NOT NULL,
			reason TEXT NOT NULL,
			changes TEXT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS example_audit_issuer ON example_audit (issuer, id)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create the audit table: %w", err)
		}
	}
	return &sqlAudit{db: db, postgres: postgres}, nil
}

// rebind writes SQLite's ? placeholders as PostgreSQL's $n.
func (s *sqlAudit) rebind(q string) string {
	if !s.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Record appends e.
func (s *sqlAudit) Record(ctx context.Context, e auditEntry) error {
	changes, err := json.Marshal(e.Changes)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, s.rebind(`INSERT INTO example_audit
		(at_unix_ms, kind, actor, connection, issuer, subject, user_id, correlation_id, reason, changes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.Time.UnixMilli(), e.Kind, e.Actor, e.Connection, e.Key.Issuer, e.Key.Subject, e.UserID, e.CorrelationID, e.Reason, string(changes))
	if err != nil {
		return fmt.Errorf("record an audit entry: %w", err)
	}
	return nil
}

// Page returns the entries q selects, newest first.
func (s *sqlAudit) Page(ctx context.Context, q auditQuery) ([]auditEntry, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 50
	}
	where, args := []string{"1 = 1"}, []any{}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	if q.Issuer != "" {
		where, args = append(where, "issuer = ?"), append(args, q.Issuer)
	}
	if q.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, q.Subject)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, at_unix_ms, kind, actor, connection, issuer, subject, user_id, correlation_id, reason, changes
		FROM example_audit WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`), append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("read the audit trail: %w", err)
	}
	defer rows.Close()
	var out []auditEntry
	for rows.Next() {
		var e auditEntry
		var ms int64
		var changes string
		if err := rows.Scan(&e.ID, &ms, &e.Kind, &e.Actor, &e.Connection, &e.Key.Issuer, &e.Key.Subject, &e.UserID, &e.CorrelationID, &e.Reason, &changes); err != nil {
			return nil, fmt.Errorf("read the audit trail: %w", err)
		}
		e.Time = time.UnixMilli(ms)
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return nil, fmt.Errorf("read the audit trail: entry %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// maxAuditReason bounds a refusal's reason in the trail, as in the log.
const maxAuditReason = 1024

// signInEntry is the audit entry of a sign-in event, with the values of
// the fields it changed.
func signInEntry(e jit.Event) auditEntry {
	a := auditEntry{Time: e.Time, Kind: string(e.Kind), Actor: "sign-in", Connection: e.Connection,
		Key: e.Key, UserID: e.UserID, CorrelationID: e.CorrelationID}
	if e.Err != nil {
		a.Reason = e.Err.Error()
		if len(a.Reason) > maxAuditReason {
			a.Reason = a.Reason[:maxAuditReason] + "…"
		}
	}
	var before, after userstore.Profile
	if e.Before != nil {
		before = *e.Before
	}
	if e.After == nil {
		return a
	}
	after = *e.After
	fields := e.Changed
	if e.Kind == jit.EventCreated {
		fields = jit.Diff(userstore.Profile{}, after)
	}
	for _, f := range fields {
		a.Changes = append(a.Changes, fieldChange{Field: f, Before: fieldValue(before, f), After: fieldValue(after, f)})
	}
	return a
}

// fieldValue is a profile field, named as jit.Diff names it, as text.
func fieldValue(p userstore.Profile, field string) string {
	switch field {
	case "email":
		return p.Email
	case "display_name":
		return p.DisplayName
	case "given_name":
		return p.GivenName
	case "family_name":
		return p.FamilyName
	case "groups":
		return strings.Join(p.Groups, ", ")
	case "roles":
		return strings.Join(p.Roles, ", ")
	}
	if name, ok := strings.CutPrefix(field, "attributes/"); ok {
		return strings.Join(p.Attributes[name], ", ")
	}
	return ""
}

// adminEntry is the audit entry of an administrator's action on target.
func adminEntry(now time.Time, action string, by, target userstore.User, sessionsEnded int) auditEntry {
	a := auditEntry{Time: now, Actor: strings.TrimSpace(by.Profile.DisplayName + " (" + by.ID + ")"), Key: target.Key, UserID: target.ID}
	switch action {
	case "suspend":
		a.Kind = "suspended"
		a.Changes = []fieldChange{{Field: "status", Before: target.Status.String(), After: userstore.Suspended.String()}}
	case "unsuspend":
		a.Kind = "unsuspended"
		a.Changes = []fieldChange{{Field: "status", Before: target.Status.String(), After: userstore.Active.String()}}
	case "end-sessions":
		a.Kind = "sessions_ended"
		a.Changes = []fieldChange{{Field: "sessions", Before: strconv.Itoa(sessionsEnded), After: "0"}}
	}
	return a
}
