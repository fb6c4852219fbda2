package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// floorColumns are the columns a directory lookup reads.
const floorColumns = `id, issuer, subject, email, display_name, given_name, family_name, groups_json, attributes_json, roles_json,
	status, created_at, updated_at, last_sign_in_at, user_name`

// BenchmarkDirectoryLookupFloor measures the floor under
// BenchmarkDirectoryAtScale's externalId eq lookup: the same point query
// in raw SQL on one prepared statement of one connection, with no store
// code, on the same two databases (10,000 and 1,000,000 users, paired in
// the same iterations), for the table as the store keeps it ("rowid")
// and for a WITHOUT ROWID copy keyed (issuer, subject), each with
// SQLite's default page cache and with 64 MiB (and with mmap); and, as
// "store-over-floor", the store's FindUser against the raw query in the
// same iterations, so that the store's own work is seen at both sizes.
// What it
// shows is in BENCHMARKS.md. SAMLJIT_FLOOR_KEYS sets how many users are
// touched (4,096 as in BenchmarkDirectoryAtScale by default). It runs
// only when SAMLJIT_BENCH_SCALE=1 or the -bench pattern contains
// "Floor".
func BenchmarkDirectoryLookupFloor(b *testing.B) {
	if os.Getenv("SAMLJIT_BENCH_SCALE") == "" && !strings.Contains(benchPattern(), "Floor") {
		b.Skip("set SAMLJIT_BENCH_SCALE=1 or -bench=DirectoryLookupFloor to run")
	}
	keys := 4096
	if n, err := strconv.Atoi(os.Getenv("SAMLJIT_FLOOR_KEYS")); err == nil && n > 0 {
		keys = n
	}
	ctx := context.Background()
	sizes := []int{10_000, 1_000_000}
	paths := make([]string, len(sizes))
	stores := make([]*sqlitestore.Store, len(sizes))
	for i, n := range sizes {
		paths[i] = tempPath(b)
		s := openStore(b, openDB(b, sqlitestore.DSN(paths[i])))
		stores[i] = s
		populateDirectory(b, s, n)
		for _, q := range []string{
			`CREATE TABLE users_wr (issuer TEXT NOT NULL, subject TEXT NOT NULL, id TEXT NOT NULL, email TEXT, display_name TEXT,
				given_name TEXT, family_name TEXT, groups_json TEXT, attributes_json TEXT, roles_json TEXT, status INTEGER,
				created_at INTEGER, updated_at INTEGER, last_sign_in_at INTEGER, user_name TEXT, PRIMARY KEY (issuer, subject)) WITHOUT ROWID`,
			`INSERT INTO users_wr (` + floorColumns + `) SELECT ` + floorColumns + ` FROM users ORDER BY issuer, subject`,
			`PRAGMA wal_checkpoint(TRUNCATE)`,
		} {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, v := range []struct{ name, table, pragma string }{
		{"rowid", "users", ""},
		{"rowid-cache64M", "users", "PRAGMA cache_size = -65536"},
		{"rowid-mmap", "users", "PRAGMA mmap_size = 2147483648"},
		{"withoutrowid", "users_wr", ""},
		{"withoutrowid-cache64M", "users_wr", "PRAGMA cache_size = -65536"},
	} {
		b.Run(v.name, func(b *testing.B) {
			stmts := make([]*sql.Stmt, len(sizes))
			subs := make([][]string, len(sizes))
			dest := make([]any, 15)
			for i := range dest {
				dest[i] = new(any)
			}
			for i, n := range sizes {
				c, err := openDB(b, sqlitestore.DSN(paths[i])).Conn(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = c.Close() })
				if v.pragma != "" {
					if _, err := c.ExecContext(ctx, v.pragma); err != nil {
						b.Fatal(err)
					}
				}
				if stmts[i], err = c.PrepareContext(ctx, `SELECT `+floorColumns+` FROM `+v.table+` WHERE issuer = ?1 AND subject = ?2`); err != nil {
					b.Fatal(err)
				}
				for k := range keys {
					subs[i] = append(subs[i], fmt.Sprintf("pop-%d", (k*7919)%n))
				}
				for _, sub := range subs[i] { // untimed first read, as BenchDirectoryScale
					if err := stmts[i].QueryRowContext(ctx, benchIssuer, sub).Scan(dest...); err != nil {
						b.Fatal(err)
					}
				}
			}
			var times [2][]time.Duration
			i := 0
			for b.Loop() {
				for k := range 2 {
					s := (i + k) % 2
					start := time.Now()
					if err := stmts[s].QueryRowContext(ctx, benchIssuer, subs[s][i%keys]).Scan(dest...); err != nil {
						b.Fatal(err)
					}
					times[s] = append(times[s], time.Since(start))
				}
				i++
			}
			small, large := medianOf(times[0]), medianOf(times[1])
			b.ReportMetric(float64(small.Nanoseconds()), "small-ns")
			b.ReportMetric(float64(large.Nanoseconds()), "large-ns")
			b.ReportMetric(float64(large)/float64(small), "large/small")
		})
	}

	// The store over its floor: in each iteration, at each size, the
	// raw query on one connection (the "rowid" variant) and the store's
	// FindUser, in alternating order, so that the store's own work
	// (pool, statement cache, scan, JSON decoding) is measured as a
	// difference at both sizes, in the same conditions.
	b.Run("store-over-floor", func(b *testing.B) {
		stmts := make([]*sql.Stmt, len(sizes))
		subs := make([][]string, len(sizes))
		dest := make([]any, 15)
		for i := range dest {
			dest[i] = new(any)
		}
		for i, n := range sizes {
			c, err := openDB(b, sqlitestore.DSN(paths[i])).Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			if stmts[i], err = c.PrepareContext(ctx, `SELECT `+floorColumns+` FROM users WHERE issuer = ?1 AND subject = ?2`); err != nil {
				b.Fatal(err)
			}
			for k := range keys {
				subs[i] = append(subs[i], fmt.Sprintf("pop-%d", (k*7919)%n))
			}
			for _, sub := range subs[i] {
				if err := stmts[i].QueryRowContext(ctx, benchIssuer, sub).Scan(dest...); err != nil {
					b.Fatal(err)
				}
				if _, err := stores[i].FindUser(ctx, benchIssuer, userstore.UserBySubject, sub); err != nil {
					b.Fatal(err)
				}
			}
		}
		var floor, store [2][]time.Duration
		i := 0
		for b.Loop() {
			for k := range 2 {
				s := (i + k) % 2
				sub := subs[s][i%keys]
				for j := range 2 {
					start := time.Now()
					var err error
					if (i+j)%2 == 0 {
						err = stmts[s].QueryRowContext(ctx, benchIssuer, sub).Scan(dest...)
						floor[s] = append(floor[s], time.Since(start))
					} else {
						_, err = stores[s].FindUser(ctx, benchIssuer, userstore.UserBySubject, sub)
						store[s] = append(store[s], time.Since(start))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			i++
		}
		for s, name := range []string{"small", "large"} {
			f, st := medianOf(floor[s]), medianOf(store[s])
			b.ReportMetric(float64(f.Nanoseconds()), name+"-floor-ns")
			b.ReportMetric(float64(st.Nanoseconds()), name+"-store-ns")
			b.ReportMetric(float64((st - f).Nanoseconds()), name+"-over-ns")
		}
		b.ReportMetric(float64(medianOf(floor[1]))/float64(medianOf(floor[0])), "floor-large/small")
		b.ReportMetric(float64(medianOf(store[1]))/float64(medianOf(store[0])), "store-large/small")
	})
}

// medianOf returns the median of d, which it does not modify.
func medianOf(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}
