package scim

import (
	"context"
	"errors"
	"net/http"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/samljit/samljit/userstore"
)

// detachedKey marks, in Profile.Attributes, a user a DELETE suspended and
// detached: SCIM answers 404 for it (RFC 7644 §3.6) while the record stays
// for audit, and a later POST of the same externalId adopts it again.
const detachedKey = "urn:samljit:scim:deleted"

// errExists refuses a POST whose externalId names a user a directory
// already named.
var errExists = errors.New("a user with this externalId exists")

// detached reports whether u was deleted through SCIM.
func detached(u userstore.DirectoryUser) bool { return len(u.Profile.Attributes[detachedKey]) > 0 }

// serveUsers serves /Users and /Users/{id}.
func (h *Handler) serveUsers(w http.ResponseWriter, r *http.Request, id string) error {
	switch {
	case id == "" && r.Method == http.MethodGet:
		return h.listUsers(w, r)
	case id == "" && r.Method == http.MethodPost:
		return h.createUser(w, r)
	case id == "":
		return methodNotAllowed(r)
	}
	switch r.Method {
	case http.MethodGet:
		u, err := h.getUser(r.Context(), id)
		if err != nil {
			return err
		}
		return h.writeUser(w, r, http.StatusOK, u)
	case http.MethodPut:
		return h.replaceUser(w, r, id)
	case http.MethodPatch:
		return h.patchUser(w, r, id)
	case http.MethodDelete:
		return h.deleteUser(w, r, id)
	}
	return methodNotAllowed(r)
}

// getUser returns the connection's user with id.
func (h *Handler) getUser(ctx context.Context, id string) (userstore.DirectoryUser, error) {
	u, err := h.store.FindUser(ctx, h.issuer, userstore.UserByID, id)
	if errors.Is(err, userstore.ErrNotFound) || err == nil && detached(u) {
		return userstore.DirectoryUser{}, notFound("no user %q", truncate(id, 64))
	}
	return u, err
}

// writeUser writes u, projected as the request asks.
func (h *Handler) writeUser(w http.ResponseWriter, r *http.Request, status int, u userstore.DirectoryUser) error {
	proj, err := readProjection(r)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", userVersion(u))
	if status == http.StatusCreated {
		w.Header().Set("Location", h.location("Users", u.ID))
	}
	writeJSON(w, status, proj.apply(h.userJSON(u)))
	return nil
}

// listUsers serves GET /Users.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	return serveResources(w, r, h.userResources(), deleteDetached, h.userJSON,
		func(ctx context.Context, offset, limit int) ([]userstore.DirectoryUser, int, error) {
			return h.store.ListUsers(ctx, h.issuer, offset, limit)
		})
}

// serveResources serves a GET of a resource type: with a filter, the resources
// it selects (kept by keep, when not nil), a page of them; without, the
// page list reads; with a cursor parameter, a page by key (serveCursor).
// Each is written as toJSON gives it, projected as the request's
// attributes or excludedAttributes say.
func serveResources[T any](w http.ResponseWriter, r *http.Request, res resources[T], keep func([]T) []T, toJSON func(T) map[string]any,
	list func(ctx context.Context, offset, limit int) ([]T, int, error)) error {
	p, err := readPage(r)
	if err != nil {
		return err
	}
	proj, err := readProjection(r)
	if err != nil {
		return err
	}
	var items []T
	var total int
	cursor := r.URL.Query().Has("cursor")
	if f := r.URL.Query().Get("filter"); f != "" {
		e, err := parseFilter(f)
		if err != nil {
			return err
		}
		all, err := selectBy(r.Context(), res, e)
		if err != nil {
			return err
		}
		if keep != nil {
			all = keep(all)
		}
		if cursor {
			return serveCursor(w, r, res, p, proj, all, true, toJSON, list)
		}
		total, items = len(all), pageOf(all, p)
	} else if cursor {
		return serveCursor(w, r, res, p, proj, nil, false, toJSON, list)
	} else if items, total, err = list(r.Context(), p.start-1, p.count); err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, proj.apply(toJSON(it)))
	}
	listResponse(w, total, p, out)
	return nil
}

