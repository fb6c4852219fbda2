package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmePath is the README whose section "What SAML JIT cannot do" states
// the facts of the JIT vs SCIM page.
const readmePath = "../README.md"

var (
	mdLink     = regexp.MustCompile(`\[([^\]]*)\]\(([^)]*)\)`)
	mdTableSep = regexp.MustCompile(`^\|[-:| ]+\|$`)
)

// normalize is how README lines and page lines are compared: a Markdown
// link [text](target) becomes "text (target)", emphasis and code marks go,
// and runs of white space become one space.
func normalize(md string) string {
	return strings.Join(strings.Fields(plain(mdLink.ReplaceAllString(md, "$1 ($2)"))), " ")
}

// measuredLine is a measured fact as the page and README state it: the
// text, then the test that measures it and its file.
func measuredLine(f measuredFact) string {
	return normalize(f.Text + " Measured by [`" + f.Test + "`](" + f.File + ").")
}

// factsWant is the page's facts as normalised lines: the table's rows
// (the header first), and the measured lines.
func factsWant() (rows [][]string, measured []string) {
	rows = append(rows, []string{"", jitVsSCIM.Columns[0], jitVsSCIM.Columns[1], jitVsSCIM.Columns[2]})
	for _, r := range jitVsSCIM.Rows {
		rows = append(rows, []string{normalize(r.Aspect), normalize(r.SCIM), normalize(r.Graph), normalize(r.JIT)})
	}
	for _, f := range jitVsSCIM.Measured {
		measured = append(measured, measuredLine(f))
	}
	return rows, measured
}

// pageFacts reads the facts back from the rendered page: the comparison
// table's rows as cell texts and the measured list's items.
func pageFacts(t *testing.T, page string) (rows [][]string, measured []string) {
	t.Helper()
	cell := regexp.MustCompile(`(?s)<t[hd][^>]*>(.*?)</t[hd]>`)
	for _, tr := range regexp.MustCompile(`(?s)<tr>(.*?)</tr>`).FindAllStringSubmatch(htmlTable(t, page, "comparison"), -1) {
		var row []string
		for _, c := range cell.FindAllStringSubmatch(tr[1], -1) {
			row = append(row, textOf(c[1]))
		}
		rows = append(rows, row)
	}
	ul := regexp.MustCompile(`(?s)<ul id="measured">(.*?)</ul>`).FindStringSubmatch(page)
	require.NotNil(t, ul, "no measured list on the page")
	for _, li := range regexp.MustCompile(`(?s)<li>(.*?)</li>`).FindAllStringSubmatch(ul[1], -1) {
		measured = append(measured, textOf(li[1]))
	}
	return rows, measured
}

// readmeFacts reads the facts from README.md's section "What SAML JIT
// cannot do": the table's rows (the header first) and the bullets of the
// list that follows "What samljit does about the limit", normalised.
func readmeFacts(t *testing.T) (rows [][]string, measured []string) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## What SAML JIT cannot do\n")
	require.True(t, ok, "README.md has no section \"What SAML JIT cannot do\"")
	section, _, _ = strings.Cut(section, "\n## ")

	lines := strings.Split(section, "\n")
	inList := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "|") && !mdTableSep.MatchString(l):
			var row []string
			for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
				row = append(row, normalize(c))
			}
			rows = append(rows, row)
		case strings.HasPrefix(l, "What samljit does about the limit"):
			inList = true
		case inList && strings.HasPrefix(l, "- "):
			measured = append(measured, strings.TrimPrefix(l, "- "))
		case inList && strings.HasPrefix(l, "  ") && len(measured) > 0:
			measured[len(measured)-1] += " " + l
		case inList && l == "" && len(measured) > 0:
			inList = false
		}
	}
	for i, m := range measured {
		measured[i] = normalize(m)
	}
	return rows, measured
}

// readmeMarkdown is the README text the facts call for, for a failing
// test to show.
func readmeMarkdown() string {
	var b strings.Builder
	b.WriteString(wrap("", "", jitVsSCIM.Intro) + "\n\n")
	b.WriteString("| | " + strings.Join(jitVsSCIM.Columns[:], " | ") + " |\n|---|---|---|---|\n")
	for _, r := range jitVsSCIM.Rows {
		b.WriteString("| " + r.Aspect + " | " + r.SCIM + " | " + r.Graph + " | " + r.JIT + " |\n")
	}
	b.WriteString("\nWhat samljit does about the limit, by construction:\n\n")
	for _, f := range jitVsSCIM.Measured {
		b.WriteString(wrap("- ", "  ", f.Text+" Measured by [`"+f.Test+"`]("+f.File+").") + "\n")
	}
	return b.String()
}

