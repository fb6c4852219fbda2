package main

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestAuditTrailPersistedWithValues: the audit trail holds the sign-ins
// with each changed field's value before and after, and the
// administrator's actions with who made them; it is in the database, so
// an application started again on the same data directory shows it.
func TestAuditTrailPersistedWithValues(t *testing.T) {
	data := t.TempDir()
	a, root := startApp(t, data)
	grace, ada := browser(t), browser(t)
	signIn(t, a, grace, root, "acme", "acme-0002")
	signIn(t, a, ada, root, "acme", "acme-0001")
	p, ok := a.dev.person("acme", "acme-0002")
	require.True(t, ok)
	p.Family = "Murray Hopper"
	require.True(t, a.dev.update("acme", p))
	signIn(t, a, grace, root, "acme", "acme-0002")
	users, err := a.store.List(context.Background())
	require.NoError(t, err)
	var graceID string
	for _, u := range users {
		if u.Key.Subject == "acme-0002" {
			graceID = u.ID
		}
	}
	code, _ := postAdminForm(t, ada, root+"/admin/users/"+graceID+"/suspend", root)
	require.Equal(t, http.StatusSeeOther, code)

	check := func(t *testing.T, log auditLog) {
		t.Helper()
		trail, err := log.Page(context.Background(), auditQuery{Limit: 10})
		require.NoError(t, err)
		var kinds []string
		for _, e := range trail {
			kinds = append(kinds, e.Kind+" "+e.Key.Subject)
		}
		require.Equal(t, []string{"suspended acme-0002", "updated acme-0002", "created acme-0001", "created acme-0002"}, kinds, "newest first")

		suspended, updated, created := trail[0], trail[1], trail[3]
		assert.Equal(t, []fieldChange{{Field: "status", Before: "active", After: "suspended"}}, suspended.Changes)
		assert.Equal(t, "Ada Lovelace ("+trail[2].UserID+")", suspended.Actor, "the administrator")
		assert.Equal(t, graceID, suspended.UserID)

		assert.Equal(t, "sign-in", updated.Actor)
		assert.Equal(t, "acme", updated.Connection)
		assert.Contains(t, updated.Changes, fieldChange{Field: "family_name", Before: "Hopper", After: "Murray Hopper"})
		assert.Contains(t, updated.Changes, fieldChange{Field: "display_name", Before: "Grace Hopper", After: "Grace Murray Hopper"})
		assert.NotEmpty(t, updated.CorrelationID)

		assert.Contains(t, created.Changes, fieldChange{Field: "email", Before: "", After: "grace@acme.example"})
		assert.Contains(t, created.Changes, fieldChange{Field: "groups", Before: "", After: "engineering"})
		assert.WithinDuration(t, time.Now(), created.Time, time.Minute)
	}
	check(t, a.audit)

	_, page := get(t, ada, root+"/admin")
	assert.Contains(t, page, `<span class="tag">family_name</span> <del>Hopper</del> → <ins>Murray Hopper</ins>`)
	assert.Contains(t, page, `<span class="tag">status</span> <del>active</del> → <ins>suspended</ins>`)

	// A restart: a new application on the same data directory.
	b, _ := startApp(t, data)
	check(t, b.audit)
}

// TestAuditTrailPagedAndScoped: the admin page shows the newest entries
// and a link to older ones; a tenant administrator sees only their own
// IdP's users' entries.
func TestAuditTrailPagedAndScoped(t *testing.T) {
	a, root := startApp(t, filepath.Join(t.TempDir(), "data"))
	ada, hank := browser(t), browser(t)
	signIn(t, a, ada, root, "acme", "acme-0001")
	signIn(t, a, hank, root, "globex", "globex-0001")
	ctx := context.Background()
	acme := userstore.Key{Issuer: "urn:samljit:example:dev-idp:acme", Subject: "acme-bulk"}
	base := time.Now()
	for i := range 2*auditPageSize + 5 {
		require.NoError(t, a.audit.Record(ctx, auditEntry{Time: base.Add(time.Duration(i) * time.Second), Kind: "updated", Actor: "sign-in",
			Connection: "acme", Key: acme, CorrelationID: fmt.Sprintf("bulk-%03d", i)}))
	}

	_, page := get(t, ada, root+"/admin")
	assert.Contains(t, page, "bulk-104", "the newest first")
	assert.NotContains(t, page, "bulk-054", "one page only")
	older := regexpFind(t, page, `href="(/admin\?audit_before=\d+)"`)
	_, page = get(t, ada, root+older)
	assert.Contains(t, page, "bulk-054")
	assert.NotContains(t, page, "bulk-055")
	assert.NotContains(t, page, "bulk-004")
	older = regexpFind(t, page, `href="(/admin\?audit_before=\d+)"`)
	_, page = get(t, ada, root+older)
	assert.Contains(t, page, "bulk-004")
	assert.Contains(t, auditKinds(t, page, "acme-0001"), "created", "the oldest page holds Ada's first sign-in")
	assert.NotContains(t, page, "audit_before=", "no page older than the oldest")

	_, page = get(t, hank, root+"/admin")
	assert.Empty(t, auditKinds(t, page, "acme-bulk"), "globex's administrator sees none of acme's entries")
	assert.Empty(t, auditKinds(t, page, "acme-0001"))
	assert.Equal(t, []string{"created"}, auditKinds(t, page, "globex-0001"))

	code, page := get(t, ada, root+"/admin?audit_before=not-a-number")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "bulk-104", "a bad cursor is the first page")
}

// regexpFind returns the first group of pattern's first match in s.
func regexpFind(t *testing.T, s, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	require.NotNil(t, m, "no %s", pattern)
	return html.UnescapeString(m[1])
}