// deleteDetached drops the users a DELETE detached.
func deleteDetached(users []userstore.DirectoryUser) []userstore.DirectoryUser {
	out := users[:0]
	for _, u := range users {
		if !detached(u) {
			out = append(out, u)
		}
	}
	return out
}

// pageOf returns the page p of all.
func pageOf[T any](all []T, p page) []T {
	from := min(p.start-1, len(all))
	return all[from:min(len(all), from+p.count)]
}

// readUser decodes a User resource of a POST or PUT.
func (h *Handler) readUser(w http.ResponseWriter, r *http.Request) (*userRes, error) {
	m, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	res := &userRes{attrs: map[string]string{}}
	if err := res.setAll("replace", m); err != nil {
		return nil, err
	}
	if !res.userNameSet {
		return nil, badRequest(scimInvalidValue, "userName is required")
	}
	return res, nil
}

// createUser serves POST /Users: it creates the user, or adopts the user
// a sign-in created with the same externalId.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	res, err := h.readUser(w, r)
	if err != nil {
		return err
	}
	sub, err := h.subject(res.externalID)
	if err != nil {
		return err
	}
	key := userstore.Key{Issuer: h.issuer, Subject: sub}
	put, err := h.store.PutUser(ctx, key, h.now(), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		if before == nil {
			p := res.profile(nil)
			if h.roles != nil {
				// A person created ahead of their first sign-in holds
				// the roles the connection's mapping gives no groups
				// (its default roles), as that sign-in would.
				p.Roles = h.roles(nil)
			}
			return res.userName, p, nil
		}
		if before.UserName != "" && !detached(*before) {
			return "", userstore.Profile{}, errExists
		}
		p := res.profile(&before.Profile)
		delete(p.Attributes, detachedKey)
		return res.userName, p, nil
	})
	if errors.Is(err, errExists) {
		return conflict(err, "a user with this externalId exists")
	}
	if err != nil {
		return err
	}
	kind := EventUserCreated
	e := Event{Kind: kind, Key: key, UserID: put.User.ID, After: &put.User.Profile, Changed: []string{"user_name"}}
	if put.Before != nil {
		e.Kind, e.Before = EventUserAdopted, &put.Before.Profile
		e.Changed = append(diff(put.Before.Profile, put.User.Profile), "user_name")
	}
	h.emit(ctx, e)
	u, err := h.applyActive(ctx, put.User, res)
	if err != nil {
		return err
	}
	return h.writeUser(w, r, http.StatusCreated, u)
}

// replaceUser serves PUT /Users/{id}.
func (h *Handler) replaceUser(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	cur, err := h.getUser(ctx, id)
	if err != nil {
		return err
	}
	res, err := h.readUser(w, r)
	if err != nil {
		return err
	}
	ext, _ := h.externalID(cur.Key.Subject)
	if res.externalIDSet && res.externalID != ext {
		return badRequest(scimMutability, "externalId cannot change: it is the user's key, shared with their sign-ins")
	}
	return h.writeThrough(w, r, cur.Key, func(before *userstore.DirectoryUser) (*userRes, error) { return res, nil })
}

// patchUser serves PATCH /Users/{id}.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	cur, err := h.getUser(ctx, id)
	if err != nil {
		return err
	}
	m, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	ops, err := parsePatch(m)
	if err != nil {
		return err
	}
	return h.writeThrough(w, r, cur.Key, func(before *userstore.DirectoryUser) (*userRes, error) {
		ext, _ := h.externalID(before.Key.Subject)
		res := fromUser(*before, ext)
		for i, op := range ops {
			if err := applyUserOp(res, op); err != nil {
				var se *Error
				if errors.As(err, &se) {
					se.Detail = "operation " + itoa(i+1) + ": " + se.Detail
				}
				return nil, err
			}
		}
		if res.externalIDSet && res.externalID != ext {
			return nil, badRequest(scimMutability, "externalId cannot change: it is the user's key, shared with their sign-ins")
		}
		return res, nil
	})
}

