package pgstore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore/pgstore"
	"github.com/samljit/samljit/userstore/storetest"
)

// benchIssuer is the issuer of the benchmark's users.
const benchIssuer = "https://sts.windows.net/00000000-0000-0000-0000-0000000000be/"

// BenchmarkDirectoryAtScale measures a filter=externalId eq lookup and a
// PATCH (storetest.BenchDirectory) against 10,000 and 1,000,000 users;
// the ratio of the two sizes is the figure (target at most 1.2×). It runs
// only when SAMLJIT_BENCH_SCALE=1 or the -bench pattern contains
// "AtScale".
func BenchmarkDirectoryAtScale(b *testing.B) {
	if os.Getenv("SAMLJIT_BENCH_SCALE") == "" && !strings.Contains(strings.Join(os.Args, " "), "AtScale") {
		b.Skip("set SAMLJIT_BENCH_SCALE=1 or -bench=DirectoryAtScale to run")
	}
	open := func(n int) storetest.Scale {
		db := openDB(b, newSchema(b))
		s, err := pgstore.Open(context.Background(), db, pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		// One statement, then ANALYZE, as a database in service has
		// statistics.
		_, err = db.ExecContext(context.Background(), `INSERT INTO samljit_users (id, issuer, subject, email, email_norm, user_name, user_name_norm,
				display_name, given_name, family_name, groups, attributes, roles, status,
				created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
			SELECT lpad(to_hex(i), 32, '0'), $1, 'pop-' || i, 'pop-' || i || '@example.com', 'pop-' || i || '@example.com',
				'pop-' || i || '@example.com', 'pop-' || i || '@example.com', 'Pop ' || i, 'Pop', i::text,
				'["g1","g2","g3","g4","g5"]', 'null', '["member"]', 0,
				now() - interval '1 day' + i * interval '1 microsecond', 0, now(), 0, now(), 0
			FROM generate_series(0, $2::int - 1) AS i`, benchIssuer, n)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(context.Background(), `ANALYZE samljit_users`); err != nil {
			b.Fatal(err)
		}
		b.Logf("populated %d users in %s", n, time.Since(start).Round(time.Millisecond))
		return storetest.Scale{Directory: s, N: n}
	}
	storetest.BenchDirectoryScale(b, benchIssuer, open(10_000), open(1_000_000))
}
