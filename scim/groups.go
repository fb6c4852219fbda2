package scim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/samljit/samljit/userstore"
)

// groupRes is a group as SCIM writes it.
type groupRes struct {
	displayName, externalID string
	members                 []string
}

// fromGroup returns g as a groupRes.
func fromGroup(g userstore.Group) *groupRes {
	return &groupRes{displayName: g.DisplayName, externalID: g.ExternalID, members: slices.Clone(g.Members)}
}

// group returns r as the Group a store writes.
func (r *groupRes) group() userstore.Group {
	return userstore.Group{DisplayName: r.displayName, ExternalID: r.externalID, Members: r.members}
}

// groupJSON returns g as a SCIM Group resource.
func (h *Handler) groupJSON(g userstore.Group) map[string]any {
	members := make([]any, 0, len(g.Members))
	for _, id := range g.Members {
		members = append(members, map[string]any{"value": id, "$ref": h.location("Users", id)})
	}
	out := map[string]any{
		"schemas":     []string{schemaGroup},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"members":     members,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      g.CreatedAt.UTC().Format(time.RFC3339Nano),
			"lastModified": g.UpdatedAt.UTC().Format(time.RFC3339Nano),
			"location":     h.location("Groups", g.ID),
			"version":      groupVersion(g),
		},
	}
	if g.ExternalID != "" {
		out["externalId"] = g.ExternalID
	}
	return out
}

// serveGroups serves /Groups and /Groups/{id}.
func (h *Handler) serveGroups(w http.ResponseWriter, r *http.Request, id string) error {
	switch {
	case id == "" && r.Method == http.MethodGet:
		return h.listGroups(w, r)
	case id == "" && r.Method == http.MethodPost:
		return h.putGroup(w, r, "", nil)
	case id == "":
		return methodNotAllowed(r)
	}
	switch r.Method {
	case http.MethodGet:
		g, err := h.getGroup(r.Context(), id)
		if err != nil {
			return err
		}
		return h.writeGroup(w, r, http.StatusOK, g)
	case http.MethodPut:
		return h.putGroup(w, r, id, nil)
	case http.MethodPatch:
		m, err := h.readBody(w, r)
		if err != nil {
			return err
		}
		ops, err := parsePatch(m)
		if err != nil {
			return err
		}
		return h.putGroup(w, r, id, ops)
	case http.MethodDelete:
		if r.Header.Get("If-Match") != "" {
			g, err := h.getGroup(r.Context(), id)
			if err != nil {
				return err
			}
			if err := ifMatch(r, groupVersion(g)); err != nil {
				return err
			}
		}
		change, err := h.store.DeleteGroup(r.Context(), h.issuer, id, h.now(), h.roles)
		if errors.Is(err, userstore.ErrNotFound) {
			return notFound("no group %q", truncate(id, 64))
		}
		if err != nil {
			return err
		}
		h.emitGroup(r.Context(), EventGroupDeleted, id, change)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed(r)
}

// getGroup returns the connection's group with id.
func (h *Handler) getGroup(ctx context.Context, id string) (userstore.Group, error) {
	found, err := h.store.FindGroups(ctx, h.issuer, userstore.GroupByID, id)
	if err != nil {
		return userstore.Group{}, err
	}
	if len(found) == 0 {
		return userstore.Group{}, notFound("no group %q", truncate(id, 64))
	}
	return found[0], nil
}

// writeGroup writes g, projected as the request asks.
func (h *Handler) writeGroup(w http.ResponseWriter, r *http.Request, status int, g userstore.Group) error {
	proj, err := readProjection(r)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", h.location("Groups", g.ID))
	}
	w.Header().Set("ETag", groupVersion(g))
	writeJSON(w, status, proj.apply(h.groupJSON(g)))
	return nil
}

// listGroups serves GET /Groups.
func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request) error {
	return serveResources(w, r, h.groupResources(), nil, h.groupJSON,
		func(ctx context.Context, offset, limit int) ([]userstore.Group, int, error) {
			return h.store.ListGroups(ctx, h.issuer, offset, limit)
		})
}

