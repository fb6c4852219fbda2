package userstore_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/samljit/samljit/userstore"
)

// TestEmailDomainIsWhatFollowsTheLastAt: the domain of an address is what
// follows its last "@", lower-cased, without surrounding space or a
// trailing dot; an address with nothing before or after the "@", or
// whose domain is not a valid one, has none.
func TestEmailDomainIsWhatFollowsTheLastAt(t *testing.T) {
	for email, want := range map[string]string{
		"ada@contoso.example":       "contoso.example",
		"a@b.example":               "b.example",
		" Ada@CONTOSO.example. ":    "contoso.example",
		"\"a@b\"@c.example":         "c.example",
		"ada@xn--bcher-kva.example": "xn--bcher-kva.example",
		"ada@":                      "",
		"ada@.":                     "",
		"@contoso.example":          "",
		"ada":                       "",
		"ada@localhost":             "",
		"ada@bücher.example":        "",
		"ada@\u212Aontoso.example":  "",
	} {
		assert.Equal(t, want, userstore.EmailDomain(email), "EmailDomain(%q)", email)
	}
}

// TestCheckDomainBounds: a domain has at most 253 bytes and at least two
// labels.
func TestCheckDomainBounds(t *testing.T) {
	label := strings.Repeat("a", 63)
	// Four labels of 63 bytes and three dots make 255 bytes.
	long := label + "." + label + "." + label + "." + label
	for _, n := range []int{253, 254} {
		name := long[len(long)-n:]
		if name[0] == '.' {
			t.Fatalf("bad test domain %q", name)
		}
		err := userstore.CheckDomain(name)
		if n <= 253 {
			assert.NoError(t, err, "a domain of %d bytes", n)
		} else {
			assert.Error(t, err, "a domain of %d bytes", n)
		}
	}
	assert.NoError(t, userstore.CheckDomain("contoso.example"), "two labels")
	assert.NoError(t, userstore.CheckDomain("eu.contoso.example"), "three labels")
	assert.Error(t, userstore.CheckDomain("localhost"), "one label")
	assert.Error(t, userstore.CheckDomain(""), "no label")
}