// writeThrough writes the user with key as change makes it from the
// stored one, emits the event, applies active, and writes the response.
func (h *Handler) writeThrough(w http.ResponseWriter, r *http.Request, key userstore.Key, change func(before *userstore.DirectoryUser) (*userRes, error)) error {
	ctx := r.Context()
	var res *userRes
	put, err := h.store.PutUser(ctx, key, h.now(), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		if before == nil || detached(*before) {
			return "", userstore.Profile{}, notFound("no such user")
		}
		if err := ifMatch(r, userVersion(*before)); err != nil {
			return "", userstore.Profile{}, err
		}
		var err error
		if res, err = change(before); err != nil {
			return "", userstore.Profile{}, err
		}
		return res.userName, res.profile(&before.Profile), nil
	})
	if err != nil {
		return err
	}
	changed := diff(put.Before.Profile, put.User.Profile)
	if put.Before.UserName != put.User.UserName {
		changed = append(changed, "user_name")
	}
	if len(changed) > 0 {
		h.emit(ctx, Event{Kind: EventUserUpdated, Key: key, UserID: put.User.ID, Changed: changed, Before: &put.Before.Profile, After: &put.User.Profile})
	}
	u, err := h.applyActive(ctx, put.User, res)
	if err != nil {
		return err
	}
	return h.writeUser(w, r, http.StatusOK, u)
}

// applyActive suspends or reinstates u as res.active asks, when res set
// it, and returns u as it then is.
func (h *Handler) applyActive(ctx context.Context, u userstore.DirectoryUser, res *userRes) (userstore.DirectoryUser, error) {
	if !res.activeSet || res.active == nil {
		return u, nil
	}
	switch {
	case *res.active && u.Status == userstore.Suspended:
		if err := h.store.Unsuspend(ctx, u.Key); err != nil {
			return u, err
		}
		u.Status = userstore.Active
		h.emit(ctx, Event{Kind: EventUserReactivated, Key: u.Key, UserID: u.ID})
	case !*res.active && u.Status == userstore.Active:
		if err := h.store.Suspend(ctx, u.Key); err != nil {
			return u, err
		}
		u.Status = userstore.Suspended
		h.emit(ctx, Event{Kind: EventUserSuspended, Key: u.Key, UserID: u.ID})
	}
	return u, nil
}

