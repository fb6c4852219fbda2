package memstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Interface checks.
var (
	_ userstore.Directory      = (*Store)(nil)
	_ userstore.GroupDirectory = (*Store)(nil)
	_ userstore.DirectoryPager = (*Store)(nil)
)

// FindUser returns the user of issuer whose attr equals value, as
// [userstore.Directory.FindUser] describes. It examines every user.
func (s *Store) FindUser(ctx context.Context, issuer string, attr userstore.UserAttr, value string) (userstore.DirectoryUser, error) {
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return userstore.DirectoryUser{}, fmt.Errorf("memstore: find user by %s: %w", attr, err)
	}
	if err := ctx.Err(); err != nil {
		return userstore.DirectoryUser{}, fmt.Errorf("memstore: find user by %s: %w", attr, err)
	}
	norm := userstore.NormalizeEmail(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, u := range s.users {
		if k.Issuer != issuer {
			continue
		}
		var match bool
		switch attr {
		case userstore.UserByID:
			match = u.ID == value
		case userstore.UserBySubject:
			match = k.Subject == value
		case userstore.UserByUserName:
			match = norm != "" && userstore.NormalizeEmail(s.userNames[u.ID]) == norm
		case userstore.UserByEmail:
			match = norm != "" && userstore.NormalizeEmail(u.Profile.Email) == norm
		default:
			return userstore.DirectoryUser{}, fmt.Errorf("memstore: find user by %s: unknown attribute", attr)
		}
		if match {
			return s.directoryUserLocked(u), nil
		}
	}
	return userstore.DirectoryUser{}, fmt.Errorf("memstore: find user by %s: %w", attr, userstore.ErrNotFound)
}

// directoryUserLocked returns a copy of *u with its user name. s.mu must be
// held.
func (s *Store) directoryUserLocked(u *userstore.User) userstore.DirectoryUser {
	return userstore.DirectoryUser{User: cloneUser(u), UserName: s.userNames[u.ID]}
}

