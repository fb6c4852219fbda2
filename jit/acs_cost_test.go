package jit_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// TestLoggedReasonBounded: a reason quotes parts of the posted response,
// which an unauthenticated poster chooses; a 200 KB namespace URI once made
// a 200 KB log line. The log line is bounded; the refusal is the same.
func TestLoggedReasonBounded(t *testing.T) {
	h := newHarness(t, harnessConfig{configure: allowIDPInit})
	ns := "urn:x:" + strings.Repeat("é", 100_000)
	doc := `<r:Response xmlns:r="` + ns + `"/>`
	f := jittest.Form{ACS: h.app.URL + "/saml/acs", SAMLResponse: b64(doc)}
	resp, body := h.post(h.client(), f)
	corr := refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrInvalidResponse)
	var line string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, corr) {
			line = l
		}
	}
	require.NotEmpty(t, line)
	assert.Less(t, len(line), 2048, "the log line is bounded")
	assert.Contains(t, line, "root element is")
	assert.Contains(t, line, "…", "the cut is marked")
}
