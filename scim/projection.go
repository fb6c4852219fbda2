package scim

import (
	"net/http"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// maxProjection bounds the attributes one attributes or
// excludedAttributes parameter names.
const maxProjection = 64

// attrRef names an attribute of a resource as its JSON shows it: top is
// the key of the resource's object (an extension's URN for its
// attributes), sub the key within it, or "".
type attrRef struct{ top, sub string }

// projection is a request's attributes and excludedAttributes (RFC 7644
// §3.4.2.5).
type projection struct{ include, exclude []attrRef }

// readProjection reads the attributes and excludedAttributes parameters.
func readProjection(r *http.Request) (projection, error) {
	var p projection
	var err error
	q := r.URL.Query()
	if p.include, err = parseRefs(q.Get("attributes")); err != nil {
		return p, err
	}
	p.exclude, err = parseRefs(q.Get("excludedAttributes"))
	return p, err
}

// parseRefs parses a comma-separated list of attribute paths.
func parseRefs(s string) ([]attrRef, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	items := strings.Split(s, ",")
	if len(items) > maxProjection {
		return nil, badRequest(scimInvalidValue, "more than %d attributes", maxProjection)
	}
	refs := make([]attrRef, 0, len(items))
	for _, item := range items {
		item = strings.TrimSpace(item)
		if strings.EqualFold(item, schemaEnterprise) {
			refs = append(refs, attrRef{top: schemaEnterprise})
			continue
		}
		ap, err := filter.ParseAttrPath([]byte(item))
		if err != nil {
			return nil, badRequest(scimInvalidValue, "attribute %q does not parse", truncate(item, 64))
		}
		switch uri := ap.URI(); {
		case uri == "" || strings.EqualFold(uri, schemaUser) || strings.EqualFold(uri, schemaGroup):
			refs = append(refs, attrRef{top: ap.AttributeName, sub: ap.SubAttributeName()})
		default:
			refs = append(refs, attrRef{top: uri, sub: ap.AttributeName})
		}
	}
	return refs, nil
}

// lookupKey returns the key of m equal to name without case, or "".
func lookupKey(m map[string]any, name string) string {
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

// omits reports whether p leaves out the top-level attribute name.
func (p projection) omits(name string) bool {
	for _, ref := range p.exclude {
		if ref.sub == "" && strings.EqualFold(ref.top, name) {
			return true
		}
	}
	if len(p.include) == 0 {
		return false
	}
	for _, ref := range p.include {
		if strings.EqualFold(ref.top, name) {
			return false
		}
	}
	return true
}

// apply returns m with only the attributes p includes (id and schemas
// always), less those it excludes.
func (p projection) apply(m map[string]any) map[string]any {
	if len(p.include) > 0 {
		out := map[string]any{"id": m["id"], "schemas": m["schemas"]}
		for _, ref := range p.include {
			k := lookupKey(m, ref.top)
			if k == "" {
				continue
			}
			if ref.sub == "" {
				out[k] = m[k]
				continue
			}
			switch v := m[k].(type) {
			case map[string]any:
				if sk := lookupKey(v, ref.sub); sk != "" {
					o, _ := out[k].(map[string]any)
					if o == nil {
						o = map[string]any{}
					}
					o[sk] = v[sk]
					out[k] = o
				}
			case []any:
				var list []any
				for _, e := range v {
					if em, ok := e.(map[string]any); ok {
						if sk := lookupKey(em, ref.sub); sk != "" {
							list = append(list, map[string]any{sk: em[sk]})
						}
					}
				}
				if list != nil {
					out[k] = list
				}
			}
		}
		m = out
	}
	for _, ref := range p.exclude {
		k := lookupKey(m, ref.top)
		if k == "" || strings.EqualFold(k, "id") || strings.EqualFold(k, "schemas") {
			continue
		}
		if ref.sub == "" {
			delete(m, k)
			continue
		}
		if v, ok := m[k].(map[string]any); ok {
			if sk := lookupKey(v, ref.sub); sk != "" {
				c := make(map[string]any, len(v))
				for kk, vv := range v {
					if kk != sk {
						c[kk] = vv
					}
				}
				m[k] = c
			}
		}
	}
	return m
}

// itoa formats i.
func itoa(i int) string { return strconv.Itoa(i) }
