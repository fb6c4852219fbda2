package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml/samlsp"
	_ "github.com/mattn/go-sqlite3" // the SQLite driver the store is tested with

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// loadConfig holds the loadtest flags.
type loadConfig struct {
	n           int
	concurrency int
	duration    time.Duration
	groups      int
	baseline    bool
	batch       int
	rounds      int
	warmup      int
	memory      bool
}

// loadTargets are the apps a load test can drive.
var loadTargets = []string{"samljit", "samlsp"}

func runLoadtest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadConfig
	fs.IntVar(&cfg.n, "n", 2000, "sign-ins per target and round")
	fs.IntVar(&cfg.concurrency, "c", 64, "concurrent clients")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop a round after this much driving time, if sooner than -n (0: no limit)")
	fs.IntVar(&cfg.groups, "groups", 5, "group values in each response")
	fs.BoolVar(&cfg.baseline, "baseline", true, "also drive crewjam/saml's bare samlsp middleware, alternating with samljit, and compare")
	fs.IntVar(&cfg.batch, "batch", 2000, "responses minted ahead at a time (they must be used within 90 s of issue)")
	fs.IntVar(&cfg.rounds, "rounds", 5, "timed rounds per target, the targets alternating")
	fs.IntVar(&cfg.warmup, "warmup", 200, "untimed sign-ins per target before the rounds")
	fs.BoolVar(&cfg.memory, "memory", true, "measure each target's peak resident memory (VmHWM) in a fresh process serving -n sign-ins")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: samljit loadtest [flags]

Starts a jittest IdP and an app protected by the jit middleware on a
SQLite file in a temporary directory, and (unless -baseline=false) the
same app on crewjam/saml's bare samlsp middleware, all on 127.0.0.1.
After -warmup untimed sign-ins on each, it runs -rounds rounds; in each,
the targets take turns (the first alternating) to take -n distinct signed
responses for distinct users (minted untimed, in batches), posted to the
ACS over real HTTP by -c concurrent clients. It prints each round's
throughput and p50/p99 latency, then the median and range of each
target's throughput and of their ratio, round by round. Any failed
sign-in fails the run.

