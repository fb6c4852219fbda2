package scim

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/samljit/samljit/userstore"
)

// The schema and message URNs of RFC 7643 and RFC 7644.
const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatch      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// maxValue bounds the length of one string value.
const maxValue = 2048

// target is what an attribute path names in a user.
type target int

const (
	tIgnored target = iota // an attribute the store does not keep
	tID
	tUserName
	tExternalID
	tDisplayName
	tGivenName
	tFamilyName
	tName // the name complex attribute
	tEmails
	tActive
	tSimple // a string kept in Profile.Attributes under key
	tManager
	tEnterprise // the enterprise extension as a whole
)

// simpleCore are the core User attributes kept in Profile.Attributes, by
// lower-case name, with their canonical names.
var simpleCore = map[string]string{
	"title": "title", "usertype": "userType", "preferredlanguage": "preferredLanguage",
	"locale": "locale", "timezone": "timezone", "nickname": "nickName", "profileurl": "profileUrl",
}

// simpleName are the sub-attributes of name kept in Profile.Attributes.
var simpleName = map[string]string{
	"formatted": "formatted", "middlename": "middleName", "honorificprefix": "honorificPrefix", "honorificsuffix": "honorificSuffix",
}

// simpleEnterprise are the enterprise extension's string attributes.
var simpleEnterprise = map[string]string{
	"employeenumber": "employeeNumber", "costcenter": "costCenter", "organization": "organization",
	"division": "division", "department": "department",
}

// attrKey returns the Profile.Attributes key of a kept attribute.
func coreKey(name string) string       { return schemaUser + ":" + name }
func nameKey(sub string) string        { return schemaUser + ":name." + sub }
func enterpriseKey(name string) string { return schemaEnterprise + ":" + name }

// managerKey is where the enterprise manager's id is kept.
var managerKey = enterpriseKey("manager")

// resolve returns what the attribute path uri:name.sub names, and for a
// tSimple its Profile.Attributes key. Names compare without case.
func resolve(uri, name, sub string) (target, string) {
	n, s := strings.ToLower(name), strings.ToLower(sub)
	switch {
	case uri == "" || strings.EqualFold(uri, schemaUser):
		switch n {
		case "id":
			return tID, ""
		case "username":
			return tUserName, ""
		case "externalid":
			return tExternalID, ""
		case "displayname":
			return tDisplayName, ""
		case "active":
			return tActive, ""
		case "emails":
			if s == "" || s == "value" {
				return tEmails, ""
			}
		case "manager":
			// Entra ID without its SCIM compliance flag sends the
			// enterprise manager without the extension's URN.
			if s == "" || s == "value" {
				return tManager, ""
			}
		case "name":
			switch s {
			case "":
				return tName, ""
			case "givenname":
				return tGivenName, ""
			case "familyname":
				return tFamilyName, ""
			}
			if c, ok := simpleName[s]; ok {
				return tSimple, nameKey(c)
			}
		default:
			if c, ok := simpleCore[n]; ok && s == "" {
				return tSimple, coreKey(c)
			}
		}
	case strings.EqualFold(uri, schemaEnterprise):
		if n == "manager" && (s == "" || s == "value") {
			return tManager, ""
		}
		if c, ok := simpleEnterprise[n]; ok && s == "" {
			return tSimple, enterpriseKey(c)
		}
	}
	return tIgnored, ""
}

// managedKey reports whether a Profile.Attributes key is one SCIM writes.
func managedKey(k string) bool {
	switch {
	case k == managerKey:
		return true
	case strings.HasPrefix(k, schemaUser+":name."):
		_, ok := simpleName[strings.ToLower(strings.TrimPrefix(k, schemaUser+":name."))]
		return ok
	case strings.HasPrefix(k, schemaUser+":"):
		_, ok := simpleCore[strings.ToLower(strings.TrimPrefix(k, schemaUser+":"))]
		return ok
	case strings.HasPrefix(k, schemaEnterprise+":"):
		_, ok := simpleEnterprise[strings.ToLower(strings.TrimPrefix(k, schemaEnterprise+":"))]
		return ok
	}
	return false
}

// userRes is a user as SCIM reads and writes it.
type userRes struct {
	userName, externalID                  string
	displayName, givenName, familyName    string
	email                                 string
	active                                *bool
	attrs                                 map[string]string // kept attributes by Profile.Attributes key
	externalIDSet, userNameSet, activeSet bool
}

