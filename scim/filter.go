package scim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/samljit/samljit/userstore"
)

// Bounds of a filter: its length before parsing, and its number of
// comparisons (each indexed one is a lookup).
const (
	maxFilterLen   = 1024
	maxFilterTerms = 8
)

// errNotIndexed means a filter (or a branch of it) has no indexed equality
// to narrow by.
var errNotIndexed = errors.New("no indexed equality")

// parseFilter parses and bounds a filter.
func parseFilter(s string) (filter.Expression, error) {
	if len(s) > maxFilterLen {
		return nil, badRequest(scimInvalidFilter, "filter longer than %d bytes", maxFilterLen)
	}
	e, err := filter.ParseFilter([]byte(s))
	if err != nil {
		return nil, &Error{Status: 400, Type: scimInvalidFilter, Detail: "filter does not parse", Err: err}
	}
	if n := terms(e); n > maxFilterTerms {
		return nil, badRequest(scimInvalidFilter, "filter has %d comparisons, at most %d are served", n, maxFilterTerms)
	}
	return e, nil
}

// terms counts the comparisons of e.
func terms(e filter.Expression) int {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		return 1
	case *filter.LogicalExpression:
		return terms(e.Left) + terms(e.Right)
	case *filter.NotExpression:
		return terms(e.Expression)
	case *filter.ValuePath:
		return 1 + terms(e.ValueFilter)
	}
	return 1
}

// resources are what a filter selects: users or groups.
type resources[T any] struct {
	// find returns the resources whose attribute (of attr) equals value
	// through an index, or errNotIndexed when attr has none.
	find func(ctx context.Context, attr filter.AttributePath, value string) ([]T, error)
	// match reports whether t satisfies the comparison e.
	match func(e *filter.AttributeExpression, t T) bool
	// id and created order and deduplicate.
	id    func(T) string
	order func(a, b T) int
	// key is where the page after t starts, for cursor paging.
	key func(T) userstore.PageKey
	// after reads the page that follows a key (RFC 9865's cursor
	// paging), or is nil when the store is no userstore.DirectoryPager.
	after func(ctx context.Context, key userstore.PageKey, limit int) ([]T, error)
}

// selectBy returns the resources e selects, ordered by creation then ID:
// the candidates of its indexed equalities, checked against all of e.
func selectBy[T any](ctx context.Context, r resources[T], e filter.Expression) ([]T, error) {
	cands, err := candidates(ctx, r, e)
	if errors.Is(err, errNotIndexed) {
		return nil, badRequest(scimInvalidFilter, "a filter must narrow by an equality on an indexed attribute (%s)", err)
	}
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(cands, func(t T) bool { return !eval(r, e, t) })
	slices.SortFunc(out, r.order)
	return slices.CompactFunc(out, func(a, b T) bool { return r.id(a) == r.id(b) }), nil
}

// candidates returns a superset of what e selects, from indexed lookups.
func candidates[T any](ctx context.Context, r resources[T], e filter.Expression) ([]T, error) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ {
			return nil, fmt.Errorf("%w: %s is not eq", errNotIndexed, e.Operator)
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s compares with a non-string", errNotIndexed, e.AttributePath)
		}
		return r.find(ctx, e.AttributePath, v)
	case *filter.LogicalExpression:
		left, lerr := candidates(ctx, r, e.Left)
		if strings.EqualFold(string(e.Operator), "and") {
			if lerr == nil {
				return left, nil
			}
			if !errors.Is(lerr, errNotIndexed) {
				return nil, lerr
			}
			return candidates(ctx, r, e.Right)
		}
		if lerr != nil {
			return nil, lerr
		}
		right, err := candidates(ctx, r, e.Right)
		if err != nil {
			return nil, err
		}
		return append(left, right...), nil
	}
	return nil, fmt.Errorf("%w: %s", errNotIndexed, e)
}

// eval reports whether t satisfies e.
func eval[T any](r resources[T], e filter.Expression, t T) bool {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		return r.match(e, t)
	case *filter.LogicalExpression:
		if strings.EqualFold(string(e.Operator), "and") {
			return eval(r, e.Left, t) && eval(r, e.Right, t)
		}
		return eval(r, e.Left, t) || eval(r, e.Right, t)
	case *filter.NotExpression:
		return !eval(r, e.Expression, t)
	}
	return false
}

// compare reports whether the attribute values got satisfy e; caseExact
// says whether strings compare exactly.
func compare(e *filter.AttributeExpression, caseExact bool, got ...string) bool {
	if e.Operator == filter.PR {
		return slices.ContainsFunc(got, func(s string) bool { return s != "" })
	}
	want, ok := e.CompareValue.(string)
	if !ok {
		return false
	}
	norm := func(s string) string { return s }
	if !caseExact {
		norm = userstore.NormalizeEmail
	}
	w := norm(want)
	for _, g := range got {
		g = norm(g)
		var m bool
		switch e.Operator {
		case filter.EQ:
			m = g == w
		case filter.NE:
			m = g != w
		case filter.CO:
			m = strings.Contains(g, w)
		case filter.SW:
			m = strings.HasPrefix(g, w)
		case filter.EW:
			m = strings.HasSuffix(g, w)
		case filter.GT:
			m = g > w
		case filter.GE:
			m = g >= w
		case filter.LT:
			m = g < w
		case filter.LE:
			m = g <= w
		}
		if m {
			return true
		}
	}
	return false
}

