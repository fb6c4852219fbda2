package jit_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
)

// refreshEvery is the metadata refresh interval of these tests: short, so
// that a change on the metadata server is seen within milliseconds.
const refreshEvery = 20 * time.Millisecond

// metadataServer serves IdP metadata bytes that a test changes over time,
// on 127.0.0.1, and counts the fetches.
type metadataServer struct {
	srv *httptest.Server

	mu      sync.Mutex
	doc     []byte
	status  int // 0 serves doc; anything else is sent as an error
	fetches int
}

func newMetadataServer(t testing.TB, doc []byte) *metadataServer {
	t.Helper()
	s := &metadataServer{doc: doc}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		s.fetches++
		doc, status := s.doc, s.status
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "metadata unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the metadata document's address.
func (s *metadataServer) URL() string { return s.srv.URL + "/metadata" }

// serve publishes doc (status 0) or an error status from now on, and
// returns the number of fetches served before the change.
func (s *metadataServer) serve(doc []byte, status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if doc != nil {
		s.doc = doc
	}
	s.status = status
	return s.fetches
}

func (s *metadataServer) fetchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// changeAndWait publishes doc or status and waits until the middleware has
// fetched it and acted on it: the refresh loop is sequential, so once a
// second fetch arrives after the change, the first has been processed.
func (s *metadataServer) changeAndWait(t testing.TB, doc []byte, status int) {
	t.Helper()
	n := s.serve(doc, status)
	require.Eventually(t, func() bool { return s.fetchCount() >= n+2 }, 10*time.Second, time.Millisecond,
		"the middleware did not fetch the metadata again")
}

// editMetadata parses an IdP metadata document, lets edit change its root
// EntityDescriptor and returns the result.
func editMetadata(t testing.TB, doc []byte, edit func(ed, idpsso *etree.Element)) []byte {
	t.Helper()
	d := etree.NewDocument()
	require.NoError(t, d.ReadFromBytes(doc))
	ed := d.Root()
	idpsso := ed.SelectElement("IDPSSODescriptor")
	require.NotNil(t, idpsso)
	edit(ed, idpsso)
	out, err := d.WriteToBytes()
	require.NoError(t, err)
	return out
}

// withSigningCerts replaces the signing KeyDescriptors of doc with one per
// certificate, in order.
func withSigningCerts(t testing.TB, doc []byte, certs ...*x509.Certificate) []byte {
	return editMetadata(t, doc, func(_, idpsso *etree.Element) {
		for _, kd := range idpsso.SelectElements("KeyDescriptor") {
			idpsso.RemoveChild(kd)
		}
		for i, c := range certs {
			kd := etree.NewElement("md:KeyDescriptor")
			kd.CreateAttr("use", "signing")
			kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
				SetText(base64.StdEncoding.EncodeToString(c.Raw))
			idpsso.InsertChildAt(i, kd)
		}
	})
}

// withAttr sets an attribute of the EntityDescriptor.
func withAttr(t testing.TB, doc []byte, name, value string) []byte {
	return editMetadata(t, doc, func(ed, _ *etree.Element) { ed.CreateAttr(name, value) })
}

// testClock is an Options.Now that a test moves ahead of the real clock.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// newRefreshHarness starts an app whose one connection takes its metadata
// from url, refreshed every refreshEvery, and closes the middleware when
// the test ends.
func newRefreshHarness(t *testing.T, url string, clock *testClock, configure ...func(*jit.Options)) *harness {
	t.Helper()
	h := newHarness(t, harnessConfig{configure: func(o *jit.Options) {
		o.Connections[0].IDPMetadata = nil
		o.Connections[0].IDPMetadataURL = url
		o.MetadataRefreshInterval = refreshEvery
		if clock != nil {
			o.Now = clock.now
		}
		for _, f := range configure {
			f(o)
		}
	}})
	t.Cleanup(func() { require.NoError(t, h.mw.Close()) })
	return h
}

// newKeyedIdP starts an IdP with the given entity ID and signing key pair,
// knowing alice.
func newKeyedIdP(t *testing.T, entityID string, key *rsa.PrivateKey, cert *x509.Certificate) *jittest.IdP {
	t.Helper()
	idp := jittest.New(t, func(o *jittest.Options) { o.EntityID, o.Key, o.Certificate = entityID, key, cert })
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	return idp
}

// startSignIn starts a sign-in at the app and has idp answer the
// AuthnRequest directly, whatever SSO endpoint the metadata names: two
// IdPs share one entity ID here, and either may be the one signing. It
// returns the login endpoint's status when that refuses, else the form to
// post. It is safe to call from any goroutine.
func startSignIn(ctx context.Context, h *harness, idp *jittest.IdP, nameID string) (*http.Client, jittest.Form, int, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: toFailureOnly}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.loginURL(""), nil)
	if err != nil {
		return nil, jittest.Form{}, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, jittest.Form{}, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return c, jittest.Form{}, resp.StatusCode, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, jittest.Form{}, 0, err
	}
	compressed, err := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	if err != nil {
		return nil, jittest.Form{}, 0, err
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(compressed)))
	if err != nil {
		return nil, jittest.Form{}, 0, err
	}
	var authn saml.AuthnRequest
	if err := xml.Unmarshal(raw, &authn); err != nil {
		return nil, jittest.Form{}, 0, err
	}
	if authn.Issuer == nil {
		return nil, jittest.Form{}, 0, errors.New("AuthnRequest has no Issuer")
	}
	f, err := idp.ResponseFor(jittest.Request{ID: authn.ID, SPEntityID: authn.Issuer.Value,
		ACSURL: authn.AssertionConsumerServiceURL, RelayState: loc.Query().Get("RelayState")}, nameID)
	return c, f, resp.StatusCode, err
}

