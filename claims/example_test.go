package claims_test

import (
	"fmt"
	"strings"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

func ExampleMapping_Map_entra() {
	// In a service provider the Identity comes from claims.FromAssertion
	// on the assertion crewjam/saml has validated.
	id := &claims.Identity{
		Issuer:       "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
		NameID:       "ada@contoso.example", // a UPN: not used as the key
		NameIDFormat: claims.NameIDFormatEmailAddress,
		Attributes: []claims.Attribute{
			{Name: claims.ClaimEntraTenantID, Values: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}},
			{Name: claims.ClaimEntraObjectID, Values: []string{"4f1e6c3a-2b8d-4e71-9a55-0c3f2d1b7e90"}},
			{Name: claims.ClaimEmailAddress, Values: []string{"ada@contoso.example"}},
			{Name: claims.ClaimDisplayName, Values: []string{"Ada Lovelace"}},
			{Name: claims.ClaimGroups, Values: []string{"07dd8a60-bf6d-4e17-8844-230b77145381"}},
			{Name: claims.ClaimRole, Values: []string{"Admin"}},
		},
	}

	key, profile, err := claims.Entra().Map(id)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("issuer: ", key.Issuer)
	fmt.Println("subject:", key.Subject)
	fmt.Println("name:   ", profile.DisplayName)
	fmt.Println("email:  ", profile.Email)
	fmt.Println("groups: ", profile.Groups)
	fmt.Println("roles:  ", profile.Attributes[claims.ClaimRole])
	_, overage := profile.Attributes[claims.ClaimGroupsLink]
	fmt.Println("groups overage:", overage)
	// Output:
	// issuer:  https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/
	// subject: 72f988bf-86f1-41af-91ab-2d7cd011db47/4f1e6c3a-2b8d-4e71-9a55-0c3f2d1b7e90
	// name:    Ada Lovelace
	// email:   ada@contoso.example
	// groups:  [07dd8a60-bf6d-4e17-8844-230b77145381]
	// roles:   [Admin]
	// groups overage: false
}

func ExampleMapperFunc() {
	// A Mapper that starts from a preset and adds a rule of the
	// application: only members of "staff" may be provisioned.
	staffOnly := claims.MapperFunc(func(id *claims.Identity) (userstore.Key, userstore.Profile, error) {
		key, p, err := claims.Generic().Map(id)
		if err != nil {
			return userstore.Key{}, userstore.Profile{}, err
		}
		for _, g := range p.Groups {
			if g == "staff" {
				return key, p, nil
			}
		}
		return userstore.Key{}, userstore.Profile{}, fmt.Errorf("%s is not staff", key)
	})

	for _, groups := range [][]string{{"staff", "math"}, {"students"}} {
		id := &claims.Identity{
			Issuer:       "https://idp.example.edu/idp/shibboleth",
			NameID:       "Xy7+ab9QwErTy0",
			NameIDFormat: claims.NameIDFormatPersistent,
			Attributes: []claims.Attribute{
				{Name: claims.OIDIsMemberOf, FriendlyName: "isMemberOf", Values: groups},
			},
		}
		key, p, err := staffOnly.Map(id)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println("provision", key, strings.Join(p.Groups, ","))
	}
	// Output:
	// provision "https://idp.example.edu/idp/shibboleth"/"Xy7+ab9QwErTy0" staff,math
	// refused: "https://idp.example.edu/idp/shibboleth"/"Xy7+ab9QwErTy0" is not staff
}

func ExamplePreset() {
	m, err := claims.Preset("okta")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Okta sends the username as an unspecified NameID by default; require
	// the email claim too for this application.
	m.Email.Required = true
	_, _, err = m.Map(&claims.Identity{Issuer: "http://www.okta.com/exk1", NameID: "00u1", NameIDFormat: claims.NameIDFormatPersistent})
	fmt.Println(err)

	_, err = claims.Preset("azure")
	fmt.Println(err)
	// Output:
	// claims: required attribute for "email" missing (tried "email")
	// claims: unknown preset "azure" (known: ["adfs" "entra" "generic" "okta"])
}
