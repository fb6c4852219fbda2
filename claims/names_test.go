package claims_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/claims"
)

func TestKnownName(t *testing.T) {
	for name, want := range map[string]string{
		claims.OIDMail:                     "mail",
		claims.OIDGivenName:                "givenName",
		claims.OIDIsMemberOf:               "isMemberOf",
		"urn:oid:1.3.6.1.4.1.5923.1.1.1.6": "eduPersonPrincipalName",
		claims.ClaimEntraObjectID:          "objectidentifier",
		"urn:oid:9.9.9":                    "",
		"mail":                             "",
		"":                                 "",
	} {
		assert.Equal(t, want, claims.KnownName(name), name)
	}
}
