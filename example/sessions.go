package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// Session listing: "Your sessions" for everyone, and an administrator's
// view of a person's sessions. The session records are the store's
// (jit.Middleware.Sessions); the last use, IP address and browser of each
// are the example's own, reported by the middleware (jit.Options.Activity)
// at most once a minute and kept in a table beside the audit trail.

// sessionActivity is the example's record of its sessions' use, in a
// table of the application's database, SQLite or PostgreSQL, created here
// if missing and no part of the user store's schema. Rows are keyed by a
// hash of the session ID (sessionHandle): the table holds no session ID,
// and the pages' forms name a session by that hash.
type sessionActivity struct {
	db       *sql.DB
	postgres bool
	log      *slog.Logger

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Purge bounds: at most purgeBatch rows are deleted by one statement,
// at most purgeBatches statements in one round, one round every
// purgeEvery.
const (
	purgeBatch   = 500
	purgeBatches = 20
	purgeEvery   = 10 * time.Minute
)

// openSessionActivity creates the activity table in db if it does not
// exist, and starts purging the rows of expired sessions until Close.
func openSessionActivity(ctx context.Context, db *sql.DB, postgres bool, logger *slog.Logger) (*sessionActivity, error) {
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS example_session_activity (
			session_hash TEXT NOT NULL PRIMARY KEY,
			issuer TEXT NOT NULL,
			subject TEXT NOT NULL,
			first_seen_unix_ms BIGINT NOT NULL,
			last_seen_unix_ms BIGINT NOT NULL,
			ip TEXT NOT NULL,
			user_agent TEXT NOT NULL,
			expires_unix_ms BIGINT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS example_session_activity_user ON example_session_activity (issuer, subject)`,
		`CREATE INDEX IF NOT EXISTS example_session_activity_expires ON example_session_activity (expires_unix_ms)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create the session activity table: %w", err)
		}
	}
	s := &sessionActivity{db: db, postgres: postgres, log: logger}
	purgeCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.purgeRound(purgeCtx) // before serving, so that a restart after a long pause starts clean
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(purgeEvery)
		defer t.Stop()
		for {
			select {
			case <-purgeCtx.Done():
				return
			case <-t.C:
				s.purgeRound(purgeCtx)
			}
		}
	}()
	return s, nil
}

// purgeRound purges expired sessions' rows, logging what it did.
func (s *sessionActivity) purgeRound(ctx context.Context) {
	n, err := s.purge(ctx, time.Now(), purgeBatch, purgeBatches)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.ErrorContext(ctx, "purge session activity", "err", err)
	case n > 0:
		s.log.InfoContext(ctx, "purged session activity", "rows", n)
	}
}

// Close stops the purge.
func (s *sessionActivity) Close() {
	s.stop()
	s.wg.Wait()
}

// sessionHandle names a session without its ID: the rows of the activity
// table and the pages' forms use it.
func sessionHandle(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *sessionActivity) rebind(q string) string {
	return (&sqlAudit{postgres: s.postgres}).rebind(q)
}

