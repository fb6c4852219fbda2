package userstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/userstore"
)

// TestRolesMergesBothSources: a user's effective roles are the IdP's and
// the local ones, sorted, without duplicates, whichever source holds more.
func TestRolesMergesBothSources(t *testing.T) {
	for _, tc := range []struct {
		idp, local, want []string
	}{
		{nil, nil, []string{}},
		{[]string{"viewer"}, nil, []string{"viewer"}},
		{nil, []string{"operator"}, []string{"operator"}},
		{[]string{"viewer"}, []string{"auditor", "admin", "viewer"}, []string{"admin", "auditor", "viewer"}},
		{[]string{"viewer", "editor", "viewer"}, []string{"auditor"}, []string{"auditor", "editor", "viewer"}},
	} {
		u := userstore.User{Profile: userstore.Profile{Roles: tc.idp}, LocalRoles: tc.local}
		assert.Equal(t, tc.want, u.Roles(), "IdP roles %v, local roles %v", tc.idp, tc.local)
	}
}
