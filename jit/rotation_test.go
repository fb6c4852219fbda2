package jit_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestSessionKeyRotation: instances that put a new key pair first and keep
// the old pair accept the sessions the old pair sealed, and seal new ones
// with the new pair, which instances still on the old pair refuse.
func TestSessionKeyRotation(t *testing.T) {
	oldAuth, newAuth := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 64)
	newEnc := bytes.Repeat([]byte{3}, 32)
	var opts jit.Options
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.SessionKeys = [][]byte{oldAuth, nil}
		opts = *o
	}})
	h.idp().AddUser(person("p-ada", "ada@example.com", "Ada", "Lovelace"))
	c := h.client()
	resp, body := h.signIn(c, "", "p-ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	oldSession := sessionCookie(c, h)
	require.NotEmpty(t, oldSession)

	rotated := opts
	rotated.SessionKeys = [][]byte{newAuth, newEnc, oldAuth, nil}
	mw2, err := jit.New(context.Background(), rotated)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mw2.Close() })

	withCookie := func(v string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, h.app.URL+"/me", nil)
		r.AddCookie(&http.Cookie{Name: jit.DefaultSessionName, Value: v})
		return r
	}
	u, err := mw2.CurrentUser(withCookie(oldSession))
	require.NoError(t, err, "a session sealed with the old pair survives the rotation")
	assert.Equal(t, "p-ada", u.Key.Subject)

	// A session the rotated instance issues is sealed with the new pair:
	// sign in through its ACS (the request cookie, sealed with the old
	// pair by the first instance, is still readable).
	c3 := h.client()
	form := h.respond(c3, "", "p-ada")
	req := httptest.NewRequest(http.MethodPost, form.ACS, strings.NewReader(url.Values{
		"SAMLResponse": {form.SAMLResponse}, "RelayState": {form.RelayState}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range c3.Jar.Cookies(mustURL(form.ACS)) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	mw2.ServeHTTP(rec, req)
	require.Equal(t, http.StatusSeeOther, rec.Code, rec.Body.String())
	var newSession string
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == jit.DefaultSessionName {
			newSession = ck.Value
		}
	}
	require.NotEmpty(t, newSession)
	assert.NotEqual(t, oldSession, newSession)
	_, err = mw2.CurrentUser(withCookie(newSession))
	require.NoError(t, err)
	old, err := jit.New(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = old.Close() })
	_, err = old.CurrentUser(withCookie(newSession))
	require.ErrorIs(t, err, jit.ErrNotSignedIn, "an instance without the new pair cannot read it")
}

// TestSessionKeysComeInPairs: an old authentication key put where the
// pair's encryption key goes is refused at New instead of breaking every
// session at the next rotation.
func TestSessionKeysComeInPairs(t *testing.T) {
	idp := jittest.New(t).Metadata()
	key, cert := spKeyPair()
	for name, keys := range map[string][][]byte{
		"FlatList64":  {bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 64)},
		"ShortAuth":   {bytes.Repeat([]byte{2}, 16)},
		"BadEncSize":  {bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 20)},
		"ShortOldKey": {bytes.Repeat([]byte{2}, 32), nil, bytes.Repeat([]byte{1}, 8)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := jit.New(context.Background(), jit.Options{
				RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(), SessionKeys: keys,
				Connections: []jit.Connection{{IDPMetadata: idp}},
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "SessionKeys[")
		})
	}
}
