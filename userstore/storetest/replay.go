package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

func testReplayConsumeTwice(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	err := s.ConsumeAssertion(ctx, issuer, "_a1", expires, now.Add(time.Second))
	require.ErrorIs(t, err, userstore.ErrReplayed)
	// Another id is independent.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now))
}

func testReplayAfterExpiry(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, expires.Add(-time.Nanosecond)),
		userstore.ErrReplayed, "an unexpired record was not honoured")

	later := expires.Add(time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later),
		"an expired record still refused the id")
	// The new record is honoured until its own expiry.
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later.Add(time.Minute)),
		userstore.ErrReplayed, "consuming after expiry did not record the new expiry")
}

func testReplayIssuersIndependent(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now),
		"the same id from another issuer was refused")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now), userstore.ErrReplayed)
	// Issuers and ids are compared exactly.
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_A1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1 ", expires, now))
}

func testReplayRelease(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now))
	require.NoError(t, s.ReleaseAssertion(ctx, issuer, "_a1"))
	require.NoError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "a released id was refused")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing one id released another")
	require.NoError(t, s.ReleaseAssertion(ctx, issuer, "_unknown"), "releasing an unknown id")
	require.NoError(t, s.ReleaseAssertion(ctx, "https://other.example/", "_a2"), "releasing an unknown id")
	require.ErrorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing an id of another issuer released this one")
}

func testReplayConcurrentConsume(t *testing.T, s Store) {
	ctx := t.Context()
	now := epoch()
	errs := make([]error, concurrency)
	concurrently(concurrency, func(i int) {
		errs[i] = s.ConsumeAssertion(ctx, issuer, "_concurrent", now.Add(5*time.Minute), now)
	})
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, userstore.ErrReplayed, "call %d", i)
	}
	require.Equal(t, 1, ok, "want exactly one successful ConsumeAssertion")
}
