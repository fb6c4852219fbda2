package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/samljit/samljit/userstore"
)

// This file holds the ReplayCache suite: the contract of
// userstore.ReplayCache, for a store that implements it.

func testReplayConsumeTwice(t *testing.T, s userstore.ReplayCache) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "first ConsumeAssertion")
	err := s.ConsumeAssertion(ctx, issuer, "_a1", expires, now.Add(time.Second))
	errorIs(t, err, userstore.ErrReplayed, "second ConsumeAssertion")
	// Another id is independent.
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), "ConsumeAssertion of another id")
}

func testReplayAfterExpiry(t *testing.T, s userstore.ReplayCache) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "first ConsumeAssertion")
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, expires.Add(-time.Nanosecond)),
		userstore.ErrReplayed, "an unexpired record was not honoured")

	later := expires.Add(time.Minute)
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later),
		"an expired record still refused the id")
	// The new record is honoured until its own expiry.
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a1", later.Add(5*time.Minute), later.Add(time.Minute)),
		userstore.ErrReplayed, "consuming after expiry did not record the new expiry")
}

func testReplayIssuersIndependent(t *testing.T, s userstore.ReplayCache) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "first ConsumeAssertion")
	noError(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now),
		"the same id from another issuer was refused")
	errorIs(t, s.ConsumeAssertion(ctx, "https://other.example/", "_a1", expires, now), userstore.ErrReplayed,
		"the other issuer's id consumed twice")
	// Issuers and ids are compared exactly.
	noError(t, s.ConsumeAssertion(ctx, issuer, "_A1", expires, now), "an id differing in case was refused")
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1 ", expires, now), "an id with a trailing space was refused")
}

func testReplayRelease(t *testing.T, s userstore.ReplayCache) {
	ctx := t.Context()
	now := epoch()
	expires := now.Add(5 * time.Minute)
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "ConsumeAssertion(_a1)")
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), "ConsumeAssertion(_a2)")
	noError(t, s.ReleaseAssertion(ctx, issuer, "_a1"), "ReleaseAssertion(_a1)")
	noError(t, s.ConsumeAssertion(ctx, issuer, "_a1", expires, now), "a released id was refused")
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing one id released another")
	noError(t, s.ReleaseAssertion(ctx, issuer, "_unknown"), "releasing an unknown id")
	noError(t, s.ReleaseAssertion(ctx, "https://other.example/", "_a2"), "releasing an unknown id")
	errorIs(t, s.ConsumeAssertion(ctx, issuer, "_a2", expires, now), userstore.ErrReplayed,
		"releasing an id of another issuer released this one")
}

func testReplayConcurrentConsume(t *testing.T, s userstore.ReplayCache) {
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
		if !errors.Is(err, userstore.ErrReplayed) {
			t.Errorf("call %d: got error %v, want one wrapping %q", i, err, userstore.ErrReplayed)
		}
	}
	equal(t, 1, ok, "want exactly one successful ConsumeAssertion")
}
