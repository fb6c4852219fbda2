package scim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// step is one request of a client's documented sequence. {user}, {user2}
// and {group} in path and body are replaced with the IDs the sequence
// created; check, when set, checks the reply.
type step struct {
	name   string
	method string
	path   string
	body   string
	status int
	check  func(t *testing.T, s *server, r reply)
	// save, when set, names the variable the reply's id is kept in.
	save string
}

// runSequence runs steps in order against conn.
func runSequence(t *testing.T, s *server, conn connection, steps []step) {
	vars := map[string]string{}
	subst := func(x string) string {
		for k, v := range vars {
			x = strings.ReplaceAll(x, "{"+k+"}", v)
		}
		return x
	}
	for _, st := range steps {
		var body any
		if st.body != "" {
			body = subst(st.body)
		}
		r := s.do(conn, st.method, subst(st.path), body)
		require.Equal(t, st.status, r.status, "%s: %s", st.name, r.raw)
		if st.save != "" {
			id, _ := r.body["id"].(string)
			require.NotEmpty(t, id, "%s: no id", st.name)
			vars[st.save] = id
		}
		if st.check != nil {
			st.check(t, s, r)
		}
	}
}

// requireNoContent requires r to be a 204 with no body and the
// resource's new ETag.
func requireNoContent(t *testing.T, r reply) {
	t.Helper()
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.raw)
	assert.NotEmpty(t, r.header.Get("ETag"))
}

// totalResults returns a ListResponse's totalResults.
func totalResults(r reply) float64 { n, _ := r.body["totalResults"].(float64); return n }

// The Entra ID sequences follow Microsoft's "Tutorial: Develop and plan
// provisioning for a SCIM endpoint in Microsoft Entra ID" (user and group
// operations, request and response examples) and its page on SCIM
// compatibility ("Known issues and resolutions with SCIM 2.0 protocol
// compliance"): the requests below are those examples, with the
// externalId mapped from objectId as EntraObjectID requires.

const entraObjectID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"

func TestEntraUserSequence(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newServer(t, st.open(t), entra)
			runSequence(t, s, entra, entraUserSteps)
		})
	}
}