// SessionSeen records a report of the middleware: the session's last use,
// IP address and browser.
func (s *sessionActivity) SessionSeen(ctx context.Context, a jit.Activity) error {
	ip := ""
	if a.IP.IsValid() {
		ip = a.IP.String()
	}
	ms := a.Time.UnixMilli()
	_, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO example_session_activity
		(session_hash, issuer, subject, first_seen_unix_ms, last_seen_unix_ms, ip, user_agent, expires_unix_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_hash) DO UPDATE SET last_seen_unix_ms = excluded.last_seen_unix_ms,
			ip = excluded.ip, user_agent = excluded.user_agent`),
		sessionHandle(a.Session.ID), a.Session.Key.Issuer, a.Session.Key.Subject, ms, ms, ip, a.UserAgent, a.Session.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("record session activity: %w", err)
	}
	return nil
}

// seenRow is what the table holds of one session.
type seenRow struct {
	FirstSeen, LastSeen time.Time
	IP, UserAgent       string
}

// lookup returns the rows of the sessions with the given handles, by
// handle; a session never reported has none.
func (s *sessionActivity) lookup(ctx context.Context, handles []string) (map[string]seenRow, error) {
	out := make(map[string]seenRow, len(handles))
	for chunk := range slices.Chunk(handles, 100) {
		args := make([]any, len(chunk))
		for i, h := range chunk {
			args[i] = h
		}
		rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT session_hash, first_seen_unix_ms, last_seen_unix_ms, ip, user_agent
			FROM example_session_activity WHERE session_hash IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("read session activity: %w", err)
		}
		for rows.Next() {
			var h string
			var first, last int64
			var r seenRow
			if err := rows.Scan(&h, &first, &last, &r.IP, &r.UserAgent); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read session activity: %w", err)
			}
			r.FirstSeen, r.LastSeen = time.UnixMilli(first), time.UnixMilli(last)
			out[h] = r
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read session activity: %w", err)
		}
	}
	return out, nil
}

// forgetEnded deletes the rows of key's sessions that are not among live
// (the handles of its live sessions, listed at listed), at once rather
// than at their expiry. A row first seen after the listing, of a session
// begun meanwhile, is kept.
func (s *sessionActivity) forgetEnded(ctx context.Context, key userstore.Key, live []string, listed time.Time) error {
	q := `DELETE FROM example_session_activity WHERE issuer = ? AND subject = ? AND first_seen_unix_ms <= ?`
	args := []any{key.Issuer, key.Subject, listed.UnixMilli()}
	if len(live) > 0 {
		q += ` AND session_hash NOT IN (?` + strings.Repeat(", ?", len(live)-1) + `)`
		for _, h := range live {
			args = append(args, h)
		}
	}
	if _, err := s.db.ExecContext(ctx, s.rebind(q), args...); err != nil {
		return fmt.Errorf("forget ended sessions' activity: %w", err)
	}
	return nil
}

// purge deletes the rows of sessions expired at now, batch rows at a time
// and at most batches times, and returns how many it deleted. The rows of
// a session ended by other means than these pages (a Single Logout, a
// suspension) go at its expiry: the pages list live sessions only, so
// such a row is never shown.
func (s *sessionActivity) purge(ctx context.Context, now time.Time, batch, batches int) (int, error) {
	total := 0
	for range batches {
		res, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM example_session_activity WHERE session_hash IN
			(SELECT session_hash FROM example_session_activity WHERE expires_unix_ms <= ? LIMIT ?)`), now.UnixMilli(), batch)
		if err != nil {
			return total, fmt.Errorf("purge session activity: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge session activity: %w", err)
		}
		total += int(n)
		if n < int64(batch) {
			break
		}
	}
	return total, nil
}

// sessionView is one line of a sessions page.
type sessionView struct {
	Handle     string
	Connection string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	LastSeen   time.Time // zero when never reported
	IP         string
	UserAgent  string
	Current    bool // the session of the request showing the page
}

// sessionsPage is the content of a sessions page.
type sessionsPage struct {
	Of    userstore.User // whose sessions
	Own   bool           // the person's own page, not an administrator's
	Lines []sessionView
}

// sessionViews lists key's live sessions, oldest first, with what the
// activity table holds of them, marking the request's own session.
func (a *app) sessionViews(ctx context.Context, key userstore.Key) ([]sessionView, error) {
	list, err := a.mw.Sessions(ctx, key)
	if err != nil {
		return nil, err
	}
	handles := make([]string, len(list))
	for i, s := range list {
		handles[i] = sessionHandle(s.ID)
	}
	seen, err := a.activity.lookup(ctx, handles)
	if err != nil {
		return nil, err
	}
	current, _ := jit.SessionFromContext(ctx)
	views := make([]sessionView, len(list))
	for i, s := range list {
		r := seen[handles[i]]
		views[i] = sessionView{Handle: handles[i], Connection: s.Connection, IssuedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
			LastSeen: r.LastSeen, IP: r.IP, UserAgent: r.UserAgent, Current: s.ID == current.ID}
	}
	return views, nil
}

