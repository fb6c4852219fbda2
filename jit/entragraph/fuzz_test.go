package entragraph

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// FuzzRemoteAnswers feeds the parsers of what Graph and the token
// endpoint send: Retry-After, @odata.nextLink and the token error body.
// None may panic; a wait is never negative; an accepted nextLink is on the
// configured Graph host under its /v1.0/ path; a consent code is one of
// the known ones.
func FuzzRemoteAnswers(f *testing.F) {
	f.Add("120", "https://graph.microsoft.com/v1.0/users/x/transitiveMemberOf?$skiptoken=1", `{"error_codes":[700016]}`, "AADSTS700016: Application not found")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT", "https://evil.example/v1.0/users", `{"error_codes":[7000215]}`, "AADSTS7000215: Invalid client secret")
	f.Add("-5", "https://graph.microsoft.com/beta/users", `{}`, "")
	f.Add("", "https://graph.microsoft.com@evil.example/v1.0/", `{"error_codes":"x"}`, "AADSTS65001")
	f.Add("9999999999", "https://graph.microsoft.com/v1.0/", `{}`, "")
	f.Add("1e9", "//graph.microsoft.com/v1.0/", `[`, "AADSTS")
	r, err := New(Options{Credential: Credential{ClientID: "c", ClientSecret: "s"}})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, retry, link, body, desc string) {
		if d := retryAfter(retry, now); d < 0 {
			t.Fatalf("retryAfter(%q) = %s", retry, d)
		}
		if u, err := r.sameGraph(link); err == nil {
			if u.Scheme != "https" || u.Host != "graph.microsoft.com" || !strings.HasPrefix(u.Path, "/v1.0/") || u.User != nil {
				t.Fatalf("accepted %q as %s", link, u)
			}
			if _, err := url.Parse(u.String()); err != nil {
				t.Fatalf("accepted %q: %v", link, err)
			}
		}
		if code, ok := consentCode(&oauth2.RetrieveError{Body: []byte(body), ErrorDescription: desc}); ok && !slices.Contains(consentCodes, code) {
			t.Fatalf("consent code %q", code)
		}
	})
}
