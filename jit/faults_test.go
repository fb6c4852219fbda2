package jit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/internal/testenv"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// Store faults at each step of a sign-in (issue 4): the person gets a 503
// with a correlation id, the log says why, no user is half-written, and a
// sign-in that failed for a store reason does not consume the replay
// record, so re-posting the same response after recovery signs them in.

// faultStore wraps a real store and fails the named operation while a
// fault is set.
type faultStore struct {
	testStore
	mu    sync.Mutex
	op    string
	fault func(ctx context.Context) error
	calls map[string]int
}

func (f *faultStore) set(op string, fault func(ctx context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op, f.fault = op, fault
}

func (f *faultStore) check(ctx context.Context, op string) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	fault := f.fault
	hit := f.op == op
	f.mu.Unlock()
	if hit && fault != nil {
		return fault(ctx)
	}
	return nil
}

func (f *faultStore) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultStore) ConsumeAssertion(ctx context.Context, issuer, id string, expires, now time.Time) error {
	if err := f.check(ctx, "ConsumeAssertion"); err != nil {
		return err
	}
	return f.testStore.ConsumeAssertion(ctx, issuer, id, expires, now)
}

func (f *faultStore) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	if err := f.check(ctx, "ReleaseAssertion"); err != nil {
		return err
	}
	return f.testStore.ReleaseAssertion(ctx, issuer, id)
}

func (f *faultStore) Lookup(ctx context.Context, k userstore.Key) (userstore.User, error) {
	if err := f.check(ctx, "Lookup"); err != nil {
		return userstore.User{}, err
	}
	return f.testStore.Lookup(ctx, k)
}

func (f *faultStore) Provision(ctx context.Context, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := f.check(ctx, "Provision"); err != nil {
		return userstore.Provisioned{}, err
	}
	return f.testStore.Provision(ctx, k, p, now)
}

func (f *faultStore) CreateSession(ctx context.Context, sess userstore.Session) error {
	if err := f.check(ctx, "CreateSession"); err != nil {
		return err
	}
	return f.testStore.CreateSession(ctx, sess)
}

func (f *faultStore) LookupSession(ctx context.Context, id string, now time.Time) (userstore.Session, userstore.User, error) {
	if err := f.check(ctx, "LookupSession"); err != nil {
		return userstore.Session{}, userstore.User{}, err
	}
	return f.testStore.LookupSession(ctx, id, now)
}

// The kinds of fault, each with the words the log must show.
var faults = []struct {
	name  string
	fault func(ctx context.Context) error
	words string
}{
	{"fails", func(context.Context) error { return errors.New("disk I/O error") }, "disk I/O error"},
	{"times out", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		<-ctx.Done()
		return fmt.Errorf("query: %w", ctx.Err())
	}, "context deadline exceeded"},
	{"database locked", func(context.Context) error { return errors.New("database is locked (5) (SQLITE_BUSY)") }, "database is locked"},
}

func newFaultHarness(t *testing.T) (*harness, *faultStore) {
	t.Helper()
	st, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
	fs := &faultStore{testStore: st}
	h := newHarness(t, harnessConfig{store: fs})
	h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))
	h.idp().AddUser(person(admin, "admin@example.com", "Ad", "Min"))
	resp, body := h.signIn(h.client(), "", admin)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	return h, fs
}

func assertUnavailable(t *testing.T, h *harness, resp *http.Response, body, words string, before []userstore.User) {
	t.Helper()
	corr := refusal(t, resp, body, http.StatusServiceUnavailable)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.NotContains(t, body, words, "the reason stays in the log")
	e := h.lastEvent()
	assert.Equal(t, jit.EventRefused, e.Kind)
	assert.Equal(t, corr, e.CorrelationID)
	assert.ErrorIs(t, e.Err, jit.ErrStoreUnavailable)
	assert.True(t, h.logged(corr, "request refused", words), "the log says why under %s", corr)
	assert.Equal(t, before, h.users(), "nothing half-written")
}

func TestStoreFaultsAtEachStep(t *testing.T) {
	for _, op := range []string{"ConsumeAssertion", "Lookup", "Provision"} {
		for _, fl := range faults {
			for _, who := range []string{victim, admin} {
				t.Run(op+"/"+fl.name+"/"+who, func(t *testing.T) {
					h, fs := newFaultHarness(t)
					before := h.users()
					c := h.client()
					f := h.respond(c, "", who)
					consumed, released := fs.count("ConsumeAssertion"), fs.count("ReleaseAssertion")
					fs.set(op, fl.fault)
					resp, body := h.post(c, f)
					assertUnavailable(t, h, resp, body, fl.words, before)
					assert.Empty(t, sessionCookie(c, h), "no session")
					consumed, released = fs.count("ConsumeAssertion")-consumed, fs.count("ReleaseAssertion")-released
					switch op {
					case "Provision":
						assert.Equal(t, 1, released, "the replay record was released")
					case "Lookup":
						// The user is looked up before the assertion is
						// recorded, so there is nothing to release.
						assert.Zero(t, released)
					}
					if op != "ConsumeAssertion" {
						assert.Equal(t, consumed, released, "no replay record is left consumed")
					}

					// Recovery: the same response, re-posted, signs in.
					fs.set("", nil)
					resp, body = h.post(c, f)
					require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
					assert.Len(t, h.users(), map[string]int{victim: 2, admin: 1}[who])
				})
			}
		}
	}
}

