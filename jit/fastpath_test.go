package jit_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

// The fast path (jit/fastpath.go) verifies and reads a response on one
// etree parse; crewjam's ParseXMLResponse, with this package's checks
// after it, is its oracle. Every test on the harness already runs each
// response through both (jit.SetOracle); the tests here add the corpus
// the fuzzer starts from, the shapes the fast path must take, and the
// captured response of testdata/.

// inResponseToRE finds a response's first InResponseTo, to post it as the
// answer to that request.
var inResponseToRE = regexp.MustCompile(`InResponseTo="([^"]*)"`)

// FuzzFastPath runs arbitrary response XML through the fast path and
// crewjam, each followed by this package's checks, on a connection that
// accepts IdP-initiated sign-in and on one that does not, unsolicited and
// as the answer to the request it names and to another: the fast path
// must never accept what crewjam refuses, nor read another identity.
//
// The seeds are FuzzACS's (every hostile suite, and good responses) and
// good responses of each shape IdPs send: the assertion signed, the
// Response signed, both, 150 groups, and answers to a request. In a plain
// go test the good ones must be taken by the fast path itself, except the
// encrypted ones, which it leaves to crewjam.
func FuzzFastPath(f *testing.F) {
	open, closed := fuzzHarness(f, true), fuzzHarness(f, false)
	take := map[string]string{}
	for _, sd := range acsSeeds(f, open) {
		f.Add(sd.raw)
		if sd.good && !strings.Contains(string(sd.raw), "EncryptedAssertion") {
			take[string(sd.raw)] = sd.name
		}
	}
	for _, sd := range shapeSeeds(f, open) {
		f.Add(sd.raw)
		take[string(sd.raw)] = sd.name
	}
	// Good but for what the parser or crewjam's round-trip validator
	// refuses, in the Response around the signed assertion: names that do
	// not round-trip, an empty prefix, too many namespaces in scope.
	valid := shapeSeeds(f, open)[0].raw
	for _, edit := range []func(string) string{
		func(x string) string { return strings.Replace(x, "<samlp:Response ", `<samlp:Response a:b:c="x" `, 1) },
		func(x string) string { return strings.Replace(x, "<samlp:Response ", `<samlp:Response xmlns:a="" `, 1) },
		func(x string) string {
			return strings.Replace(x, "<samlp:Status>", `<samlp:Extensions><e:f:g/></samlp:Extensions><samlp:Status>`, 1)
		},
		func(x string) string {
			var decls strings.Builder
			for i := range 70 {
				fmt.Fprintf(&decls, `xmlns:n%d="urn:n%d" `, i, i)
			}
			return strings.Replace(x, "<samlp:Response ", "<samlp:Response "+decls.String(), 1)
		},
	} {
		edited := edit(string(valid))
		require.NotEqual(f, string(valid), edited)
		f.Add([]byte(edited))
	}
	// An answer to a request of the closed connection.
	open.idp().AddUser(person("p-shape-sp", "p-shape-sp@example.com", "Fuzz", "Er", "g1"))
	closed.idp().AddUser(person("p-shape-sp", "p-shape-sp@example.com", "Fuzz", "Er", "g1"))
	solicited, err := closed.respond(closed.client(), "", "p-shape-sp").XML()
	require.NoError(f, err)
	f.Add(solicited)

	f.Fuzz(func(t *testing.T, raw []byte) {
		b64 := base64.StdEncoding.EncodeToString(raw)
		named := ""
		if m := inResponseToRE.FindSubmatch(raw); m != nil {
			named = string(m[1])
		}
		for _, h := range []*harness{open, closed} {
			for _, req := range []struct {
				id        string
				solicited bool
			}{{"", false}, {named, true}, {"id-other", true}} {
				mismatch, fastErr, oracleErr := jit.CompareWithOracle(h.mw, "", b64, req.id, req.solicited)
				require.Empty(t, mismatch)
				if name, ok := take[string(raw)]; ok && h == open && !req.solicited {
					require.NoError(t, oracleErr, "crewjam refuses good seed %q", name)
					require.NoError(t, fastErr, "the fast path declines good seed %q", name)
				}
				if string(raw) == string(solicited) && h == closed && req.solicited && req.id == named {
					require.NoError(t, oracleErr, "crewjam refuses the answer to a request")
					require.NoError(t, fastErr, "the fast path declines the answer to a request")
				}
			}
		}
	})
}

