package jit_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/samljit/samljit/jit"
)

// discardActivity is a Recorder that keeps nothing.
type discardActivity struct{}

func (discardActivity) SessionSeen(context.Context, jit.Activity) error { return nil }

// BenchmarkRequestActivity is an authenticated request through RequireUser
// without and with Options.Activity: what the once-a-minute limiter costs
// every request (the one report is made by the first request).
func BenchmarkRequestActivity(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			idp := benchIdP(b)
			users := addUsers(idp, 1, 5)
			st, _ := openSQLite(b, filepath.Join(b.TempDir(), "users.db"))
			key, cert := spKeyPair()
			opts := jit.Options{
				RootURL: benchRoot, Key: key, Certificate: cert, Store: st,
				SessionKeys: [][]byte{make32()},
				Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
				Connections: []jit.Connection{{IDPMetadata: idp.Metadata(), AllowIDPInitiated: true}},
			}
			if mode == "on" {
				opts.Activity.Recorder = discardActivity{}
			}
			mw, err := jit.New(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
			benchRequests(b, mw, mw.RequireUser(ok), mint(b, idp, users, 1)[0])
		})
	}
}
