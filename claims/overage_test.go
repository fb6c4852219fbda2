package claims_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/claims"
)

// TestGroupsOverage: an overage is the groups.link claim's presence, matched
// by Name, whatever its values; the jit middleware reads "unknown groups"
// from it, so a groups claim alone, or a look-alike name, is no overage.
func TestGroupsOverage(t *testing.T) {
	const link = "https://graph.windows.net/tenant/users/oid/getMemberObjects"
	for _, tc := range []struct {
		name     string
		id       *claims.Identity
		wantLink string
		want     bool
	}{
		{name: "nil identity", id: nil},
		{name: "no attributes", id: &claims.Identity{}},
		{name: "groups, no link", id: &claims.Identity{Attributes: []claims.Attribute{attr(claims.ClaimGroups, "g1")}}},
		{name: "link by FriendlyName only", id: &claims.Identity{Attributes: []claims.Attribute{{Name: "groups.link", FriendlyName: claims.ClaimGroupsLink, Values: []string{link}}}}},
		{name: "link", id: &claims.Identity{Attributes: []claims.Attribute{attr(claims.ClaimGroups, "g1"), attr(claims.ClaimGroupsLink, link)}}, wantLink: link, want: true},
		{name: "link without a value", id: &claims.Identity{Attributes: []claims.Attribute{attr(claims.ClaimGroupsLink)}}, want: true},
		{name: "first of the link's values", id: &claims.Identity{Attributes: []claims.Attribute{attr(claims.ClaimGroupsLink, link, "https://other.example/")}}, wantLink: link, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.id.GroupsOverage()
			assert.Equal(t, tc.want, ok)
			assert.Equal(t, tc.wantLink, got)
		})
	}
}
