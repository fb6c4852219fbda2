package scim_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/scim"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// createUser creates a user through conn and returns its id.
func createUser(t *testing.T, s *server, conn connection, externalID, userName string) string {
	t.Helper()
	r := s.do(conn, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "externalId": externalID, "userName": userName,
		"emails": []any{map[string]any{"value": userName, "primary": true}},
	})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	return r.body["id"].(string)
}

func TestTokensAreScopedToTheirConnection(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newServer(t, st.open(t), entra, okta)
			entraUser := createUser(t, s, entra, entraObjectID, "ada@contoso.com")
			oktaUser := createUser(t, s, okta, "00uokta", "bob@initech.com")

			// Each token opens its own connection only.
			requireError(t, s.doToken(entra.name, okta.token, http.MethodGet, "/Users", nil), 401, "")
			requireError(t, s.doToken(okta.name, entra.token, http.MethodGet, "/Users/"+oktaUser, nil), 401, "")
			for _, bad := range []string{"", "Bearer", entra.token[:len(entra.token)-1], strings.ToUpper(entra.token)} {
				r := s.doToken(entra.name, bad, http.MethodGet, "/ServiceProviderConfig", nil)
				requireError(t, r, 401, "")
				assert.Equal(t, `Bearer realm="scim"`, r.header.Get("WWW-Authenticate"))
			}

			// A valid token of one connection cannot read, change or
			// delete the other's records, by id or by filter.
			requireError(t, s.do(okta, http.MethodGet, "/Users/"+entraUser, nil), 404, "")
			requireError(t, s.do(okta, http.MethodPatch, "/Users/"+entraUser, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`), 404, "")
			requireError(t, s.do(okta, http.MethodDelete, "/Users/"+entraUser, nil), 404, "")
			requireError(t, s.do(okta, http.MethodPut, "/Users/"+entraUser, `{"userName":"x"}`), 404, "")
			assert.Empty(t, resources(t, s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "ada@contoso.com" or emails.value eq "ada@contoso.com" or id eq "`+entraUser+`"`), nil)))
			list := resources(t, s.do(okta, http.MethodGet, "/Users", nil))
			require.Len(t, list, 1)
			assert.Equal(t, oktaUser, list[0]["id"])
			// The same externalId at the other connection is another person.
			other := createUser(t, s, okta, entraObjectID, "ada@contoso.com")
			assert.NotEqual(t, entraUser, other)

			// Nor put the other's users in its groups.
			r := s.do(okta, http.MethodPost, "/Groups", map[string]any{"displayName": "g", "members": []any{map[string]any{"value": entraUser}}})
			requireError(t, r, 400, "invalidValue")
			g := s.do(entra, http.MethodPost, "/Groups", map[string]any{"displayName": "g", "members": []any{map[string]any{"value": entraUser}}})
			require.Equal(t, 201, g.status, g.raw)
			requireError(t, s.do(okta, http.MethodGet, "/Groups/"+g.body["id"].(string), nil), 404, "")
			requireError(t, s.do(okta, http.MethodDelete, "/Groups/"+g.body["id"].(string), nil), 404, "")
			assert.Equal(t, userstore.Active, lookupUser(t, s.store, entraIssuer, entraTenant+"/"+entraObjectID).Status)
		})
	}
}

func TestTokenRotation(t *testing.T) {
	store := memstore.New()
	oldToken, oldHash, err := scim.NewToken()
	require.NoError(t, err)
	newToken, newHash, err := scim.NewToken()
	require.NoError(t, err)
	require.Len(t, oldToken, 43)
	tokens := scim.NewTokens(oldHash)
	h, err := scim.New(scim.Options{Store: store, Issuer: oktaIssuer, Subject: scim.PersistentNameID(), Tokens: tokens})
	require.NoError(t, err)
	get := func(token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/Users", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := newRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	require.Equal(t, 200, get(oldToken))
	require.Equal(t, 401, get(newToken))
	tokens.Set(oldHash, newHash) // during the rotation both are valid
	require.Equal(t, 200, get(oldToken))
	require.Equal(t, 200, get(newToken))
	tokens.Set(newHash)
	require.Equal(t, 401, get(oldToken))
	require.Equal(t, 200, get(newToken))
	tokens.Set()
	require.Equal(t, 401, get(newToken), "no token: nothing is accepted")
}

// failingTokens is a TokenSource that fails.
type failingTokens struct{}

func (failingTokens) TokenHashes(context.Context) ([]scim.TokenHash, error) {
	return nil, errors.New("database down")
}

func TestTokenSourceFailureFailsClosed(t *testing.T) {
	h, err := scim.New(scim.Options{Store: memstore.New(), Issuer: oktaIssuer, Subject: scim.PersistentNameID(), Tokens: failingTokens{}})
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/Users", nil)
	req.Header.Set("Authorization", "Bearer anything")
	w := newRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 503, w.Code)
}

