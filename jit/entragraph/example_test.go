package entragraph_test

import (
	"context"
	"errors"
	"log"
	"os"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/entragraph"
)

// A multi-tenant app registration with a client secret resolves the
// groups overage of every Entra ID connection whose tenant has granted it
// admin consent. The resolver is the connections' Policy.GroupResolver;
// people in more than 150 groups then get the same roles as everyone
// else, and any failure refuses their sign-in with a 503.
func ExampleNew() {
	graph, err := entragraph.New(entragraph.Options{
		Credential: entragraph.Credential{
			ClientID:     "5f0e8c2a-7d41-4b6e-9a35-0c2d1e4f6a8b",
			ClientSecret: os.Getenv("GRAPH_CLIENT_SECRET"),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	conn := jit.Connection{
		Name:           "contoso",
		IDPMetadataURL: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/federationmetadata/2007-06/federationmetadata.xml",
		Mapper:         claims.Entra(),
		Policy: jit.Policy{
			Roles: jit.RoleMapping{
				GroupRoles:     map[string][]string{"5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69": {"editor"}},
				RequiredGroups: []string{"5e0f4a9c-2b9e-4c1e-9a3b-1f2d3c4b5a69"},
			},
			GroupResolver: graph,
		},
	}
	_ = conn // passed in jit.Options.Connections
}

// MemberGroups can also be called directly, for instance by a job that
// refreshes roles between sign-ins. A tenant that has not consented
// answers with a ConsentError naming the URL its administrator must visit.
func ExampleResolver_MemberGroups() {
	graph, err := entragraph.New(entragraph.Options{
		Credential: entragraph.Credential{ClientID: "5f0e8c2a-7d41-4b6e-9a35-0c2d1e4f6a8b", ClientSecret: os.Getenv("GRAPH_CLIENT_SECRET")},
	})
	if err != nil {
		log.Fatal(err)
	}
	groups, err := graph.MemberGroups(context.Background(), "72f988bf-86f1-41af-91ab-2d7cd011db47", "0d9a7c4e-1b2f-4e3a-8c5d-6f7e8a9b0c1d")
	var consent *entragraph.ConsentError
	switch {
	case errors.As(err, &consent):
		log.Printf("ask an administrator of tenant %s to grant consent at %s", consent.Tenant, consent.URL)
	case err != nil:
		log.Printf("groups unknown, try later: %v", err)
	default:
		log.Printf("%d groups", len(groups))
	}
}