// trySignIn signs nameID in through idp and returns the status that ended
// it: 303 from the ACS on success, else the refusing endpoint's status, and
// the refusal page's correlation id.
func trySignIn(h *harness, idp *jittest.IdP, nameID string) (int, string, error) {
	ctx := context.Background()
	c, f, status, err := startSignIn(ctx, h, idp, nameID)
	if err != nil || status != http.StatusFound {
		return status, "", err
	}
	return postSAMLForm(ctx, c, f)
}

var correlationRef = regexp.MustCompile(`<code>([0-9a-f]+)</code>`)

func postSAMLForm(ctx context.Context, c *http.Client, f jittest.Form) (int, string, error) {
	resp, err := f.Post(ctx, c)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var corr string
	if m := correlationRef.FindSubmatch(body); m != nil {
		corr = string(m[1])
	}
	return resp.StatusCode, corr, nil
}

// requireSignIn signs alice in through idp and fails the test unless it
// succeeds.
func requireSignIn(t *testing.T, h *harness, idp *jittest.IdP) {
	t.Helper()
	status, corr, err := trySignIn(h, idp, "alice")
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, status, "sign-in refused, correlation id %s", corr)
}

// TestMetadataRefreshCertificateRollover rolls the IdP's signing key over
// the way an IdP does: publish the new certificate beside the old one, sign
// with the new key, then drop the old certificate. Sign-ins run without a
// pause throughout, and none fails.
func TestMetadataRefreshCertificateRollover(t *testing.T) {
	const entityID = "https://idp.rollover.example/"
	keyA, certA, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	keyB, certB, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	idpA := newKeyedIdP(t, entityID, keyA, certA)
	idpB := newKeyedIdP(t, entityID, keyB, certB)
	docA, docB := idpA.Metadata(), idpB.Metadata()
	docAB := withSigningCerts(t, docA, certA, certB)

	ms := newMetadataServer(t, docA)
	h := newRefreshHarness(t, ms.URL(), nil)

	// One browser after another signs in with whichever key the IdP
	// currently signs with.
	var signer atomic.Pointer[jittest.IdP]
	signer.Store(idpA)
	var (
		mu       sync.Mutex
		done     = map[*jittest.IdP]int{}
		failures []string
	)
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			idp := signer.Load()
			status, corr, err := trySignIn(h, idp, "alice")
			mu.Lock()
			if err != nil || status != http.StatusSeeOther {
				failures = append(failures, fmt.Sprintf("signer %s: status %d, correlation id %q, err %v", idp.URL(), status, corr, err))
			}
			done[idp]++
			mu.Unlock()
		}
	}()
	waitSignIns := func(idp *jittest.IdP, more int) {
		t.Helper()
		mu.Lock()
		target := done[idp] + more
		mu.Unlock()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done[idp] >= target
		}, 30*time.Second, time.Millisecond)
	}

	waitSignIns(idpA, 3) // metadata: A; signing with A
	ms.changeAndWait(t, docAB, 0)
	waitSignIns(idpA, 3) // metadata: A+B; signing with A
	signer.Store(idpB)
	waitSignIns(idpB, 3) // metadata: A+B; signing with B (no A sign-in in flight after this)
	ms.changeAndWait(t, docB, 0)
	waitSignIns(idpB, 3) // metadata: B; signing with B
	close(stop)
	<-loopDone

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, failures, "sign-ins failed during the rollover")
	t.Logf("sign-ins: %d with key A, %d with key B", done[idpA], done[idpB])
	require.Equal(t, 2, strings.Count(h.logs.String(), `"msg":"IdP signing certificates changed"`),
		"A → A+B and A+B → B are each logged once")

	// The rollover really happened: the old key is no longer trusted.
	status, _, err := trySignIn(h, idpA, "alice")
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status, "a response signed with the retired key was accepted")
}

