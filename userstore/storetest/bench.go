package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Scale is one store of a scale benchmark: a Directory holding N users of
// the benchmark's issuer, with subjects "pop-0" … "pop-(N-1)".
type Scale struct {
	Directory userstore.Directory
	N         int
}

// BenchDirectoryScale runs, as sub-benchmarks of b, what a SCIM client
// does most: "externalId-eq", a filter=externalId eq lookup (FindUser by
// subject), "patch", a PATCH (PutUser of a changed display name), and
// "list", an unfiltered list's first page of 10 users with its total
// (ListUsers, what Okta's import asks first), and, for stores that are a
// userstore.DirectoryPager, "list-deep", a page by key nine tenths of the
// way through, on small and on large in the same iterations, alternating which goes
// first, so that drift in the machine's load falls on both alike. Each
// reports the median time of an operation on each store (small-ns,
// large-ns) and their ratio (large/small), the figure to quote.
//
// The users touched are 4,096 spread over each store's whole key range,
// read once, untimed, first: a service's active users are in the
// database's and the operating system's caches.
func BenchDirectoryScale(b *testing.B, issuer string, small, large Scale) {
	ctx := context.Background()
	subjects := func(n int) []string {
		out := make([]string, 4096)
		for i := range out {
			out[i] = fmt.Sprintf("pop-%d", (i*7919)%n)
		}
		return out
	}
	stores := []Scale{small, large}
	subs := [][]string{subjects(small.N), subjects(large.N)}
	for s, st := range stores {
		for _, sub := range subs[s] {
			if _, err := st.Directory.FindUser(ctx, issuer, userstore.UserBySubject, sub); err != nil {
				b.Fatal(err)
			}
		}
	}
	ops := []struct {
		name string
		op   func(d userstore.Directory, sub string, i int) error
	}{
		{"externalId-eq", func(d userstore.Directory, sub string, _ int) error {
			u, err := d.FindUser(ctx, issuer, userstore.UserBySubject, sub)
			if err == nil && u.Key.Subject != sub {
				err = fmt.Errorf("found %s", u.Key)
			}
			return err
		}},
		{"patch", func(d userstore.Directory, sub string, i int) error {
			_, err := d.PutUser(ctx, userstore.Key{Issuer: issuer, Subject: sub}, time.Now(), func(before *userstore.DirectoryUser) (string, userstore.Profile, error) {
				if before == nil {
					return "", userstore.Profile{}, userstore.ErrNotFound
				}
				p := before.Profile.Clone()
				p.DisplayName = fmt.Sprintf("Pop %d", i)
				return before.UserName, p, nil
			})
			return err
		}},
		{"list", func(d userstore.Directory, _ string, _ int) error {
			users, total, err := d.ListUsers(ctx, issuer, 0, 10)
			if err == nil && (len(users) != 10 || (total != small.N && total != large.N)) {
				err = fmt.Errorf("listed %d users of %d", len(users), total)
			}
			return err
		}},
	}
	// "list-deep", on stores that list by key: the page of 10 users that
	// follows the user nine tenths of the way through, as a cursor that
	// far into a SCIM list reads it.
	deep := map[userstore.Directory]userstore.PageKey{}
	for _, st := range stores {
		if _, ok := st.Directory.(userstore.DirectoryPager); !ok {
			break
		}
		u, err := st.Directory.FindUser(ctx, issuer, userstore.UserBySubject, fmt.Sprintf("pop-%d", st.N*9/10))
		if err != nil {
			b.Fatal(err)
		}
		deep[st.Directory] = userstore.UserPageKey(u)
	}
	if len(deep) == len(stores) {
		ops = append(ops, struct {
			name string
			op   func(d userstore.Directory, sub string, i int) error
		}{"list-deep", func(d userstore.Directory, _ string, _ int) error {
			users, err := d.(userstore.DirectoryPager).ListUsersAfter(ctx, issuer, deep[d], 10)
			if err == nil && len(users) != 10 {
				err = fmt.Errorf("listed %d users", len(users))
			}
			return err
		}})
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			var times [2][]time.Duration
			i := 0
			for b.Loop() {
				for k := range 2 {
					s := (i + k) % 2
					sub := subs[s][i%len(subs[s])]
					start := time.Now()
					if err := o.op(stores[s].Directory, sub, i); err != nil {
						b.Fatalf("%s of %s at %d users: %v", o.name, sub, stores[s].N, err)
					}
					times[s] = append(times[s], time.Since(start))
				}
				i++
			}
			ms, ml := median(times[0]), median(times[1])
			b.ReportMetric(float64(ms.Nanoseconds()), "small-ns")
			b.ReportMetric(float64(ml.Nanoseconds()), "large-ns")
			b.ReportMetric(float64(ml)/float64(ms), "large/small")
		})
	}
}

// median returns the median of ds.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// PopulateConnections stores n connections, "c00000" … named, each with
// an IdP metadata document and a verified domain of its own
// ("customer-I.example"), for a scale benchmark.
func PopulateConnections(tb testing.TB, s userstore.ConnectionAdmin, n int) {
	tb.Helper()
	ctx := context.Background()
	for i := range n {
		c := sampleConnection(fmt.Sprintf("c%05d", i), fmt.Sprintf("customer-%d.example", i))
		if _, err := s.PutConnection(ctx, c, connNow); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchConnectionsScale runs, as sub-benchmarks of b, what a connection
// store serves most: "version", the poll every instance makes every few
// seconds, and "get", a connection read by name, on small and on large
// (stores of different sizes, filled by [PopulateConnections]) in the
// same iterations, alternating which goes first. Each reports the median
// time on each store (small-ns, large-ns) and their ratio (large/small),
// the figure to quote: a version read is one row, a read by name one
// index search, so the ratio should stay near 1.
func BenchConnectionsScale(b *testing.B, small, large userstore.ConnectionAdmin, smallN, largeN int) {
	ctx := context.Background()
	stores := []userstore.ConnectionAdmin{small, large}
	sizes := []int{smallN, largeN}
	ops := []struct {
		name string
		op   func(s userstore.ConnectionAdmin, n, i int) error
	}{
		{"version", func(s userstore.ConnectionAdmin, _, _ int) error {
			_, err := s.ConnectionsVersion(ctx)
			return err
		}},
		{"get", func(s userstore.ConnectionAdmin, n, i int) error {
			name := fmt.Sprintf("c%05d", (i*7919)%n)
			c, err := s.GetConnection(ctx, name)
			if err == nil && c.Name != name {
				err = fmt.Errorf("got %s", c.Name)
			}
			return err
		}},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			var times [2][]time.Duration
			i := 0
			for b.Loop() {
				for k := range 2 {
					s := (i + k) % 2
					start := time.Now()
					if err := o.op(stores[s], sizes[s], i); err != nil {
						b.Fatalf("%s at %d connections: %v", o.name, sizes[s], err)
					}
					times[s] = append(times[s], time.Since(start))
				}
				i++
			}
			ms, ml := median(times[0]), median(times[1])
			b.ReportMetric(float64(ms.Nanoseconds()), "small-ns")
			b.ReportMetric(float64(ml.Nanoseconds()), "large-ns")
			b.ReportMetric(float64(ml)/float64(ms), "large/small")
		})
	}
}
