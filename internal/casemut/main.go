// Command casemut tests the mutants of case-clause conditions, which
// gremlins (the mutation tester .ci/mutation runs) never tests: Go's
// coverage blocks start after a case's colon, so gremlins counts a
// tagless switch's conditions as not covered although the tests run them.
// It makes the mutants gremlins would (the same operators, the same
// names, the same line and column), runs the tests of each mutant's
// package, and reports each mutant in gremlins' words, so that
// .ci/mutation checks them against docs/MUTATION.md the same way:
//
//	go run ./internal/casemut [-diff REF] [-timeout-coefficient N] [-exclude RE]... [-dry-run] DIR
//
// DIR is a package directory (jit); files are named relative to it, as
// gremlins names them, and its subdirectories are included unless an
// -exclude pattern matches their relative path. With -diff, only the
// mutants on lines changed since the merge base with REF are tested.
//
// Mutants are tested one at a time, in place: the file is rewritten and
// restored after each, also on an interrupt. Run it on a clean work tree.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mutant is one operator of a case-clause condition, replaced.
type mutant struct {
	file   string // relative to DIR
	line   int
	col    int // 1-based byte column of the operator, as gremlins counts
	offset int // byte offset of the operator in the file
	from   string
	to     string
	kind   string // gremlins' mutator name
}

// mutations are gremlins v0.6.0's default mutators for the binary
// operators a condition holds: CONDITIONALS_BOUNDARY and
// CONDITIONALS_NEGATION for comparisons, ARITHMETIC_BASE for arithmetic.
var mutations = map[token.Token][]struct{ to, kind string }{
	token.EQL: {{"!=", "CONDITIONALS_NEGATION"}},
	token.NEQ: {{"==", "CONDITIONALS_NEGATION"}},
	token.LSS: {{"<=", "CONDITIONALS_BOUNDARY"}, {">=", "CONDITIONALS_NEGATION"}},
	token.LEQ: {{"<", "CONDITIONALS_BOUNDARY"}, {">", "CONDITIONALS_NEGATION"}},
	token.GTR: {{">=", "CONDITIONALS_BOUNDARY"}, {"<=", "CONDITIONALS_NEGATION"}},
	token.GEQ: {{">", "CONDITIONALS_BOUNDARY"}, {"<", "CONDITIONALS_NEGATION"}},
	token.ADD: {{"-", "ARITHMETIC_BASE"}},
	token.SUB: {{"+", "ARITHMETIC_BASE"}},
	token.MUL: {{"/", "ARITHMETIC_BASE"}},
	token.QUO: {{"*", "ARITHMETIC_BASE"}},
	token.REM: {{"*", "ARITHMETIC_BASE"}},
}

// caseMutants returns the mutants of the case-clause conditions of the Go
// source src, named file.
func caseMutants(file string, src []byte) ([]mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []mutant
	ast.Inspect(f, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok {
			return true
		}
		for _, e := range cc.List {
			ast.Inspect(e, func(n ast.Node) bool {
				if _, ok := n.(*ast.FuncLit); ok {
					return false // a function's body is covered like any other
				}
				b, ok := n.(*ast.BinaryExpr)
				if !ok {
					return true
				}
				if b.Op == token.ADD && (isString(b.X) || isString(b.Y)) {
					return true // + on strings is no arithmetic
				}
				pos := fset.Position(b.OpPos)
				for _, m := range mutations[b.Op] {
					out = append(out, mutant{file: file, line: pos.Line, col: pos.Column, offset: pos.Offset, from: b.Op.String(), to: m.to, kind: m.kind})
				}
				return true
			})
		}
		return true
	})
	slices.SortStableFunc(out, func(a, b mutant) int { return a.offset - b.offset })
	return out, nil
}

// isString reports whether e is a string literal, the one kind of string
// operand that can be told without type-checking.
func isString(e ast.Expr) bool {
	l, ok := e.(*ast.BasicLit)
	return ok && l.Kind == token.STRING
}

// apply returns src with m applied.
func (m mutant) apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+1)
	out = append(out, src[:m.offset]...)
	out = append(out, m.to...)
	return append(out, src[m.offset+len(m.from):]...)
}

// changedLines returns, for each file under dir changed since the merge
// base with ref, the lines of the work tree's version that the change
// added or altered, the files named relative to dir.
func changedLines(dir, ref string) (map[string]map[int]bool, error) {
	cmd := exec.Command("git", "diff", "--relative", "-U0", "--no-color", "--merge-base", ref, "--", ".")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git diff --merge-base %s: %w", ref, err)
	}
	return parseDiff(out)
}

var hunk = regexp.MustCompile(`^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@`)

// parseDiff reads a zero-context unified diff.
func parseDiff(diff []byte) (map[string]map[int]bool, error) {
	changed := map[string]map[int]bool{}
	var file string
	sc := bufio.NewScanner(bytes.NewReader(diff))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "+++ "); ok {
			file = strings.TrimPrefix(name, "b/")
			if name == "/dev/null" {
				file = ""
			}
			continue
		}
		m := hunk.FindStringSubmatch(line)
		if m == nil || file == "" {
			continue
		}
		start, _ := strconv.Atoi(m[1])
		n := 1
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		if changed[file] == nil {
			changed[file] = map[int]bool{}
		}
		for l := start; l < start+n; l++ {
			changed[file][l] = true
		}
	}
	return changed, sc.Err()
}

