package scim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestCursorPaging pages through a connection's users and groups with RFC
// 9865's cursor on each store: every resource once, in order, a nextCursor
// until the last page, the other connection's resources never, a user
// created meanwhile at the end; and refuses a cursor it did not give.
func TestCursorPaging(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			s := newServer(t, store, okta, entra)
			for i := range 7 {
				// Pairs share a creation time, so that the id orders them.
				put, err := store.PutUser(t.Context(), userstore.Key{Issuer: oktaIssuer, Subject: fmt.Sprint("00u", i)},
					epoch.Add(time.Duration(i/2)*time.Minute), func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
						return fmt.Sprintf("u%d@initech.example", i), userstore.Profile{}, nil
					})
				require.NoError(t, err)
				require.NotEmpty(t, put.User.ID)
			}
			var want []string
			listed, _, err := store.ListUsers(t.Context(), oktaIssuer, 0, 100)
			require.NoError(t, err)
			for _, u := range listed {
				want = append(want, u.ID)
			}
			require.Len(t, want, 7)
			_, err = store.PutUser(t.Context(), userstore.Key{Issuer: entraIssuer, Subject: entraTenant + "/" + entraObjectID}, epoch,
				func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
					return "ada@contoso.com", userstore.Profile{}, nil
				})
			require.NoError(t, err)
			r := s.do(okta, "GET", "/ServiceProviderConfig", nil)
			assert.Equal(t, true, r.body["pagination"].(map[string]any)["cursor"])

			walk := func(path string, count int) (ids []string, pages int) {
				t.Helper()
				cursor := ""
				for pages = 1; pages < 20; pages++ {
					r := s.do(okta, "GET", path+"?count="+fmt.Sprint(count)+"&cursor="+url.QueryEscape(cursor), nil)
					require.Equal(t, http.StatusOK, r.status, r.raw)
					assert.NotContains(t, r.body, "startIndex", "a cursor page has no startIndex")
					for _, res := range resources(t, r) {
						ids = append(ids, res["id"].(string))
					}
					next, ok := r.body["nextCursor"].(string)
					if !ok {
						return ids, pages
					}
					require.Len(t, resources(t, r), count, "a page before the last is full")
					cursor = next
				}
				t.Fatal("the pages did not end")
				return nil, 0
			}
			ids, pages := walk("/Users", 3)
			assert.Equal(t, want, ids, "every user of the connection once, in the order of creation then id")
			assert.Equal(t, 3, pages)
			ids, pages = walk("/Users", 7)
			assert.Equal(t, want, ids)
			assert.Equal(t, 1, pages, "no nextCursor when no user follows")
			ids, _ = walk("/Users", 1)
			assert.Equal(t, want, ids)

			// A user created while a client pages comes at the end.
			r = s.do(okta, "GET", "/Users?count=3&cursor=", nil)
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, 7.0, r.body["totalResults"], "the other connection's user is not counted")
			next := r.body["nextCursor"].(string)
			late, err := store.PutUser(t.Context(), userstore.Key{Issuer: oktaIssuer, Subject: "00ulate"}, epoch.Add(time.Hour),
				func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
					return "late@initech.example", userstore.Profile{}, nil
				})
			require.NoError(t, err)
			r = s.do(okta, "GET", "/Users?count=100&cursor="+url.QueryEscape(next), nil)
			require.Equal(t, http.StatusOK, r.status)
			rest := resources(t, r)
			require.Len(t, rest, 5)
			assert.Equal(t, late.User.ID, rest[4]["id"])
			assert.NotContains(t, r.body, "nextCursor")

			// A filter pages the same way, in the same order.
			var picked []string
			for _, u := range listed {
				if u.UserName == "u0@initech.example" || u.UserName == "u5@initech.example" {
					picked = append(picked, u.ID)
				}
			}
			require.Len(t, picked, 2)
			r = s.do(okta, "GET", "/Users?count=1&cursor=&filter="+url.QueryEscape(`userName eq "u0@initech.example" or userName eq "u5@initech.example"`), nil)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Len(t, resources(t, r), 1)
			assert.Equal(t, picked[0], resources(t, r)[0]["id"])
			assert.Equal(t, 2.0, r.body["totalResults"])
			r = s.do(okta, "GET", "/Users?count=1&filter="+url.QueryEscape(`userName eq "u0@initech.example" or userName eq "u5@initech.example"`)+
				"&cursor="+url.QueryEscape(r.body["nextCursor"].(string)), nil)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			assert.Equal(t, picked[1], resources(t, r)[0]["id"])
			assert.NotContains(t, r.body, "nextCursor")

			// Groups, and a cursor this server did not give.
			for i := range 3 {
				r := s.do(okta, "POST", "/Groups", map[string]any{"displayName": fmt.Sprint("g", i)})
				require.Equal(t, http.StatusCreated, r.status, r.raw)
			}
			ids, _ = walk("/Groups", 2)
			assert.Len(t, ids, 3)
			for _, bad := range []string{"not base64!", "bm90LWEta2V5", "MTIz"} {
				requireError(t, s.do(okta, "GET", "/Users?cursor="+url.QueryEscape(bad), nil), http.StatusBadRequest, "invalidCursor")
			}
			requireError(t, s.do(okta, "GET", "/Users?cursor=&startIndex=2", nil), http.StatusBadRequest, "invalidValue")
			r = s.do(entra, "GET", "/Users?cursor=", nil)
			require.Equal(t, http.StatusOK, r.status)
			assert.Len(t, resources(t, r), 1, "the other connection's users only")
		})
	}
}
