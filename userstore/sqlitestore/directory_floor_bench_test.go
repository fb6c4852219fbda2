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
// SQLite's default page cache and with 64 MiB (and with mmap). What it
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
	for i, n := range sizes {
		paths[i] = tempPath(b)
		s := openStore(b, openDB(b, sqlitestore.DSN(paths[i])))
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
			median := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
			small, large := median(times[0]), median(times[1])
			b.ReportMetric(float64(small.Nanoseconds()), "small-ns")
			b.ReportMetric(float64(large.Nanoseconds()), "large-ns")
			b.ReportMetric(float64(large)/float64(small), "large/small")
		})
	}
}
