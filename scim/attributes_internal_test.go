package scim

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/userstore"
)

// TestAttributesAreTheDirectorys: every Profile.Attributes key the handler
// writes is one userstore.IsDirectoryAttribute names, so that a sign-in
// keeps it under any sync rule (jit cannot import this package to ask).
func TestAttributesAreTheDirectorys(t *testing.T) {
	keys := []string{managerKey, detachedKey, coreKey("title"), coreKey("userType"), nameKey("formatted"), nameKey("middleName")}
	for _, name := range simpleEnterprise {
		keys = append(keys, enterpriseKey(name))
	}
	for _, k := range keys {
		assert.True(t, userstore.IsDirectoryAttribute(k), "%q", k)
		if k != detachedKey {
			assert.True(t, managedKey(k), "%q", k)
		}
	}
}
