package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// BenchDirectory runs, as sub-benchmarks of b, what a SCIM client does
// most against d: "externalId-eq", a filter=externalId eq lookup
// (FindUser by subject), and "patch", a PATCH (PutUser of a changed
// display name). The users are those of issuer with subjects
// "pop-0" … "pop-(n-1)", which the caller has put in the store; the
// benchmark spreads its 4,096 users over that whole range and reads each
// once, untimed, first, as a service's active users are in the
// database's and the operating system's caches.
func BenchDirectory(b *testing.B, d userstore.Directory, issuer string, n int) {
	ctx := context.Background()
	subjects := make([]string, 4096)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("pop-%d", (i*7919)%n)
	}
	for _, sub := range subjects {
		if _, err := d.FindUser(ctx, issuer, userstore.UserBySubject, sub); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("externalId-eq", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sub := subjects[i%len(subjects)]
			u, err := d.FindUser(ctx, issuer, userstore.UserBySubject, sub)
			if err != nil || u.Key.Subject != sub {
				b.Fatalf("FindUser(%q): %v", sub, err)
			}
			i++
		}
	})
	b.Run("patch", func(b *testing.B) {
		b.ReportAllocs()
		now := time.Now()
		i := 0
		for b.Loop() {
			k := userstore.Key{Issuer: issuer, Subject: subjects[i%len(subjects)]}
			_, err := d.PutUser(ctx, k, now, func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
				if before == nil {
					return "", userstore.Profile{}, userstore.ErrNotFound
				}
				p := before.Profile.Clone()
				p.DisplayName = fmt.Sprintf("Pop %d", i)
				return before.UserName, p, nil
			})
			if err != nil {
				b.Fatalf("PutUser(%s): %v", k, err)
			}
			i++
		}
	})
}
