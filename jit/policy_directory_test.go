package jit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestSyncKeepsDirectoryAttributes: under every sync rule, a sign-in keeps
// the attributes a provisioning directory wrote (SCIM's department, its
// deletion mark) and writes none from its assertion, while the sign-in's
// own attributes follow the rules as before.
func TestSyncKeepsDirectoryAttributes(t *testing.T) {
	const (
		dept    = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
		mark    = "urn:samljit:scim:deleted"
		claimed = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
	)
	before := &userstore.User{Profile: userstore.Profile{Attributes: map[string][]string{
		dept: {"Engines"}, mark: {"1"}, claimed: {"old-role"},
	}}}
	in := userstore.Profile{Attributes: map[string][]string{
		dept: {"Forged"}, "URN:IETF:PARAMS:SCIM:schemas:core:2.0:User:title": {"Forged"}, claimed: {"new-role"},
	}}
	for _, tc := range []struct {
		name string
		sync map[string]SyncRule
		role []string
	}{
		{"default", nil, []string{"new-role"}},
		{"attributes never", map[string]SyncRule{"attributes": SyncNever}, []string{"old-role"}},
		{"attributes if empty", map[string]SyncRule{"attributes": SyncIfEmpty}, []string{"old-role"}},
		{"groups never", map[string]SyncRule{"groups": SyncNever}, []string{"new-role"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Sync: tc.sync}
			require.NoError(t, checkPolicy(&p))
			out, err := p.apply(before, in, false)
			require.NoError(t, err)
			assert.Equal(t, map[string][]string{dept: {"Engines"}, mark: {"1"}, claimed: tc.role}, out.Attributes)

			created, err := p.apply(nil, in, false)
			require.NoError(t, err)
			assert.NotContains(t, created.Attributes, dept, "an assertion cannot write a directory's attribute")
			if tc.sync["attributes"] != SyncNever {
				assert.Equal(t, []string{"new-role"}, created.Attributes[claimed])
			}
		})
	}
	// With no directory attribute on either side the default is as it was:
	// the assertion's attributes, the stored ones dropped.
	out, err := (&Policy{}).apply(&userstore.User{Profile: userstore.Profile{Attributes: map[string][]string{claimed: {"old"}, "gone": {"x"}}}},
		userstore.Profile{Attributes: map[string][]string{claimed: {"new"}}}, false)
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{claimed: {"new"}}, out.Attributes)
}