var entraUserSteps = []step{
	{name: "match query finds no one", method: "GET", path: `/Users?filter=userName+eq+%22Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) {
			assert.Empty(t, resources(t, r))
			assert.Equal(t, 0.0, totalResults(r))
		}},
	{name: "create", method: "POST", path: "/Users", status: 201, save: "user", body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId": "` + entraObjectID + `",
		"userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
		"active": true,
		"emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
		"meta": {"resourceType": "User"},
		"name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
		"roles": []}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1", r.body["userName"])
			assert.Equal(t, entraObjectID, r.body["externalId"])
			assert.Equal(t, true, r.body["active"])
			assert.Equal(t, map[string]any{"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}, r.body["name"])
			assert.Equal(t, []any{map[string]any{"value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com", "type": "work", "primary": true}}, r.body["emails"])
			assert.Equal(t, r.header.Get("Location"), r.body["meta"].(map[string]any)["location"])
			assert.NotEmpty(t, r.header.Get("ETag"))
			// The key is the one a sign-in through claims.Entra computes.
			u := lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID)
			assert.Equal(t, r.body["id"], u.ID)
			assert.Equal(t, "familyName", u.Profile.FamilyName)
			assert.Equal(t, []string{"member"}, u.Profile.Roles, "the connection's default roles, as a first sign-in gives")
			assert.Equal(t, []scim.EventKind{scim.EventUserCreated}, kinds(s.takeEvents()))
		}},
	{name: "get", method: "GET", path: "/Users/{user}", status: 200,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "givenName", r.body["name"].(map[string]any)["givenName"])
		}},
	{name: "match query finds the user", method: "GET", path: `/Users?filter=userName+eq+%22test_user_AB6490EE-1e48-479e-a20b-2d77186b5dd1%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) {
			require.Len(t, resources(t, r), 1, "userName compares without case")
			assert.Equal(t, 1.0, totalResults(r))
		}},
	{name: "match query of a non-existent user", method: "GET", path: `/Users?filter=userName+eq+%22non-existent%20user%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) { assert.Empty(t, resources(t, r)) }},
	{name: "externalId query", method: "GET", path: `/Users?filter=externalId+eq+%22` + entraObjectID + `%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) { require.Len(t, resources(t, r), 1) }},
	{name: "update multi-valued properties", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [
			{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
			{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]}`,
		check: func(t *testing.T, s *server, r reply) {
			u := lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID)
			assert.Equal(t, "updatedEmail@microsoft.com", u.Profile.Email)
			assert.Equal(t, "updatedFamilyName", u.Profile.FamilyName)
			e := s.takeEvents()
			require.Len(t, e, 1)
			assert.Equal(t, scim.SourceSCIM, e[0].Source)
			assert.Equal(t, []string{"email", "family_name"}, e[0].Changed)
		}},
	{name: "update single-valued properties", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com", r.body["userName"])
		}},
	{name: "enterprise attributes and manager without a path, as Entra sends them", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [
			{"op": "Add", "value": {
				"displayName": "Test User", "name.givenName": "Ada",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Engines",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
				"phoneNumbers[type eq \"mobile\"].value": "+1 555 0100"}},
			{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "2819c223-7f76-453a-919d-413861904646"}]}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "Test User", r.body["displayName"])
			assert.Equal(t, map[string]any{"department": "Engines", "employeeNumber": "42",
				"manager": map[string]any{"value": "2819c223-7f76-453a-919d-413861904646"}},
				r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"])
			assert.Contains(t, r.body["schemas"], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
		}},
	{name: "manager by its extension path", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "3a1f0c2b-0000-0000-0000-000000000001"}]}`,
		check: func(t *testing.T, s *server, r reply) {
			ext := r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
			assert.Equal(t, map[string]any{"value": "3a1f0c2b-0000-0000-0000-000000000001"}, ext["manager"])
		}},
	{name: "disable, active as the string False", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, false, r.body["active"])
			assert.Equal(t, userstore.Suspended, lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID).Status)
			assert.Contains(t, kinds(s.takeEvents()), scim.EventUserSuspended)
		}},
	{name: "enable, active without a path", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "value": {"active": "True"}}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, true, r.body["active"])
			assert.Equal(t, userstore.Active, lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID).Status)
			assert.Contains(t, kinds(s.takeEvents()), scim.EventUserReactivated)
		}},
	{name: "disable, active as a boolean", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"Operations": [{"op": "Replace", "path": "active", "value": false}],
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`,
		check: func(t *testing.T, s *server, r reply) { assert.Equal(t, false, r.body["active"]) }},
	{name: "delete", method: "DELETE", path: "/Users/{user}", status: 204,
		check: func(t *testing.T, s *server, r reply) {
			// Kept for audit, suspended, and gone for SCIM.
			u := lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID)
			assert.Equal(t, userstore.Suspended, u.Status)
		}},
	{name: "deleted user is 404", method: "GET", path: "/Users/{user}", status: 404},
	{name: "deleted user is not matched", method: "GET", path: `/Users?filter=externalId+eq+%22` + entraObjectID + `%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) { assert.Empty(t, resources(t, r)) }},
	{name: "re-created with the same externalId adopts the record", method: "POST", path: "/Users", status: 201, body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"externalId": "` + entraObjectID + `", "userName": "again@testuser.com", "active": true}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, true, r.body["active"])
			assert.Contains(t, kinds(s.takeEvents()), scim.EventUserAdopted)
		}},
}

func TestEntraGroupSequence(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newServer(t, st.open(t), entra)
			runSequence(t, s, entra, entraGroupSteps)
		})
	}
}

