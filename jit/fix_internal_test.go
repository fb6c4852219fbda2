package jit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/claims"
)

// TestSentNamesListsTwelve: a fix names up to twelve of the attributes the
// IdP sent, each once, and counts the rest.
func TestSentNamesListsTwelve(t *testing.T) {
	identity := func(n int) *claims.Identity {
		id := &claims.Identity{}
		for i := range n {
			a := claims.Attribute{Name: fmt.Sprintf("a%d", i)}
			id.Attributes = append(id.Attributes, a, a)
		}
		return id
	}
	names := func(n int) string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("a%d", i))
		}
		return strings.Join(out, ", ")
	}
	assert.Equal(t, "", sentNames(identity(0)))
	assert.Equal(t, " (the IdP sent a0)", sentNames(identity(1)))
	assert.Equal(t, " (the IdP sent "+names(12)+")", sentNames(identity(12)))
	assert.Equal(t, " (the IdP sent "+names(12)+" and 1 more)", sentNames(identity(13)))
}
