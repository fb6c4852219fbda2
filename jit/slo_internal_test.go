package jit

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPostFormActionIsDestinationOrigin: an HTTP-POST binding page may
// submit its form only to its destination's origin, and only when that is
// an absolute http or https URL; for anything else the page can submit
// nowhere.
func TestPostFormActionIsDestinationOrigin(t *testing.T) {
	for dest, want := range map[string]string{
		"https://idp.example/slo?x=1":  "form-action https://idp.example;",
		"http://127.0.0.1:8080/slo":    "form-action http://127.0.0.1:8080;",
		"ftp://idp.example/slo":        "form-action 'none';",
		"javascript:alert(1)":          "form-action 'none';",
		"/relative/slo":                "form-action 'none';",
		"https:///no-host":             "form-action 'none';",
		"https://idp.example:badport/": "form-action 'none';",
	} {
		w := httptest.NewRecorder()
		writePostForm(w, dest, func(string) []byte { return nil })
		assert.Contains(t, w.Header().Get("Content-Security-Policy"), want, dest)
	}
}