var entraGroupSteps = []step{
	{name: "a member", method: "POST", path: "/Users", status: 201, save: "user", body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": "` + entraObjectID + `", "userName": "ada@contoso.com"}`},
	{name: "match query finds no group", method: "GET", path: `/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) { assert.Empty(t, resources(t, r)) }},
	{name: "create", method: "POST", path: "/Groups", status: 201, save: "group", body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
		"externalId": "admins-oid", "displayName": "displayName", "meta": {"resourceType": "Group"}}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "displayName", r.body["displayName"])
			assert.Equal(t, "admins-oid", r.body["externalId"])
			assert.Equal(t, []any{}, r.body["members"])
		}},
	{name: "get without members", method: "GET", path: "/Groups/{group}?excludedAttributes=members", status: 200,
		check: func(t *testing.T, s *server, r reply) {
			assert.NotContains(t, r.body, "members")
			assert.Equal(t, "displayName", r.body["displayName"])
		}},
	{name: "match query", method: "GET", path: `/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22`, status: 200,
		check: func(t *testing.T, s *server, r reply) { require.Len(t, resources(t, r), 1) }},
	// Each group PATCH is answered 204 No Content, as the tutorial's are.
	{name: "add member", method: "PATCH", path: "/Groups/{group}", status: 204, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "{user}"}]}]}`,
		check: func(t *testing.T, s *server, r reply) {
			requireNoContent(t, r)
			// The same role mapping as sign-in: admins-oid grants admin.
			u := lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID)
			assert.Equal(t, []string{"admins-oid"}, u.Profile.Groups)
			assert.Equal(t, []string{"member", "admin"}, u.Profile.Roles)
			assert.Equal(t, []scim.EventKind{scim.EventUserCreated, scim.EventGroupCreated, scim.EventGroupUpdated, scim.EventUserUpdated}, kinds(s.takeEvents()))
		}},
	{name: "remove member", method: "PATCH", path: "/Groups/{group}", status: 204, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "{user}"}]}]}`,
		check: func(t *testing.T, s *server, r reply) {
			requireNoContent(t, r)
			u := lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID)
			assert.Equal(t, []string{}, u.Profile.Groups)
			assert.Equal(t, []string{"member"}, u.Profile.Roles, "the admin role is gone at once")
		}},
	{name: "replace display name", method: "PATCH", path: "/Groups/{group}", status: 204, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}`,
		check: func(t *testing.T, s *server, r reply) { requireNoContent(t, r) }},
	{name: "read back", method: "GET", path: "/Groups/{group}?excludedAttributes=members", status: 200,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName", r.body["displayName"])
		}},
	{name: "delete", method: "DELETE", path: "/Groups/{group}", status: 204},
	{name: "deleted group is 404", method: "GET", path: "/Groups/{group}", status: 404},
}

// The Okta sequences follow Okta's "SCIM 2.0 protocol reference" for
// provisioning apps (user and group operations, request and response
// examples), with the Okta user ID as externalId and the app's NameID.

func TestOktaSequence(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newServer(t, st.open(t), okta)
			runSequence(t, s, okta, oktaSteps)
		})
	}
}