With -memory it then starts each target afresh in a child process (this
binary, re-executed) serving only the app, drives -n sign-ins at it, and
prints the child's peak resident set (VmHWM from /proc/self/status): Go's
heap and everything else, SQLite's C heap included.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.n < 1 || cfg.concurrency < 1 || cfg.batch < 1 || cfg.groups < 0 || cfg.rounds < 1 || cfg.warmup < 0 {
		return errors.New("-n, -c, -batch and -rounds must be positive, -groups and -warmup not negative")
	}

	idp, err := jittest.NewServer(jittest.Options{})
	if err != nil {
		return err
	}
	defer idp.Close()
	dir, err := os.MkdirTemp("", "samljit-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	targets := loadTargets[:1]
	if cfg.baseline {
		targets = loadTargets
	}
	fmt.Fprintf(stdout, "loadtest: -n %d per round, -c %d, -groups %d, %d rounds after %d warm-up sign-ins, GOMAXPROCS %d, %s\n",
		cfg.n, cfg.concurrency, cfg.groups, cfg.rounds, cfg.warmup, runtime.GOMAXPROCS(0), runtime.Version())
	apps := make([]*app, len(targets))
	for i, name := range targets {
		if apps[i], err = startApp(name, idp.Metadata(), filepath.Join(dir, name+".db")); err != nil {
			return err
		}
		defer apps[i].close()
	}
	if cfg.warmup > 0 {
		for i, name := range targets {
			w := cfg
			w.n, w.duration = cfg.warmup, 0
			res, err := drive(apps[i], idp, w, name)
			if err != nil {
				return err
			}
			if err := res.failed(); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	fmt.Fprintf(stdout, "%-5s %-8s %8s %6s %9s %9s %9s %9s\n", "round", "target", "requests", "errors", "seconds", "req/s", "p50", "p99")
	results := make([][]loadResult, len(targets)) // by target, then round
	for round := range cfg.rounds {
		for k := range targets {
			i := (k + round) % len(targets) // who goes first alternates
			res, err := drive(apps[i], idp, cfg, targets[i])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%-5d %-8s %8d %6d %9.2f %9.1f %9s %9s\n", round+1, res.name, res.requests, res.errors,
				res.elapsed.Seconds(), res.throughput(), res.p(0.50).Round(10*time.Microsecond), res.p(0.99).Round(10*time.Microsecond))
			for _, e := range res.samples {
				fmt.Fprintf(stdout, "  error sample: %s\n", e)
			}
			if err := res.failed(); err != nil {
				return err
			}
			results[i] = append(results[i], res)
		}
	}
	for i, name := range targets {
		tp := spread(results[i], loadResult.throughput)
		fmt.Fprintf(stdout, "%s: throughput median %.1f req/s [%.1f–%.1f], p50 median %s, p99 median %s\n", name, tp.median, tp.min, tp.max,
			time.Duration(spread(results[i], func(r loadResult) float64 { return float64(r.p(0.5)) }).median).Round(10*time.Microsecond),
			time.Duration(spread(results[i], func(r loadResult) float64 { return float64(r.p(0.99)) }).median).Round(10*time.Microsecond))
	}
	if len(targets) == 2 {
		ratios := make([]float64, cfg.rounds)
		p50s, p99s := make([]float64, cfg.rounds), make([]float64, cfg.rounds)
		for r := range cfg.rounds {
			a, b := results[0][r], results[1][r]
			ratios[r] = a.throughput() / b.throughput()
			p50s[r], p99s[r] = ratio(a.p(0.5), b.p(0.5)), ratio(a.p(0.99), b.p(0.99))
		}
		tp, p50, p99 := spreadOf(ratios), spreadOf(p50s), spreadOf(p99s)
		fmt.Fprintf(stdout, "samljit/samlsp by round: throughput median %.2fx [%.2f–%.2f], p50 median %.2fx [%.2f–%.2f], p99 median %.2fx [%.2f–%.2f]\n",
			tp.median, tp.min, tp.max, p50.median, p50.min, p50.max, p99.median, p99.min, p99.max)
	}
	if !cfg.memory {
		return nil
	}
	peaks := make([]uint64, len(targets))
	for i, name := range targets {
		res, peak, err := peakMemory(name, idp, cfg, dir)
		if err != nil {
			return fmt.Errorf("%s: peak memory: %w", name, err)
		}
		if err := res.failed(); err != nil {
			return fmt.Errorf("peak memory run: %w", err)
		}
		peaks[i] = peak
		fmt.Fprintf(stdout, "%s: peak resident memory %.1f MiB (fresh process, %d sign-ins at %.1f req/s)\n", name, float64(peak)/(1<<20), res.requests, res.throughput())
	}
	if len(targets) == 2 && peaks[1] > 0 {
		fmt.Fprintf(stdout, "samljit/samlsp: peak resident memory %.2fx\n", float64(peaks[0])/float64(peaks[1]))
	}
	return nil
}

// spreadStats are the median, least and greatest of some values.
type spreadStats struct{ median, min, max float64 }

// spread returns the spread of f over results.
func spread(results []loadResult, f func(loadResult) float64) spreadStats {
	vs := make([]float64, len(results))
	for i, r := range results {
		vs[i] = f(r)
	}
	return spreadOf(vs)
}

// spreadOf returns the median (the mean of the middle two of an even
// count), least and greatest of vs, which it sorts.
func spreadOf(vs []float64) spreadStats {
	if len(vs) == 0 {
		return spreadStats{}
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return spreadStats{median: m, min: vs[0], max: vs[len(vs)-1]}
}

// failed returns an error when any of r's sign-ins failed.
func (r loadResult) failed() error {
	if r.errors > 0 {
		return fmt.Errorf("%s: %d of %d sign-ins failed", r.name, r.errors, r.requests)
	}
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// app is an application server under load.
type app struct {
	acsURL, entityID string
	ok               int // the status of a successful sign-in
	srv              *http.Server
	db               *sql.DB
}

func (a *app) close() {
	if a.srv != nil {
		_ = a.srv.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}

// startApp starts the named app ("samljit" or "samlsp") on 127.0.0.1,
// trusting the IdP of idpMetadata.
func startApp(name string, idpMetadata []byte, dbPath string) (*app, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	root := "http://" + ln.Addr().String()
	key, cert, err := spKeyPair()
	if err != nil {
		return nil, err
	}
	a := &app{acsURL: root + "/saml/acs", entityID: root + "/saml/metadata"}
	mux := http.NewServeMux()
	home := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "home") })
	switch name {
	case "samljit":
		db, err := sql.Open("sqlite3", sqlitestore.DSN(dbPath))
		if err != nil {
			return nil, err
		}
		a.db = db
		st, err := sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
		if err != nil {
			return nil, err
		}
		mw, err := jit.New(context.Background(), jit.Options{
			RootURL: root, Key: key, Certificate: cert, Store: st,
			SessionKeys: [][]byte{randomBytes(32)},
			Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Connections: []jit.Connection{{IDPMetadata: idpMetadata, AllowIDPInitiated: true}},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/saml/", mw)
		mux.Handle("/", mw.RequireUser(home))
		a.ok = http.StatusSeeOther
	case "samlsp":
		md, err := jit.ParseIDPMetadata(idpMetadata)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(root)
		sp, err := samlsp.New(samlsp.Options{EntityID: a.entityID, URL: *u, Key: key, Certificate: cert, IDPMetadata: md, AllowIDPInitiated: true})
		if err != nil {
			return nil, err
		}
		mux.Handle("/saml/", sp)
		mux.Handle("/", sp.RequireAccount(home))
		a.ok = http.StatusFound
	default:
		return nil, fmt.Errorf("unknown app %q", name)
	}
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// loadResult is what one target's run measured.
type loadResult struct {
	name             string
	requests, errors int
	elapsed          time.Duration
	latencies        []time.Duration // sorted
	samples          []string
}

func (r loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// p returns the q-quantile of the latencies.
func (r loadResult) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))]
}

var userSeq atomic.Int64

// drive signs in cfg.n distinct users at a's ACS, in batches: each batch is
// minted first (untimed, since the IdP's signing is not the app's cost),
// then posted by cfg.concurrency clients. It stops after cfg.n sign-ins or
// cfg.duration of driving.
func drive(a *app, idp *jittest.IdP, cfg loadConfig, name string) (loadResult, error) {
	res := loadResult{name: name}
	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: cfg.concurrency, MaxIdleConnsPerHost: cfg.concurrency,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	for done := 0; done < cfg.n && (cfg.duration == 0 || res.elapsed < cfg.duration); {
		k := min(cfg.batch, cfg.n-done)
		bodies, err := mintBatch(idp, a, k, cfg.groups)
		if err != nil {
			return res, err
		}
		lat := make([]time.Duration, 0, k)
		var next atomic.Int64
		deadline := time.Time{}
		start := time.Now()
		if cfg.duration > 0 {
			deadline = start.Add(cfg.duration - res.elapsed)
		}
		var wg sync.WaitGroup
		for range cfg.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= k || (!deadline.IsZero() && time.Now().After(deadline)) {
						return
					}
					t0 := time.Now()
					err := post(client, a, bodies[i])
					d := time.Since(t0)
					mu.Lock()
					lat = append(lat, d)
					res.requests++
					if err != nil {
						res.errors++
						if len(res.samples) < 5 {
							res.samples = append(res.samples, err.Error())
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		res.elapsed += time.Since(start)
		res.latencies = append(res.latencies, lat...)
		done += k
	}
	slices.Sort(res.latencies)
	return res, nil
}

// post posts one response and checks for a successful sign-in.
func post(client *http.Client, a *app, body string) error {
	resp, err := client.Post(a.acsURL, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode != a.ok {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "/saml/failed?") {
		return fmt.Errorf("refused: redirected to %s", loc) // samljit's refusal page
	}
	return nil
}

// mintBatch adds k fresh users to idp and mints an IdP-initiated response
// for each, on every CPU.
func mintBatch(idp *jittest.IdP, a *app, k, groups int) ([]string, error) {
	bodies := make([]string, k)
	errs := make([]error, k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= k {
					return
				}
				nameID := fmt.Sprintf("load-%d", userSeq.Add(1))
				idp.AddUser(loadUser(nameID, groups))
				f, err := idp.Unsolicited(a.entityID, a.acsURL, nameID, "")
				if err != nil {
					errs[i] = err
					continue
				}
				bodies[i] = url.Values{"SAMLResponse": {f.SAMLResponse}}.Encode()
			}
		}()
	}
	wg.Wait()
	return bodies, errors.Join(errs...)
}

// loadUser is a user with the generic preset's attributes and the given
// number of groups.
func loadUser(nameID string, groups int) jittest.User {
	gs := make([]string, groups)
	for i := range gs {
		gs[i] = fmt.Sprintf("3f2a9c1e-5b7d-4e8f-9a0b-%012d", i)
	}
	return jittest.User{
		NameID: nameID,
		Attributes: map[string][]string{
			"urn:oid:0.9.2342.19200300.100.1.3": {nameID + "@example.com"},
			"urn:oid:2.5.4.42":                  {"Given"},
			"urn:oid:2.5.4.4":                   {"Family " + nameID},
			"urn:oid:2.16.840.1.113730.3.1.241": {"Given Family " + nameID},
			"urn:oid:1.3.6.1.4.1.5923.1.5.1.1":  gs,
		},
	}
}

// spKeyPair generates the app's SP key pair.
func spKeyPair() (*rsa.PrivateKey, *x509.Certificate, error) {
	return jittest.GenerateKeyPair()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