// TestMetadataRefreshFailureKeepsLastGoodCopy: when the metadata server
// fails, sign-ins go on with the last good copy, and the failure is logged
// as a warning, with the URL's password and query redacted.
func TestMetadataRefreshFailureKeepsLastGoodCopy(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	ms := newMetadataServer(t, idp.Metadata())
	url := strings.Replace(ms.URL(), "http://", "http://ops:pa55word@", 1) + "?token=t0ken-secret"
	h := newRefreshHarness(t, url, nil)
	requireSignIn(t, h, idp)

	ms.changeAndWait(t, nil, http.StatusInternalServerError)
	for range 3 {
		requireSignIn(t, h, idp)
	}
	logs := h.logs.String()
	require.Contains(t, logs, `"level":"WARN","msg":"IdP metadata refresh failed; keeping the last good copy"`)
	require.Contains(t, logs, `"err":"status 500 Internal Server Error"`)
	require.Contains(t, logs, `"url":"http://ops:xxxxx@127.0.0.1:`)
	require.NotContains(t, logs, "pa55word")
	require.NotContains(t, logs, "t0ken-secret")

	// The server recovers: the refresh succeeds again.
	ms.changeAndWait(t, nil, 0)
	require.Contains(t, h.logs.String(), `"msg":"IdP metadata refreshed"`)
	requireSignIn(t, h, idp)
}

// TestMetadataRefreshExpired: once the copy in hand passes its validUntil
// and no fresh one can be fetched, sign-ins are refused with
// ErrMetadataExpired and a 503, at login and at the ACS; when the server
// recovers, sign-ins work again.
func TestMetadataRefreshExpired(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	validUntil := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339)
	ms := newMetadataServer(t, withAttr(t, idp.Metadata(), "validUntil", validUntil))
	clock := &testClock{}
	h := newRefreshHarness(t, ms.URL(), clock)
	requireSignIn(t, h, idp)

	// A sign-in is under way when the server goes down and the copy
	// expires (by the middleware's clock; the IdP's is real, and the
	// assertion is still recent enough).
	c, form, status, err := startSignIn(context.Background(), h, idp, "alice")
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, status)
	ms.changeAndWait(t, nil, http.StatusInternalServerError)
	clock.advance(60 * time.Second)
	ms.changeAndWait(t, nil, http.StatusInternalServerError)

	status, corr, err := postSAMLForm(context.Background(), c, form)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.ErrorIs(t, h.lastEvent().Err, jit.ErrMetadataExpired)
	require.True(t, h.logged(corr, "IdP metadata expired", validUntil), "the log does not say why:\n%s", h.logs.String())

	status, _, err = trySignIn(h, idp, "alice")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, status, "the login endpoint should refuse too")
	require.Contains(t, h.logs.String(), `"level":"ERROR","msg":"IdP metadata refresh failed and the last good copy has expired`)

	// The server recovers with a fresh copy: sign-ins work again.
	fresh := withAttr(t, idp.Metadata(), "validUntil", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	ms.changeAndWait(t, fresh, 0)
	requireSignIn(t, h, idp)
}