// fromUser returns u as a userRes; externalID is u's externalId ("" when
// the connection's mapping has none for its subject).
func fromUser(u userstore.DirectoryUser, externalID string) *userRes {
	active := u.Status == userstore.Active
	r := &userRes{
		userName: u.UserName, externalID: externalID,
		displayName: u.Profile.DisplayName, givenName: u.Profile.GivenName, familyName: u.Profile.FamilyName,
		email: u.Profile.Email, active: &active, attrs: map[string]string{},
	}
	for k, v := range u.Profile.Attributes {
		if managedKey(k) && len(v) > 0 {
			r.attrs[k] = v[0]
		}
	}
	return r
}

// profile returns the profile r describes on top of before's: the groups,
// roles and attributes SCIM does not manage are kept.
func (r *userRes) profile(before *userstore.Profile) userstore.Profile {
	var p userstore.Profile
	if before != nil {
		p = before.Clone()
	}
	p.Email, p.DisplayName, p.GivenName, p.FamilyName = r.email, r.displayName, r.givenName, r.familyName
	attrs := map[string][]string{}
	for k, v := range p.Attributes {
		if !managedKey(k) {
			attrs[k] = v
		}
	}
	for k, v := range r.attrs {
		if v != "" {
			attrs[k] = []string{v}
		}
	}
	if len(attrs) == 0 && (before == nil || before.Attributes == nil) {
		attrs = nil
	}
	p.Attributes = attrs
	return p
}

// errValue is an invalidValue error about path.
func errValue(path string, format string, args ...any) *Error {
	return badRequest(scimInvalidValue, "%s: %s", path, fmt.Sprintf(format, args...))
}

// stringValue returns v as a string: a JSON string, number or null ("").
func stringValue(path string, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		if len(v) > maxValue {
			return "", errValue(path, "longer than %d bytes", maxValue)
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", errValue(path, "want a string")
}

// boolValue returns v as a boolean: a JSON boolean, or the strings "true"
// and "false" in any case (Entra ID sends "True" and "False").
func boolValue(path string, v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errValue(path, "want a boolean")
}

// set applies op ("add", "replace" or "remove") with value v to the
// attribute uri:name.sub of r. filterExpr, for a multi-valued attribute
// path with a value filter (emails[type eq "work"]), selects the email:
// this store keeps one, the work or primary one.
func (r *userRes) set(op, uri, name, sub string, v any) error {
	path := name
	if sub != "" {
		path += "." + sub
	}
	t, key := resolve(uri, name, sub)
	remove := op == "remove"
	switch t {
	case tIgnored, tID:
		return nil
	case tActive:
		if remove {
			return errValue(path, "active cannot be removed")
		}
		b, err := boolValue(path, v)
		if err != nil {
			return err
		}
		r.active, r.activeSet = &b, true
		return nil
	case tName:
		if remove {
			r.givenName, r.familyName = "", ""
			for k := range simpleName {
				delete(r.attrs, nameKey(simpleName[k]))
			}
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return errValue(path, "want an object")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := r.set(op, uri, "name", k, m[k]); err != nil {
				return err
			}
		}
		return nil
	case tEmails:
		if remove {
			r.email = ""
			return nil
		}
		e, err := emailValue(path, sub, v)
		if err != nil {
			return err
		}
		r.email = e
		return nil
	case tManager:
		if remove {
			delete(r.attrs, managerKey)
			return nil
		}
		// A string, {"value": id}, or (Entra ID) [{"$ref": null, "value": id}].
		if l, ok := v.([]any); ok && len(l) == 1 {
			v = l[0]
		}
		if m, ok := v.(map[string]any); ok {
			v = m["value"]
		}
		s, err := stringValue(path, v)
		if err != nil {
			return err
		}
		r.attrs[managerKey] = s
		return nil
	}
	var s string
	if !remove {
		var err error
		if s, err = stringValue(path, v); err != nil {
			return err
		}
	}
	switch t {
	case tUserName:
		if strings.TrimSpace(s) == "" {
			return errValue(path, "userName is required")
		}
		r.userName, r.userNameSet = s, true
	case tExternalID:
		r.externalID, r.externalIDSet = s, true
	case tDisplayName:
		r.displayName = s
	case tGivenName:
		r.givenName = s
	case tFamilyName:
		r.familyName = s
	case tSimple:
		if s == "" {
			delete(r.attrs, key)
		} else {
			r.attrs[key] = s
		}
	}
	return nil
}

// emailValue returns the email v sets: a string when the path names a
// value (emails.value, emails[…].value), else a list of email objects of
// which the primary, then the work one, then the first, is kept.
func emailValue(path, sub string, v any) (string, error) {
	if sub != "" {
		return stringValue(path, v)
	}
	list, ok := v.([]any)
	if !ok {
		if m, isMap := v.(map[string]any); isMap {
			list = []any{m}
		} else {
			return stringValue(path, v)
		}
	}
	best, rank := "", -1
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return "", errValue(path, "want email objects")
		}
		value, err := stringValue(path, m["value"])
		if err != nil {
			return "", err
		}
		r := 0
		if t, _ := m["type"].(string); strings.EqualFold(t, "work") {
			r = 1
		}
		if p, err := boolValue(path, m["primary"]); err == nil && p {
			r = 2
		}
		if r > rank && value != "" {
			best, rank = value, r
		}
	}
	return best, nil
}

