package memstore

import (
	"testing"
	"time"
)

// TestPurgeIsBounded: one purge deletes expired records among at most
// purgeBatch of them, so a write's cost does not grow with what has
// expired, and repeated purges delete them all while the live ones stay.
func TestPurgeIsBounded(t *testing.T) {
	now := time.Date(2025, time.March, 14, 8, 0, 0, 0, time.UTC)
	m := make(map[int]time.Time)
	for i := range 100 {
		m[i] = now.Add(-time.Minute) // expired
	}
	for i := 100; i < 110; i++ {
		m[i] = now.Add(time.Minute) // live
	}
	expires := func(t time.Time) time.Time { return t }

	purge(m, now, expires)
	if deleted := 110 - len(m); deleted < 1 || deleted > purgeBatch {
		t.Fatalf("one purge deleted %d records, want 1 to %d", deleted, purgeBatch)
	}
	for range 200 {
		purge(m, now, expires)
	}
	if len(m) != 10 {
		t.Fatalf("after repeated purges %d records remain, want the 10 live ones", len(m))
	}
	// A record expiring exactly at now has expired.
	m[200] = now
	for range 50 {
		purge(m, now, expires)
	}
	if _, ok := m[200]; ok {
		t.Fatal("a record expiring at now was kept")
	}
}