// TestMetadataRefreshExpiredCopyRefused: a document that is already past
// its validUntil is not accepted, at start-up or by a refresh.
func TestMetadataRefreshExpiredCopyRefused(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	stale := withAttr(t, idp.Metadata(), "validUntil", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))

	key, cert := spKeyPair()
	_, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(),
		SessionKeys: [][]byte{make32()},
		Connections: []jit.Connection{{IDPMetadata: stale}},
	})
	require.ErrorIs(t, err, jit.ErrMetadataExpired)

	ms := newMetadataServer(t, idp.Metadata())
	h := newRefreshHarness(t, ms.URL(), nil)
	ms.changeAndWait(t, stale, 0)
	require.Contains(t, h.logs.String(), "metadata refused: it is already expired")
	requireSignIn(t, h, idp)
}

// TestMetadataRefreshEntityIDChangeIgnored: a refreshed document naming
// another entity ID is refused and logged, and the old copy stays in force.
func TestMetadataRefreshEntityIDChangeIgnored(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	ms := newMetadataServer(t, idp.Metadata())
	h := newRefreshHarness(t, ms.URL(), nil)
	requireSignIn(t, h, idp)

	other := withAttr(t, idp.Metadata(), "entityID", "https://impostor.example/")
	ms.changeAndWait(t, other, 0)
	require.Contains(t, h.logs.String(), `metadata refused: its entityID \"https://impostor.example/\" is not the connection's IdP`)
	for range 2 {
		requireSignIn(t, h, idp)
	}
}

// TestMetadataRefreshNoSigningCertificateIgnored: a refreshed document
// without any signing certificate would refuse every sign-in; it is
// refused instead.
func TestMetadataRefreshNoSigningCertificateIgnored(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	ms := newMetadataServer(t, idp.Metadata())
	h := newRefreshHarness(t, ms.URL(), nil)

	ms.changeAndWait(t, withSigningCerts(t, idp.Metadata()), 0)
	require.Contains(t, h.logs.String(), "metadata refused: it lists no signing certificate")
	requireSignIn(t, h, idp)
}

// TestMetadataRefreshFloor: a document asking to be fetched again every
// 50 ms is not; the floor (one minute, under a longer refresh interval)
// protects the IdP and the application from a fetch loop.
func TestMetadataRefreshFloor(t *testing.T) {
	idp := jittest.New(t)
	ms := newMetadataServer(t, withAttr(t, idp.Metadata(), "cacheDuration", "PT0.05S"))
	newRefreshHarness(t, ms.URL(), nil, func(o *jit.Options) { o.MetadataRefreshInterval = time.Hour })
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, 1, ms.fetchCount(), "only New's fetch was expected")
}

// TestMetadataRefreshClose: Close stops the refresh (no fetch reaches the
// server afterwards), waits for it, and may be called again; a middleware
// with no URL-backed connection closes at once.
func TestMetadataRefreshClose(t *testing.T) {
	idp := jittest.New(t)
	idp.AddUser(person("alice", "alice@example.com", "Alice", "Liddell"))
	ms := newMetadataServer(t, idp.Metadata())
	h := newRefreshHarness(t, ms.URL(), nil)
	ms.changeAndWait(t, nil, 0) // the refresh is running

	require.NoError(t, h.mw.Close())
	after := ms.fetchCount()
	time.Sleep(10 * refreshEvery)
	require.Equal(t, after, ms.fetchCount(), "metadata was fetched after Close")
	require.NoError(t, h.mw.Close())

	// The middleware still serves sign-ins with the copy it holds.
	requireSignIn(t, h, idp)

	static := newHarness(t, harnessConfig{})
	require.NoError(t, static.mw.Close())
	require.NoError(t, static.mw.Close())
}
