package scim

import (
	"net/http"
	"strings"

	"github.com/samljit/samljit/userstore"
)

// serveDiscovery serves /ServiceProviderConfig, /ResourceTypes and
// /Schemas (RFC 7644 §4).
func (h *Handler) serveDiscovery(w http.ResponseWriter, r *http.Request, endpoint, id string) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(r)
	}
	switch endpoint {
	case "ServiceProviderConfig":
		if id != "" {
			return notFound("no such endpoint")
		}
		writeJSON(w, http.StatusOK, h.serviceProviderConfig())
		return nil
	case "ResourceTypes":
		return serveList(w, h.resourceTypes(), id)
	}
	return serveList(w, schemas(), id)
}

// serveList writes all as a ListResponse, or the one whose id (or name) is
// id.
func serveList(w http.ResponseWriter, all []map[string]any, id string) error {
	if id == "" {
		listResponse(w, len(all), page{start: 1, count: len(all)}, all)
		return nil
	}
	for _, m := range all {
		if m["id"] == id || m["name"] == id {
			writeJSON(w, http.StatusOK, m)
			return nil
		}
	}
	return notFound("no %q", truncate(id, 64))
}

// serviceProviderConfig is what this service provider supports.
func (h *Handler) serviceProviderConfig() map[string]any {
	no := map[string]any{"supported": false}
	return map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://pkg.go.dev/github.com/samljit/samljit/scim",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxPageSize},
		// RFC 9865: startIndex paging always, cursor paging when the
		// store lists by key.
		"pagination": map[string]any{"cursor": h.canPage(), "index": true, "defaultPaginationMethod": "index",
			"defaultPageSize": DefaultPageSize, "maxPageSize": MaxPageSize},
		"changePassword": no,
		"sort":           no,
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "A bearer token issued for this connection.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.baseURL + "/ServiceProviderConfig"},
	}
}

// canPage reports whether h's store lists by key, for cursor paging.
func (h *Handler) canPage() bool {
	_, ok := h.store.(userstore.DirectoryPager)
	return ok
}

// resourceTypes are the User and Group resource types.
func (h *Handler) resourceTypes() []map[string]any {
	rt := func(name, endpoint, schema string, ext ...map[string]any) map[string]any {
		m := map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":       name,
			"name":     name,
			"endpoint": "/" + endpoint,
			"schema":   schema,
			"meta":     map[string]any{"resourceType": "ResourceType", "location": h.baseURL + "/ResourceTypes/" + name},
		}
		if len(ext) > 0 {
			m["schemaExtensions"] = ext
		}
		return m
	}
	return []map[string]any{
		rt("User", "Users", schemaUser, map[string]any{"schema": schemaEnterprise, "required": false}),
		rt("Group", "Groups", schemaGroup),
	}
}

// attr describes one attribute in a schema: name, type, and flags in a
// compact string ("multi", "required", "exact", "readOnly", "immutable",
// "server" for server-unique, "always" for always returned).
func attr(name, typ, flags string, sub ...map[string]any) map[string]any {
	has := func(f string) bool { return strings.Contains(" "+flags+" ", " "+f+" ") }
	mut := "readWrite"
	switch {
	case has("readOnly"):
		mut = "readOnly"
	case has("immutable"):
		mut = "immutable"
	}
	ret, uniq := "default", "none"
	if has("always") {
		ret = "always"
	}
	if has("server") {
		uniq = "server"
	}
	m := map[string]any{
		"name": name, "type": typ, "multiValued": has("multi"), "required": has("required"),
		"caseExact": has("exact"), "mutability": mut, "returned": ret, "uniqueness": uniq,
	}
	if len(sub) > 0 {
		m["subAttributes"] = sub
	}
	return m
}

// schemas are the schemas this service provider serves, with the
// attributes it keeps.
func schemas() []map[string]any {
	schema := func(id, name string, attrs ...map[string]any) map[string]any {
		return map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
			"id":      id, "name": name, "attributes": attrs,
			"meta": map[string]any{"resourceType": "Schema", "location": "/Schemas/" + id},
		}
	}
	str := func(name string) map[string]any { return attr(name, "string", "") }
	return []map[string]any{
		schema(schemaUser, "User",
			attr("userName", "string", "required server"),
			attr("externalId", "string", "exact immutable"),
			attr("name", "complex", "", str("givenName"), str("familyName"), str("formatted"), str("middleName"), str("honorificPrefix"), str("honorificSuffix")),
			str("displayName"), str("nickName"), str("profileUrl"), str("title"), str("userType"), str("preferredLanguage"), str("locale"), str("timezone"),
			attr("active", "boolean", ""),
			attr("emails", "complex", "multi", str("value"), str("type"), attr("primary", "boolean", "")),
		),
		schema(schemaEnterprise, "EnterpriseUser",
			str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
			attr("manager", "complex", "", attr("value", "string", "exact"), attr("$ref", "reference", "")),
		),
		schema(schemaGroup, "Group",
			attr("displayName", "string", "required"),
			attr("externalId", "string", "exact"),
			attr("members", "complex", "multi", attr("value", "string", "exact immutable"), attr("$ref", "reference", "immutable")),
		),
	}
}
