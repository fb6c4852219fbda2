package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// DirectoryInterfaces are the directory interfaces of package userstore
// that a SQL store implements.
type DirectoryInterfaces interface {
	userstore.Directory
	userstore.GroupDirectory
	userstore.DirectoryPager
}

// DirectoryQueries are a dialect's statements for [userstore.Directory]
// and [userstore.GroupDirectory]. "A directory user" is what a statement
// that reads users selects with the key (see [Queries]), then user_name.
// "A group" is id, display_name, external_id and the creation and update
// times. Every statement that takes an issuer is scoped to it.
type DirectoryQueries struct {
	// UserByID, UserBySubject, UserByUserName and UserByEmail read the
	// directory user of (issuer, value) whose id, subject, normalized user
	// name or normalized email is value; each is served by an index.
	UserByID, UserBySubject, UserByUserName, UserByEmail string
	// UsersPage reads the directory users of (issuer, limit, offset),
	// ordered by creation time then ID.
	UsersPage string
	// UsersAfter reads the directory users of (issuer, creation time, id,
	// limit) that follow that creation time and id, in the order of
	// UsersPage, through the same index.
	UsersAfter string
	// CountUsers reads how many users (issuer) has, from a number the
	// store keeps as users are written, not by counting them.
	CountUsers string
	// UserByKeyForWrite reads, in a write transaction, the user columns
	// (without the key) then user_name of the user with (issuer,
	// subject), locking its row as Queries.UserByKeyForWrite does.
	UserByKeyForWrite string
	// InsertUser creates an active user: (id, issuer, subject, profile,
	// user name, normalized user name, now) with now as its creation,
	// update and sign-in time. It may change no row when a unique index
	// already holds its key, email or user name, as Queries.InsertUser.
	InsertUser string
	// UpdateUser writes the profile, user name and update time of the
	// user with the id: (id, profile, user name, normalized user name,
	// now).
	UpdateUser string
	// UpdateUserSameKeys is UpdateUser for a write that leaves the
	// normalized email and user name as they are, so that it changes no
	// indexed column: (id, email, display name, given name, family name,
	// groups, attributes, roles, user name, now). A PATCH of a name or a
	// group list then writes the user's row alone.
	UpdateUserSameKeys string
	// UpdateUserSameKeysByKey, when set, gives UpdateUserSameKeys the
	// user's issuer and subject after now, for it to find the row by
	// them rather than by id: the read before it in the same transaction
	// has just walked the (issuer, subject) index to that row, so the
	// write touches no page the read did not, where the id index's leaf
	// is one more page to read from disk in a large table.
	UpdateUserSameKeysByKey bool
	// SetUserGroups writes the groups, roles (JSON) and update time of the
	// user with the id: (id, groups, roles, now).
	SetUserGroups string

	// GroupByID, GroupsByDisplayName and GroupsByExternalID read the
	// groups of (issuer, value) whose id, display name or external id is
	// value, ordered by creation time then ID.
	GroupByID, GroupsByDisplayName, GroupsByExternalID string
	// GroupsPage reads the groups of (issuer, limit, offset), ordered by
	// creation time then ID.
	GroupsPage string
	// GroupsAfter is UsersAfter for groups.
	GroupsAfter string
	// CountGroups reads how many groups (issuer) has, as CountUsers
	// does.
	CountGroups string
	// GroupByIDForWrite is GroupByID in a write transaction, locking the
	// group's row where the database locks rows.
	GroupByIDForWrite string
	// GroupMembers reads the ids of the members of (group id) that exist,
	// ordered by id.
	GroupMembers string
	// InsertGroup creates a group: (id, issuer, display name, external
	// id, now) with now as its creation and update time.
	InsertGroup string
	// UpdateGroup writes (id, display name, external id, now).
	UpdateGroup string
	// DeleteGroup deletes the group (id) and DeleteMembers its members.
	DeleteGroup, DeleteMembers string
	// InsertMember and DeleteMember add and remove (group id, user id).
	InsertMember, DeleteMember string
}

