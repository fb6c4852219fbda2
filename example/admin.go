package main

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// The admin pages: the users an administrator manages, their sessions,
// the stale-account report, and the actions on them.

// roleOperator is the local role (granted with userstore.Admin.GrantRole,
// never by a sign-in) of the application's own operators, who manage the
// users of every connection.
const roleOperator = "operator"

// isAdmin reports whether u may use the admin page: an operator, or a
// tenant administrator (jit.RoleAdmin from their own IdP's groups).
func (a *app) isAdmin(u userstore.User) bool {
	return u.HasLocalRole(roleOperator) || u.HasIdPRole(jit.RoleAdmin)
}

// manages reports whether admin may see and change target. A tenant
// administrator's rights come from their own IdP's claims, which are only
// as trustworthy as that IdP: they reach that connection's users and no
// one else. Only a local grant reaches across connections.
func manages(admin, target userstore.User) bool {
	if admin.HasLocalRole(roleOperator) {
		return true
	}
	return admin.HasIdPRole(jit.RoleAdmin) && admin.Key.Issuer == target.Key.Issuer
}

// managed returns the users admin manages.
func managed(admin userstore.User, users []userstore.User) []userstore.User {
	return slices.DeleteFunc(users, func(u userstore.User) bool { return !manages(admin, u) })
}

func (a *app) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := jit.UserFromContext(r.Context())
		if !a.isAdmin(u) {
			msg := "Only members of the IdP group " + strconv.Quote(a.cfg.adminGroup) + " (set with -admin-group) can use this page."
			if a.cfg.adminGroup == "" {
				msg = "No admin group is set, so nobody signing in through an IdP can use this page: start the example with -admin-group GROUP, GROUP being a group your IdP sends (for Entra ID, the group's object ID)."
			}
			a.render(w, http.StatusForbidden, "error", pageData{Title: "Forbidden", Message: msg, User: &u})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *app) admin(w http.ResponseWriter, r *http.Request) {
	days := 30
	if d, err := strconv.Atoi(r.URL.Query().Get("stale_days")); err == nil && d >= 0 && d <= 3650 {
		days = d
	}
	ctx := r.Context()
	me, _ := jit.UserFromContext(ctx)
	var olderThan int64
	users, err := a.store.List(ctx)
	if err == nil {
		now := time.Now()
		var stale []userstore.User
		stale, err = a.store.NotSignedInSince(ctx, now.AddDate(0, 0, -days))
		var audit []auditEntry
		if err == nil {
			// An operator sees the whole trail, a tenant administrator
			// their own IdP's users' entries.
			q := auditQuery{Limit: auditPageSize, Issuer: me.Key.Issuer}
			if me.HasLocalRole(roleOperator) {
				q.Issuer = ""
			}
			if id, perr := strconv.ParseInt(r.URL.Query().Get("audit_before"), 10, 64); perr == nil && id > 0 {
				q.Before = id
			}
			audit, err = a.audit.Page(ctx, q)
			if len(audit) == auditPageSize {
				olderThan = audit[len(audit)-1].ID
			}
		}
		if err == nil {
			users = managed(me, users)
			var sessions map[string]int
			if sessions, err = a.sessionCounts(ctx, users); err == nil {
				a.render(w, http.StatusOK, "admin", pageData{Title: "Admin", User: &me, Admin: true, Users: users, Sessions: sessions, Stale: staleUsers(managed(me, stale), now), StaleDays: days, Audit: audit, AuditOlder: olderThan, Dev: a.dev != nil, SCIM: a.scimEndpoints(me)})
				return
			}
		}
	}
	a.log.ErrorContext(ctx, "admin", "err", err)
	a.render(w, http.StatusServiceUnavailable, "error", pageData{Title: "Unavailable", Message: "The user store is unavailable."})
}

// sessionCounts returns how many live sessions each of users has, by
// user ID.
func (a *app) sessionCounts(ctx context.Context, users []userstore.User) (map[string]int, error) {
	counts := make(map[string]int, len(users))
	for _, u := range users {
		list, err := a.mw.Sessions(ctx, u.Key)
		if err != nil {
			return nil, err
		}
		counts[u.ID] = len(list)
	}
	return counts, nil
}

// staleUser is a line of the stale-account report: a user and the whole
// days since their last sign-in.
type staleUser struct {
	userstore.User
	Days int
}

func staleUsers(users []userstore.User, now time.Time) []staleUser {
	out := make([]staleUser, len(users))
	for i, u := range users {
		out[i] = staleUser{User: u, Days: int(now.Sub(u.LastSignInAt) / (24 * time.Hour))}
	}
	return out
}

// adminAction suspends or unsuspends a user, or ends their sessions on
// every device (they may sign in again; suspending ends them too, and
// keeps them out). The session cookie is SameSite=Lax, so a cross-site
// form cannot post here with it; the same-origin check (Origin or
// Sec-Fetch-Site, one of them required) refuses the rest.
func (a *app) adminAction(w http.ResponseWriter, r *http.Request) {
	if !a.mw.SameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	ctx := r.Context()
	users, err := a.store.List(ctx)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	me, _ := jit.UserFromContext(ctx)
	// Another connection's user is not found, not forbidden: an
	// administrator learns nothing about other tenants.
	i := slices.IndexFunc(users, func(u userstore.User) bool { return u.ID == r.PathValue("id") && manages(me, u) })
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	key := users[i].Key
	ended := 0
	switch r.PathValue("action") {
	case "suspend":
		err = a.store.Suspend(ctx, key)
	case "unsuspend":
		err = a.store.Unsuspend(ctx, key)
	case "end-sessions":
		ended, err = a.mw.EndSessions(ctx, key)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	a.forgetEnded(ctx, key) // suspending ends the sessions too
	a.log.InfoContext(ctx, "admin action", "action", r.PathValue("action"), "user_id", users[i].ID, "by", me.ID, "sessions_ended", ended)
	if err := a.audit.Record(ctx, adminEntry(time.Now(), r.PathValue("action"), me, users[i], ended)); err != nil {
		a.log.ErrorContext(ctx, "audit", "err", err)
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}