// deleteUser serves DELETE /Users/{id}: it suspends and detaches the
// user, or removes the record, as Options.OnDelete says.
func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request, id string) error {
	ctx := r.Context()
	cur, err := h.getUser(ctx, id)
	if err != nil {
		return err
	}
	if err := ifMatch(r, userVersion(cur)); err != nil {
		return err
	}
	if h.onDelete == DeleteRemoves {
		if err := h.store.Delete(ctx, cur.Key); err != nil {
			return err
		}
		h.emit(ctx, Event{Kind: EventUserDeleted, Key: cur.Key, UserID: cur.ID, Before: &cur.Profile})
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	// Suspend first: should the detaching write fail, the person is
	// already out.
	if err := h.store.Suspend(ctx, cur.Key); err != nil {
		return err
	}
	stamp := h.now().UTC().Format("2006-01-02T15:04:05Z")
	_, err = h.store.PutUser(ctx, cur.Key, h.now(), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
		if before == nil {
			return "", userstore.Profile{}, notFound("no such user")
		}
		p := before.Profile.Clone()
		if p.Attributes == nil {
			p.Attributes = map[string][]string{}
		}
		p.Attributes[detachedKey] = []string{stamp}
		return "", p, nil
	})
	if err != nil {
		return err
	}
	h.emit(ctx, Event{Kind: EventUserSuspended, Key: cur.Key, UserID: cur.ID, Changed: []string{"user_name", "attributes/" + detachedKey}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// applyUserOp applies one PATCH operation to res.
func applyUserOp(res *userRes, op patchOp) error {
	if op.path == nil {
		if op.op == "remove" {
			return badRequest(scimNoTarget, "remove needs a path")
		}
		m, ok := op.value.(map[string]any)
		if !ok {
			return badRequest(scimInvalidValue, "an operation without a path needs an object value")
		}
		return res.setAll(op.op, m)
	}
	p := op.path
	ap := p.AttributePath
	if p.ValueExpression != nil {
		t, _ := resolve(ap.URI(), ap.AttributeName, "")
		switch t {
		case tEmails:
			return res.set(op.op, ap.URI(), ap.AttributeName, p.SubAttributeName(), op.value)
		case tIgnored:
			return nil
		}
		return badRequest(scimInvalidPath, "%s is not multi-valued", ap.AttributeName)
	}
	return res.set(op.op, ap.URI(), ap.AttributeName, ap.SubAttributeName(), op.value)
}

// patchOp is one decoded PATCH operation.
type patchOp struct {
	op    string // add, replace or remove
	path  *filter.Path
	value any
}

// maxPatchOps bounds the operations of one PATCH; maxPathLen a path.
const (
	maxPatchOps = 256
	maxPathLen  = 512
)

// parsePatch decodes a PatchOp request (RFC 7644 §3.5.2). Operation names
// compare without case (Entra ID sends "Replace", "Add").
func parsePatch(m map[string]any) ([]patchOp, error) {
	if !hasSchema(m, schemaPatch) {
		return nil, badRequest(scimInvalidSyntax, "schemas must be [%q]", schemaPatch)
	}
	var raw []any
	for k, v := range m {
		if strings.EqualFold(k, "Operations") {
			list, ok := v.([]any)
			if !ok {
				return nil, badRequest(scimInvalidSyntax, "Operations must be an array")
			}
			raw = list
		}
	}
	if len(raw) == 0 {
		return nil, badRequest(scimInvalidSyntax, "Operations is empty")
	}
	if len(raw) > maxPatchOps {
		return nil, badRequest(scimInvalidSyntax, "more than %d operations", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(raw))
	for i, item := range raw {
		o, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest(scimInvalidSyntax, "operation %d is not an object", i+1)
		}
		var op patchOp
		var path string
		for k, v := range o {
			switch strings.ToLower(k) {
			case "op":
				s, _ := v.(string)
				op.op = strings.ToLower(s)
			case "path":
				path, _ = v.(string)
			case "value":
				op.value = v
			}
		}
		switch op.op {
		case "add", "replace", "remove":
		default:
			return nil, badRequest(scimInvalidSyntax, "operation %d: op must be add, replace or remove", i+1)
		}
		if path != "" {
			if len(path) > maxPathLen {
				return nil, badRequest(scimInvalidPath, "operation %d: path longer than %d bytes", i+1, maxPathLen)
			}
			p, err := filter.ParsePath([]byte(path))
			if err != nil {
				return nil, &Error{Status: http.StatusBadRequest, Type: scimInvalidPath, Detail: "operation " + itoa(i+1) + ": path does not parse", Err: err}
			}
			if p.ValueExpression != nil && terms(p.ValueExpression) > maxFilterTerms {
				return nil, badRequest(scimInvalidPath, "operation %d: path filter too complex", i+1)
			}
			op.path = &p
		}
		if op.op != "remove" && op.value == nil {
			return nil, badRequest(scimInvalidValue, "operation %d: value is required", i+1)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// hasSchema reports whether m's schemas lists urn.
func hasSchema(m map[string]any, urn string) bool {
	list, _ := m["schemas"].([]any)
	for _, s := range list {
		if s, ok := s.(string); ok && strings.EqualFold(s, urn) {
			return true
		}
	}
	return false
}

// ifMatch refuses, with 412, a request whose If-Match names none of the
// resource's current version (RFC 7644 §3.14): the client's copy is stale.
// A request without If-Match, or with "*", proceeds.
func ifMatch(r *http.Request, version string) error {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	for _, v := range strings.Split(h, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || v == version || "W/"+v == version {
			return nil
		}
	}
	return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource has changed since the version in If-Match"}
}