func TestLocalAccountsUnreachable(t *testing.T) {
	store := memstore.New()
	local, err := store.Provision(t.Context(), userstore.Key{Issuer: userstore.LocalIssuer, Subject: "root"}, userstore.Profile{Email: "root@app.example"}, epoch)
	require.NoError(t, err)
	_, err = scim.New(scim.Options{Store: store, Issuer: userstore.LocalIssuer, Subject: scim.PersistentNameID(), Tokens: scim.NewTokens()})
	require.ErrorIs(t, err, userstore.ErrLocalAccount)

	s := newServer(t, store, okta)
	requireError(t, s.do(okta, http.MethodGet, "/Users/"+local.User.ID, nil), 404, "")
	requireError(t, s.do(okta, http.MethodDelete, "/Users/"+local.User.ID, nil), 404, "")
	assert.Empty(t, resources(t, s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`emails.value eq "root@app.example"`), nil)))
	assert.Empty(t, resources(t, s.do(okta, http.MethodGet, "/Users", nil)))
	// The local account's subject as externalId keys a user of the
	// connection, not the local account.
	id := createUser(t, s, okta, "root", "root@app.example")
	assert.NotEqual(t, local.User.ID, id)
	assert.Equal(t, userstore.Active, lookupUser(t, store, userstore.LocalIssuer, "root").Status)
}

func TestWritesThatCannotBeKeyedAreRefused(t *testing.T) {
	s := newServer(t, memstore.New(), entra, okta)
	for _, tc := range []struct {
		conn connection
		body string
	}{
		{entra, `{"userName":"ada@contoso.com"}`},
		{entra, `{"userName":"ada@contoso.com","externalId":"ada"}`}, // Entra's default mailNickname
		{entra, `{"userName":"ada@contoso.com","externalId":"ada@contoso.com"}`},
		{okta, `{"userName":"ada@contoso.com","externalId":"   "}`},
		{okta, `{"userName":"ada@contoso.com"}`},
	} {
		requireError(t, s.do(tc.conn, http.MethodPost, "/Users", tc.body), 400, "invalidValue")
	}
	requireError(t, s.do(okta, http.MethodPost, "/Users", `{"externalId":"00u1"}`), 400, "invalidValue")
	assert.Empty(t, resources(t, s.do(okta, http.MethodGet, "/Users", nil)))
	assert.Empty(t, resources(t, s.do(entra, http.MethodGet, "/Users", nil)))
}

