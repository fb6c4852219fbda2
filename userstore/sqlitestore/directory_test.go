package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// schemaV5 is the schema of version 5, the last before a provisioning
// directory's user names and groups: version 4 (frozen above) and the
// sessions' NameID columns, frozen likewise.
var schemaV5 = append(schemaV4[:len(schemaV4)-1:len(schemaV4)-1],
	`ALTER TABLE sessions ADD COLUMN name_id TEXT NOT NULL DEFAULT '' COLLATE BINARY`,
	`ALTER TABLE sessions ADD COLUMN name_id_format TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE sessions ADD COLUMN name_qualifier TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE sessions ADD COLUMN sp_name_qualifier TEXT NOT NULL DEFAULT ''`,
	`CREATE INDEX sessions_name_id ON sessions (issuer, name_id, session_index)`,
	`PRAGMA user_version = 5`,
)

// TestMigrateFromVersion5 opens a database written at schema version 5
// with a user a sign-in created, and finds that user through the
// directory by subject, without a user name, adoptable by name and
// groupable; and each directory find uses an index, not a scan.
func TestMigrateFromVersion5(t *testing.T) {
	ctx := t.Context()
	path, db := databaseAt(t, schemaV5)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456789, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO users (id, issuer, subject, email, email_norm, groups_json, created_at, updated_at, last_sign_in_at)
		VALUES ('u1', 'https://idp.example/', 'ada', 'Ada@example.com', 'ada@example.com', '["jit"]', ?1, ?1, ?1)`, created.UnixNano())
	require.NoError(t, err)
	db, s := reopenMigrated(t, db, path)

	u, err := s.FindUser(ctx, "https://idp.example/", userstore.UserBySubject, "ada")
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Empty(t, u.UserName)
	u, err = s.FindUser(ctx, "https://idp.example/", userstore.UserByEmail, "ADA@example.com")
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)

	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	res, err := s.PutUser(ctx, ada, created.Add(time.Hour), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "ada@example.com", before.Profile, nil
	})
	require.NoError(t, err)
	require.NotNil(t, res.Before, "adopted, not created")
	g, err := s.PutGroup(ctx, ada.Issuer, "", created, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "Admins", ExternalID: "g-oid", Members: []string{"u1"}}, nil
	}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"jit", "g-oid"}, g.Users[0].User.Profile.Groups)

	for _, q := range []struct{ query, index string }{
		{`SELECT id FROM users WHERE issuer = ?1 AND subject = ?2`, "(issuer=? AND subject=?)"},
		{`SELECT id FROM users WHERE issuer = ?1 AND user_name_norm = ?2 AND user_name_norm <> ''`, "users_issuer_user_name"},
		{`SELECT id FROM users WHERE issuer = ?1 AND email_norm = ?2 AND email_norm <> '' AND issuer <> '` + userstore.LocalIssuer + `'`, "users_issuer_email"},
		{`SELECT id FROM users WHERE issuer = ?1 ORDER BY created_at, id LIMIT 10 OFFSET 0`, "users_issuer_created"},
		{`SELECT id FROM scim_groups WHERE issuer = ?1 AND external_id = ?2 ORDER BY created_at, id`, "scim_groups_external_id"},
		{`SELECT id FROM scim_groups WHERE issuer = ?1 AND display_name = ?2 ORDER BY created_at, id`, "scim_groups_display_name"},
	} {
		plan := queryPlan(t, db, q.query, "i", "v")
		require.Contains(t, plan, "USING ", "%s: %s", q.query, plan)
		require.Contains(t, plan, q.index, "%s: %s", q.query, plan)
	}
}
