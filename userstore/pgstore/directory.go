package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// Interface check: userstore.Directory and GroupDirectory.
var _ sqlcore.DirectoryInterfaces = (*Store)(nil)

const (
	// selectDirectoryUsers reads directory users; a clause follows.
	selectDirectoryUsers = `SELECT issuer, subject, ` + userColumns + `, user_name FROM samljit_users`

	// groupColumns are the columns of a group sqlcore reads.
	groupColumns = `id, display_name, external_id, created_at, created_ns, updated_at, updated_ns`

	// selectGroups reads groups; a clause follows.
	selectGroups = `SELECT ` + groupColumns + ` FROM samljit_groups`

	// userNameIndex is the unique index on (issuer, user_name_norm).
	userNameIndex = "samljit_users_issuer_user_name"
)

// directoryQueries are the store's statements for userstore.Directory and
// GroupDirectory, taking the arguments [sqlcore.DirectoryQueries] lists; a
// time is two arguments. The finds by user name and email repeat the
// conditions of the partial unique indexes, so that PostgreSQL uses them.
// A read for a write locks the row it reads (FOR UPDATE).
var directoryQueries = sqlcore.DirectoryQueries{
	UserByID:       selectDirectoryUsers + ` WHERE issuer = $1 AND id = $2`,
	UserBySubject:  selectDirectoryUsers + ` WHERE issuer = $1 AND subject = $2`,
	UserByUserName: selectDirectoryUsers + ` WHERE issuer = $1 AND user_name_norm = $2 AND user_name_norm <> ''`,
	UserByEmail: selectDirectoryUsers + ` WHERE issuer = $1 AND email_norm = $2 AND email_norm <> ''
		AND issuer <> '` + userstore.LocalIssuer + `'`,
	UsersPage: selectDirectoryUsers + ` WHERE issuer = $1 ORDER BY created_at, created_ns, id LIMIT $2 OFFSET $3`,
	UsersAfter: selectDirectoryUsers + ` WHERE issuer = $1 AND (created_at, created_ns, id) > ($2::timestamptz, $3::smallint, $4)
		ORDER BY created_at, created_ns, id LIMIT $5`,
	CountUsers:        `SELECT COALESCE(SUM(user_count), 0)::bigint FROM samljit_directory_counts WHERE issuer = $1`,
	UserByKeyForWrite: `SELECT ` + userColumns + `, user_name FROM samljit_users WHERE issuer = $1 AND subject = $2 FOR UPDATE`,
	// Does nothing on a conflict with any unique index: a concurrent
	// call that created the user first may meet any of them first, and
	// PutUser then tells which (sqlcore's insertConflict).
	InsertUser: `INSERT INTO samljit_users (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, user_name, user_name_norm, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12, $13, 0,
			$14::timestamptz, $15::smallint, $14::timestamptz, $15::smallint, $14::timestamptz, $15::smallint)
		ON CONFLICT DO NOTHING`,
	UpdateUser: `UPDATE samljit_users SET ` + setProfile + `user_name = $10, user_name_norm = $11,
			updated_at = $12::timestamptz, updated_ns = $13::smallint
		WHERE id = $1`,
	UpdateUserSameKeys: `UPDATE samljit_users SET email = $2, display_name = $3, given_name = $4, family_name = $5,
			groups = $6::jsonb, attributes = $7::jsonb, roles = $8::jsonb, user_name = $9,
			updated_at = $10::timestamptz, updated_ns = $11::smallint
		WHERE id = $1`,
	SetUserGroups: `UPDATE samljit_users SET groups = $2::jsonb, roles = $3::jsonb, updated_at = $4::timestamptz, updated_ns = $5::smallint WHERE id = $1`,

	GroupByID:           selectGroups + ` WHERE issuer = $1 AND id = $2`,
	GroupsByDisplayName: selectGroups + ` WHERE issuer = $1 AND display_name = $2 ORDER BY created_at, created_ns, id`,
	GroupsByExternalID:  selectGroups + ` WHERE issuer = $1 AND external_id = $2 ORDER BY created_at, created_ns, id`,
	GroupsPage:          selectGroups + ` WHERE issuer = $1 ORDER BY created_at, created_ns, id LIMIT $2 OFFSET $3`,
	GroupsAfter: selectGroups + ` WHERE issuer = $1 AND (created_at, created_ns, id) > ($2::timestamptz, $3::smallint, $4)
		ORDER BY created_at, created_ns, id LIMIT $5`,
	CountGroups:       `SELECT COALESCE(SUM(group_count), 0)::bigint FROM samljit_directory_counts WHERE issuer = $1`,
	GroupByIDForWrite: selectGroups + ` WHERE issuer = $1 AND id = $2 FOR UPDATE`,
	GroupMembers: `SELECT m.user_id FROM samljit_group_members m JOIN samljit_users u ON u.id = m.user_id
		WHERE m.group_id = $1 ORDER BY m.user_id`,
	InsertGroup: `INSERT INTO samljit_groups (id, issuer, display_name, external_id, created_at, created_ns, updated_at, updated_ns)
		VALUES ($1, $2, $3, $4, $5::timestamptz, $6::smallint, $5::timestamptz, $6::smallint)`,
	UpdateGroup:   `UPDATE samljit_groups SET display_name = $2, external_id = $3, updated_at = $4::timestamptz, updated_ns = $5::smallint WHERE id = $1`,
	DeleteGroup:   `DELETE FROM samljit_groups WHERE id = $1`,
	DeleteMembers: `DELETE FROM samljit_group_members WHERE group_id = $1`,
	InsertMember:  `INSERT INTO samljit_group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
	DeleteMember:  `DELETE FROM samljit_group_members WHERE group_id = $1 AND user_id = $2`,
}

// countSlots is how many rows of samljit_directory_counts an issuer's
// numbers are spread over. A write takes the lock of the one row its
// connection's slot names until it commits, so that sign-ins creating
// users of one issuer at once, each on its own connection, seldom wait
// for one another; reading a number sums at most countSlots rows.
const countSlots = 16

// notLocal is the condition under which a row of the transition table
// changed counts: the local issuer's accounts are not a directory's.
const notLocal = `issuer <> '` + userstore.LocalIssuer + `'`

// directoryCountsSchema is migration 7, to schema version 8: how many
// users and groups each issuer has, so that a directory's list reads its
// total from at most countSlots rows instead of counting the issuer's part
// of an index, which grows with its users. Triggers keep the rows in the
// transaction of every write that adds a user or group, removes one, or
// moves a user to another issuer (linking a local account), so that no
// write path, present or future, can forget them. The local issuer is
// never counted.
//
// The triggers that count insertions and deletions run once a statement,
// over its transition table, one upsert per issuer: a row trigger would
// update an issuer's row once per user, and a statement that inserts many
// users in one transaction (an import) would leave a chain of row versions
// that each later update walks, quadratic in the users inserted. Moving a
// user is rare and counted by a row trigger (PostgreSQL allows no
// transition table on an UPDATE OF trigger).
//
// The triggers are created before the counts are backfilled: creating
// them locks both tables against writes until the migration commits, and
// a write that committed before that is seen by the backfill's statements,
// so that every user is counted once, even while instances of the previous
// version keep writing.
var directoryCountsSchema = sqlcore.Statements(
	`CREATE TABLE samljit_directory_counts (
		issuer      text COLLATE "C" NOT NULL,
		slot        smallint NOT NULL,
		user_count  bigint NOT NULL DEFAULT 0,
		group_count bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (issuer, slot)
	)`,
	`CREATE FUNCTION samljit_directory_count() RETURNS trigger LANGUAGE plpgsql AS $fn$
	DECLARE
		is_user bigint := CASE TG_TABLE_NAME WHEN 'samljit_users' THEN 1 ELSE 0 END;
		sign bigint := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
	BEGIN
		INSERT INTO samljit_directory_counts AS c (issuer, slot, user_count, group_count)
			SELECT issuer, pg_backend_pid() % `+fmt.Sprint(countSlots)+`, sign * is_user * count(*), sign * (1 - is_user) * count(*)
			FROM changed WHERE `+notLocal+` GROUP BY issuer ORDER BY issuer
			ON CONFLICT (issuer, slot) DO UPDATE
			SET user_count = c.user_count + EXCLUDED.user_count, group_count = c.group_count + EXCLUDED.group_count;
		RETURN NULL;
	END
	$fn$`,
	`CREATE FUNCTION samljit_directory_move() RETURNS trigger LANGUAGE plpgsql AS $fn$
	BEGIN
		INSERT INTO samljit_directory_counts AS c (issuer, slot, user_count)
			SELECT m.issuer, pg_backend_pid() % `+fmt.Sprint(countSlots)+`, m.n
			FROM (VALUES (OLD.issuer, -1), (NEW.issuer, 1)) AS m (issuer, n) WHERE m.`+notLocal+` ORDER BY m.issuer
			ON CONFLICT (issuer, slot) DO UPDATE SET user_count = c.user_count + EXCLUDED.user_count;
		RETURN NULL;
	END
	$fn$`,
	`CREATE TRIGGER samljit_users_count_insert AFTER INSERT ON samljit_users
		REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_count()`,
	`CREATE TRIGGER samljit_users_count_delete AFTER DELETE ON samljit_users
		REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_count()`,
	`CREATE TRIGGER samljit_users_count_move AFTER UPDATE OF issuer ON samljit_users
		FOR EACH ROW WHEN (OLD.issuer IS DISTINCT FROM NEW.issuer) EXECUTE FUNCTION samljit_directory_move()`,
	`CREATE TRIGGER samljit_groups_count_insert AFTER INSERT ON samljit_groups
		REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_count()`,
	`CREATE TRIGGER samljit_groups_count_delete AFTER DELETE ON samljit_groups
		REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_count()`,
	// A TRUNCATE, which fires no DELETE trigger, leaves no one to count.
	`CREATE FUNCTION samljit_directory_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
	BEGIN
		IF TG_TABLE_NAME = 'samljit_users' THEN
			UPDATE samljit_directory_counts SET user_count = 0 WHERE user_count <> 0;
		ELSE
			UPDATE samljit_directory_counts SET group_count = 0 WHERE group_count <> 0;
		END IF;
		RETURN NULL;
	END
	$fn$`,
	`CREATE TRIGGER samljit_users_count_truncate AFTER TRUNCATE ON samljit_users
		FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_truncate()`,
	`CREATE TRIGGER samljit_groups_count_truncate AFTER TRUNCATE ON samljit_groups
		FOR EACH STATEMENT EXECUTE FUNCTION samljit_directory_truncate()`,
	`INSERT INTO samljit_directory_counts (issuer, slot, user_count)
		SELECT issuer, 0, COUNT(*) FROM samljit_users WHERE `+notLocal+` GROUP BY issuer`,
	`INSERT INTO samljit_directory_counts AS c (issuer, slot, group_count)
		SELECT issuer, 0, COUNT(*) FROM samljit_groups WHERE `+notLocal+` GROUP BY issuer
		ON CONFLICT (issuer, slot) DO UPDATE SET group_count = EXCLUDED.group_count`,
)

// FindUser returns the user of issuer whose attr equals value, as
// [userstore.Directory.FindUser] describes, through an index.
func (s *Store) FindUser(ctx context.Context, issuer string, attr userstore.UserAttr, value string) (userstore.DirectoryUser, error) {
	return s.core.FindUser(ctx, issuer, attr, value)
}

// ListUsers returns a page of the users of issuer and their number, as
// [userstore.Directory.ListUsers] describes. The page is read through the
// index on (issuer, created_at, created_ns, id); the number is the sum of
// the issuer's rows of samljit_directory_counts, which triggers keep.
func (s *Store) ListUsers(ctx context.Context, issuer string, offset, limit int) ([]userstore.DirectoryUser, int, error) {
	return s.core.ListUsers(ctx, issuer, offset, limit)
}

// ListUsersAfter returns a page of the users of issuer that follow after,
// as [userstore.DirectoryPager.ListUsersAfter] describes: a range of the
// index on (issuer, created_at, created_ns, id).
func (s *Store) ListUsersAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.DirectoryUser, error) {
	return s.core.ListUsersAfter(ctx, issuer, after, limit)
}

// ListGroupsAfter returns a page of the groups of issuer that follow
// after, as [userstore.DirectoryPager.ListGroupsAfter] describes.
func (s *Store) ListGroupsAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.Group, error) {
	return s.core.ListGroupsAfter(ctx, issuer, after, limit)
}

// PutUser creates or changes the user with key, as
// [userstore.Directory.PutUser] describes, in one transaction that locks
// the user's row (or, creating it, retries when a concurrent call created
// it first); decide may run more than once.
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
// in one transaction that locks the group's row and then its
// changing members' rows, in order of ID.
func (s *Store) PutGroup(ctx context.Context, issuer, id string, now time.Time, decide func(before *userstore.Group) (userstore.Group, error), roles userstore.RoleFunc) (userstore.GroupChange, error) {
	return s.core.PutGroup(ctx, issuer, id, now, decide, roles)
}

// DeleteGroup removes a group of issuer and takes it from its members, as
// [userstore.GroupDirectory.DeleteGroup] describes, in one transaction.
func (s *Store) DeleteGroup(ctx context.Context, issuer, id string, now time.Time, roles userstore.RoleFunc) (userstore.GroupChange, error) {
	return s.core.DeleteGroup(ctx, issuer, id, now, roles)
}