func main() {
	var excludes multiFlag
	diffRef := flag.String("diff", "", "test only the mutants on lines changed since the merge base with this branch or commit")
	coefficient := flag.Float64("timeout-coefficient", 4, "a mutant's tests time out after this many times the unmutated run")
	dryRun := flag.Bool("dry-run", false, "list the mutants without testing them")
	flag.Var(&excludes, "exclude", "a regular expression of files to leave out, relative to DIR (repeatable)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: casemut [flags] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *diffRef, *coefficient, excludes, *dryRun); err != nil {
		fmt.Fprintln(os.Stderr, "casemut:", err)
		os.Exit(1)
	}
}

type multiFlag []*regexp.Regexp

func (f *multiFlag) String() string { return fmt.Sprint(*f) }
func (f *multiFlag) Set(s string) error {
	re, err := regexp.Compile(s)
	if err != nil {
		return err
	}
	*f = append(*f, re)
	return nil
}

func run(ctx context.Context, dir, diffRef string, coefficient float64, excludes []*regexp.Regexp, dryRun bool) error {
	var changed map[string]map[int]bool
	if diffRef != "" {
		var err error
		if changed, err = changedLines(dir, diffRef); err != nil {
			return err
		}
	}
	var all []mutant
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") ||
			slices.ContainsFunc(excludes, func(re *regexp.Regexp) bool { return re.MatchString(rel) }) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ms, err := caseMutants(rel, src)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if changed == nil || changed[rel][m.line] {
				all = append(all, m)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d case-clause mutants in %s\n", len(all), dir)
	if dryRun {
		for _, m := range all {
			fmt.Printf("%13s %s at %s:%d:%d\n", "RUNNABLE", m.kind, m.file, m.line, m.col)
		}
		return nil
	}
	if len(all) == 0 {
		fmt.Println("Killed: 0, Lived: 0, Not covered: 0")
		return nil
	}

	// The unmutated tests of every package concerned, once: they must
	// pass, and their time sets the timeout.
	var pkgs []string
	for _, m := range all {
		if p := pkgOf(dir, m.file); !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	budget := map[string]time.Duration{}
	for _, p := range pkgs {
		start := time.Now()
		if out, err := goTest(ctx, p, 0); err != nil {
			return fmt.Errorf("the unmutated tests of %s fail: %w\n%s", p, err, out)
		}
		budget[p] = time.Duration(coefficient*float64(time.Since(start))) + 10*time.Second
	}

	var killed, lived, timedOut, notViable int
	for _, m := range all {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		status, err := test(ctx, dir, m, budget[pkgOf(dir, m.file)])
		if err != nil {
			return err
		}
		switch status {
		case "KILLED":
			killed++
		case "LIVED":
			lived++
		case "TIMED OUT":
			timedOut++
		case "NOT VIABLE":
			notViable++
		}
		fmt.Printf("%13s %s at %s:%d:%d\n", status, m.kind, m.file, m.line, m.col)
	}
	fmt.Printf("Killed: %d, Lived: %d, Not covered: 0\n", killed, lived)
	fmt.Printf("Timed out: %d, Not viable: %d\n", timedOut, notViable)
	if killed+lived > 0 {
		fmt.Printf("Test efficacy: %.2f%%\n", 100*float64(killed)/float64(killed+lived))
	}
	return nil
}

// pkgOf is the package directory (./DIR/sub) of file, relative to DIR.
func pkgOf(dir, file string) string {
	return "./" + filepath.ToSlash(filepath.Join(dir, filepath.Dir(file)))
}

// test applies m, runs its package's tests, and restores the file.
func test(ctx context.Context, dir string, m mutant, budget time.Duration) (status string, err error) {
	path := filepath.Join(dir, m.file)
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if string(orig[m.offset:m.offset+len(m.from)]) != m.from {
		return "", fmt.Errorf("%s:%d:%d: %q is not at the operator's offset", m.file, m.line, m.col, m.from)
	}
	if err := os.WriteFile(path, m.apply(orig), 0o644); err != nil {
		return "", err
	}
	defer func() {
		if werr := os.WriteFile(path, orig, 0o644); werr != nil && err == nil {
			err = werr
		}
	}()
	out, terr := goTest(ctx, pkgOf(dir, m.file), budget)
	switch {
	case terr == nil:
		return "LIVED", nil
	case errors.Is(terr, context.DeadlineExceeded):
		return "TIMED OUT", nil
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		return "NOT VIABLE", nil
	default:
		return "KILLED", nil
	}
}

// goTest runs a package's tests, failing fast, within budget (none when 0).
func goTest(ctx context.Context, pkg string, budget time.Duration) ([]byte, error) {
	args := []string{"test", "-count=1", "-failfast"}
	if budget > 0 {
		args = append(args, "-timeout", budget.String())
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, budget+5*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	out, err := cmd.CombinedOutput()
	if err != nil && (ctx.Err() != nil || bytes.Contains(out, []byte("panic: test timed out"))) {
		return out, context.DeadlineExceeded
	}
	return out, err
}
