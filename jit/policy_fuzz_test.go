package jit

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/samljit/samljit/userstore"
)

// FuzzPolicyApply checks the sync rules and role derivation against their
// definitions for arbitrary stored and asserted profiles.
func FuzzPolicyApply(f *testing.F) {
	f.Add("old@example.com", "new@example.com", "g-eng\ng-admin", "g-admin\ng-admin\n", uint8(0), false, true)
	f.Add("", "new@example.com", "", "g-eng", uint8(1), true, true)
	f.Add("old@example.com", "", "g-eng", "", uint8(2), false, false)
	f.Add("x", "y", "a\nb", "b\nc", uint8(3), true, true)
	rm := RoleMapping{
		GroupRoles:   map[string][]string{"g-eng": {"editor"}, "b": {"b-role", "editor"}},
		AdminGroups:  []string{"g-admin"},
		DefaultRoles: []string{"viewer"},
	}
	f.Fuzz(func(t *testing.T, oldEmail, newEmail, oldGroups, newGroups string, rule uint8, overage, exists bool) {
		r := SyncRule(rule % 4)
		p := Policy{Sync: map[string]SyncRule{fieldEmail: r, fieldGroups: r}, Roles: rm}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		var before *userstore.User
		if exists {
			before = &userstore.User{Profile: userstore.Profile{Email: oldEmail, Groups: split(oldGroups), Roles: []string{"stale"}}}
		}
		in := userstore.Profile{Email: newEmail, Groups: split(newGroups)}
		out, err := p.apply(before, in, overage)
		switch {
		case err != nil && !exists && overage && errors.Is(err, ErrGroupsOverage):
			return // a first sign-in whose group-based roles cannot be known
		case err != nil:
			t.Fatalf("apply: %v", err)
		}
		wantEmail := newEmail
		switch {
		case r == SyncNever && !exists:
			wantEmail = ""
		case r == SyncNever, exists && r == SyncOnCreate, exists && r == SyncIfEmpty && oldEmail != "":
			wantEmail = oldEmail
		}
		if out.Email != wantEmail {
			t.Fatalf("rule %s exists %v: email %q, want %q", r, exists, out.Email, wantEmail)
		}
		if overage {
			// Unknown groups keep nothing: only the default roles.
			if out.Groups != nil || !slices.Equal(out.Roles, rm.roles(nil)) {
				t.Fatalf("overage kept groups or group-derived roles: %q %q", out.Groups, out.Roles)
			}
			return
		}
		if want := rm.roles(out.Groups); !slices.Equal(out.Roles, want) {
			t.Fatalf("roles %q, want %q derived from %q", out.Roles, want, out.Groups)
		}
		if !slices.IsSorted(out.Roles) || !slices.Contains(out.Roles, "viewer") {
			t.Fatalf("roles %q not sorted or missing the default", out.Roles)
		}
	})
}