// directoryIssuer returns the error, in the operation's words, for an
// issuer no directory call accepts, or nil.
func (c *Core) directoryIssuer(issuer, format string, args ...any) error {
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return c.errorf(err, format, args...)
	}
	return nil
}

// scanDirectoryUser reads a directory user (with its key when withKey is
// set) into u.
func (c *Core) scanDirectoryUser(r scanner, u *userstore.DirectoryUser, withKey bool) error {
	var row Row
	dest := c.appendUserDest(make([]any, 0, 16+3*c.timeCols), &u.User, &row, withKey)
	if err := r.Scan(append(dest, &u.UserName)...); err != nil {
		return err
	}
	return Decode(&u.User, &row)
}

// FindUser returns the user of issuer whose attr equals value, as
// [userstore.Directory.FindUser] describes.
func (c *Core) FindUser(ctx context.Context, issuer string, attr userstore.UserAttr, value string) (userstore.DirectoryUser, error) {
	if err := c.directoryIssuer(issuer, "find user by %s", attr); err != nil {
		return userstore.DirectoryUser{}, err
	}
	q := &c.d.Directory
	var query string
	switch attr {
	case userstore.UserByID:
		query = q.UserByID
	case userstore.UserBySubject:
		query = q.UserBySubject
	case userstore.UserByUserName:
		query, value = q.UserByUserName, userstore.NormalizeEmail(value)
	case userstore.UserByEmail:
		query, value = q.UserByEmail, userstore.NormalizeEmail(value)
	default:
		return userstore.DirectoryUser{}, c.errorf(errors.New("unknown attribute"), "find user by %s", attr)
	}
	if value == "" || (c.d.TextRefusesNUL && hasNUL(value)) {
		return userstore.DirectoryUser{}, c.errorf(userstore.ErrNotFound, "find user by %s", attr)
	}
	var u userstore.DirectoryUser
	err := c.scanDirectoryUser(c.db.QueryRowContext(ctx, query, issuer, value), &u, true)
	if errors.Is(err, sql.ErrNoRows) {
		return userstore.DirectoryUser{}, c.errorf(userstore.ErrNotFound, "find user by %s", attr)
	}
	if err != nil {
		return userstore.DirectoryUser{}, c.errorf(err, "find user by %s", attr)
	}
	return u, nil
}

