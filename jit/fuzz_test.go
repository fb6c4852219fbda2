package jit_test

import (
	"bytes"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore/memstore"
)

const (
	// fuzzMaxResponse is FuzzACS's bound on the decoded response: a
	// quarter of the default, so that the oversized seeds stay small.
	fuzzMaxResponse = 64 << 10
	// fuzzRoot and fuzzIssuer are FuzzACS's SP root URL and IdP entity ID,
	// the same in every process of a fuzzing run, as are its keys.
	fuzzRoot   = "http://sp.fuzz.test"
	fuzzIssuer = "https://idp.fuzz.test/metadata"
)

// FuzzACS posts arbitrary response XML to the ACS. No panic may escape,
// every refusal is a plain page with a correlation id, and a sign-in that
// is accepted must have produced a valid key bound to the connection.
//
// The seeds are every case of the hostile suites (signatureCases,
// protocolFieldCases, encryptedCases, crewjamGapCases, rawXMLCases), RSA-SHA1,
// a directive inside the Response, oversized bodies, and responses that are
// accepted. In a plain go test, where this process built and signed them,
// each hostile seed must be refused and each good one accepted.
//
// With -fuzz, the coordinator builds the seeds and the workers run them,
// each with its own middleware; the URLs, IdP entity ID and both key pairs
// are fixed so that a worker's middleware verifies and decrypts them as
// this one does, and mutations start from responses that pass the
// signature checks. Seeds older than crewjam's MaxIssueDelay and the clock
// skew (about 4.5 minutes) are refused as too old, so long fuzzing runs
// explore less past that point.
func FuzzACS(f *testing.F) {
	h := fuzzHarness(f, true)
	idp := h.idp()
	acs := fuzzRoot + "/saml/acs"
	// What each seed must come to when this process posts it: refused
	// (hostile) or accepted. Seeds are looked up by their exact bytes, so
	// no mutation of the fuzzer matches, nor a seed another process built.
	mustRefuse, mustAccept := map[string]string{}, map[string]string{}
	for _, sd := range acsSeeds(f, h) {
		f.Add(sd.raw)
		if sd.good {
			mustAccept[string(sd.raw)] = sd.name
		} else {
			mustRefuse[string(sd.raw)] = sd.name
		}
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		before := len(h.eventsOf(jit.EventCreated)) + len(h.eventsOf(jit.EventUpdated))
		rec := postForm(t, h.mw, jittest.Form{ACS: acs, SAMLResponse: base64.StdEncoding.EncodeToString(raw)})
		if name, ok := mustRefuse[string(raw)]; ok {
			require.NotEqual(t, http.StatusSeeOther, rec.Code, "hostile seed %q was accepted", name)
		}
		if name, ok := mustAccept[string(raw)]; ok {
			require.Equal(t, http.StatusSeeOther, rec.Code, "good seed %q was refused: %v", name, h.lastEvent().Err)
		}
		require.Empty(t, h.takeMismatches(), "the fast path and crewjam disagree")
		switch rec.Code {
		case http.StatusSeeOther:
			e := h.lastEvent()
			require.Contains(t, []jit.EventKind{jit.EventCreated, jit.EventUpdated}, e.Kind)
			require.Equal(t, before+1, len(h.eventsOf(jit.EventCreated))+len(h.eventsOf(jit.EventUpdated)))
			require.False(t, e.Key.IsZero())
			require.Equal(t, idp.EntityID(), e.Key.Issuer)
		default:
			require.GreaterOrEqual(t, rec.Code, 400)
			require.Regexp(t, correlationRE, rec.Body.String())
		}
	})
}

// fuzzHarness is FuzzACS's harness: fixed URLs, IdP entity ID and key
// pairs, so that every process of a fuzzing run verifies and decrypts the
// seeds alike, and the users the seeds sign in.
func fuzzHarness(f testing.TB, allowIDPInitiated bool) *harness {
	idpKey, idpCert, err := fixedKeyPair("samljit FuzzACS IdP")
	require.NoError(f, err)
	spKey, spCert, err := fixedKeyPair("samljit FuzzACS SP")
	require.NoError(f, err)
	h := newHarness(f, harnessConfig{
		store: memstore.New(),
		// The fuzzer makes shapes no IdP sends; the fast path may leave
		// them to crewjam. FuzzFastPath holds it to taking the good seeds.
		fastMayDecline: true,
		idpOptions: func(o *jittest.Options) {
			o.Key, o.Certificate, o.EntityID = idpKey, idpCert, fuzzIssuer
		},
		configure: func(o *jit.Options) {
			o.RootURL = fuzzRoot
			o.Key, o.Certificate = spKey, spCert
			o.Connections[0].AllowIDPInitiated = allowIDPInitiated
			o.MaxResponseBytes = fuzzMaxResponse
		},
	})
	for _, p := range []string{"p-fuzz", "p-comment", victim, admin} {
		h.idp().AddUser(person(p, p+"@example.com", "Fuzz", "Er", "g1"))
	}
	return h
}

// acsSeed is one response of FuzzACS's corpus, and whether this process
// must accept it (good) or refuse it.
type acsSeed struct {
	name string
	raw  []byte
	good bool
}