var oktaSteps = []step{
	{name: "user exists?", method: "GET", path: `/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100`, status: 200,
		check: func(t *testing.T, s *server, r reply) {
			assert.Empty(t, resources(t, r))
			assert.Equal(t, 1.0, r.body["startIndex"])
		}},
	{name: "create", method: "POST", path: "/Users", status: 201, save: "user", body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName": "test.user@okta.local",
		"name": {"givenName": "Test", "familyName": "User"},
		"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
		"displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
		"groups": [], "password": "1mz050nq", "active": true}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "en-US", r.body["locale"])
			assert.NotContains(t, r.raw, "1mz050nq", "a password is never kept nor returned")
			u := lookupUser(t, s.store, oktaIssuer, "00ujl29u0le5T6Aj10h7")
			assert.NotContains(t, strings.Join(flatten(u.Profile.Attributes), " "), "1mz050nq")
		}},
	{name: "retrieve", method: "GET", path: "/Users/{user}", status: 200},
	{name: "update with PUT", method: "PUT", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "{user}",
		"userName": "test.user@okta.local", "name": {"givenName": "Another", "familyName": "User"},
		"emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
		"displayName": "Another User", "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "active": true}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, "Another User", r.body["displayName"])
			assert.NotContains(t, r.body, "locale", "PUT replaces: locale was not given")
		}},
	{name: "deactivate with PUT", method: "PUT", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "{user}",
		"userName": "test.user@okta.local", "externalId": "00ujl29u0le5T6Aj10h7", "active": false}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, userstore.Suspended, lookupUser(t, s.store, oktaIssuer, "00ujl29u0le5T6Aj10h7").Status)
		}},
	{name: "reactivate with PATCH", method: "PATCH", path: "/Users/{user}", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "replace", "value": {"active": true}}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, userstore.Active, lookupUser(t, s.store, oktaIssuer, "00ujl29u0le5T6Aj10h7").Status)
		}},
	{name: "PUT cannot change externalId", method: "PUT", path: "/Users/{user}", status: 400, body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "test.user@okta.local", "externalId": "00uSOMEONEELSE"}`,
		check: func(t *testing.T, s *server, r reply) { requireError(t, r, 400, "mutability") }},
	{name: "create group", method: "POST", path: "/Groups", status: 201, save: "group", body: `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []}`},
	{name: "group by name", method: "GET", path: `/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100`, status: 200,
		check: func(t *testing.T, s *server, r reply) { require.Len(t, resources(t, r), 1) }},
	// Okta notes that a group PATCH "can also be an HTTP 204 response,
	// with no body returned"; a request that names attributes gets them.
	{name: "rename group", method: "PATCH", path: "/Groups/{group}", status: 204, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "replace", "value": {"id": "{group}", "displayName": "Test SCIMv1"}}]}`,
		check: func(t *testing.T, s *server, r reply) { requireNoContent(t, r) }},
	{name: "read back", method: "GET", path: "/Groups/{group}", status: 200,
		check: func(t *testing.T, s *server, r reply) { assert.Equal(t, "Test SCIMv1", r.body["displayName"]) }},
	{name: "add member", method: "PATCH", path: "/Groups/{group}", status: 204, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "add", "path": "members", "value": [{"value": "{user}", "display": "test.user@okta.local"}]}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, []string{"Test SCIMv1"}, lookupUser(t, s.store, oktaIssuer, "00ujl29u0le5T6Aj10h7").Profile.Groups,
				"a group without externalId is named by its displayName")
		}},
	{name: "remove member by filter", method: "PATCH", path: "/Groups/{group}?attributes=displayName,members", status: 200, body: `{
		"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations": [{"op": "remove", "path": "members[value eq \"{user}\"]"}]}`,
		check: func(t *testing.T, s *server, r reply) {
			assert.Equal(t, []any{}, r.body["members"])
			assert.Equal(t, []string{}, lookupUser(t, s.store, oktaIssuer, "00ujl29u0le5T6Aj10h7").Profile.Groups)
		}},
	{name: "delete group", method: "DELETE", path: "/Groups/{group}", status: 204},
}

// flatten returns every value of attrs.
func flatten(attrs map[string][]string) []string {
	var out []string
	for k, v := range attrs {
		out = append(out, k)
		out = append(out, v...)
	}
	return out
}

func TestMethodsAndEndpoints(t *testing.T) {
	s := newServer(t, memstore.New(), entra)
	requireError(t, s.do(entra, http.MethodDelete, "/Users", nil), 405, "")
	requireError(t, s.do(entra, http.MethodGet, "/Nope", nil), 404, "")
	requireError(t, s.do(entra, http.MethodGet, "/Users/a/b", nil), 404, "")
	r := s.do(entra, http.MethodGet, "/ServiceProviderConfig", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, map[string]any{"supported": true}, r.body["patch"])
	r = s.do(entra, http.MethodGet, "/ResourceTypes", nil)
	require.Len(t, resources(t, r), 2)
	r = s.do(entra, http.MethodGet, "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil)
	require.Equal(t, 200, r.status, r.raw)
	assert.Equal(t, "EnterpriseUser", r.body["name"])
}