// ListUsers returns a page of the users of issuer and their number, as
// [userstore.Directory.ListUsers] describes.
func (c *Core) ListUsers(ctx context.Context, issuer string, offset, limit int) ([]userstore.DirectoryUser, int, error) {
	if err := c.directoryIssuer(issuer, "list users"); err != nil {
		return nil, 0, err
	}
	var total int
	if err := c.db.QueryRowContext(ctx, c.d.Directory.CountUsers, issuer).Scan(&total); err != nil {
		return nil, 0, c.errorf(err, "count users")
	}
	if limit <= 0 {
		return nil, total, nil
	}
	rows, err := c.db.QueryContext(ctx, c.d.Directory.UsersPage, issuer, limit, max(offset, 0))
	if err != nil {
		return nil, 0, c.errorf(err, "list users")
	}
	defer rows.Close()
	var users []userstore.DirectoryUser
	for rows.Next() {
		var u userstore.DirectoryUser
		if err := c.scanDirectoryUser(rows, &u, true); err != nil {
			return nil, 0, c.errorf(err, "list users")
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, c.errorf(err, "list users")
	}
	return users, total, nil
}

// ListUsersAfter returns a page of the users of issuer that follow after,
// as [userstore.DirectoryPager.ListUsersAfter] describes.
func (c *Core) ListUsersAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.DirectoryUser, error) {
	if err := c.directoryIssuer(issuer, "list users"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	query, args, err := c.afterArgs(c.d.Directory.UsersPage, c.d.Directory.UsersAfter, issuer, after, limit)
	if err != nil {
		return nil, c.errorf(err, "list users")
	}
	rows, err := c.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, c.errorf(err, "list users")
	}
	defer rows.Close()
	var users []userstore.DirectoryUser
	for rows.Next() {
		var u userstore.DirectoryUser
		if err := c.scanDirectoryUser(rows, &u, true); err != nil {
			return nil, c.errorf(err, "list users")
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, c.errorf(err, "list users")
	}
	return users, nil
}

// afterArgs returns the statement and arguments of a page that follows
// after: first, a page at offset 0, for the zero key; else next.
func (c *Core) afterArgs(first, next, issuer string, after userstore.PageKey, limit int) (string, []any, error) {
	if after == (userstore.PageKey{}) {
		return first, []any{issuer, limit, 0}, nil
	}
	t, err := c.d.Time.Stored(after.CreatedAt)
	if err != nil {
		return "", nil, err
	}
	if c.d.TextRefusesNUL && hasNUL(after.ID) {
		return "", nil, errors.New("page key contains a NUL character")
	}
	return next, append(c.appendTime([]any{issuer}, t), after.ID, limit), nil
}

// userNameTaken reports whether err is the dialect's unique user name
// violation.
func (c *Core) userNameTaken(err error) bool {
	return err != nil && c.d.UserNameTaken != nil && c.d.UserNameTaken(err)
}

// writeError names the unique violation err may be.
func (c *Core) writeError(what string, err error) error {
	switch {
	case c.emailTaken(err):
		return fmt.Errorf("%s: %w (%w)", what, userstore.ErrEmailInUse, err)
	case c.userNameTaken(err):
		return fmt.Errorf("%s: %w (%w)", what, userstore.ErrUserNameInUse, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// PutUser creates or changes the user with key, as
// [userstore.Directory.PutUser] describes, in one write transaction that
// reads the user (locking its row where the database locks rows), calls
// decide and writes the user. It may run again, decide with it, as
// [Core.Write] describes.
func (c *Core) PutUser(ctx context.Context, key userstore.Key, now time.Time, decide func(before *userstore.DirectoryUser) (string, userstore.Profile, error)) (userstore.DirectoryPut, error) {
	if err := c.directoryIssuer(key.Issuer, "put user %s", key); err != nil {
		return userstore.DirectoryPut{}, err
	}
	now, err := c.Stamp(key, now)
	if err != nil {
		return userstore.DirectoryPut{}, c.errorf(err, "put user %s", key)
	}
	q := &c.d.Directory
	var res userstore.DirectoryPut
	err = c.Write(ctx, func(tx *Tx) error {
		before := userstore.DirectoryUser{User: userstore.User{Key: key}}
		var b *userstore.DirectoryUser
		err := c.scanDirectoryUser(tx.QueryRowContext(ctx, q.UserByKeyForWrite, key.Issuer, key.Subject), &before, false)
		switch {
		case err == nil:
			b = &before
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read user: %w", err)
		}
		name, p, err := decide(b)
		if err != nil {
			return &decideError{err}
		}
		if c.d.TextRefusesNUL && hasNUL(name) {
			return errors.New("user name contains a NUL character")
		}
		e, err := c.Encode(p)
		if err != nil {
			return err
		}
		norm := userstore.NormalizeEmail(name)
		if b != nil {
			stmt, args := q.UpdateUser, e.appendArgs(append(make([]any, 0, 16), before.ID))
			args = c.appendTime(append(args, name, norm), now)
			if e.emailNorm == userstore.NormalizeEmail(before.Profile.Email) && norm == userstore.NormalizeEmail(before.UserName) && q.UpdateUserSameKeys != "" {
				p := &e.profile
				stmt, args = q.UpdateUserSameKeys, append(make([]any, 0, 16), before.ID, p.Email, p.DisplayName, p.GivenName, p.FamilyName, e.groups, e.attrs, e.roles, name)
				args = c.appendTime(args, now)
				if q.UpdateUserSameKeysByKey {
					args = append(args, key.Issuer, key.Subject)
				}
			}
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				return c.writeError("update user", err)
			}
			u := cloneUser(before.User)
			u.Profile = p.Clone()
			u.UpdatedAt = now
			res = userstore.DirectoryPut{User: userstore.DirectoryUser{User: u, UserName: name}, Before: b}
			return nil
		}
		id, err := userstore.NewID()
		if err != nil {
			return err
		}
		args := e.appendArgs(append(make([]any, 0, 16), id, key.Issuer, key.Subject))
		args = c.appendTime(append(args, name, norm), now)
		r, err := tx.ExecContext(ctx, q.InsertUser, args...)
		if err != nil {
			return c.writeError("insert user", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("insert user: %w", err)
		} else if n == 0 {
			return c.insertConflict(ctx, tx, key, norm)
		}
		u := Written(userstore.User{ID: id, Status: userstore.Active, CreatedAt: now}, key, p, now)
		res = userstore.DirectoryPut{User: userstore.DirectoryUser{User: u, UserName: name}}
		return nil
	})
	if err != nil {
		var de *decideError
		if errors.As(err, &de) {
			err = de.err
		}
		return userstore.DirectoryPut{}, c.errorf(err, "put user %s", key)
	}
	return res, nil
}

// scanGroup reads a group's columns into g.
func (c *Core) scanGroup(r scanner, g *userstore.Group) error {
	dest := append(make([]any, 0, 3+2*c.timeCols), &g.ID, &g.DisplayName, &g.ExternalID)
	dest = c.d.Time.AppendDest(dest, &g.CreatedAt)
	return r.Scan(c.d.Time.AppendDest(dest, &g.UpdatedAt)...)
}

// groups runs query, which reads groups of issuer, on q, and returns them
// with their members.
func (c *Core) groups(ctx context.Context, q Querier, issuer, query string, args ...any) ([]userstore.Group, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []userstore.Group
	for rows.Next() {
		g := userstore.Group{Issuer: issuer}
		if err := c.scanGroup(rows, &g); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, g)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Members, err = c.members(ctx, q, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// members returns the ids of the existing members of the group with id,
// sorted, never nil.
func (c *Core) members(ctx context.Context, q Querier, id string) ([]string, error) {
	rows, err := q.QueryContext(ctx, c.d.Directory.GroupMembers, id)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("read members: %w", err)
		}
		ids = append(ids, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	return ids, nil
}

// FindGroups returns the groups of issuer whose attr equals value, as
// [userstore.GroupDirectory.FindGroups] describes.
func (c *Core) FindGroups(ctx context.Context, issuer string, attr userstore.GroupAttr, value string) ([]userstore.Group, error) {
	if err := c.directoryIssuer(issuer, "find groups by %s", attr); err != nil {
		return nil, err
	}
	var query string
	switch attr {
	case userstore.GroupByID:
		query = c.d.Directory.GroupByID
	case userstore.GroupByDisplayName:
		query = c.d.Directory.GroupsByDisplayName
	case userstore.GroupByExternalID:
		query = c.d.Directory.GroupsByExternalID
	default:
		return nil, c.errorf(errors.New("unknown attribute"), "find groups by %s", attr)
	}
	if c.d.TextRefusesNUL && hasNUL(value) {
		return nil, nil
	}
	out, err := c.groups(ctx, c.db, issuer, query, issuer, value)
	if err != nil {
		return nil, c.errorf(err, "find groups by %s", attr)
	}
	return out, nil
}

// ListGroups returns a page of the groups of issuer and their number, as
// [userstore.GroupDirectory.ListGroups] describes.
func (c *Core) ListGroups(ctx context.Context, issuer string, offset, limit int) ([]userstore.Group, int, error) {
	if err := c.directoryIssuer(issuer, "list groups"); err != nil {
		return nil, 0, err
	}
	var total int
	if err := c.db.QueryRowContext(ctx, c.d.Directory.CountGroups, issuer).Scan(&total); err != nil {
		return nil, 0, c.errorf(err, "count groups")
	}
	if limit <= 0 {
		return nil, total, nil
	}
	out, err := c.groups(ctx, c.db, issuer, c.d.Directory.GroupsPage, issuer, limit, max(offset, 0))
	if err != nil {
		return nil, 0, c.errorf(err, "list groups")
	}
	return out, total, nil
}

// ListGroupsAfter returns a page of the groups of issuer that follow
// after, as [userstore.DirectoryPager.ListGroupsAfter] describes.
func (c *Core) ListGroupsAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.Group, error) {
	if err := c.directoryIssuer(issuer, "list groups"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	query, args, err := c.afterArgs(c.d.Directory.GroupsPage, c.d.Directory.GroupsAfter, issuer, after, limit)
	if err != nil {
		return nil, c.errorf(err, "list groups")
	}
	out, err := c.groups(ctx, c.db, issuer, query, args...)
	if err != nil {
		return nil, c.errorf(err, "list groups")
	}
	return out, nil
}

// PutGroup creates or changes a group of issuer, as
// [userstore.GroupDirectory.PutGroup] describes, in one write transaction
// that reads the group (locking its row where the database locks rows),
// calls decide, reads and locks the users whose membership changes in
// order of ID, and writes the group, its members and those users.
func (c *Core) PutGroup(ctx context.Context, issuer, id string, now time.Time, decide func(before *userstore.Group) (userstore.Group, error), roles userstore.RoleFunc) (userstore.GroupChange, error) {
	if err := c.directoryIssuer(issuer, "put group %q", id); err != nil {
		return userstore.GroupChange{}, err
	}
	now, err := c.d.Time.Stored(now)
	if err != nil {
		return userstore.GroupChange{}, c.errorf(err, "put group %q", id)
	}
	q := &c.d.Directory
	var res userstore.GroupChange
	err = c.Write(ctx, func(tx *Tx) error {
		var before *userstore.Group
		if id != "" {
			found, err := c.groups(ctx, tx, issuer, q.GroupByIDForWrite, issuer, id)
			if err != nil {
				return fmt.Errorf("read group: %w", err)
			}
			if len(found) == 0 {
				return userstore.ErrNotFound
			}
			before = &found[0]
		}
		want, err := decide(before)
		if err != nil {
			return &decideError{err}
		}
		if c.d.TextRefusesNUL && (hasNUL(want.DisplayName) || hasNUL(want.ExternalID)) {
			return errors.New("group contains a NUL character")
		}
		members := append([]string{}, want.Members...)
		slices.Sort(members)
		after := userstore.Group{ID: id, Issuer: issuer, DisplayName: want.DisplayName, ExternalID: want.ExternalID,
			Members: slices.Compact(members), CreatedAt: now, UpdatedAt: now}
		if before == nil {
			if after.ID, err = userstore.NewID(); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q.InsertGroup, c.appendTime(append(make([]any, 0, 6), after.ID, issuer, after.DisplayName, after.ExternalID), now)...); err != nil {
				return fmt.Errorf("insert group: %w", err)
			}
		} else {
			after.CreatedAt = before.CreatedAt
			if _, err := tx.ExecContext(ctx, q.UpdateGroup, c.appendTime(append(make([]any, 0, 5), id, after.DisplayName, after.ExternalID), now)...); err != nil {
				return fmt.Errorf("update group: %w", err)
			}
		}
		users, err := c.regroup(ctx, tx, issuer, before, &after, now, roles)
		if err != nil {
			return err
		}
		res = userstore.GroupChange{Group: after, Before: before, Users: users}
		return nil
	})
	if err != nil {
		var de *decideError
		if errors.As(err, &de) {
			err = de.err
		}
		return userstore.GroupChange{}, c.errorf(err, "put group %q of %q", id, issuer)
	}
	return res, nil
}

// DeleteGroup removes a group of issuer, as
// [userstore.GroupDirectory.DeleteGroup] describes, in one write
// transaction.
func (c *Core) DeleteGroup(ctx context.Context, issuer, id string, now time.Time, roles userstore.RoleFunc) (userstore.GroupChange, error) {
	if err := c.directoryIssuer(issuer, "delete group %q", id); err != nil {
		return userstore.GroupChange{}, err
	}
	now, err := c.d.Time.Stored(now)
	if err != nil {
		return userstore.GroupChange{}, c.errorf(err, "delete group %q", id)
	}
	q := &c.d.Directory
	var res userstore.GroupChange
	err = c.Write(ctx, func(tx *Tx) error {
		found, err := c.groups(ctx, tx, issuer, q.GroupByIDForWrite, issuer, id)
		if err != nil {
			return fmt.Errorf("read group: %w", err)
		}
		if len(found) == 0 {
			return userstore.ErrNotFound
		}
		users, err := c.regroup(ctx, tx, issuer, &found[0], nil, now, roles)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q.DeleteMembers, id); err != nil {
			return fmt.Errorf("delete members: %w", err)
		}
		if _, err := tx.ExecContext(ctx, q.DeleteGroup, id); err != nil {
			return fmt.Errorf("delete group: %w", err)
		}
		res = userstore.GroupChange{Before: &found[0], Users: users}
		return nil
	})
	if err != nil {
		return userstore.GroupChange{}, c.errorf(err, "delete group %q of %q", id, issuer)
	}
	return res, nil
}

// regroup writes, in tx, the membership rows of a group going from before
// (nil: created) to after (nil: deleted; its rows are left to the caller),
// and the groups and roles of the users whose membership changes, read and
// locked in order of ID. It refuses a new member that is not a user of
// issuer with [userstore.ErrNotMember].
func (c *Core) regroup(ctx context.Context, tx *Tx, issuer string, before, after *userstore.Group, now time.Time, roles userstore.RoleFunc) ([]userstore.Provisioned, error) {
	q := &c.d.Directory
	var oldName, newName, gid string
	var oldMembers, newMembers []string
	if before != nil {
		oldName, oldMembers, gid = before.Name(), before.Members, before.ID
	}
	if after != nil {
		newName, newMembers, gid = after.Name(), after.Members, after.ID
	}
	ids := slices.Concat(oldMembers, newMembers)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []userstore.Provisioned
	for _, uid := range ids {
		wasIn, isIn := slices.Contains(oldMembers, uid), slices.Contains(newMembers, uid)
		if wasIn && isIn && oldName == newName {
			continue
		}
		var u userstore.User
		err := c.scanUser(tx.QueryRowContext(ctx, c.d.Queries.UserByIDForWrite, uid), &u, true)
		switch {
		case (errors.Is(err, sql.ErrNoRows) || (err == nil && u.Key.Issuer != issuer)) && isIn:
			return nil, fmt.Errorf("%w: user %q", userstore.ErrNotMember, uid)
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return nil, fmt.Errorf("read member: %w", err)
		case u.Key.Issuer != issuer:
			continue
		}
		if after != nil && isIn != wasIn {
			stmt := q.InsertMember
			if wasIn {
				stmt = q.DeleteMember
			}
			if _, err := tx.ExecContext(ctx, stmt, gid, uid); err != nil {
				return nil, fmt.Errorf("write member: %w", err)
			}
		}
		leave, join := "", ""
		if wasIn {
			leave = oldName
		}
		if isIn {
			join = newName
		}
		p := u.Profile.Clone()
		p.Groups = userstore.Regroup(p.Groups, leave, join)
		if roles != nil {
			p.Roles = roles(slices.Clone(p.Groups))
		}
		e, err := c.Encode(p)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, q.SetUserGroups, c.appendTime(append(make([]any, 0, 5), uid, e.groups, e.roles), now)...); err != nil {
			return nil, fmt.Errorf("write member's groups: %w", err)
		}
		changed := cloneUser(u)
		changed.Profile = p
		changed.UpdatedAt = now
		out = append(out, userstore.Provisioned{User: changed, Before: &u})
	}
	return out, nil
}