func TestErrors(t *testing.T) {
	s := newServer(t, memstore.New(), okta)
	id := createUser(t, s, okta, "00u1", "ada@example.com")
	createUser(t, s, okta, "00u2", "bob@example.com")
	patch := func(ops string) reply {
		return s.do(okta, http.MethodPatch, "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
	}
	for _, tc := range []struct {
		name     string
		r        reply
		status   int
		scimType string
	}{
		{"same externalId again", s.do(okta, http.MethodPost, "/Users", `{"userName":"x@example.com","externalId":"00u1"}`), 409, "uniqueness"},
		{"same userName", s.do(okta, http.MethodPost, "/Users", `{"userName":"ADA@example.com","externalId":"00u3"}`), 409, "uniqueness"},
		{"same email", s.do(okta, http.MethodPost, "/Users", `{"userName":"c@example.com","externalId":"00u3","emails":[{"value":"bob@example.com"}]}`), 409, "uniqueness"},
		{"rename to a taken userName", patch(`[{"op":"replace","path":"userName","value":"bob@example.com"}]`), 409, "uniqueness"},
		{"not JSON", s.do(okta, http.MethodPost, "/Users", `{"userName":`), 400, "invalidSyntax"},
		{"trailing data", s.do(okta, http.MethodPost, "/Users", `{"userName":"a","externalId":"b"} {}`), 400, "invalidSyntax"},
		{"not an object", s.do(okta, http.MethodPost, "/Users", `["userName"]`), 400, "invalidSyntax"},
		{"bad filter", s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq`), nil), 400, "invalidFilter"},
		{"unindexed filter", s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`displayName co "a"`), nil), 400, "invalidFilter"},
		{"or with an unindexed side", s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "a" or title eq "b"`), nil), 400, "invalidFilter"},
		{"filter too long", s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "`+strings.Repeat("a", 1100)+`"`), nil), 400, "invalidFilter"},
		{"filter too complex", s.do(okta, http.MethodGet, "/Users?filter="+url.QueryEscape(strings.Repeat(`userName eq "a" or `, 8)+`userName eq "b"`), nil), 400, "invalidFilter"},
		{"bad count", s.do(okta, http.MethodGet, "/Users?count=x", nil), 400, "invalidValue"},
		{"patch without schema", s.do(okta, http.MethodPatch, "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`), 400, "invalidSyntax"},
		{"unknown op", patch(`[{"op":"move","path":"displayName","value":"x"}]`), 400, "invalidSyntax"},
		{"bad path", patch(`[{"op":"replace","path":"emails[type eq","value":"x"}]`), 400, "invalidPath"},
		{"remove without path", patch(`[{"op":"remove"}]`), 400, "noTarget"},
		{"change externalId", patch(`[{"op":"replace","path":"externalId","value":"00u9"}]`), 400, "mutability"},
		{"active not a boolean", patch(`[{"op":"replace","path":"active","value":"maybe"}]`), 400, "invalidValue"},
		{"userName removed", patch(`[{"op":"remove","path":"userName"}]`), 400, "invalidValue"},
		{"value of the wrong type", patch(`[{"op":"replace","path":"displayName","value":{"a":1}}]`), 400, "invalidValue"},
		{"value filter on a single-valued attribute", patch(`[{"op":"replace","path":"displayName[value eq \"a\"]","value":"x"}]`), 400, "invalidPath"},
		{"unknown user", s.do(okta, http.MethodGet, "/Users/nope", nil), 404, ""},
		{"unknown group", s.do(okta, http.MethodPatch, "/Groups/nope", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`), 404, ""},
		{"group without displayName", s.do(okta, http.MethodPost, "/Groups", `{"externalId":"g"}`), 400, "invalidValue"},
		{"group member unknown", s.do(okta, http.MethodPost, "/Groups", `{"displayName":"g","members":[{"value":"nope"}]}`), 400, "invalidValue"},
	} {
		t.Run(tc.name, func(t *testing.T) { requireError(t, tc.r, tc.status, tc.scimType) })
	}
	// Refused writes wrote nothing.
	u := lookupUser(t, s.store, oktaIssuer, "00u1")
	assert.Equal(t, "ada@example.com", u.Profile.Email)
	assert.Equal(t, userstore.Active, u.Status)
	assert.Len(t, resources(t, s.do(okta, http.MethodGet, "/Users", nil)), 2)
}

func TestBodyIsBounded(t *testing.T) {
	store := memstore.New()
	h, err := scim.New(scim.Options{Store: store, Issuer: oktaIssuer, Subject: scim.PersistentNameID(),
		Tokens: scim.NewTokens(scim.HashToken("t")), MaxBodyBytes: 1024})
	require.NoError(t, err)
	body := `{"userName":"a","externalId":"b","displayName":"` + strings.Repeat("x", 2000) + `"}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "/Users", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer t")
	w := newRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
	_, err = store.Lookup(t.Context(), userstore.Key{Issuer: oktaIssuer, Subject: "b"})
	require.ErrorIs(t, err, userstore.ErrNotFound)

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, "/Users", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set("Content-Type", "text/plain")
	w = newRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusUnsupportedMediaType, w.Code)
}