// putGroup serves POST /Groups (id ""), PUT /Groups/{id} (ops nil) and
// PATCH /Groups/{id}.
func (h *Handler) putGroup(w http.ResponseWriter, r *http.Request, id string, ops []patchOp) error {
	var res *groupRes
	if ops == nil {
		m, err := h.readBody(w, r)
		if err != nil {
			return err
		}
		res = &groupRes{}
		if err := res.setAll("replace", m); err != nil {
			return err
		}
		if strings.TrimSpace(res.displayName) == "" {
			return badRequest(scimInvalidValue, "displayName is required")
		}
	}
	change, err := h.store.PutGroup(r.Context(), h.issuer, id, h.now(), func(before *userstore.Group) (userstore.Group, error) {
		if before != nil {
			if err := ifMatch(r, groupVersion(*before)); err != nil {
				return userstore.Group{}, err
			}
		}
		if ops == nil {
			return res.group(), nil
		}
		g := fromGroup(*before)
		for i, op := range ops {
			if err := g.apply(op); err != nil {
				var se *Error
				if errors.As(err, &se) {
					se.Detail = "operation " + itoa(i+1) + ": " + se.Detail
				}
				return userstore.Group{}, err
			}
		}
		if strings.TrimSpace(g.displayName) == "" {
			return userstore.Group{}, badRequest(scimInvalidValue, "displayName is required")
		}
		return g.group(), nil
	}, h.roles)
	if errors.Is(err, userstore.ErrNotFound) {
		return notFound("no group %q", truncate(id, 64))
	}
	if err != nil {
		return err
	}
	kind, status := EventGroupUpdated, http.StatusOK
	if id == "" {
		kind, status = EventGroupCreated, http.StatusCreated
	}
	h.emitGroup(r.Context(), kind, change.Group.ID, change)
	if ops != nil {
		proj, err := readProjection(r)
		if err != nil {
			return err
		}
		if patchAnswersNoContent(proj, len(change.Group.Members)) {
			w.Header().Set("ETag", groupVersion(change.Group))
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	return h.writeGroup(w, r, status, change.Group)
}

// patchAnswersNoContent reports whether a PATCH of a group with members
// members, asked for with proj, answers 204 No Content rather than with
// the group. RFC 7644 §3.5.2 lets a PATCH answer either way, and both
// clients expect 204 for a group:
//
//   - Microsoft's "Tutorial: Develop and plan provisioning for a SCIM
//     endpoint in Microsoft Entra ID" answers each of Entra's group PATCHes
//     (Update Group [Non-member attributes], [Add Members], [Remove
//     Members]) with "HTTP/1.1 204 No Content", and says that "it isn't
//     necessary to include the entire resource in the PATCH response";
//     its user PATCHes are answered 200 OK with the user, as users.go does.
//   - Okta's "SCIM 2.0 protocol reference" (Update a specific Group name,
//     Update specific Group membership) notes that "the SCIM server
//     response to PATCH method requests can also be an HTTP 204 response,
//     with no body returned".
//
// So a group PATCH sends no body, which spares writing a large group's
// members back for each one added, unless the request names attributes
// or excludedAttributes: a client that asks for a projection gets it
// (200), except that members past MaxResponseMembers are never listed.
func patchAnswersNoContent(proj projection, members int) bool {
	if len(proj.include) == 0 && len(proj.exclude) == 0 {
		return true
	}
	return members > MaxResponseMembers && !proj.omits("members")
}

// emitGroup emits the group's event, then one for each member it changed.
func (h *Handler) emitGroup(ctx context.Context, kind EventKind, id string, change userstore.GroupChange) {
	h.emit(ctx, Event{Kind: kind, GroupID: id})
	for _, u := range change.Users {
		h.emit(ctx, Event{Kind: EventUserUpdated, GroupID: id, Key: u.User.Key, UserID: u.User.ID,
			Changed: diff(u.Before.Profile, u.User.Profile), Before: &u.Before.Profile, After: &u.User.Profile})
	}
}

// setAll applies the attributes of a Group resource, or of a PATCH value
// without a path.
func (r *groupRes) setAll(op string, m map[string]any) error {
	for k, v := range m {
		name := k
		if ap, err := filter.ParseAttrPath([]byte(k)); err == nil && (ap.URI() == "" || strings.EqualFold(ap.URI(), schemaGroup)) {
			name = ap.AttributeName
		}
		if err := r.set(op, name, v, nil); err != nil {
			return err
		}
	}
	return nil
}

// set applies op with value v to the group attribute name; sel, for
// members, selects the members a path's filter names.
func (r *groupRes) set(op, name string, v any, sel filter.Expression) error {
	switch strings.ToLower(name) {
	case "displayname":
		if op == "remove" {
			return badRequest(scimMutability, "displayName is required")
		}
		s, err := stringValue(name, v)
		if err != nil {
			return err
		}
		r.displayName = s
	case "externalid":
		s := ""
		if op != "remove" {
			var err error
			if s, err = stringValue(name, v); err != nil {
				return err
			}
		}
		r.externalID = s
	case "members":
		ids, err := memberIDs(v)
		if err != nil {
			return err
		}
		switch op {
		case "replace":
			r.members = ids
		case "add":
			r.members = append(r.members, ids...)
		case "remove":
			switch {
			case sel != nil:
				r.members = slices.DeleteFunc(r.members, func(id string) bool { return selects(sel, id) })
			case v == nil:
				r.members = nil
			default:
				r.members = slices.DeleteFunc(r.members, func(id string) bool { return slices.Contains(ids, id) })
			}
		}
	}
	return nil
}

// apply applies one PATCH operation.
func (r *groupRes) apply(op patchOp) error {
	if op.path == nil {
		if op.op == "remove" {
			return badRequest(scimNoTarget, "remove needs a path")
		}
		m, ok := op.value.(map[string]any)
		if !ok {
			return badRequest(scimInvalidValue, "an operation without a path needs an object value")
		}
		return r.setAll(op.op, m)
	}
	ap := op.path.AttributePath
	if ap.URI() != "" && !strings.EqualFold(ap.URI(), schemaGroup) {
		return nil
	}
	if op.path.ValueExpression != nil && !strings.EqualFold(ap.AttributeName, "members") {
		return badRequest(scimInvalidPath, "%s is not multi-valued", ap.AttributeName)
	}
	if op.path.ValueExpression != nil && op.op != "remove" {
		return badRequest(scimInvalidPath, "a member filter serves remove only")
	}
	return r.set(op.op, ap.AttributeName, op.value, op.path.ValueExpression)
}

// selects reports whether the member filter e (members[value eq "…"],
// with and, or and not) selects the member id.
func selects(e filter.Expression, id string) bool {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		return strings.EqualFold(e.AttributePath.AttributeName, "value") && compare(e, true, id)
	case *filter.LogicalExpression:
		if strings.EqualFold(string(e.Operator), "and") {
			return selects(e.Left, id) && selects(e.Right, id)
		}
		return selects(e.Left, id) || selects(e.Right, id)
	case *filter.NotExpression:
		return !selects(e.Expression, id)
	}
	return false
}

// memberIDs returns the member ids of a members value: a list of
// {"value": id} objects (or one), or nil.
func memberIDs(v any) ([]string, error) {
	var list []any
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		list = v
	case map[string]any:
		list = []any{v}
	default:
		return nil, errValue("members", "want a list of {\"value\": id}")
	}
	ids := make([]string, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, errValue("members", "want a list of {\"value\": id}")
		}
		s, err := stringValue("members", m["value"])
		if err != nil || s == "" {
			return nil, errValue("members", "each member needs a value")
		}
		ids = append(ids, s)
	}
	return ids, nil
}

// groupVersion is the weak ETag of g: its update time.
func groupVersion(g userstore.Group) string { return fmt.Sprintf(`W/"%x"`, g.UpdatedAt.UnixNano()) }
