package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// scimClient is the development IdP's SCIM client: it pushes changes to
// the app's own SCIM endpoint over real HTTP with the connection's bearer
// token, the way Entra ID's provisioning service does (a matching query
// by externalId, POST when nobody matches, then PATCH), so that what a
// newcomer sees is what a real IdP would cause.
type scimClient struct {
	base  string // the connection's SCIM endpoint, e.g. http://127.0.0.1:8080/scim/acme/v2
	token string
	http  *http.Client
}

// scimClientTimeout bounds one push request.
const scimClientTimeout = 10 * time.Second

// maxSCIMResponse bounds a response the client reads.
const maxSCIMResponse = 4 << 20

const (
	scimSchemaUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimSchemaGroup   = "urn:ietf:params:scim:schemas:core:2.0:Group"
	scimSchemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// errSCIMStatus is returned (wrapped) for an answer the client did not
// expect.
var errSCIMStatus = errors.New("unexpected SCIM answer")

func newSCIMClient(base, token string) *scimClient {
	return &scimClient{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: scimClientTimeout}}
}

// do sends one request and decodes the JSON answer into out (when not
// nil). An answer other than want (or 204 No Content, which a PATCH may
// answer) is an error wrapping errSCIMStatus with the server's detail.
func (c *scimClient) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("SCIM %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSCIMResponse))
	if err != nil {
		return fmt.Errorf("SCIM %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusNoContent && method == http.MethodPatch {
		return nil
	}
	if resp.StatusCode != want {
		var e struct{ Detail string }
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("%w: %s %s: %d %s", errSCIMStatus, method, path, resp.StatusCode, e.Detail)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("SCIM %s %s: %w", method, path, err)
		}
	}
	return nil
}

// scimResource is the part of a User or Group resource the client reads.
type scimResource struct {
	ID          string       `json:"id"`
	DisplayName string       `json:"displayName"`
	Members     []scimMember `json:"members"`
}

// scimMember is a member of a Group resource.
type scimMember struct {
	Value string `json:"value"`
}

// scimList is a ListResponse.
type scimList struct {
	TotalResults int            `json:"totalResults"`
	Resources    []scimResource `json:"Resources"`
}

// quoteFilter quotes s as a SCIM filter's string value.
func quoteFilter(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ensureUser returns the SCIM id of p: the user the matching query
// (externalId eq NameID) finds, a sign-in's record included, or a new
// one created by POST.
func (c *scimClient) ensureUser(ctx context.Context, p devPerson) (string, error) {
	var list scimList
	q := url.Values{"filter": {"externalId eq " + quoteFilter(p.NameID)}, "attributes": {"id"}}
	if err := c.do(ctx, http.MethodGet, "/Users?"+q.Encode(), nil, http.StatusOK, &list); err != nil {
		return "", err
	}
	if len(list.Resources) > 0 {
		return list.Resources[0].ID, nil
	}
	var created scimResource
	err := c.do(ctx, http.MethodPost, "/Users", map[string]any{
		"schemas":     []string{scimSchemaUser},
		"externalId":  p.NameID,
		"userName":    p.Email,
		"displayName": p.Name(),
		"name":        map[string]string{"givenName": p.Given, "familyName": p.Family},
		"emails":      []map[string]any{{"value": p.Email, "type": "work", "primary": true}},
		"active":      true,
	}, http.StatusCreated, &created)
	return created.ID, err
}

// patch sends a PatchOp with ops to path.
func (c *scimClient) patch(ctx context.Context, path string, ops ...map[string]any) error {
	return c.do(ctx, http.MethodPatch, path, map[string]any{"schemas": []string{scimSchemaPatchOp}, "Operations": ops}, http.StatusOK, nil)
}

// setActive disables (false) or re-enables (true) p, as Entra ID does
// when a person is disabled or unassigned: PATCH active, here as a
// boolean.
func (c *scimClient) setActive(ctx context.Context, p devPerson, active bool) error {
	id, err := c.ensureUser(ctx, p)
	if err != nil {
		return err
	}
	return c.patch(ctx, "/Users/"+url.PathEscape(id), map[string]any{"op": "replace", "path": "active", "value": active})
}

// maxDevGroupPages bounds how many pages of groups the client reads.
const maxDevGroupPages = 20

// updateUser pushes p's names and email, creating p if need be, and
// returns p's SCIM id.
func (c *scimClient) updateUser(ctx context.Context, p devPerson) (string, error) {
	id, err := c.ensureUser(ctx, p)
	if err != nil {
		return "", err
	}
	return id, c.patch(ctx, "/Users/"+url.PathEscape(id),
		map[string]any{"op": "replace", "value": map[string]any{"displayName": p.Name(), "name.givenName": p.Given, "name.familyName": p.Family}},
		map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": p.Email},
	)
}

// syncGroups makes the app's groups those of people, as an IdP's
// provisioning cycle does for the people and groups assigned to the app:
// each person is created if missing, each group that one of them is in is
// created if missing, and each person is added to or removed from each
// group, one PATCH each. Groups nobody is in keep their other members.
func (c *scimClient) syncGroups(ctx context.Context, people []devPerson) error {
	ids := make(map[string]string, len(people))
	for _, p := range people {
		id, err := c.ensureUser(ctx, p)
		if err != nil {
			return err
		}
		ids[p.NameID] = id
	}
	var groups []scimResource
	for page := 0; page < maxDevGroupPages; page++ {
		var list scimList
		q := url.Values{"startIndex": {fmt.Sprint(len(groups) + 1)}, "count": {"1000"}}
		if err := c.do(ctx, http.MethodGet, "/Groups?"+q.Encode(), nil, http.StatusOK, &list); err != nil {
			return err
		}
		groups = append(groups, list.Resources...)
		if len(list.Resources) == 0 || len(groups) >= list.TotalResults {
			break
		}
	}
	var names []string
	for _, p := range people {
		for _, g := range p.Groups {
			if !slices.Contains(names, g) && !slices.ContainsFunc(groups, func(r scimResource) bool { return r.DisplayName == g }) {
				names = append(names, g)
			}
		}
	}
	for _, name := range names {
		var members []map[string]string
		for _, p := range people {
			if slices.Contains(p.Groups, name) {
				members = append(members, map[string]string{"value": ids[p.NameID]})
			}
		}
		if err := c.do(ctx, http.MethodPost, "/Groups", map[string]any{
			"schemas": []string{scimSchemaGroup}, "displayName": name, "members": members,
		}, http.StatusCreated, nil); err != nil {
			return err
		}
	}
	for _, g := range groups {
		path := "/Groups/" + url.PathEscape(g.ID)
		var add []map[string]string
		var remove []map[string]any
		for _, p := range people {
			id := ids[p.NameID]
			want, has := slices.Contains(p.Groups, g.DisplayName), slices.Contains(g.Members, scimMember{Value: id})
			switch {
			case want && !has:
				add = append(add, map[string]string{"value": id})
			case !want && has:
				remove = append(remove, map[string]any{"op": "remove", "path": `members[value eq ` + quoteFilter(id) + `]`})
			}
		}
		ops := remove
		if add != nil {
			ops = append(ops, map[string]any{"op": "add", "path": "members", "value": add})
		}
		if len(ops) > 0 {
			if err := c.patch(ctx, path, ops...); err != nil {
				return err
			}
		}
	}
	return nil
}
