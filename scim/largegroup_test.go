package scim_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// TestLargeGroupPatchAnswersNoContent: a group PATCH answers 204 with the
// new ETag; one that asks for attributes gets the group (200), except
// that a group of more than MaxResponseMembers is not sent back unless the
// request leaves the members out.
func TestLargeGroupPatchAnswersNoContent(t *testing.T) {
	store := memstore.New()
	s := newServer(t, store, okta)
	var ids []string
	for i := range scim.MaxResponseMembers + 2 {
		put, err := store.PutUser(t.Context(), userstore.Key{Issuer: oktaIssuer, Subject: fmt.Sprintf("u%d", i)}, time.Now(),
			func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
				return fmt.Sprintf("u%d@initech.example", i), userstore.Profile{}, nil
			})
		require.NoError(t, err)
		ids = append(ids, put.User.ID)
	}
	members := func(ids []string) []map[string]string {
		var out []map[string]string
		for _, id := range ids {
			out = append(out, map[string]string{"value": id})
		}
		return out
	}
	add := func(id string) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "add", "path": "members", "value": members([]string{id})}}}
	}
	n := scim.MaxResponseMembers
	small := s.do(okta, "POST", "/Groups", map[string]any{"displayName": "small", "members": members(ids[:1])})
	require.Equal(t, http.StatusCreated, small.status, small.raw)
	r := s.do(okta, "PATCH", "/Groups/"+small.body["id"].(string), add(ids[1]))
	require.Equal(t, http.StatusNoContent, r.status, r.raw)
	assert.Empty(t, r.raw)
	assert.NotEmpty(t, r.header.Get("ETag"))
	r = s.do(okta, "PATCH", "/Groups/"+small.body["id"].(string)+"?attributes=displayName,members", add(ids[2]))
	require.Equal(t, http.StatusOK, r.status, "a PATCH that asks for attributes gets them: %s", r.raw)
	assert.Len(t, r.body["members"], 3)
	assert.Equal(t, "small", r.body["displayName"])

	large := s.do(okta, "POST", "/Groups", map[string]any{"displayName": "large", "members": members(ids[:n])})
	require.Equal(t, http.StatusCreated, large.status)
	path := "/Groups/" + large.body["id"].(string)
	r = s.do(okta, "PATCH", path+"?attributes=members", add(ids[n]))
	require.Equal(t, http.StatusNoContent, r.status, "past MaxResponseMembers a PATCH sends no members, even when asked")
	assert.Empty(t, r.raw)
	etag := r.header.Get("ETag")
	require.NotEmpty(t, etag)
	got := s.do(okta, "GET", path+"?excludedAttributes=members", nil)
	assert.Equal(t, etag, got.header.Get("ETag"), "the ETag is the group's new version")
	assert.NotContains(t, got.body, "members")
	r = s.do(okta, "PATCH", path+"?excludedAttributes=members", add(ids[n+1]))
	require.Equal(t, http.StatusOK, r.status, "a PATCH that leaves members out gets the group")
	assert.NotContains(t, r.body, "members")
	assert.Equal(t, "large", r.body["displayName"])
	g, err := store.FindGroups(t.Context(), oktaIssuer, userstore.GroupByID, large.body["id"].(string))
	require.NoError(t, err)
	assert.Len(t, g[0].Members, n+2)
}
