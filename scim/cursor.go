package scim

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Cursor paging (RFC 9865): a list request with a cursor parameter (empty
// for the first page) is answered with at most count resources and, when
// more follow, a nextCursor that the next request passes back. The cursor
// is the key of the page's last resource (its creation time and id), so
// that the store reads the next page as a range of its index, at the same
// cost however far the client has paged, where a startIndex skips rows. A
// resource created while a client pages comes last, and none comes twice.
// It is offered when the store is a userstore.DirectoryPager.

// scimInvalidCursor is RFC 9865's scimType for a cursor the service
// provider cannot read.
const scimInvalidCursor = "invalidCursor"

// maxCursor bounds a cursor's length: a time and an ID.
const maxCursor = 512

// pager returns list bound to h's store when the store is a
// userstore.DirectoryPager, and nil when it is not.
func pager[T any](h *Handler, list func(p userstore.DirectoryPager, ctx context.Context, k userstore.PageKey, limit int) ([]T, error)) func(context.Context, userstore.PageKey, int) ([]T, error) {
	p, ok := h.store.(userstore.DirectoryPager)
	if !ok {
		return nil
	}
	return func(ctx context.Context, k userstore.PageKey, limit int) ([]T, error) { return list(p, ctx, k, limit) }
}

// encodeCursor returns the cursor of the page that follows k.
func encodeCursor(k userstore.PageKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(k.CreatedAt.UnixNano(), 10) + "." + k.ID))
}

// decodeCursor reads a cursor; "" is the first page's.
func decodeCursor(s string) (userstore.PageKey, error) {
	if s == "" {
		return userstore.PageKey{}, nil
	}
	bad := badRequest(scimInvalidCursor, "the cursor is not one this service provider gave")
	if len(s) > maxCursor {
		return userstore.PageKey{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return userstore.PageKey{}, bad
	}
	nanos, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil || id == "" {
		return userstore.PageKey{}, bad
	}
	return userstore.PageKey{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}

// serveCursor serves a list request that has a cursor parameter, of page
// size p.count, projected by proj (both read by serveResources). When
// filtered, all are the resources the filter selected, in order; else the
// page is read with res.after and the total with list.
func serveCursor[T any](w http.ResponseWriter, r *http.Request, res resources[T], p page, proj projection, all []T, filtered bool, toJSON func(T) map[string]any,
	list func(ctx context.Context, offset, limit int) ([]T, int, error)) error {
	q := r.URL.Query()
	if res.after == nil {
		return badRequest(scimInvalidCursor, "cursor paging is not supported: use startIndex")
	}
	if q.Has("startIndex") {
		return badRequest(scimInvalidValue, "startIndex and cursor cannot be given together")
	}
	after, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	var items []T
	var total int
	switch {
	case filtered:
		total = len(all)
		if i := slices.IndexFunc(all, func(t T) bool { k := res.key(t); return after.After(k.CreatedAt, k.ID) }); i >= 0 {
			items = all[i:min(len(all), i+p.count+1)]
		}
	default:
		if _, total, err = list(r.Context(), 0, 0); err != nil {
			return err
		}
		if p.count > 0 {
			if items, err = res.after(r.Context(), after, p.count+1); err != nil {
				return err
			}
		}
	}
	body := map[string]any{"schemas": []string{schemaList}, "totalResults": total}
	if p.count > 0 && len(items) > p.count {
		items = items[:p.count]
		body["nextCursor"] = encodeCursor(res.key(items[len(items)-1]))
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, proj.apply(toJSON(it)))
	}
	body["itemsPerPage"], body["Resources"] = len(out), out
	writeJSON(w, http.StatusOK, body)
	return nil
}
