package userstore_test

import (
	"strings"
	"testing"

	"github.com/samljit/samljit/userstore"
)

// FuzzEmailDomain: the domain discovery reads from an email is empty or a
// valid lower-case domain, and is what follows the last "@", lower-cased,
// without surrounding space or a trailing dot.
func FuzzEmailDomain(f *testing.F) {
	for _, s := range []string{"ada@contoso.example", " Ada@CONTOSO.example. ", "a@b@c.example", "@x.example", "ada@", "ada",
		"ada@localhost", "ada@xn--bcher-kva.example", "ada@bücher.example", "ada@-a.example", "ada@a..example", "\"a@b\"@c.example", "ada@\u212Aontoso.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		d := userstore.EmailDomain(email)
		if d == "" {
			return
		}
		if err := userstore.CheckDomain(d); err != nil {
			t.Fatalf("EmailDomain(%q) = %q, which CheckDomain refuses: %v", email, d, err)
		}
		for _, r := range email[strings.LastIndexByte(email, '@')+1:] {
			if r >= 0x80 {
				t.Fatalf("EmailDomain(%q) = %q from a domain outside ASCII", email, d)
			}
		}
		at := strings.LastIndexByte(email, '@')
		if at <= 0 {
			t.Fatalf("EmailDomain(%q) = %q from no local part", email, d)
		}
		if got := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(email[at+1:])), "."); got != d {
			t.Fatalf("EmailDomain(%q) = %q, not the part after the last @ (%q)", email, d, got)
		}
	})
}