// When the store fails and then also fails to release the replay record,
// the record stays until the assertion expires: re-posting that response
// is refused as a replay (fail closed), the log says the release failed,
// and a fresh sign-in works once the store is back.
func TestStoreFaultReleaseFails(t *testing.T) {
	st, _ := openSQLite(t, filepath.Join(t.TempDir(), "users.db"))
	faults := &opFaults{testStore: st, ops: map[string]error{
		"Provision":        errors.New("disk I/O error"),
		"ReleaseAssertion": errors.New("database is locked"),
	}}
	h := newHarness(t, harnessConfig{store: faults})
	h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))
	c := h.client()
	f := h.respond(c, "", victim)
	resp, body := h.post(c, f)
	assertUnavailable(t, h, resp, body, "disk I/O error", nil)
	corr := h.lastEvent().CorrelationID
	assert.True(t, h.logged(corr, "release replay record", "database is locked"), "the log says the release failed")

	faults.clear()
	resp, body = h.post(c, f)
	refusal(t, resp, body, http.StatusForbidden)
	assert.ErrorIs(t, h.lastEvent().Err, jit.ErrReplayed, "fail closed: the record stays")
	assert.Empty(t, h.users())
	resp, body = h.signIn(h.client(), "", victim)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body, "a fresh sign-in works")
	require.Len(t, h.users(), 1)
}

// opFaults fails several operations at once.
type opFaults struct {
	testStore
	mu  sync.Mutex
	ops map[string]error
}

func (o *opFaults) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ops = nil
}

func (o *opFaults) err(op string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ops[op]
}

func (o *opFaults) Provision(ctx context.Context, k userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := o.err("Provision"); err != nil {
		return userstore.Provisioned{}, err
	}
	return o.testStore.Provision(ctx, k, p, now)
}

func (o *opFaults) ReleaseAssertion(ctx context.Context, issuer, id string) error {
	if err := o.err("ReleaseAssertion"); err != nil {
		return err
	}
	return o.testStore.ReleaseAssertion(ctx, issuer, id)
}

// TestSQLiteLocked holds a real exclusive lock from another connection
// beyond the store's busy timeout.
func TestSQLiteLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	db, err := sql.Open("sqlite3", sqlitestore.DSN(path))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{BusyTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	h := newHarness(t, harnessConfig{store: st})
	h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=50")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
	require.NoError(t, err)

	c := h.client()
	f := h.respond(c, "", victim)
	start := time.Now()
	resp, body := h.post(c, f)
	assertUnavailable(t, h, resp, body, "locked", nil)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the busy timeout, not the default 5 s")

	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	resp, body = h.post(c, f)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	require.Len(t, h.users(), 1)
}

// TestSQLiteReadOnly runs on a database opened read-only (as on a
// read-only volume; file permissions do not stop root, which CI may be).
func TestSQLiteReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	rw, _ := openSQLite(t, path)
	seedOneUser(t, rw)

	db, err := sql.Open("sqlite3", sqlitestore.DSN(path)+"&mode=ro")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{BusyTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	signInReadOnly(t, st)
}

// seedOneUser provisions one user, so that "nothing changed" is a real
// check.
func seedOneUser(t *testing.T, st testStore) {
	t.Helper()
	_, err := st.Provision(context.Background(), userstore.Key{Issuer: "https://idp.example/", Subject: "someone"}, userstore.Profile{Email: "s@example.com"}, time.Now())
	require.NoError(t, err)
}

// signInReadOnly signs a new person in against st, whose database cannot
// be written, and checks the clean 503 and the unchanged store.
func signInReadOnly(t *testing.T, st testStore) {
	t.Helper()
	h := newHarness(t, harnessConfig{store: st})
	h.idp().AddUser(person(victim, "victim@example.com", "Vic", "Tim"))
	before := h.users()
	require.Len(t, before, 1)
	resp, body := h.signIn(h.client(), "", victim)
	assertUnavailable(t, h, resp, body, "readonly", before)
}

// TestSQLiteReadOnlyFile: the database file itself cannot be written (made
// immutable with chattr +i, which binds root too, unlike file modes): the
// person gets a 503 with a correlation id, the log says why, and nothing
// changes.
func TestSQLiteReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	rw, rwDB := openSQLite(t, path)
	seedOneUser(t, rw)
	_, err := rwDB.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	require.NoError(t, rwDB.Close())

	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		testenv.Need(t, fmt.Sprintf("chattr +i failed (%v: %s)", err, strings.TrimSpace(string(out))), "run as root on ext4, as CI does")
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
	require.Error(t, os.WriteFile(path, []byte("x"), 0o644), "the file is really read-only")

	st, _ := openSQLite(t, path)
	signInReadOnly(t, st)
}