// ListUsers returns a page of the users of issuer, as
// [userstore.Directory.ListUsers] describes.
func (s *Store) ListUsers(ctx context.Context, issuer string, offset, limit int) ([]userstore.DirectoryUser, int, error) {
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return nil, 0, fmt.Errorf("memstore: list users: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("memstore: list users: %w", err)
	}
	s.mu.Lock()
	var all []userstore.DirectoryUser
	for k, u := range s.users {
		if k.Issuer == issuer {
			all = append(all, s.directoryUserLocked(u))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b userstore.DirectoryUser) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return page(all, offset, limit), len(all), nil
}

// page returns the part of all that skips offset elements and holds at most
// limit.
func page[T any](all []T, offset, limit int) []T {
	offset = max(offset, 0)
	if limit <= 0 || offset >= len(all) {
		return nil
	}
	return all[offset:min(len(all), offset+limit)]
}

// PutUser creates or changes the user with key as
// [userstore.Directory.PutUser] describes, under the store's lock; decide
// runs with the lock held.
func (s *Store) PutUser(ctx context.Context, key userstore.Key, now time.Time, decide func(before *userstore.DirectoryUser) (string, userstore.Profile, error)) (userstore.DirectoryPut, error) {
	fail := func(err error) (userstore.DirectoryPut, error) {
		return userstore.DirectoryPut{}, fmt.Errorf("memstore: put user %s: %w", key, err)
	}
	if err := key.Validate(); err != nil {
		return fail(err)
	}
	if err := userstore.CheckDirectoryIssuer(key.Issuer); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	now = now.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	var before *userstore.DirectoryUser
	u, found := s.users[key]
	if found {
		b := s.directoryUserLocked(u)
		before = &b
	}
	name, p, err := decide(before)
	if err != nil {
		return fail(err)
	}
	p = p.Clone()
	if err := s.emailFreeLocked(key, p.Email, ""); err != nil {
		return fail(err)
	}
	if norm := userstore.NormalizeEmail(name); norm != "" {
		for id, n := range s.userNames {
			if (!found || id != u.ID) && userstore.NormalizeEmail(n) == norm && s.userOfIssuerLocked(id, key.Issuer) {
				return fail(fmt.Errorf("%w: user %s has it", userstore.ErrUserNameInUse, id))
			}
		}
	}
	if !found {
		id, err := userstore.NewID()
		if err != nil {
			return fail(err)
		}
		u = &userstore.User{ID: id, Key: key, Status: userstore.Active, CreatedAt: now, LastSignInAt: now}
		s.users[key] = u
	}
	u.Profile = p
	u.UpdatedAt = now
	if name == "" {
		delete(s.userNames, u.ID)
	} else {
		s.userNames[u.ID] = name
	}
	return userstore.DirectoryPut{User: s.directoryUserLocked(u), Before: before}, nil
}

// userOfIssuerLocked reports whether a user with the ID exists and belongs
// to issuer. s.mu must be held.
func (s *Store) userOfIssuerLocked(id, issuer string) bool {
	u := s.userByIDLocked(id)
	return u != nil && u.Key.Issuer == issuer
}

// userByIDLocked returns the user with the ID, or nil. s.mu must be held.
func (s *Store) userByIDLocked(id string) *userstore.User {
	for _, u := range s.users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

// groupLocked returns a copy of the group with the ID, its members limited
// to users that still exist. s.mu must be held.
func (s *Store) groupLocked(g *userstore.Group) userstore.Group {
	c := g.Clone()
	c.Members = slices.DeleteFunc(c.Members, func(id string) bool { return !s.userOfIssuerLocked(id, g.Issuer) })
	if c.Members == nil {
		c.Members = []string{}
	}
	return c
}

// FindGroups returns the groups of issuer whose attr equals value, as
// [userstore.GroupDirectory.FindGroups] describes.
func (s *Store) FindGroups(ctx context.Context, issuer string, attr userstore.GroupAttr, value string) ([]userstore.Group, error) {
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return nil, fmt.Errorf("memstore: find groups by %s: %w", attr, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: find groups by %s: %w", attr, err)
	}
	s.mu.Lock()
	var out []userstore.Group
	for _, g := range s.groups {
		if g.Issuer != issuer {
			continue
		}
		var v string
		switch attr {
		case userstore.GroupByID:
			v = g.ID
		case userstore.GroupByDisplayName:
			v = g.DisplayName
		case userstore.GroupByExternalID:
			v = g.ExternalID
		default:
			s.mu.Unlock()
			return nil, fmt.Errorf("memstore: find groups by %s: unknown attribute", attr)
		}
		if v == value {
			out = append(out, s.groupLocked(g))
		}
	}
	s.mu.Unlock()
	sortGroups(out)
	return out, nil
}

// sortGroups sorts groups by creation time then ID.
func sortGroups(groups []userstore.Group) {
	slices.SortFunc(groups, func(a, b userstore.Group) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// ListGroups returns a page of the groups of issuer, as
// [userstore.GroupDirectory.ListGroups] describes.
func (s *Store) ListGroups(ctx context.Context, issuer string, offset, limit int) ([]userstore.Group, int, error) {
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return nil, 0, fmt.Errorf("memstore: list groups: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("memstore: list groups: %w", err)
	}
	s.mu.Lock()
	var all []userstore.Group
	for _, g := range s.groups {
		if g.Issuer == issuer {
			all = append(all, s.groupLocked(g))
		}
	}
	s.mu.Unlock()
	sortGroups(all)
	return page(all, offset, limit), len(all), nil
}

// PutGroup creates or changes a group of issuer, as
// [userstore.GroupDirectory.PutGroup] describes, under the store's lock.
func (s *Store) PutGroup(ctx context.Context, issuer, id string, now time.Time, decide func(before *userstore.Group) (userstore.Group, error), roles userstore.RoleFunc) (userstore.GroupChange, error) {
	fail := func(err error) (userstore.GroupChange, error) {
		return userstore.GroupChange{}, fmt.Errorf("memstore: put group %q of %q: %w", id, issuer, err)
	}
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	now = now.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	var before *userstore.Group
	if id != "" {
		g, ok := s.groups[id]
		if !ok || g.Issuer != issuer {
			return fail(userstore.ErrNotFound)
		}
		b := s.groupLocked(g)
		before = &b
	}
	want, err := decide(before)
	if err != nil {
		return fail(err)
	}
	members := append([]string{}, want.Members...)
	slices.Sort(members)
	members = slices.Compact(members)
	for _, m := range members {
		if !s.userOfIssuerLocked(m, issuer) {
			return fail(fmt.Errorf("%w: user %q", userstore.ErrNotMember, m))
		}
	}
	after := userstore.Group{ID: id, Issuer: issuer, DisplayName: want.DisplayName, ExternalID: want.ExternalID, Members: members, UpdatedAt: now}
	if before == nil {
		if after.ID, err = userstore.NewID(); err != nil {
			return fail(err)
		}
		after.CreatedAt = now
	} else {
		after.CreatedAt = before.CreatedAt
	}
	users := s.regroupLocked(before, &after, now, roles)
	s.groups[after.ID] = &after
	return userstore.GroupChange{Group: after.Clone(), Before: before, Users: users}, nil
}

// DeleteGroup removes a group of issuer, as
// [userstore.GroupDirectory.DeleteGroup] describes, under the store's lock.
func (s *Store) DeleteGroup(ctx context.Context, issuer, id string, now time.Time, roles userstore.RoleFunc) (userstore.GroupChange, error) {
	fail := func(err error) (userstore.GroupChange, error) {
		return userstore.GroupChange{}, fmt.Errorf("memstore: delete group %q of %q: %w", id, issuer, err)
	}
	if err := userstore.CheckDirectoryIssuer(issuer); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	now = now.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok || g.Issuer != issuer {
		return fail(userstore.ErrNotFound)
	}
	before := s.groupLocked(g)
	users := s.regroupLocked(&before, nil, now, roles)
	delete(s.groups, id)
	return userstore.GroupChange{Before: &before, Users: users}, nil
}

// regroupLocked writes the Profile.Groups and Roles of the users whose
// membership changes from before (nil: none) to after (nil: deleted), and
// returns them ordered by ID. s.mu must be held.
func (s *Store) regroupLocked(before, after *userstore.Group, now time.Time, roles userstore.RoleFunc) []userstore.Provisioned {
	var oldName, newName string
	var oldMembers, newMembers []string
	if before != nil {
		oldName, oldMembers = before.Name(), before.Members
	}
	if after != nil {
		newName, newMembers = after.Name(), after.Members
	}
	ids := slices.Concat(oldMembers, newMembers)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []userstore.Provisioned
	for _, id := range ids {
		u := s.userByIDLocked(id)
		if u == nil {
			continue
		}
		wasIn, isIn := slices.Contains(oldMembers, id), slices.Contains(newMembers, id)
		if wasIn && isIn && oldName == newName {
			continue
		}
		leave, join := "", ""
		if wasIn {
			leave = oldName
		}
		if isIn {
			join = newName
		}
		before := cloneUser(u)
		u.Profile.Groups = userstore.Regroup(u.Profile.Groups, leave, join)
		if roles != nil {
			u.Profile.Roles = roles(slices.Clone(u.Profile.Groups))
		}
		u.UpdatedAt = now
		out = append(out, userstore.Provisioned{User: cloneUser(u), Before: &before})
	}
	return out
}

// ListUsersAfter returns a page of the users of issuer that follow after,
// as [userstore.DirectoryPager.ListUsersAfter] describes. It examines
// every user.
func (s *Store) ListUsersAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.DirectoryUser, error) {
	all, _, err := s.ListUsers(ctx, issuer, 0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	return pageAfter(all, after, limit, func(u userstore.DirectoryUser) (time.Time, string) { return u.CreatedAt, u.ID }), nil
}

// pageAfter returns up to limit of all, in order, that follow after by
// the creation time and ID key gives them.
func pageAfter[T any](all []T, after userstore.PageKey, limit int, key func(T) (time.Time, string)) []T {
	i := slices.IndexFunc(all, func(t T) bool { return after.After(key(t)) })
	if i < 0 {
		return nil
	}
	return page(all[i:], 0, limit)
}

// ListGroupsAfter returns a page of the groups of issuer that follow
// after, as [userstore.DirectoryPager.ListGroupsAfter] describes.
func (s *Store) ListGroupsAfter(ctx context.Context, issuer string, after userstore.PageKey, limit int) ([]userstore.Group, error) {
	all, _, err := s.ListGroups(ctx, issuer, 0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	return pageAfter(all, after, limit, func(g userstore.Group) (time.Time, string) { return g.CreatedAt, g.ID }), nil
}