// shapeSeeds signs good IdP-initiated responses of each shape with h's
// IdP key and entity ID.
func shapeSeeds(f testing.TB, h *harness) []acsSeed {
	idp := h.idp()
	var seeds []acsSeed
	for _, sh := range []struct {
		name   string
		opts   func(*jittest.Options)
		groups int
	}{
		{"assertion signed", nil, 5},
		{"response signed", signedBy(true, false), 5},
		{"response and assertion signed", signedBy(true, true), 5},
		{"150 groups", nil, 150},
	} {
		p := jittest.New(f, func(o *jittest.Options) {
			if sh.opts != nil {
				sh.opts(o)
			}
			o.Key, o.Certificate, o.EntityID = idp.Key(), idp.Certificate(), idp.EntityID()
		})
		name := fmt.Sprintf("p-shape-%d", len(seeds))
		p.AddUser(benchPerson(name, sh.groups))
		form, err := p.Unsolicited(fuzzRoot+"/saml/metadata", fuzzRoot+"/saml/acs", name, "/")
		require.NoError(f, err)
		raw, err := form.XML()
		require.NoError(f, err)
		seeds = append(seeds, acsSeed{name: sh.name, raw: raw, good: true})
	}
	return seeds
}

// TestFastPathTakesCommonShapes checks that the fast path, not crewjam,
// accepts the responses IdPs send, end to end through the ACS and against
// the oracle: otherwise it would fall back silently and only be slower.
func TestFastPathTakesCommonShapes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		idp       func(*jittest.Options)
		allowSHA1 bool
		groups    int
	}{
		{name: "assertion signed", groups: 5},
		{name: "response signed", idp: signedBy(true, false), groups: 5},
		{name: "both signed", idp: signedBy(true, true), groups: 5},
		{name: "150 groups", groups: 150},
		{name: "RSA-SHA1, allowed", idp: signWithSHA1, allowSHA1: true, groups: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessConfig{idpOptions: tc.idp, configure: func(o *jit.Options) {
				o.Connections[0].AllowSHA1 = tc.allowSHA1
			}})
			h.idp().AddUser(benchPerson("p-shape", tc.groups))
			c := h.client()
			f := h.respond(c, "", "p-shape")
			raw, err := f.XML()
			require.NoError(t, err)
			m := inResponseToRE.FindSubmatch(raw)
			require.NotNil(t, m)
			mismatch, fastErr, oracleErr := jit.CompareWithOracle(h.mw, "", f.SAMLResponse, string(m[1]), true)
			require.Empty(t, mismatch)
			require.NoError(t, oracleErr)
			require.NoError(t, fastErr)
			resp, body := h.post(c, f)
			require.Equal(t, 303, resp.StatusCode, body)
			require.Equal(t, "p-shape", h.lastEvent().Key.Subject)
		})
	}
}

// TestFastPathCapturedResponse runs the captured Entra ID-shaped response
// of testdata/explain through both paths at its issue time: both accept
// it and read the same identity. Under the metadata of a rolled-over
// certificate both refuse it.
func TestFastPathCapturedResponse(t *testing.T) {
	dir := filepath.Join("..", "testdata", "explain")
	b64, err := os.ReadFile(filepath.Join(dir, "response.b64"))
	require.NoError(t, err)
	issued := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		metadata string
		accept   bool
	}{{"idp-metadata.xml", true}, {"rolled-idp-metadata.xml", false}} {
		t.Run(tc.metadata, func(t *testing.T) {
			md, err := os.ReadFile(filepath.Join(dir, tc.metadata))
			require.NoError(t, err)
			key, cert := spKeyPair()
			mw, err := jit.New(context.Background(), jit.Options{
				RootURL: "https://app.example.com", Key: key, Certificate: cert,
				Store: memstore.New(), SessionKeys: [][]byte{make32()},
				Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
				Now:         func() time.Time { return issued.Add(30 * time.Second) },
				Connections: []jit.Connection{{IDPMetadata: md}},
			})
			require.NoError(t, err)
			mismatch, fastErr, oracleErr := jit.CompareWithOracle(mw, "", strings.TrimSpace(string(b64)), "_req-7f3a", true)
			require.Empty(t, mismatch)
			if tc.accept {
				require.NoError(t, oracleErr)
				require.NoError(t, fastErr)
			} else {
				require.Error(t, oracleErr)
				require.Error(t, fastErr)
			}
		})
	}
}
