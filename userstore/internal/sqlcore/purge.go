package sqlcore

import (
	"math"
	"sync/atomic"
	"time"
)

// PurgeBatch is the most expired records one purge deletes: the LIMIT of
// a dialect's Queries.PurgeReplay and PurgeSessions.
const PurgeBatch = 32

// PurgeInterval is how long, by the writes' own clock, expired records of
// one kind wait for their next purge after a purge that found fewer than
// PurgeBatch: a write then adds one record, and a purge deletes up to
// PurgeBatch, so writes that purge only while a backlog lasts, and once a
// PurgeInterval otherwise, keep up with any rate of writes. Most writes
// then run no purge statement at all, which was a fifth of a sign-in's
// store time on SQLite.
const PurgeInterval = time.Second

// purgeGate decides which writes purge one kind of expired record.
// Concurrent writes may both purge, or both not: either only moves when a
// record that no lookup finds any more goes.
type purgeGate struct {
	// next is the UnixMilli from which the next write purges.
	next atomic.Int64
}

func newPurgeGate() *purgeGate {
	g := &purgeGate{}
	g.next.Store(math.MinInt64)
	return g
}

// due reports whether a write at now purges.
func (g *purgeGate) due(now time.Time) bool {
	return now.UnixMilli() >= g.next.Load()
}

// ran records a purge at now that deleted n records. A full batch leaves
// more to delete, and the next write purges again; fewer, and the next
// purge waits PurgeInterval.
func (g *purgeGate) ran(now time.Time, n int64) {
	next := int64(math.MinInt64)
	if n < PurgeBatch {
		next = now.Add(PurgeInterval).UnixMilli()
	}
	g.next.Store(next)
}