// sessionRoutes serves the sessions pages.
func (a *app) sessionRoutes() {
	a.mux.Handle("GET /sessions", a.mw.RequireUser(http.HandlerFunc(a.ownSessions)))
	a.mux.Handle("POST /sessions/{handle}/end", a.mw.RequireUser(http.HandlerFunc(a.endOwnSession)))
	a.mux.Handle("POST /sessions/end-all", a.mw.RequireUser(http.HandlerFunc(a.endOwnSessions)))
	a.mux.Handle("GET /admin/users/{id}/sessions", a.mw.RequireUser(a.requireAdmin(http.HandlerFunc(a.userSessions))))
}

// ownSessions is "Your sessions": the person's live sessions, this
// device's marked.
func (a *app) ownSessions(w http.ResponseWriter, r *http.Request) {
	me, _ := jit.UserFromContext(r.Context())
	views, err := a.sessionViews(r.Context(), me.Key)
	if err != nil {
		a.unavailable(w, r, "sessions", err)
		return
	}
	a.render(w, http.StatusOK, "sessions", pageData{Title: "Your sessions", User: &me, Admin: a.isAdmin(me), Dev: a.dev != nil,
		SessionList: &sessionsPage{Of: me, Own: true, Lines: views}})
}

// endOwnSession signs one of the person's sessions out, found by its
// handle among their own live sessions: a handle of anyone else's session
// is not found.
func (a *app) endOwnSession(w http.ResponseWriter, r *http.Request) {
	if !a.mw.SameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	me, _ := jit.UserFromContext(ctx)
	list, err := a.mw.Sessions(ctx, me.Key)
	if err != nil {
		a.unavailable(w, r, "end session", err)
		return
	}
	i := slices.IndexFunc(list, func(s userstore.Session) bool { return sessionHandle(s.ID) == r.PathValue("handle") })
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	switch err := a.mw.EndSession(ctx, me.Key, list[i].ID); {
	case errors.Is(err, userstore.ErrNotFound): // ended meanwhile
	case err != nil:
		a.unavailable(w, r, "end session", err)
		return
	default:
		a.afterEnding(ctx, me, me, "session_ended", 1)
	}
	current, _ := jit.SessionFromContext(ctx)
	if list[i].ID == current.ID {
		_ = a.mw.Logout(w, r) // this device: delete its cookie too
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

// endOwnSessions signs the person out everywhere, this device included.
func (a *app) endOwnSessions(w http.ResponseWriter, r *http.Request) {
	if !a.mw.SameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	me, _ := jit.UserFromContext(ctx)
	n, err := a.mw.EndSessions(ctx, me.Key)
	if err != nil {
		a.unavailable(w, r, "end sessions", err)
		return
	}
	a.afterEnding(ctx, me, me, "sessions_ended", n)
	if err := a.mw.Logout(w, r); err != nil {
		a.log.ErrorContext(ctx, "logout", "err", err)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// afterEnding records that by ended n of target's sessions in the audit
// trail, and forgets the activity of target's sessions that are no
// longer live.
func (a *app) afterEnding(ctx context.Context, by, target userstore.User, kind string, n int) {
	e := adminEntry(time.Now(), "end-sessions", by, target, n)
	e.Kind = kind
	if kind == "session_ended" {
		e.Changes = []fieldChange{{Field: "session", Before: "live", After: "ended"}}
	}
	if err := a.audit.Record(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "audit", "err", err)
	}
	a.forgetEnded(ctx, target.Key)
}

// forgetEnded deletes the activity rows of key's sessions that are no
// longer live. A failure is logged: the rows go at their expiry.
func (a *app) forgetEnded(ctx context.Context, key userstore.Key) {
	listed := time.Now()
	list, err := a.mw.Sessions(ctx, key)
	if err == nil {
		live := make([]string, len(list))
		for i, s := range list {
			live[i] = sessionHandle(s.ID)
		}
		err = a.activity.forgetEnded(ctx, key, live, listed)
	}
	if err != nil {
		a.log.ErrorContext(ctx, "forget ended sessions", "err", err)
	}
}

// userSessions is an administrator's view of a person's sessions, with
// "Sign out everywhere" (the admin action end-sessions).
func (a *app) userSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	me, _ := jit.UserFromContext(ctx)
	users, err := a.store.List(ctx)
	if err != nil {
		a.unavailable(w, r, "user sessions", err)
		return
	}
	// Another connection's user is not found, as for the admin actions.
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.ID == r.PathValue("id") && manages(me, u) })
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	views, err := a.sessionViews(ctx, users[i].Key)
	if err != nil {
		a.unavailable(w, r, "user sessions", err)
		return
	}
	a.render(w, http.StatusOK, "sessions", pageData{Title: "Sessions", User: &me, Admin: true, Dev: a.dev != nil,
		SessionList: &sessionsPage{Of: users[i], Lines: views}})
}

