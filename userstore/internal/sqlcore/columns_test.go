package sqlcore

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainSeeds are arrays in and out of plainStrings' form.
var plainSeeds = []string{
	`["a"]`, `[""]`, `["",""]`, `["engineers","b5b3c1d2-0000-0000-0000-000000000001","engineers"]`,
	`["Ünïcödé","日本語","😀"]`, `["a]b","c,d","[x]"]`, "[\"\x7f\"]", "[\"\u2028\"]",
	// Not in the plain form: decoded by encoding/json, or refused.
	`[ "a"]`, `["a" ,"b"]`, `["a",]`, `["a""b"]`, `["a"]]`, `["a"],"b"]`, `["a\"b"]`, `["a\\b"]`, `["\u00e9"]`,
	"[\"a\tb\"]", "[\"\xff\"]", "[\"\xed\xa0\x80\"]", `[1]`, `[null]`, `["a",null]`, `[`, `["`, `["]`, `[""`, `null`, `[]`, `{}`,
}

// TestPlainStringsAgreesWithEncodingJSON checks that the fast decoding
// of a groups or roles column gives what encoding/json gives, on arrays in
// its form and on arrays it leaves to encoding/json.
func TestPlainStringsAgreesWithEncodingJSON(t *testing.T) {
	plain := 0
	for _, s := range plainSeeds {
		if checkPlainStrings(t, s) {
			plain++
		}
	}
	assert.Equal(t, 8, plain, "seeds in the plain form")

	groups := make([]string, 150)
	for i := range groups {
		groups[i] = fmt.Sprintf("3f2a9c1e-5b7d-4e8f-9a0b-%012d", i)
	}
	b, err := json.Marshal(groups)
	require.NoError(t, err)
	got, ok := plainStrings(string(b))
	require.True(t, ok, "150 group IDs as encodeJSON writes them")
	assert.Equal(t, groups, got)
}

// TestDecodeStringsRefusesDamage checks that a damaged column is an error,
// not a shorter list.
func TestDecodeStringsRefusesDamage(t *testing.T) {
	for _, s := range []string{`["a",`, `["a"`, `["a",1]`, `["a"]x`, `not json`, ``} {
		_, err := decodeStrings(s)
		assert.Error(t, err, "%q", s)
	}
}

// checkPlainStrings fails t unless plainStrings(s), when it decodes s,
// gives json.Unmarshal's result, and reports whether it decoded it.
func checkPlainStrings(t *testing.T, s string) bool {
	t.Helper()
	checkPlainText(t, s)
	got, ok := plainStrings(s)
	var want []string
	err := json.Unmarshal([]byte(s), &want)
	if !ok {
		return false
	}
	if assert.NoError(t, err, "plainStrings decoded %q, which encoding/json refuses", s) {
		assert.Equal(t, want, got, "plainStrings(%q)", s)
		assert.NotNil(t, got, "plainStrings(%q)", s)
	}
	return true
}

// FuzzPlainStrings checks plainStrings against encoding/json on any input.
func FuzzPlainStrings(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkPlainStrings(t, s) })
}

// checkPlainText fails t unless plainText(s) agrees with a byte-by-byte
// reading of s. Near a byte from 0x80 it may report textEscaped for a
// text that is not (plainStrings then leaves it to encoding/json), never
// the other way.
func checkPlainText(t *testing.T, s string) {
	t.Helper()
	want, high := textASCII, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '\\':
			want = textEscaped
		case c >= 0x80:
			high = true
		}
	}
	if want != textEscaped && high {
		want = textNonASCII
	}
	got := plainText(s)
	if got == textEscaped && want == textNonASCII {
		return // allowed: a false alarm next to a byte from 0x80
	}
	assert.Equal(t, want, got, "plainText(%q)", s)
}

// TestPlainText checks plainText at every position of an eight-byte word.
func TestPlainText(t *testing.T) {
	for _, c := range []byte{0, 0x1f, 0x20, '"', '\\', 0x5b, 0x5d, 0x7f, 0x80, 0xdc, 0xff} {
		for n := 1; n <= 17; n++ {
			for i := range n {
				b := []byte(strings.Repeat("a", n))
				b[i] = c
				checkPlainText(t, string(b))
			}
		}
	}
}