// wrap fills s into lines of at most 76 columns where words allow.
func wrap(first, rest, s string) string {
	var b strings.Builder
	line := first
	for i, w := range strings.Fields(s) {
		if i > 0 && len(line)+1+len(w) > 76 {
			b.WriteString(line + "\n")
			line = rest + w
			continue
		}
		if i > 0 {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}

// TestJITvsSCIMPage fetches the page and finds the comparison table and
// every measured line, rendered from the shared facts.
func TestJITvsSCIMPage(t *testing.T) {
	_, root := startApp(t, t.TempDir())
	resp, err := http.Get(root + "/jit-vs-scim")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	code, page := get(t, browser(t), root+"/jit-vs-scim")
	require.Equal(t, http.StatusOK, code, "public: no sign-in needed")

	wantRows, wantMeasured := factsWant()
	rows, measured := pageFacts(t, page)
	assert.Equal(t, wantRows, rows)
	assert.Equal(t, wantMeasured, measured)
	require.Len(t, jitVsSCIM.Rows, 7)
	require.Len(t, jitVsSCIM.Measured, 9)

	assert.Contains(t, page, "<td><strong>no</strong>: a person who left never signs in again</td>", "Markdown emphasis is rendered")
	assert.Contains(t, page, "<code>groups.link</code>")
	assert.Contains(t, page, "Measured by <code>TestRemovedAtIdPKeepsAccessUntilSessionEnds</code> (jit/session_test.go).")
	assert.NotContains(t, page, "**")
	assert.NotContains(t, page, "`")
}

// TestREADMEMatchesJITvsSCIMPage keeps README.md and the JIT vs SCIM page
// in step both ways: every README row and measured line is on the page,
// and every page row and line is in the README, in the same order.
func TestREADMEMatchesJITvsSCIMPage(t *testing.T) {
	_, root := startApp(t, t.TempDir())
	code, page := get(t, browser(t), root+"/jit-vs-scim")
	require.Equal(t, http.StatusOK, code)
	pageRows, pageMeasured := pageFacts(t, page)
	readmeRows, readmeMeasured := readmeFacts(t)
	require.NotEmpty(t, readmeRows, "no table in README.md's section")
	require.NotEmpty(t, readmeMeasured, "no measured lines in README.md's section")

	ok := true
	report := func(what string, lines []string) {
		for _, l := range lines {
			ok = false
			t.Errorf("%s:\n\t%s", what, l)
		}
	}
	join := func(rows [][]string) []string {
		var out []string
		for _, r := range rows {
			out = append(out, "| "+strings.Join(r, " | ")+" |")
		}
		return out
	}
	report("README row not on the page", missing(join(readmeRows), join(pageRows)))
	report("page row not in README.md", missing(join(pageRows), join(readmeRows)))
	report("README measured line not on the page", missing(readmeMeasured, pageMeasured))
	report("page measured line not in README.md", missing(pageMeasured, readmeMeasured))
	if ok {
		assert.Equal(t, join(pageRows), join(readmeRows), "table order")
		assert.Equal(t, pageMeasured, readmeMeasured, "measured lines order")
	} else {
		t.Logf("README.md's section, as the page's facts (example/pages.go) state it:\n\n%s", readmeMarkdown())
	}
}

// missing returns the lines of from that are not in in.
func missing(from, in []string) []string {
	var out []string
	for _, l := range from {
		if !slices.Contains(in, l) {
			out = append(out, l)
		}
	}
	return out
}

// TestMeasuredFactsNameRealTests checks each measured line's test exists
// where it says, so a renamed or deleted test cannot leave a claim unbacked.
func TestMeasuredFactsNameRealTests(t *testing.T) {
	for _, f := range jitVsSCIM.Measured {
		require.NotEmpty(t, f.Text)
		require.True(t, strings.HasSuffix(f.File, "_test.go") || strings.HasPrefix(f.File, "userstore/storetest/"), f.File)
		src, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(f.File)))
		require.NoError(t, err, "%s names a missing file", f.Test)
		assert.Contains(t, string(src), "func "+f.Test+"(t *testing.T", "%s has no test %s", f.File, f.Test)
		if f.Test[0] >= 'a' && f.Test[0] <= 'z' {
			// A conformance-suite case runs only if the suite lists it.
			assert.Regexp(t, `\{"[A-Za-z]+", `+regexp.QuoteMeta(f.Test)+`\}`, string(src), "storetest.Run does not run %s", f.Test)
		}
	}
}

func TestInlineMarkdown(t *testing.T) {
	for md, want := range map[string]string{
		"plain":                     "plain",
		"**yes**":                   "<strong>yes</strong>",
		"a `/Users`, `/Groups` b":   "a <code>/Users</code>, <code>/Groups</code> b",
		"**Suspend** `x<y>`":        "<strong>Suspend</strong> <code>x&lt;y&gt;</code>",
		"**a `b` c**":               "<strong>a <code>b</code> c</strong>",
		"<script>alert(1)</script>": "&lt;script&gt;alert(1)&lt;/script&gt;",
		"unmatched ` and * and **":  "unmatched ` and * and **",
		"it's & \"so\"":             "it&#39;s &amp; &#34;so&#34;",
	} {
		assert.Equal(t, want, string(inlineMarkdown(md)), md)
	}
}
