package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/samljit/samljit/jit/jittest"
)

// The environment of a load test's child process: the binary re-executed
// to serve one target alone, so that its peak memory is that target's.
const (
	childTargetEnv = "SAMLJIT_LOADTEST_CHILD"     // the target to serve
	childIdPEnv    = "SAMLJIT_LOADTEST_CHILD_IDP" // the file of the IdP's metadata
	childDBEnv     = "SAMLJIT_LOADTEST_CHILD_DB"  // the SQLite file
)

// loadChild returns the target a load test's child process is to serve,
// or "" when this process is not one.
func loadChild() string { return os.Getenv(childTargetEnv) }

// runLoadChild serves target on 127.0.0.1 as the child process of
// peakMemory: it prints "app ACS-URL ENTITY-ID OK-STATUS", serves until
// its standard input ends, then prints "vmhwm BYTES", its peak resident
// set, and returns the exit status.
func runLoadChild(target string, stdin io.Reader, stdout, stderr io.Writer) int {
	md, err := os.ReadFile(os.Getenv(childIdPEnv))
	if err != nil {
		fmt.Fprintf(stderr, "loadtest child: %v\n", err)
		return 1
	}
	a, err := startApp(target, md, os.Getenv(childDBEnv))
	if err != nil {
		fmt.Fprintf(stderr, "loadtest child: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "app %s %s %d\n", a.acsURL, a.entityID, a.ok)
	_, _ = io.Copy(io.Discard, stdin)
	a.close()
	hwm, err := peakRSS()
	if err != nil {
		fmt.Fprintf(stderr, "loadtest child: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "vmhwm %d\n", hwm)
	return 0
}

// peakRSS returns this process's peak resident set size in bytes
// (VmHWM), which counts memory outside Go's heap, such as SQLite's.
func peakRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak resident memory is read from /proc (Linux only): %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected /proc/self/status line %q", line)
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// peakMemory starts target in a fresh child process (this binary,
// re-executed), drives cfg.n sign-ins at it from this process (IdP and
// clients stay here), and returns the run and the child's peak resident
// set in bytes.
func peakMemory(target string, idp *jittest.IdP, cfg loadConfig, dir string) (res loadResult, peak uint64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return res, 0, err
	}
	mdPath := filepath.Join(dir, "idp-metadata.xml")
	if err := os.WriteFile(mdPath, idp.Metadata(), 0o600); err != nil {
		return res, 0, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childTargetEnv+"="+target, childIdPEnv+"="+mdPath,
		childDBEnv+"="+filepath.Join(dir, target+"-fresh.db"))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return res, 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, 0, err
	}
	if err := cmd.Start(); err != nil {
		return res, 0, err
	}
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	lines := bufio.NewScanner(out)
	next := func(word string, n int) ([]string, error) {
		if !lines.Scan() {
			return nil, fmt.Errorf("child process: no %q line: %w", word, errors.Join(lines.Err(), io.ErrUnexpectedEOF))
		}
		f := strings.Fields(lines.Text())
		if len(f) != n+1 || f[0] != word {
			return nil, fmt.Errorf("child process: got %q, want a %q line", lines.Text(), word)
		}
		return f[1:], nil
	}
	f, err := next("app", 3)
	if err != nil {
		return res, 0, err
	}
	a := &app{acsURL: f[0], entityID: f[1]}
	if a.ok, err = strconv.Atoi(f[2]); err != nil {
		return res, 0, fmt.Errorf("child process: status %q: %w", f[2], err)
	}
	if res, err = drive(a, idp, cfg, target); err != nil {
		return res, 0, err
	}
	if err := in.Close(); err != nil {
		return res, 0, err
	}
	if f, err = next("vmhwm", 1); err != nil {
		return res, 0, err
	}
	if peak, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return res, 0, fmt.Errorf("child process: peak %q: %w", f[0], err)
	}
	if err := cmd.Wait(); err != nil {
		return res, 0, fmt.Errorf("child process: %w", err)
	}
	return res, peak, nil
}
