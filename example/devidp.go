package main

import (
	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// devIdP is the built-in development identity provider: two tenants, each
// a real SAML IdP on 127.0.0.1 that signs with its own key. It signs in
// anyone who picks a name, so it only runs when no -idp-metadata is given.
type devIdP struct {
	tenants []devTenant
}

type devTenant struct {
	name, display string
	idp           *jittest.IdP
}

// devPerson is a sample person of a tenant.
type devPerson struct {
	nameID, given, family, email string
	groups                       []string
}

var devTenants = []struct {
	name, display string
	people        []devPerson
}{
	{"acme", "Acme Corp (development IdP)", []devPerson{
		{"acme-0001", "Ada", "Lovelace", "ada@acme.example", []string{"admins", "engineering"}},
		{"acme-0002", "Grace", "Hopper", "grace@acme.example", []string{"engineering"}},
	}},
	{"globex", "Globex (development IdP)", []devPerson{
		{"globex-0001", "Hank", "Scorpio", "hank@globex.example", []string{"admins", "leadership"}},
		{"globex-0002", "Frank", "Grimes", "frank@globex.example", []string{"operations"}},
	}},
}

func startDevIdP(string) (*devIdP, error) {
	d := &devIdP{}
	for _, t := range devTenants {
		// A stable entity ID keeps user keys stable across restarts even
		// though the IdP's port and key are new each run.
		idp, err := jittest.NewServer(jittest.Options{EntityID: "urn:samljit:example:dev-idp:" + t.name})
		if err != nil {
			d.Close()
			return nil, err
		}
		for _, p := range t.people {
			idp.AddUser(p.user())
		}
		d.tenants = append(d.tenants, devTenant{name: t.name, display: t.display, idp: idp})
	}
	return d, nil
}

func (p devPerson) user() jittest.User {
	return jittest.User{
		NameID: p.nameID,
		Attributes: map[string][]string{
			claims.OIDMail:        {p.email},
			claims.OIDGivenName:   {p.given},
			claims.OIDSurname:     {p.family},
			claims.OIDDisplayName: {p.given + " " + p.family},
			claims.OIDIsMemberOf:  p.groups,
		},
	}
}

// connections returns one jit connection per development tenant.
func (d *devIdP) connections() []jit.Connection {
	var cs []jit.Connection
	for _, t := range d.tenants {
		cs = append(cs, jit.Connection{Name: t.name, DisplayName: t.display, IDPMetadata: t.idp.Metadata(), Mapper: claims.Generic()})
	}
	return cs
}

// Close stops the development IdPs.
func (d *devIdP) Close() {
	for _, t := range d.tenants {
		t.idp.Close()
	}
}
