package sqlitestore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore/sqlitestore"
	"github.com/samljit/samljit/userstore/storetest"
)

// BenchmarkDirectoryAtScale measures what a SCIM client does most, a
// filter=externalId eq lookup (FindUser by subject) and a PATCH (PutUser
// of a changed profile), against databases of 10,000 and of 1,000,000
// users in the same iterations (storetest.BenchDirectoryScale). The ratio
// of the two sizes is what matters: the target is at most 1.2×. Populating a million users takes several seconds, so it runs only
// when SAMLJIT_BENCH_SCALE=1 or the -bench pattern contains "AtScale".
func BenchmarkDirectoryAtScale(b *testing.B) {
	if os.Getenv("SAMLJIT_BENCH_SCALE") == "" && !strings.Contains(benchPattern(), "AtScale") {
		b.Skip("set SAMLJIT_BENCH_SCALE=1 or -bench=DirectoryAtScale to run")
	}
	open := func(n int) storetest.Scale {
		s := openStore(b, openDB(b, sqlitestore.DSN(tempPath(b))))
		start := time.Now()
		populateDirectory(b, s, n)
		b.Logf("populated %d users in %s", n, time.Since(start).Round(time.Millisecond))
		return storetest.Scale{Directory: s, N: n}
	}
	storetest.BenchDirectoryScale(b, benchIssuer, open(10_000), open(1_000_000))
}

// benchIssuer is the issuer of the benchmark's users.
const benchIssuer = "https://sts.windows.net/00000000-0000-0000-0000-0000000000be/"

// benchPattern returns the -test.bench flag's value.
func benchPattern() string {
	for i, a := range os.Args {
		switch {
		case strings.HasPrefix(a, "-test.bench="):
			return strings.TrimPrefix(a, "-test.bench=")
		case a == "-test.bench" && i+1 < len(os.Args):
			return os.Args[i+1]
		}
	}
	return ""
}

// populateDirectory inserts n users of benchIssuer ("pop-0" …), each with
// a user name and an email, in one statement, and checkpoints the WAL so
// that the first timed commit does not copy the bulk insert back.
func populateDirectory(b *testing.B, s *sqlitestore.Store, n int) {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now().Add(-24 * time.Hour).UnixNano()
	_, err := s.DB().ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
		INSERT INTO users (id, issuer, subject, email, email_norm, user_name, user_name_norm, display_name, given_name, family_name,
			groups_json, attributes_json, roles_json, status, created_at, updated_at, last_sign_in_at)
		SELECT printf('%032x', i), ?2, 'pop-' || i, 'pop-' || i || '@example.com', 'pop-' || i || '@example.com',
			'pop-' || i || '@example.com', 'pop-' || i || '@example.com', 'Pop ' || i, 'Pop', '' || i,
			'["g1","g2","g3","g4","g5"]', 'null', '["member"]', 0, ?3 + i, ?3 + i, ?3 + i FROM n`, n, benchIssuer, t0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	if _, total, err := s.ListUsers(ctx, benchIssuer, 0, 0); err != nil || total != n {
		b.Fatalf("populated %d users (%v), want %d", total, err, n)
	}
}