// unavailable logs err and answers 503.
func (a *app) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.ErrorContext(r.Context(), what, "err", err)
	a.render(w, http.StatusServiceUnavailable, "error", pageData{Title: "Unavailable", Message: "The user store is unavailable. Try again in a moment."})
}

// trustedProxyFlag parses -trusted-proxy values: a prefix
// ("10.0.0.0/8") or one address ("10.0.0.5").
func trustedProxyFlag(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			ip, ierr := netip.ParseAddr(v)
			if ierr != nil {
				return nil, fmt.Errorf("-trusted-proxy %q is neither an address nor a prefix such as 10.0.0.0/8", v)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

var _ = template.Must(pages.Parse(`
{{define "sessions"}}{{template "head" .}}
{{with .SessionList}}
<div class="card">
<h1>{{if .Own}}Your sessions{{else}}Sessions of {{or .Of.Profile.DisplayName .Of.Key.Subject}}{{end}}</h1>
<p class="muted">{{if .Own}}Where you are signed in to this app. Sign out a device you do not recognise; signing out everywhere ends this session too.{{else}}<code>{{.Of.Key.Subject}}</code> at <code>{{.Of.Key.Issuer}}</code>. Signing out everywhere does not suspend: they may sign in again.{{end}} The last use, address and browser are recorded at most once a minute.</p>
<div class="scroll"><table id="sessions" class="cards"><tr><th>Signed in</th><th>Last seen</th><th>IP address</th><th>Browser</th><th>Connection</th><th>Expires</th><th></th></tr>
{{range .Lines}}<tr data-session="{{.Handle}}"{{if .Current}} class="current"{{end}}>
<td class="issued nowrap" data-label="Signed in">{{short .IssuedAt}}{{if .Current}} <span class="tag this-device">this device</span>{{end}}</td>
<td class="last-seen nowrap" data-label="Last seen">{{if .LastSeen.IsZero}}—{{else}}{{short .LastSeen}}{{end}}</td>
<td class="ip" data-label="IP address"><code>{{or .IP "—"}}</code></td>
<td class="user-agent" data-label="Browser">{{or .UserAgent "—"}}</td>
<td class="connection" data-label="Connection">{{or .Connection "—"}}</td>
<td class="expires nowrap" data-label="Expires">{{short .ExpiresAt}}</td>
<td class="actions nowrap">{{if and $.SessionList.Own (not .Current)}}<form method="post" action="/sessions/{{.Handle}}/end"><button class="end-session">Sign out</button></form>{{end}}</td>
</tr>{{else}}<tr><td colspan="7">No live sessions.</td></tr>{{end}}</table></div>
<div>{{if .Own}}<form method="post" action="/sessions/end-all" class="inline"><button id="end-all" class="danger">Sign out everywhere</button></form>
{{else}}<form method="post" action="/admin/users/{{.Of.ID}}/end-sessions" class="inline"><button id="end-all" class="danger">Sign out everywhere</button></form> <a class="button" href="/admin">Back to users</a>{{end}}</div>
</div>
{{end}}
{{template "foot"}}{{end}}
`))
