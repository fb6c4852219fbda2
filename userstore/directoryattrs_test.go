package userstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/userstore"
)

func TestIsDirectoryAttribute(t *testing.T) {
	for name, want := range map[string]bool{
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": true,
		"urn:ietf:params:scim:schemas:core:2.0:User:title":                      true,
		"URN:IETF:PARAMS:SCIM:schemas:core:2.0:User:title":                      true, // URNs' prefix is case-insensitive
		"urn:samljit:scim:deleted":                                              true,
		"urn:ietf:params:scim":                                                  false,
		"urn:ietf:params:scim:":                                                 true, // the prefix itself is under it
		"urn:samljit:scim:":                                                     true,
		"urn:oid:2.5.4.11":                                                      false,
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/role":          false,
		"":     false,
		"scim": false,
	} {
		assert.Equal(t, want, userstore.IsDirectoryAttribute(name), "%q", name)
	}
}
