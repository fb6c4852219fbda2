package sqlitestore

import (
	"context"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// Interface check: userstore.Directory and GroupDirectory.
var _ sqlcore.DirectoryInterfaces = (*Store)(nil)

const (
	// selectDirectoryUsers reads directory users; a clause follows.
	selectDirectoryUsers = `SELECT issuer, subject, ` + userColumns + `, user_name FROM users`

	// groupColumns are the columns of a group sqlcore reads.
	groupColumns = `id, display_name, external_id, created_at, updated_at`

	// selectGroups reads groups; a clause follows.
	selectGroups = `SELECT ` + groupColumns + ` FROM scim_groups`
)

// directoryQueries are the store's statements for userstore.Directory and
// GroupDirectory, taking the arguments [sqlcore.DirectoryQueries] lists.
// The finds by user name and email repeat the conditions of the partial
// unique indexes, so that SQLite uses them.
var directoryQueries = sqlcore.DirectoryQueries{
	UserByID:       selectDirectoryUsers + ` WHERE issuer = ?1 AND id = ?2`,
	UserBySubject:  selectDirectoryUsers + ` WHERE issuer = ?1 AND subject = ?2`,
	UserByUserName: selectDirectoryUsers + ` WHERE issuer = ?1 AND user_name_norm = ?2 AND user_name_norm <> ''`,
	UserByEmail: selectDirectoryUsers + ` WHERE issuer = ?1 AND email_norm = ?2 AND email_norm <> ''
		AND issuer <> '` + userstore.LocalIssuer + `'`,
	UsersPage:         selectDirectoryUsers + ` WHERE issuer = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3`,
	UsersAfter:        selectDirectoryUsers + ` WHERE issuer = ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT ?4`,
	CountUsers:        `SELECT COALESCE((SELECT user_count FROM directory_counts WHERE issuer = ?), 0)`,
	UserByKeyForWrite: `SELECT ` + userColumns + `, user_name FROM users WHERE issuer = ? AND subject = ?`,
	InsertUser: `INSERT INTO users (id, issuer, subject, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json, email_norm,
			user_name, user_name_norm, status, created_at, updated_at, last_sign_in_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, ?14, ?14, ?14)
		ON CONFLICT (issuer, subject) DO NOTHING`,
	UpdateUser: `UPDATE users SET email = ?2, display_name = ?3, given_name = ?4, family_name = ?5, groups_json = ?6, attributes_json = ?7, roles_json = ?8,
			email_norm = ?9, user_name = ?10, user_name_norm = ?11, updated_at = ?12
		WHERE id = ?1`,
	UpdateUserSameKeys: `UPDATE users SET email = ?2, display_name = ?3, given_name = ?4, family_name = ?5, groups_json = ?6, attributes_json = ?7, roles_json = ?8,
			user_name = ?9, updated_at = ?10
		WHERE issuer = ?11 AND subject = ?12`, // ?1, the id, unused
	UpdateUserSameKeysByKey: true,
	SetUserGroups:           `UPDATE users SET groups_json = ?2, roles_json = ?3, updated_at = ?4 WHERE id = ?1`,

	GroupByID:           selectGroups + ` WHERE issuer = ?1 AND id = ?2`,
	GroupsByDisplayName: selectGroups + ` WHERE issuer = ?1 AND display_name = ?2 ORDER BY created_at, id`,
	GroupsByExternalID:  selectGroups + ` WHERE issuer = ?1 AND external_id = ?2 ORDER BY created_at, id`,
	GroupsPage:          selectGroups + ` WHERE issuer = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3`,
	GroupsAfter:         selectGroups + ` WHERE issuer = ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT ?4`,
	CountGroups:         `SELECT COALESCE((SELECT group_count FROM directory_counts WHERE issuer = ?), 0)`,
	GroupByIDForWrite:   selectGroups + ` WHERE issuer = ?1 AND id = ?2`,
	GroupMembers:        `SELECT m.user_id FROM scim_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY m.user_id`,
	InsertGroup:         `INSERT INTO scim_groups (id, issuer, display_name, external_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)`,
	UpdateGroup:         `UPDATE scim_groups SET display_name = ?2, external_id = ?3, updated_at = ?4 WHERE id = ?1`,
	DeleteGroup:         `DELETE FROM scim_groups WHERE id = ?`,
	DeleteMembers:       `DELETE FROM scim_members WHERE group_id = ?`,
	InsertMember:        `INSERT OR IGNORE INTO scim_members (group_id, user_id) VALUES (?, ?)`,
	DeleteMember:        `DELETE FROM scim_members WHERE group_id = ? AND user_id = ?`,
}

// notLocal is the condition, on the row NEW or OLD, under which a user
// or group is counted: the local issuer's accounts are not a directory's.
const notLocal = `.issuer <> '` + userstore.LocalIssuer + `'`

// directoryCountsSchema is migration 7, to schema version 8: how many
// users and groups each issuer has, one row an issuer, so that a
// directory's list reads its total from one row instead of counting the
// issuer's part of an index, which grows with its users. Triggers keep the
// row in the transaction of every write that adds a user or group, removes
// one, or moves a user to another issuer (linking a local account), so
// that no write path, present or future, can forget it. The local issuer
// is never counted. The counts are backfilled in the migration's
// transaction, which holds SQLite's write lock, after the triggers exist.
var directoryCountsSchema = sqlcore.Statements(
	`CREATE TABLE directory_counts (
		issuer      TEXT    NOT NULL PRIMARY KEY COLLATE BINARY,
		user_count  INTEGER NOT NULL DEFAULT 0,
		group_count INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID`,
	`CREATE TRIGGER users_count_insert AFTER INSERT ON users WHEN NEW`+notLocal+` BEGIN
		INSERT INTO directory_counts (issuer, user_count) VALUES (NEW.issuer, 1)
			ON CONFLICT (issuer) DO UPDATE SET user_count = user_count + 1;
	END`,
	`CREATE TRIGGER users_count_delete AFTER DELETE ON users WHEN OLD`+notLocal+` BEGIN
		UPDATE directory_counts SET user_count = user_count - 1 WHERE issuer = OLD.issuer;
	END`,
	`CREATE TRIGGER users_count_move AFTER UPDATE OF issuer ON users WHEN OLD.issuer IS NOT NEW.issuer BEGIN
		UPDATE directory_counts SET user_count = user_count - 1 WHERE issuer = OLD.issuer AND OLD`+notLocal+`;
		INSERT INTO directory_counts (issuer, user_count) SELECT NEW.issuer, 1 WHERE NEW`+notLocal+`
			ON CONFLICT (issuer) DO UPDATE SET user_count = user_count + 1;
	END`,
	`CREATE TRIGGER scim_groups_count_insert AFTER INSERT ON scim_groups WHEN NEW`+notLocal+` BEGIN
		INSERT INTO directory_counts (issuer, group_count) VALUES (NEW.issuer, 1)
			ON CONFLICT (issuer) DO UPDATE SET group_count = group_count + 1;
	END`,
	`CREATE TRIGGER scim_groups_count_delete AFTER DELETE ON scim_groups WHEN OLD`+notLocal+` BEGIN
		UPDATE directory_counts SET group_count = group_count - 1 WHERE issuer = OLD.issuer;
	END`,
	`INSERT INTO directory_counts (issuer, user_count)
		SELECT issuer, COUNT(*) FROM users WHERE issuer <> '`+userstore.LocalIssuer+`' GROUP BY issuer`,
	`INSERT INTO directory_counts (issuer, group_count)
		SELECT issuer, COUNT(*) FROM scim_groups WHERE issuer <> '`+userstore.LocalIssuer+`' GROUP BY issuer
		ON CONFLICT (issuer) DO UPDATE SET group_count = excluded.group_count`,
)

// FindUser returns the user of issuer whose attr equals value, as
// [userstore.Directory.FindUser] describes, through an index.
func (s *Store) FindUser(ctx context.Context, issuer string, attr userstore.UserAttr, value string) (userstore.DirectoryUser, error) {
	return s.core.FindUser(ctx, issuer, attr, value)
}

// ListUsers returns a page of the users of issuer and their number, as
// [userstore.Directory.ListUsers] describes. The page is read through the
// index on (issuer, created_at, id); the number is the issuer's row of
// directory_counts, which triggers keep.
func (s *Store) ListUsers(ctx context.Context, issuer string, offset, limit int) ([]userstore.DirectoryUser, int, error) {
	return s.core.ListUsers(ctx, issuer, offset, limit)
}

// ListUsersAfter returns a page of the users of issuer that follow after,
// as [userstore.DirectoryPager.ListUsersAfter] describes: a range of the
// index on (issuer, created_at, id).
func (s *Store) ListUsersAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.DirectoryUser, error) {
	return s.core.ListUsersAfter(ctx, issuer, after, limit)
}

