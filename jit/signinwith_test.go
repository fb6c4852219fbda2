package jit_test

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countRows returns how many rows table holds.
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// TestSignInOneTransactionFaults: on a SignInWithStore a sign-in records
// the assertion, writes the user and records the session in one
// transaction. When the database fails at any of those writes (a real
// failure inside SQLite, raised by a trigger), nothing is left of the
// others: no user, no change to one, no replay record, no session, no
// cookie; and the same response, re-posted once the database recovers,
// signs the person in.
func TestSignInOneTransactionFaults(t *testing.T) {
	// victim signs in for the first time, admin returns.
	for _, tc := range []struct{ table, event, who string }{
		{"replay", "INSERT", victim},
		{"replay", "INSERT", admin},
		{"users", "INSERT", victim},
		{"users", "UPDATE", admin},
		{"sessions", "INSERT", victim},
		{"sessions", "INSERT", admin},
	} {
		{
			who := tc.who
			t.Run(tc.table+"/"+tc.event+"/"+who, func(t *testing.T) {
				st, db := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
				h := newHarness(t, harnessConfig{store: st})
				h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))
				h.idp().AddUser(person(admin, "admin@example.com", "Ad", "Min"))
				resp, body := h.signIn(h.client(), "", admin)
				require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)

				before := h.users()
				replays, sessions := countRows(t, db, "replay"), countRows(t, db, "sessions")
				c := h.client()
				f := h.respond(c, "", who)
				_, err := db.Exec(`CREATE TRIGGER fault BEFORE ` + tc.event + ` ON ` + tc.table + ` BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`)
				require.NoError(t, err)
				resp, body = h.post(c, f)
				assertUnavailable(t, h, resp, body, "disk I/O error", before)
				assert.Empty(t, sessionCookie(c, h), "no session cookie")
				assert.Equal(t, replays, countRows(t, db, "replay"), "no replay record left")
				assert.Equal(t, sessions, countRows(t, db, "sessions"), "no session record left")

				// Recovery: the same response, re-posted, signs in.
				_, err = db.Exec(`DROP TRIGGER fault`)
				require.NoError(t, err)
				resp, body = h.post(c, f)
				require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
				assert.Len(t, h.users(), map[string]int{victim: 2, admin: 1}[who])
				resp, u := h.me(c)
				require.Equal(t, http.StatusOK, resp.StatusCode, "the session recorded is live")
				assert.Equal(t, who, u.Key.Subject)
				assert.Equal(t, sessions+1, countRows(t, db, "sessions"), "one session recorded")
			})
		}
	}
}
