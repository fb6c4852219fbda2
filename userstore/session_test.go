package userstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/userstore"
)

// TestSessionValidate: a session ID has 1 to 128 bytes, and a session
// ends after it begins and belongs to a whole key.
func TestSessionValidate(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ok := userstore.Session{ID: "s", Key: userstore.Key{Issuer: "https://idp.example", Subject: "ada"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	assert.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		change func(s *userstore.Session)
		valid  bool
	}{
		"128-byte ID":      {func(s *userstore.Session) { s.ID = strings.Repeat("a", 128) }, true},
		"129-byte ID":      {func(s *userstore.Session) { s.ID = strings.Repeat("a", 129) }, false},
		"empty ID":         {func(s *userstore.Session) { s.ID = "" }, false},
		"ends as it began": {func(s *userstore.Session) { s.ExpiresAt = s.CreatedAt }, false},
		"no subject":       {func(s *userstore.Session) { s.Key.Subject = "" }, false},
	} {
		s := ok
		tc.change(&s)
		if tc.valid {
			assert.NoError(t, s.Validate(), name)
		} else {
			assert.Error(t, s.Validate(), name)
		}
	}
}
