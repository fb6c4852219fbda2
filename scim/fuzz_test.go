package scim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// fuzzHandler returns a handler over a store with a few users and a group.
func fuzzHandler(f *testing.F) *Handler {
	store := memstore.New()
	issuer := "https://idp.example/"
	for _, sub := range []string{"a", "b", "c"} {
		_, err := store.PutUser(context.Background(), userstore.Key{Issuer: issuer, Subject: sub}, time.Now(),
			func(*userstore.DirectoryUser) (string, userstore.Profile, error) {
				return sub + "@example.com", userstore.Profile{Email: sub + "@example.com", DisplayName: sub}, nil
			})
		if err != nil {
			f.Fatal(err)
		}
	}
	if _, err := store.PutGroup(context.Background(), issuer, "", time.Now(), func(*userstore.Group) (userstore.Group, error) {
		return userstore.Group{DisplayName: "g", ExternalID: "g-oid"}, nil
	}, nil); err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Store: store, Issuer: issuer, Subject: PersistentNameID(), Tokens: NewTokens()})
	if err != nil {
		f.Fatal(err)
	}
	return h
}

// FuzzFilter parses and evaluates filters: no panic, every refusal a SCIM
// error, and never more indexed lookups than the filter's bound allows.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a@example.com"`,
		`externalId eq "a" and userName eq "A@example.com"`,
		`userName eq "a@example.com" or emails.value eq "b@example.com" or id eq "x"`,
		`(userName eq "a@example.com" or externalId eq "c") and not (displayName co "z")`,
		`emails[type eq "work" and value eq "a@example.com"]`,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@example.com"`,
		`active eq true and userName sw "a"`,
		`displayName eq "g" or externalId eq "g-oid"`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`userName eq "\"quoted\" \\ slash"`,
		`((((userName eq "a"))))`,
		`title pr`,
	} {
		f.Add(s)
	}
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, s string) {
		watchdog := time.AfterFunc(2*time.Second, func() { panic(fmt.Sprintf("filter %q took over 2s", s)) })
		defer watchdog.Stop()
		e, err := parseFilter(s)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Status != 400 {
				t.Fatalf("parseFilter(%q): %v, want a 400 SCIM error", s, err)
			}
			return
		}
		if n := terms(e); n > maxFilterTerms {
			t.Fatalf("parseFilter(%q) accepted %d comparisons", s, n)
		}
		ctx := context.Background()
		for _, run := range []func() error{
			func() error { _, err := selectBy(ctx, h.userResources(), e); return err },
			func() error { _, err := selectBy(ctx, h.groupResources(), e); return err },
		} {
			if err := run(); err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Status != 400 {
					t.Fatalf("filter %q: %v, want a 400 SCIM error", s, err)
				}
			}
		}
	})
}

// FuzzPatch decodes PATCH bodies and applies them to a user and to a
// group: no panic, every refusal a SCIM error, and the results within the
// bounds of a value.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value","value":"x@example.com"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","value":{"name.givenName":"A","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"D"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"manager","value":[{"$ref":null,"value":"m"}]}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"a\" or value eq \"b\"]"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"a"}]},{"op":"replace","value":{"displayName":"x","id":"y"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m"}}}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"name"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeObject(body)
		if err != nil {
			return
		}
		ops, err := parsePatch(m)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Status != 400 {
				t.Fatalf("parsePatch: %v, want a 400 SCIM error", err)
			}
			return
		}
		if len(ops) > maxPatchOps {
			t.Fatalf("%d operations accepted", len(ops))
		}
		active := true
		u := &userRes{userName: "a", externalID: "a", active: &active, attrs: map[string]string{}}
		g := &groupRes{displayName: "g", members: []string{"a", "b"}}
		for _, op := range ops {
			if err := applyUserOp(u, op); err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Status != 400 {
					t.Fatalf("applyUserOp: %v, want a 400 SCIM error", err)
				}
			}
			if err := g.apply(op); err != nil {
				var se *Error
				if !errors.As(err, &se) || se.Status != 400 {
					t.Fatalf("group apply: %v, want a 400 SCIM error", err)
				}
			}
		}
		for _, v := range append([]string{u.userName, u.externalID, u.displayName, u.email}, valuesOf(u.attrs)...) {
			if len(v) > maxValue {
				t.Fatalf("a value of %d bytes was kept", len(v))
			}
		}
		_ = u.profile(nil)
	})
}

// valuesOf returns the values of m.
func valuesOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
