package jit_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
)

// TestFailurePageLastsTenMinutes: the failure page of a refused sign-in
// can be reloaded for ten minutes, to the second, and is gone after.
func TestFailurePageLastsTenMinutes(t *testing.T) {
	var mu sync.Mutex
	t0 := time.Now().Truncate(time.Second)
	now := t0
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	}})
	u := person("p-t", "t@example.com", "T", "R")
	u.NameIDFormat = claims.NameIDFormatTransient
	h.idp().AddUser(u)
	c := noRedirects(h)
	resp, body := h.post(c, h.respond(c, "", "p-t"))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	page := h.app.URL + resp.Header.Get("Location")
	for after, status := range map[time.Duration]int{
		10*time.Minute - time.Second: http.StatusForbidden,
		10 * time.Minute:             http.StatusGone,
	} {
		mu.Lock()
		now = t0.Add(after)
		mu.Unlock()
		resp, body := get(t, c, page)
		assert.Equal(t, status, resp.StatusCode, "%s after the refusal: %s", after, body)
	}
}

// TestFailurePageKeepsAnInvalidResponsesKind: the failure page of a
// response refused as invalid (here its signed assertion was altered)
// still tells, with errors.Is, that it was ErrInvalidResponse: the first
// of the kinds a sealed failure remembers.
func TestFailurePageKeepsAnInvalidResponsesKind(t *testing.T) {
	var mu sync.Mutex
	var seen []*jit.Failure
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.RenderError = func(w http.ResponseWriter, _ *http.Request, f *jit.Failure) {
			mu.Lock()
			seen = append(seen, f)
			mu.Unlock()
			w.WriteHeader(f.Status)
		}
	}})
	h.idp().AddUser(person("p-t", "t@example.com", "T", "R"))
	c := h.client()
	f := h.respond(c, "", "p-t")
	raw, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
	require.NoError(t, err)
	altered := strings.Replace(string(raw), "t@example.com", "u@example.com", 1)
	require.NotEqual(t, string(raw), altered)
	f.SAMLResponse = base64.StdEncoding.EncodeToString([]byte(altered))
	resp, _ := h.post(c, f)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1, "the failure page, after the redirect")
	assert.ErrorIs(t, seen[0].Err, jit.ErrInvalidResponse)
	assert.Equal(t, h.lastEvent().CorrelationID, seen[0].CorrelationID)
}
