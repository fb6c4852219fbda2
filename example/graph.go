package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/entragraph"
)

// checkGraphFlags refuses -graph-… flags that cannot work: they need an
// Entra ID connection, a client ID and exactly one way to give the secret.
func checkGraphFlags(c config) error {
	if c.graphClientID == "" && c.graphClientSecret == "" && c.graphClientSecretFile == "" {
		return nil
	}
	switch {
	case c.graphClientID == "":
		return errors.New("-graph-client-secret and -graph-client-secret-file need -graph-client-id")
	case c.graphClientSecret != "" && c.graphClientSecretFile != "":
		return errors.New("give -graph-client-secret or -graph-client-secret-file, not both")
	case c.graphClientSecret == "" && c.graphClientSecretFile == "":
		return errors.New("-graph-client-id needs -graph-client-secret-file (or -graph-client-secret)")
	case c.preset != claims.PresetEntra || len(c.idpMetadata) == 0:
		return errors.New("the -graph-… flags resolve Entra ID's groups overage: they need -preset entra and -idp-metadata")
	}
	return nil
}

// graphResolver is the Microsoft Graph group resolver the -graph-… flags
// configure, or nil without them. It resolves the groups of people in
// more than 150 groups, for every tenant that has granted the app
// registration admin consent.
func graphResolver(c config) (jit.GroupResolver, error) {
	if c.graphClientID == "" {
		return nil, nil
	}
	secret := c.graphClientSecret
	if c.graphClientSecretFile != "" {
		b, err := os.ReadFile(c.graphClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("-graph-client-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return nil, fmt.Errorf("-graph-client-secret-file %s is empty", c.graphClientSecretFile)
		}
	}
	r, err := entragraph.New(entragraph.Options{Credential: entragraph.Credential{ClientID: c.graphClientID, ClientSecret: secret}})
	if err != nil {
		return nil, err
	}
	return r, nil
}