// acsSeeds builds FuzzACS's corpus with h's IdP: every case of the hostile
// suites and responses that are accepted (see FuzzACS).
func acsSeeds(f testing.TB, h *harness) []acsSeed {
	var seeds []acsSeed
	idp := h.idp()
	acs := fuzzRoot + "/saml/acs"
	hostile := func(name string, raw []byte) { seeds = append(seeds, acsSeed{name, raw, false}) }
	good := func(name string, raw []byte) { seeds = append(seeds, acsSeed{name, raw, true}) }
	// build signs an IdP-initiated response for nameID with p, forged as
	// tc says (its idp options are those p was started with).
	build := func(p *jittest.IdP, nameID string, tc hostileCase) []byte {
		p.SetMutateAssertion(tc.assertion)
		p.SetMutateAssertionElement(tc.element)
		if tc.response != nil {
			p.SetMutateResponse(func(r *etree.Element) { tc.response(f, h, r) })
		}
		defer func() {
			p.SetMutateAssertion(nil)
			p.SetMutateAssertionElement(nil)
			p.SetMutateResponse(nil)
		}()
		form, err := p.Unsolicited(fuzzRoot+"/saml/metadata", acs, nameID, "/")
		require.NoError(f, err)
		raw, err := form.XML()
		require.NoError(f, err)
		return raw
	}
	// signer returns an IdP that is the trusted one (same key, certificate
	// and entity ID) but started with other options, such as signing the
	// Response or signing with RSA-SHA1.
	signer := func(opts func(*jittest.Options)) *jittest.IdP {
		if opts == nil {
			return idp
		}
		p := jittest.New(f, opts, func(o *jittest.Options) {
			o.Key, o.Certificate, o.EntityID = idp.Key(), idp.Certificate(), idp.EntityID()
		})
		for _, n := range []string{victim, "p-fuzz"} {
			p.AddUser(person(n, n+"@example.com", "Fuzz", "Er", "g1"))
		}
		return p
	}

	valid := build(idp, "p-fuzz", hostileCase{})
	good("valid", valid)
	for _, enc := range acceptedEncryptions {
		p := idp
		if strings.HasSuffix(enc.Block, "-cbc") {
			p = signer(signedBy(true, true)) // AES-CBC needs a signed Response
		}
		good("encrypted "+enc.KeyTransport+" "+enc.Block, build(p, "p-fuzz", hostileCase{response: encryptWith(enc)}))
	}
	// The comment splits the signed NameID: refused.
	hostile("comment in NameID", build(idp, "p-comment", hostileCase{
		element:  signNameID("p-comment.evil.example"),
		response: func(_ testing.TB, _ *harness, r *etree.Element) { commentInNameID("p-comment", ".evil.example")(r) },
	}))

	var cases []hostileCase
	for _, suite := range [][]hostileCase{signatureCases(), protocolFieldCases(), encryptedCases(), crewjamGapCases()} {
		cases = append(cases, suite...)
	}
	cases = append(cases,
		hostileCase{name: "RSA-SHA1 signature", idp: signWithSHA1},
		hostileCase{name: "signed assertion twice", response: func(_ testing.TB, _ *harness, r *etree.Element) {
			r.AddChild(childNamed(r, "Assertion").Copy())
		}},
	)
	for _, tc := range cases {
		hostile(tc.name, build(signer(tc.idp), victim, tc))
	}
	// Altered as text or padded, a response that would otherwise be good.
	for _, rc := range rawXMLCases() {
		hostile(rc.name, []byte(rc.edit(string(build(idp, victim, hostileCase{})))))
	}
	hostile("directive inside the Response", []byte(directiveInsideResponse(string(build(idp, victim, hostileCase{})))))
	for _, size := range []int{
		fuzzMaxResponse + 1,     // refused once decoded
		fuzzMaxResponse * 5 / 4, // refused by its encoded length, before decoding
		fuzzMaxResponse * 2,     // over the body bound: never read in full
	} {
		hostile("oversized", padTo(build(idp, victim, hostileCase{}), size))
	}
	for _, raw := range []string{
		`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>`,
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"></samlp:Response>`,
		strings.Repeat("<a>", 100),
		"",
	} {
		hostile("literal", []byte(raw))
	}
	return seeds
}

// padTo appends a comment to raw, after its root element, so that it is
// size bytes long: a response that is valid but for its size.
func padTo(raw []byte, size int) []byte {
	const open, end = "<!--", "-->"
	n := size - len(raw) - len(open) - len(end)
	if n < 0 {
		n = 0
	}
	return bytes.Join([][]byte{raw, []byte(open), bytes.Repeat([]byte{'x'}, n), []byte(end)}, nil)
}

// fixedKeyPair derives an RSA-2048 key, and a self-signed certificate for
// it, from name alone. FuzzACS signs its seeds in one process (the fuzzing
// coordinator) and runs them in others (its workers): only keys and
// certificates every process derives alike let a worker verify, and
// decrypt, what the coordinator signed and encrypted. The key is as secret
// as name: for tests only.
func fixedKeyPair(name string) (*rsa.PrivateKey, *x509.Certificate, error) {
	rng := mrand.NewChaCha8(sha256.Sum256([]byte(name)))
	prime := func() *big.Int {
		b := make([]byte, 128)
		for {
			_, _ = rng.Read(b)
			b[0] |= 0xc0 // the top two bits set: p*q has 2048 bits
			b[len(b)-1] |= 1
			if p := new(big.Int).SetBytes(b); p.ProbablyPrime(20) {
				return p
			}
		}
	}
	e := big.NewInt(65537)
	one := big.NewInt(1)
	var key *rsa.PrivateKey
	for key == nil {
		p, q := prime(), prime()
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if p.Cmp(q) == 0 || d == nil {
			continue
		}
		key = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
	}
	if err := key.Validate(); err != nil {
		return nil, nil, err
	}
	key.Precompute()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{Organization: []string{"samljit FuzzACS"}, CommonName: name},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	// PKCS #1 v1.5 signatures are deterministic: so is the certificate.
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}
