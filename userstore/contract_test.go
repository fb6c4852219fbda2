package userstore_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestStoreIsNarrow fails if anyone widens userstore.Store. The sign-in path
// accepts only a Store, so every method added to it becomes something a
// SAML assertion can reach. Deleting, suspending or reactivating a user
// belongs on userstore.Admin.
func TestStoreIsNarrow(t *testing.T) {
	typ := reflect.TypeOf((*userstore.Store)(nil)).Elem()
	var names []string
	for i := range typ.NumMethod() {
		names = append(names, typ.Method(i).Name)
	}
	require.Equal(t, 2, typ.NumMethod(), "userstore.Store has methods %v", names)
	require.Equal(t, []string{"Lookup", "Provision"}, names)
}

// TestProfileHasNoStatus fails if Profile gains a field that looks like a
// status. A Profile is what a sign-in writes, and no claim may suspend or
// reactivate anyone.
func TestProfileHasNoStatus(t *testing.T) {
	typ := reflect.TypeOf(userstore.Profile{})
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		for _, bad := range []string{"Status", "Suspend", "Disabled", "Active", "Deleted"} {
			require.NotContains(t, strings.ToLower(name), strings.ToLower(bad),
				"userstore.Profile has field %s: a sign-in must not control a user's status", name)
		}
	}
}

// TestSignInSideCannotDeprovision fails if any interface the sign-in path
// may use (Store and the optional ones it discovers) gains a method that
// deletes, suspends or reactivates a user. Those belong on Admin only.
func TestSignInSideCannotDeprovision(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeOf((*userstore.Store)(nil)).Elem(),
		reflect.TypeOf((*userstore.ReplayCache)(nil)).Elem(),
		reflect.TypeOf((*userstore.SignInStore)(nil)).Elem(),
		reflect.TypeOf((*userstore.SignInWithStore)(nil)).Elem(),
		reflect.TypeOf((*userstore.Linker)(nil)).Elem(),
		reflect.TypeOf((*userstore.Sessions)(nil)).Elem(),
		// A directory that may change status (SCIM) is given an Admin
		// for it, so that the permission shows in the types it asks for.
		reflect.TypeOf((*userstore.Directory)(nil)).Elem(),
	} {
		for i := range typ.NumMethod() {
			name := strings.ToLower(typ.Method(i).Name)
			for _, bad := range []string{"delete", "remove", "suspend", "activate", "disable", "enable", "status", "grant", "revoke"} {
				require.NotContains(t, name, bad, "userstore.%s.%s: the sign-in side must not change a user's status or existence", typ.Name(), typ.Method(i).Name)
			}
		}
	}
}

// TestNormalizeEmailFoldsExactlyASCIIUpperCase: every ASCII capital, the
// first and last of the range among them, is lowered wherever it stands,
// and nothing next to the range is.
func TestNormalizeEmailFoldsExactlyASCIIUpperCase(t *testing.T) {
	for in, want := range map[string]string{
		"Zed@example.com":      "zed@example.com",
		"Ada@example.com":      "ada@example.com",
		"aZ@eXample.cOm":       "az@example.com",
		"zA@EXAMPLE.COM":       "za@example.com",
		"xAZ@example.com":      "xaz@example.com",
		"@[`{@example.com":     "@[`{@example.com",
		"a@[`{@example.com":    "a@[`{@example.com",
		"Q@example.com ZZ":     "q@example.com zz",
		"\u212Ate@example.com": "\u212Ate@example.com",
	} {
		if got := userstore.NormalizeEmail(in); got != want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGroupDirectoryCannotChangeStatus fails if userstore.GroupDirectory
// gains a method that suspends, reactivates or deletes a user, or grants
// local roles: it may delete groups, and write members' groups and
// IdP-derived roles, nothing more.
func TestGroupDirectoryCannotChangeStatus(t *testing.T) {
	typ := reflect.TypeOf((*userstore.GroupDirectory)(nil)).Elem()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if name == "DeleteGroup" {
			continue
		}
		for _, bad := range []string{"delete", "remove", "suspend", "activate", "disable", "enable", "status", "grant", "revoke"} {
			require.NotContains(t, strings.ToLower(name), bad, "userstore.GroupDirectory.%s", name)
		}
	}
}
