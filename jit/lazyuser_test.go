package jit_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// lazyHarness signs in a person with 150 groups, two of which the
// connection maps to roles, on a SQLite file, and returns the harness, a
// request carrying the person's session cookie, the person's key and the
// database.
func lazyHarness(t *testing.T) (*harness, *http.Request, userstore.Key, *sql.DB) {
	t.Helper()
	h := policyHarness(t, jit.Policy{Roles: jit.RoleMapping{
		GroupRoles:   map[string][]string{"g-7": {"editor"}, "g-149": {"operator"}},
		DefaultRoles: []string{"viewer"},
	}})
	groups := make([]string, 150)
	for i := range groups {
		groups[i] = fmt.Sprintf("g-%d", i)
	}
	h.idp().AddUser(person("p-lazy", "lazy@example.com", "Lazy", "Lu", groups...))
	c := h.client()
	resp, body := h.signIn(c, "", "p-lazy")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	req := httptest.NewRequest(http.MethodGet, h.app.URL+"/app", nil)
	app, err := url.Parse(h.app.URL)
	require.NoError(t, err)
	for _, ck := range c.Jar.Cookies(app) {
		req.AddCookie(ck)
	}
	db, err := sql.Open("sqlite3", sqlitestore.DSN(h.dbPath))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return h, req, userstore.Key{Issuer: h.idp().EntityID(), Subject: "p-lazy"}, db
}

// serveUser runs req through RequireUser and returns the response code
// and what the handler found with UserFromContext, asked twice.
func serveUser(t *testing.T, mw *jit.Middleware, req *http.Request) (int, userstore.User, bool) {
	t.Helper()
	var u userstore.User
	var ok, called bool
	h := mw.RequireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		u, ok = jit.UserFromContext(r.Context())
		again, okAgain := jit.UserFromContext(r.Context())
		assert.Equal(t, ok, okAgain, "a second UserFromContext in the request")
		assert.Equal(t, u, again, "a second UserFromContext in the request")
		w.WriteHeader(http.StatusNoContent)
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if !called {
		return w.Code, userstore.User{}, false
	}
	return w.Code, u, ok
}

// TestRequestUserDecodedLazily checks that the user RequireUser puts in
// the context, whose lists are decoded at the handler's first call of
// UserFromContext, is the user the store holds, 150 groups and roles
// included, and that CurrentUser returns the same.
func TestRequestUserDecodedLazily(t *testing.T) {
	h, req, key, _ := lazyHarness(t)
	stored, err := h.store.Lookup(context.Background(), key)
	require.NoError(t, err)
	require.Len(t, stored.Profile.Groups, 150)
	require.Equal(t, []string{"editor", "operator", "viewer"}, stored.Profile.Roles)
	require.NoError(t, h.store.GrantRole(context.Background(), key, "auditor"))
	stored.LocalRoles = []string{"auditor"}

	code, u, ok := serveUser(t, h.mw, req)
	require.Equal(t, http.StatusNoContent, code)
	require.True(t, ok, "UserFromContext")
	assert.Equal(t, stored, u)
	assert.True(t, u.HasRole("operator"))
	assert.True(t, u.HasLocalRole("auditor"))

	cur, err := h.mw.CurrentUser(req)
	require.NoError(t, err)
	assert.Equal(t, stored, cur)
}

// TestRequestUserDamagedFailsClosed checks that a user record whose lists
// cannot be decoded is never handed to the application as a user: the
// handler's UserFromContext reports no user (and the error is logged),
// CurrentUser fails with ErrStoreUnavailable, and a suspension is still
// seen at once, since the status is read without decoding anything.
func TestRequestUserDamagedFailsClosed(t *testing.T) {
	for _, column := range []string{"groups_json", "attributes_json", "roles_json", "local_roles_json"} {
		t.Run(column, func(t *testing.T) {
			h, req, key, db := lazyHarness(t)
			_, err := db.ExecContext(context.Background(), `UPDATE users SET `+column+` = '["cut short",' WHERE subject = ?`, key.Subject)
			require.NoError(t, err)

			code, u, ok := serveUser(t, h.mw, req)
			assert.Equal(t, http.StatusNoContent, code, "RequireUser reads only the ID, key and status")
			assert.False(t, ok, "UserFromContext of a damaged record")
			assert.Equal(t, userstore.User{}, u)
			assert.True(t, h.logged("", "signed-in user not readable"), "the failure is logged")

			cur, err := h.mw.CurrentUser(req)
			require.ErrorIs(t, err, jit.ErrStoreUnavailable)
			assert.Equal(t, userstore.User{}, cur)

			// Suspended behind the store's back (its Suspend would
			// end the session): refused at once, damaged lists or not.
			_, err = db.ExecContext(context.Background(), `UPDATE users SET status = 1 WHERE subject = ?`, key.Subject)
			require.NoError(t, err)
			code, _, _ = serveUser(t, h.mw, req)
			assert.Equal(t, http.StatusForbidden, code)
		})
	}
}
