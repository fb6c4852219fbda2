package sqlcore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// errRetry is the failure the fake dialect below may retry; errFatal one
// it may not.
var (
	errRetry = errors.New("could not serialize access")
	errFatal = errors.New("disk full")
)

// flaky returns a Core whose dialect's Exec and Begin fail with the errors
// of fails in turn, then succeed (Exec changing one row), and counts the
// calls of each.
func flaky(fails ...error) (c *sqlcore.Core, execs, begins *int) {
	execs, begins = new(int), new(int)
	next := func(n *int) error {
		*n++
		if *n <= len(fails) {
			return fails[*n-1]
		}
		return nil
	}
	c = sqlcore.New(nil, sqlcore.Dialect{
		Name: "fake",
		Exec: func(context.Context, string, ...any) (int64, error) {
			if err := next(execs); err != nil {
				return 0, err
			}
			return 1, nil
		},
		// Begin never gets as far as a transaction: a failure is all
		// Write needs to show its retries, and a success ends the test.
		Begin: func(context.Context) (*sqlcore.Tx, error) {
			if err := next(begins); err != nil {
				return nil, err
			}
			return nil, errDone
		},
		Retryable: func(err error) bool { return errors.Is(err, errRetry) },
		Time:      oneColumn{},
	})
	return c, execs, begins
}

// oneColumn is a TimeCodec that keeps a time in one column.
type oneColumn struct{}

func (oneColumn) Stored(t time.Time) (time.Time, error) { return t, nil }
func (oneColumn) Clamp(t time.Time) time.Time           { return t }
func (oneColumn) Args(t time.Time) (any, any)           { return t, nil }
func (oneColumn) AppendDest(dest []any, t *time.Time) []any {
	return append(dest, t)
}

// errDone ends a Write whose Begin succeeded (see flaky).
var errDone = errors.New("began")

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// TestExecRetries: a statement that fails with an error the dialect may
// retry runs again, up to MaxAttempts times in all; any other failure is
// returned at once.
func TestExecRetries(t *testing.T) {
	ctx := t.Context()
	c, execs, _ := flaky(errRetry, errRetry)
	n, err := c.Exec(ctx, "UPDATE")
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, 3, *execs, "two retryable failures, then success")

	c, execs, _ = flaky(repeat(errRetry, sqlcore.MaxAttempts-1)...)
	_, err = c.Exec(ctx, "UPDATE")
	require.NoError(t, err, "success at the last attempt")
	require.Equal(t, sqlcore.MaxAttempts, *execs)

	c, execs, _ = flaky(repeat(errRetry, sqlcore.MaxAttempts)...)
	_, err = c.Exec(ctx, "UPDATE")
	require.ErrorIs(t, err, errRetry)
	require.Equal(t, sqlcore.MaxAttempts, *execs, "attempts in all")

	c, execs, _ = flaky(errFatal, errRetry)
	_, err = c.Exec(ctx, "UPDATE")
	require.ErrorIs(t, err, errFatal)
	require.Equal(t, 1, *execs, "a failure that may not be retried")
}

// TestWriteRetries: a transaction that fails with an error the dialect may
// retry runs again from its start, up to MaxAttempts times in all.
func TestWriteRetries(t *testing.T) {
	ctx := t.Context()
	write := func(c *sqlcore.Core) error {
		return c.Write(ctx, func(*sqlcore.Tx) error { t.Fatal("no transaction began"); return nil })
	}
	c, _, begins := flaky(errRetry, errRetry)
	require.ErrorIs(t, write(c), errDone)
	require.Equal(t, 3, *begins, "two retryable failures, then a transaction")

	c, _, begins = flaky(repeat(errRetry, sqlcore.MaxAttempts)...)
	require.ErrorIs(t, write(c), errRetry)
	require.Equal(t, sqlcore.MaxAttempts, *begins, "attempts in all")

	c, _, begins = flaky(errFatal)
	require.ErrorIs(t, write(c), errFatal)
	require.Equal(t, 1, *begins, "a failure that may not be retried")
}

// TestRetriesStopWithTheContext: the wait before a retry ends with the
// context, and no attempt follows.
func TestRetriesStopWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c, execs, begins := flaky(repeat(errRetry, sqlcore.MaxAttempts)...)
	_, err := c.Exec(ctx, "UPDATE")
	require.ErrorIs(t, err, errRetry)
	require.Equal(t, 1, *execs)
	require.ErrorIs(t, c.Write(ctx, func(*sqlcore.Tx) error { return nil }), errRetry)
	require.Equal(t, 1, *begins)

	// Backoff waits a moment, and not past its bound (64 ms), at the
	// largest attempt.
	start := time.Now()
	require.True(t, sqlcore.Backoff(t.Context(), 100))
	require.Less(t, time.Since(start), time.Second)
	require.False(t, sqlcore.Backoff(ctx, 1), "a context that has ended")
}

// TestRetryCreatedMeanwhile: a write that lost the race to create a user
// runs again at once, up to MaxAttempts times in all; without a
// retryable function no other failure is retried.
func TestRetryCreatedMeanwhile(t *testing.T) {
	ctx := t.Context()
	calls := 0
	err := sqlcore.Retry(ctx, nil, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("insert: %w", sqlcore.ErrCreatedMeanwhile)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, calls)

	calls = 0
	err = sqlcore.Retry(ctx, nil, func() error { calls++; return sqlcore.ErrCreatedMeanwhile })
	require.ErrorContains(t, err, "kept changing")
	require.Equal(t, sqlcore.MaxAttempts, calls)

	calls = 0
	err = sqlcore.Retry(ctx, nil, func() error { calls++; return errRetry })
	require.ErrorIs(t, err, errRetry)
	require.Equal(t, 1, calls, "no retryable function: nothing else is retried")
}
