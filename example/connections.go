package main

import (
	"context"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
)

// storedConnections serves, beside the connections of the command line,
// those kept in the app's database, added while it runs ("samljit
// connections add", or the Set up SSO page). It needs every connection of
// the command line named (tenant=URL, or the development IdP's tenants):
// an unnamed one takes /saml/login, where people say who they are.
func (a *app) storedConnections(opts *jit.Options) {
	for _, c := range opts.Connections {
		if c.Name == "" {
			a.log.Info("connections kept in the database are not served: name the -idp-metadata connection (NAME=URL) to serve them beside it")
			return
		}
	}
	opts.ConnectionStore = a.store
	opts.ConfigureConnection = a.configureStored
}

// configureStored gives a connection kept in the database (added with
// "samljit connections add" or the Set up SSO page) what the example gives
// those of its command line: the roles (members, and the admin group's
// administrators of that connection's users alone) and IdP-initiated
// sign-in when -allow-idp-initiated is set.
func (a *app) configureStored(_ context.Context, _ userstore.Connection, c *jit.Connection) error {
	c.AllowIDPInitiated = a.cfg.allowIDPInitiated
	c.Policy.Roles = jit.RoleMapping{DefaultRoles: []string{"member"}}
	if a.cfg.adminGroup != "" {
		c.Policy.Roles.AdminGroups = []string{a.cfg.adminGroup}
	}
	return nil
}