// ListGroupsAfter returns a page of the groups of issuer that follow
// after, as [userstore.DirectoryPager.ListGroupsAfter] describes.
func (s *Store) ListGroupsAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.Group, error) {
	return s.core.ListGroupsAfter(ctx, issuer, after, limit)
}

// PutUser creates or changes the user with key, as
// [userstore.Directory.PutUser] describes, in one transaction that holds
// SQLite's write lock; decide runs while it holds it.
func (s *Store) PutUser(ctx context.Context, key userstore.Key, now time.Time, decide func(before *userstore.DirectoryUser) (string, userstore.Profile, error)) (userstore.DirectoryPut, error) {
	return s.core.PutUser(ctx, key, now, decide)
}

// FindGroups returns the groups of issuer whose attr equals value, as
// [userstore.GroupDirectory.FindGroups] describes.
func (s *Store) FindGroups(ctx context.Context, issuer string, attr userstore.GroupAttr, value string) ([]userstore.Group, error) {
	return s.core.FindGroups(ctx, issuer, attr, value)
}

// ListGroups returns a page of the groups of issuer and their number, as
// [userstore.GroupDirectory.ListGroups] describes, the number read as
// ListUsers reads it.
func (s *Store) ListGroups(ctx context.Context, issuer string, offset, limit int) ([]userstore.Group, int, error) {
	return s.core.ListGroups(ctx, issuer, offset, limit)
}

// PutGroup creates or changes a group of issuer and writes the members
// whose groups change, as [userstore.GroupDirectory.PutGroup] describes,
// in one transaction that holds SQLite's write lock.
func (s *Store) PutGroup(ctx context.Context, issuer, id string, now time.Time, decide func(before *userstore.Group) (userstore.Group, error), roles userstore.RoleFunc) (userstore.GroupChange, error) {
	return s.core.PutGroup(ctx, issuer, id, now, decide, roles)
}

// DeleteGroup removes a group of issuer and takes it from its members, as
// [userstore.GroupDirectory.DeleteGroup] describes, in one transaction.
func (s *Store) DeleteGroup(ctx context.Context, issuer, id string, now time.Time, roles userstore.RoleFunc) (userstore.GroupChange, error) {
	return s.core.DeleteGroup(ctx, issuer, id, now, roles)
}