func TestListPagingAndProjection(t *testing.T) {
	s := newServer(t, sqliteStore(t), okta)
	var ids []string
	for i := range 5 {
		ids = append(ids, createUser(t, s, okta, "00u"+string(rune('a'+i)), string(rune('a'+i))+"@example.com"))
	}
	r := s.do(okta, http.MethodGet, "/Users?startIndex=2&count=2&attributes=userName,name.givenName", nil)
	list := resources(t, r)
	require.Len(t, list, 2)
	assert.Equal(t, 5.0, totalResults(r))
	assert.Equal(t, 2.0, r.body["startIndex"])
	assert.Equal(t, 2.0, r.body["itemsPerPage"])
	assert.Equal(t, ids[1], list[0]["id"])
	assert.Equal(t, ids[2], list[1]["id"])
	assert.Equal(t, []string{"id", "schemas", "userName"}, keys(list[0]), "attributes keeps id and schemas")

	r = s.do(okta, http.MethodGet, "/Users?startIndex=5&count=10&excludedAttributes=emails,meta", nil)
	list = resources(t, r)
	require.Len(t, list, 1)
	assert.NotContains(t, list[0], "emails")
	assert.NotContains(t, list[0], "meta")
	assert.Contains(t, list[0], "userName")

	r = s.do(okta, http.MethodGet, "/Users?count=0", nil)
	assert.Empty(t, resources(t, r))
	assert.Equal(t, 5.0, totalResults(r))

	// and narrows by its indexed side; or unions.
	f := url.QueryEscape(`(userName eq "a@example.com" or externalId eq "00uc") and not (emails.value eq "c@example.com")`)
	list = resources(t, s.do(okta, http.MethodGet, "/Users?filter="+f, nil))
	require.Len(t, list, 1)
	assert.Equal(t, ids[0], list[0]["id"])
	f = url.QueryEscape(`userName eq "b@example.com" or id eq "` + ids[3] + `" or emails.value eq "E@EXAMPLE.COM"`)
	list = resources(t, s.do(okta, http.MethodGet, "/Users?filter="+f+"&startIndex=2", nil))
	require.Len(t, list, 2)
	assert.Equal(t, []any{ids[3], ids[4]}, []any{list[0]["id"], list[1]["id"]})
	f = url.QueryEscape(`userName eq "b@example.com" and active eq true`)
	require.Len(t, resources(t, s.do(okta, http.MethodGet, "/Users?filter="+f, nil)), 1)
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortStrings(out)
}

func TestIfMatch(t *testing.T) {
	s := newServer(t, memstore.New(), okta)
	id := createUser(t, s, okta, "00u1", "ada@example.com")
	get := s.do(okta, http.MethodGet, "/Users/"+id, nil)
	etag := get.header.Get("ETag")
	require.NotEmpty(t, etag)
	require.Equal(t, get.body["meta"].(map[string]any)["version"], etag)

	patch := func(ifMatch, name string) reply {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, s.srv.URL+"/scim/"+okta.name+"/v2/Users/"+id,
			strings.NewReader(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"`+name+`"}]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+okta.token)
		req.Header.Set("If-Match", ifMatch)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return reply{status: resp.StatusCode, header: resp.Header}
	}
	first := patch(etag, "Ada")
	require.Equal(t, 200, first.status)
	require.NotEqual(t, etag, first.header.Get("ETag"), "a write changes the version")
	require.Equal(t, http.StatusPreconditionFailed, patch(etag, "Stale").status, "a stale version is refused")
	require.Equal(t, "Ada", lookupUser(t, s.store, oktaIssuer, "00u1").Profile.DisplayName, "the refused write wrote nothing")
	require.Equal(t, 200, patch("*", "Any").status)
	require.Equal(t, 200, patch(`W/"nope", `+s.do(okta, http.MethodGet, "/Users/"+id, nil).header.Get("ETag"), "Listed").status)
}
