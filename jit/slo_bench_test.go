package jit_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/samljit/samljit/jit/jittest"
)

// BenchmarkIdPLogoutPaired measures, on the SAME signed IdP-initiated
// LogoutRequest (HTTP-Redirect binding) in each iteration and in rotating
// order, samljit's SLO endpoint and crewjam's ValidateLogoutRequest alone,
// and reports the median of each and their ratio:
//
//   - samljit-ns: crewjam's validation, our checks, the replay record,
//     ending the person's live session in SQLite, and the signed
//     LogoutResponse redirect
//   - crewjam-ns: ServiceProvider.ValidateLogoutRequest (signature,
//     Issuer, Destination, times), which samljit calls
//   - vs-crewjam: samljit-ns / crewjam-ns
func BenchmarkIdPLogoutPaired(b *testing.B) {
	h := sloHarness(b, harnessConfig{})
	idp := h.idp()
	sp := spIDOf(b, h, "")
	msgs := make([]jittest.Message, b.N)
	for i := range msgs {
		nameID := fmt.Sprintf("p-bench-%d", i)
		idp.AddUser(person(nameID, nameID+"@example.com", "Bench", "Mark"))
		resp, body := h.signIn(h.client(), "", nameID)
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatalf("sign-in %d: %d %s", i, resp.StatusCode, body)
		}
		var err error
		if msgs[i], err = idp.LogoutRequestFor(jittest.LogoutRequest{SPEntityID: sp, NameID: nameID}); err != nil {
			b.Fatal(err)
		}
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(idp.Metadata(), &md); err != nil {
		b.Fatal(err)
	}
	slo, _ := url.Parse(h.app.URL + "/saml/slo")
	bare := saml.ServiceProvider{IDPMetadata: &md, SloURL: *slo, MetadataURL: *mustURL(sp)}
	steps := []func(i int){
		func(i int) {
			w := httptest.NewRecorder()
			h.mw.ServeHTTP(w, httptest.NewRequest(http.MethodGet, msgs[i].URL, nil))
			if w.Code != http.StatusFound {
				b.Fatalf("samljit %d: %d %s", i, w.Code, w.Body)
			}
		},
		func(i int) {
			if _, err := bare.ValidateLogoutRequest(httptest.NewRequest(http.MethodGet, msgs[i].URL, nil)); err != nil {
				b.Fatalf("crewjam %d: %v", i, err)
			}
		},
	}
	took := [][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range steps {
			k := (i + j) % len(steps)
			start := time.Now()
			steps[k](i)
			took[k] = append(took[k], time.Since(start))
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds())
	}
	ours, crewjam := med(took[0]), med(took[1])
	b.ReportMetric(ours, "samljit-ns")
	b.ReportMetric(crewjam, "crewjam-ns")
	b.ReportMetric(ours/crewjam, "vs-crewjam")
}
