package userstore_test

import (
	"encoding/json"
	"fmt"

	"github.com/samljit/samljit/userstore"
)

// A user's effective roles are the IdP-derived ones, re-derived at every
// sign-in, and those granted in the application, which no sign-in touches.
func ExampleUser_Roles() {
	u := userstore.User{
		Profile:    userstore.Profile{Roles: []string{"viewer", "editor"}},
		LocalRoles: []string{"auditor", "viewer"},
	}
	fmt.Println(u.Roles(), u.HasRole("auditor"), u.HasRole("admin"))
	// Output: [auditor editor viewer] true false
}

// In a multi-tenant application, a role derived from a customer's groups is
// only as trustworthy as that customer's IdP: it grants rights within the
// user's own connection. Rights across connections come from a local
// grant, which no IdP can assert.
func ExampleUser_HasLocalRole() {
	tenantAdmin := userstore.User{
		Key:     userstore.Key{Issuer: "https://idp.globex.example", Subject: "hank"},
		Profile: userstore.Profile{Roles: []string{"admin"}}, // from globex's groups
	}
	operator := userstore.User{LocalRoles: []string{"operator"}}
	fmt.Println(tenantAdmin.HasIdPRole("admin"), tenantAdmin.HasLocalRole("admin"), tenantAdmin.HasRole("admin"))
	fmt.Println(operator.HasLocalRole("operator"), operator.HasIdPRole("operator"))
	// Output:
	// true false true
	// true false
}

// Stores compare emails with only ASCII letters folded: a look-alike with
// the Kelvin sign is another address.
func ExampleNormalizeEmail() {
	fmt.Println(userstore.NormalizeEmail("  Ada@Example.COM "))
	fmt.Println(userstore.NormalizeEmail("\u212Ate@example.com") == userstore.NormalizeEmail("kate@example.com"))
	// Output:
	// ada@example.com
	// false
}

// A store's LookupSessionLazy returns a LazyUser: the ID, key and status
// at once, the lists decoded by the first call of User, once. A store
// builds it from what it read, as here from a JSON column.
func ExampleNewLazyUser() {
	column := `["engineers","admins"]`
	decoded := 0
	head := userstore.User{ID: "u1", Key: userstore.Key{Issuer: "https://idp.example", Subject: "ada"}}
	lu := userstore.NewLazyUser(head, func(u *userstore.User) error {
		decoded++
		return json.Unmarshal([]byte(column), &u.Profile.Groups)
	})
	fmt.Println(lu.ID(), lu.Status(), decoded)
	for range 2 {
		u, err := lu.User()
		fmt.Println(u.Profile.Groups, err, decoded)
	}
	// Output:
	// u1 active 0
	// [engineers admins] <nil> 1
	// [engineers admins] <nil> 1
}
