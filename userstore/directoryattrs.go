package userstore

import "strings"

// directoryAttributePrefixes begin the names of the attributes a
// provisioning directory owns: SCIM's schemas (RFC 7643's URNs, under
// which package scim keeps the enterprise extension and the core
// attributes the profile has no field for) and samljit's own SCIM marks.
var directoryAttributePrefixes = []string{"urn:ietf:params:scim:", "urn:samljit:scim:"}

// IsDirectoryAttribute reports whether the Profile.Attributes entry name
// is owned by a provisioning directory (SCIM) rather than by sign-ins.
// A sign-in neither writes nor removes such an entry, whatever its sync
// rules: its assertion says nothing about it, so a SCIM-provisioned
// user's department or manager survives their sign-ins, and no claim can
// forge one.
func IsDirectoryAttribute(name string) bool {
	for _, p := range directoryAttributePrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}
