package jit

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestActivityTrackerRotatesEachInterval: the tracker of last reports
// starts a new generation once an interval has passed since the last one,
// to the nanosecond, so it holds only the sessions seen in the last two
// intervals, however many sessions there were.
func TestActivityTrackerRotatesEachInterval(t *testing.T) {
	a := &activity{every: time.Minute, cur: map[string]time.Time{}, prev: map[string]time.Time{}}
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	assert.True(t, a.due("x", t0))
	assert.True(t, a.due("y", t0.Add(time.Minute-time.Nanosecond)))
	assert.Len(t, a.cur, 2, "no new generation within the interval")
	assert.True(t, a.due("z", t0.Add(time.Minute)))
	assert.Len(t, a.prev, 2, "a new generation once the interval has passed")
	assert.Len(t, a.cur, 1)
	assert.False(t, a.due("y", t0.Add(time.Minute+time.Second)), "the previous generation still counts")
	assert.True(t, a.due("w", t0.Add(3*time.Minute)))
	assert.Equal(t, map[string]time.Time{"z": t0.Add(time.Minute)}, a.prev, "x and y are forgotten")
	assert.True(t, a.due("v", t0.Add(5*time.Minute)))
	assert.Equal(t, map[string]time.Time{"w": t0.Add(3 * time.Minute)}, a.prev, "z is forgotten")
}

// TestTruncateUTF8KeepsExactLength: a string of exactly the bound is kept
// whole; one byte more is cut at a character boundary.
func TestTruncateUTF8KeepsExactLength(t *testing.T) {
	s := strings.Repeat("a", MaxUserAgent)
	assert.Equal(t, s, truncateUTF8(s, MaxUserAgent))
	assert.Equal(t, s, truncateUTF8(s+"b", MaxUserAgent))
	assert.Equal(t, s[:MaxUserAgent-1], truncateUTF8(s[:MaxUserAgent-1]+"é", MaxUserAgent))
}