// setAll applies every attribute of m, a resource or a PATCH value without
// a path, with op. Keys may be attribute paths ("name.givenName", a URN
// followed by a name) or the enterprise URN holding an object.
func (r *userRes) setAll(op string, m map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch {
		case strings.EqualFold(k, "schemas") || strings.EqualFold(k, "meta"):
			continue
		case strings.EqualFold(k, schemaEnterprise) || strings.EqualFold(k, schemaUser):
			obj, ok := v.(map[string]any)
			if !ok {
				return errValue(k, "want an object")
			}
			for _, sk := range slices.Sorted(maps.Keys(obj)) {
				if err := r.set(op, k, sk, "", obj[sk]); err != nil {
					return err
				}
			}
			continue
		}
		ap, err := filter.ParseAttrPath([]byte(k))
		if err != nil {
			// An attribute name of no SCIM grammar names nothing we keep.
			continue
		}
		if err := r.set(op, ap.URI(), ap.AttributeName, ap.SubAttributeName(), v); err != nil {
			return err
		}
	}
	return nil
}

// resourceJSON returns u as a SCIM User resource.
func (h *Handler) userJSON(u userstore.DirectoryUser) map[string]any {
	ext, _ := h.externalID(u.Key.Subject)
	r := fromUser(u, ext)
	out := map[string]any{
		"schemas":  []string{schemaUser},
		"id":       u.ID,
		"userName": r.userName,
		"active":   *r.active,
		"meta": map[string]any{
			"resourceType": "User",
			"created":      u.CreatedAt.UTC().Format(time.RFC3339Nano),
			"lastModified": u.UpdatedAt.UTC().Format(time.RFC3339Nano),
			"location":     h.location("Users", u.ID),
			"version":      userVersion(u),
		},
	}
	if ext != "" {
		out["externalId"] = ext
	}
	if r.displayName != "" {
		out["displayName"] = r.displayName
	}
	name := map[string]any{}
	if r.givenName != "" {
		name["givenName"] = r.givenName
	}
	if r.familyName != "" {
		name["familyName"] = r.familyName
	}
	enterprise := map[string]any{}
	for k, v := range r.attrs {
		switch {
		case k == managerKey:
			enterprise["manager"] = map[string]any{"value": v}
		case strings.HasPrefix(k, schemaUser+":name."):
			name[strings.TrimPrefix(k, schemaUser+":name.")] = v
		case strings.HasPrefix(k, schemaUser+":"):
			out[strings.TrimPrefix(k, schemaUser+":")] = v
		case strings.HasPrefix(k, schemaEnterprise+":"):
			enterprise[strings.TrimPrefix(k, schemaEnterprise+":")] = v
		}
	}
	if len(name) > 0 {
		out["name"] = name
	}
	if r.email != "" {
		out["emails"] = []any{map[string]any{"value": r.email, "type": "work", "primary": true}}
	}
	if len(enterprise) > 0 {
		out["schemas"] = []string{schemaUser, schemaEnterprise}
		out[schemaEnterprise] = enterprise
	}
	return out
}

// userVersion is the weak ETag of u: its update time and status.
func userVersion(u userstore.DirectoryUser) string {
	return fmt.Sprintf(`W/"%x-%d"`, u.UpdatedAt.UnixNano(), u.Status)
}