// userResources are the users of h's connection, as a filter sees them.
func (h *Handler) userResources() resources[userstore.DirectoryUser] {
	return resources[userstore.DirectoryUser]{
		find: func(ctx context.Context, ap filter.AttributePath, v string) ([]userstore.DirectoryUser, error) {
			var attr userstore.UserAttr
			switch t, _ := resolve(ap.URI(), ap.AttributeName, ap.SubAttributeName()); t {
			case tID:
				attr = userstore.UserByID
			case tUserName:
				attr = userstore.UserByUserName
			case tEmails:
				attr = userstore.UserByEmail
			case tExternalID:
				sub, err := h.subject(v)
				if err != nil {
					// No user can have it.
					return nil, nil
				}
				attr, v = userstore.UserBySubject, sub
			default:
				return nil, fmt.Errorf("%w: %s", errNotIndexed, ap)
			}
			u, err := h.store.FindUser(ctx, h.issuer, attr, v)
			if errors.Is(err, userstore.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return []userstore.DirectoryUser{u}, nil
		},
		match: func(e *filter.AttributeExpression, u userstore.DirectoryUser) bool {
			ap := e.AttributePath
			ext, _ := h.externalID(u.Key.Subject)
			r := fromUser(u, ext)
			switch t, key := resolve(ap.URI(), ap.AttributeName, ap.SubAttributeName()); t {
			case tID:
				return compare(e, true, u.ID)
			case tUserName:
				return compare(e, false, r.userName)
			case tExternalID:
				return compare(e, true, r.externalID)
			case tEmails:
				return compare(e, false, r.email)
			case tDisplayName:
				return compare(e, false, r.displayName)
			case tGivenName:
				return compare(e, false, r.givenName)
			case tFamilyName:
				return compare(e, false, r.familyName)
			case tSimple:
				return compare(e, false, r.attrs[key])
			case tManager:
				return compare(e, true, r.attrs[managerKey])
			case tActive:
				b, ok := e.CompareValue.(bool)
				return ok && e.Operator == filter.EQ && b == *r.active || ok && e.Operator == filter.NE && b != *r.active
			}
			return false
		},
		id: func(u userstore.DirectoryUser) string { return u.ID },
		order: func(a, b userstore.DirectoryUser) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		},
		key: userstore.UserPageKey,
		after: pager(h, func(p userstore.DirectoryPager, ctx context.Context, k userstore.PageKey, limit int) ([]userstore.DirectoryUser, error) {
			return p.ListUsersAfter(ctx, h.issuer, k, limit)
		}),
	}
}

// groupResources are the groups of h's connection, as a filter sees them.
func (h *Handler) groupResources() resources[userstore.Group] {
	attrOf := func(ap filter.AttributePath) (userstore.GroupAttr, bool) {
		if ap.URI() != "" && !strings.EqualFold(ap.URI(), schemaGroup) || ap.SubAttributeName() != "" {
			return 0, false
		}
		switch strings.ToLower(ap.AttributeName) {
		case "id":
			return userstore.GroupByID, true
		case "displayname":
			return userstore.GroupByDisplayName, true
		case "externalid":
			return userstore.GroupByExternalID, true
		}
		return 0, false
	}
	return resources[userstore.Group]{
		find: func(ctx context.Context, ap filter.AttributePath, v string) ([]userstore.Group, error) {
			attr, ok := attrOf(ap)
			if !ok {
				return nil, fmt.Errorf("%w: %s", errNotIndexed, ap)
			}
			return h.store.FindGroups(ctx, h.issuer, attr, v)
		},
		match: func(e *filter.AttributeExpression, g userstore.Group) bool {
			attr, ok := attrOf(e.AttributePath)
			if !ok {
				if strings.EqualFold(e.AttributePath.AttributeName, "members") {
					return compare(e, true, g.Members...)
				}
				return false
			}
			switch attr {
			case userstore.GroupByID:
				return compare(e, true, g.ID)
			case userstore.GroupByDisplayName:
				return compare(e, true, g.DisplayName)
			default:
				return compare(e, true, g.ExternalID)
			}
		},
		id: func(g userstore.Group) string { return g.ID },
		order: func(a, b userstore.Group) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		},
		key: userstore.GroupPageKey,
		after: pager(h, func(p userstore.DirectoryPager, ctx context.Context, k userstore.PageKey, limit int) ([]userstore.Group, error) {
			return p.ListGroupsAfter(ctx, h.issuer, k, limit)
		}),
	}
}
