package pgstore_test

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
	`ALTER TABLE samljit_sessions
		ADD COLUMN name_id text COLLATE "C" NOT NULL DEFAULT '',
		ADD COLUMN name_id_format text NOT NULL DEFAULT '',
		ADD COLUMN name_qualifier text NOT NULL DEFAULT '',
		ADD COLUMN sp_name_qualifier text NOT NULL DEFAULT ''`,
	`CREATE INDEX samljit_sessions_name_id ON samljit_sessions (issuer, name_id, session_index)`,
	`INSERT INTO samljit_schema_version (version) VALUES (5)`,
)

// TestMigrateFromVersion5 opens a schema written at version 5 with a user
// a sign-in created, and finds that user through the directory by
// subject, without a user name, adoptable by name and groupable, with the
// new indexes in place.
func TestMigrateFromVersion5(t *testing.T) {
	ctx := t.Context()
	schema, db := schemaAt(t, schemaV5)
	created := time.Date(2025, time.June, 1, 8, 0, 0, 123456000, time.UTC)
	_, err := db.ExecContext(ctx, `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ('u1', 'https://idp.example/', 'ada', 'Ada@example.com', '', '', '', '["jit"]', 'null', 'null', 'ada@example.com', $1, 0, $1, 0, $1, 0)`, created)
	require.NoError(t, err)
	s := openMigrated(t, db)

	var indexes string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
		WHERE schemaname = $1 AND indexname IN ('samljit_users_issuer_user_name', 'samljit_users_issuer_created',
			'samljit_groups_issuer_created', 'samljit_groups_display_name', 'samljit_groups_external_id', 'samljit_group_members_user')`, schema).Scan(&indexes))
	require.Equal(t, "samljit_group_members_user samljit_groups_display_name samljit_groups_external_id samljit_groups_issuer_created samljit_users_issuer_created samljit_users_issuer_user_name", indexes)

	u, err := s.FindUser(ctx, "https://idp.example/", userstore.UserBySubject, "ada")
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	require.Empty(t, u.UserName)
	ada := userstore.Key{Issuer: "https://idp.example/", Subject: "ada"}
	res, err := s.PutUser(ctx, ada, created.Add(time.Hour), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		return "ada@example.com", before.Profile, nil
	})
	require.NoError(t, err)
	require.NotNil(t, res.Before, "adopted, not created")
	u, err = s.FindUser(ctx, ada.Issuer, userstore.UserByUserName, "ADA@example.com")
	require.NoError(t, err)
	require.Equal(t, "u1", u.ID)
	g, err := s.PutGroup(ctx, ada.Issuer, "", created, func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "Admins", ExternalID: "g-oid", Members: []string{"u1"}}, nil
	}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"jit", "g-oid"}, g.Users[0].User.Profile.Groups)
}
