package jit_test

import (
	"context"
	"errors"

	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// discoveryHarness serves "code" (domain code.example) from code and
// "contoso" (contoso.example verified, contoso.test not) from a store.
func discoveryHarness(t *testing.T, configure ...func(*jit.Options)) *harness {
	h := storedHarness(t, memstore.NewConnections(), func(o *jit.Options) {
		o.Connections[0].DisplayName = "Code Industries"
		for _, f := range configure {
			f(o)
		}
	})
	rec := addIdP(t, h, "contoso", "contoso.example")
	rec.DisplayName = "Contoso Ltd"
	rec.Domains = append(rec.Domains, userstore.Domain{Name: "contoso.test"})
	_, err := h.mw.PutConnection(context.Background(), rec)
	require.NoError(t, err)
	return h
}

func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.client().Get(h.app.URL + path)
	require.NoError(h.t, err)
	return resp, readBody(h.t, resp)
}

// TestDefaultChooserListsNoConnection: the default sign-in page asks for
// an email and names no connection, neither by name nor display name.
func TestDefaultChooserListsNoConnection(t *testing.T) {
	h := discoveryHarness(t)
	resp, body := h.get("/saml/login?return_to=%2Freports")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `name="email"`)
	assert.Contains(t, body, `name="return_to" value="/reports"`)
	// The page's own style sheet names the HTML element code; what the
	// page says and links to must not name the connection "code".
	page := body
	if i, j := strings.Index(page, "<style>"), strings.Index(page, "</style>"); i >= 0 && j > i {
		page = page[:i] + page[j:]
	}
	for _, name := range []string{"code", "contoso", "Code Industries", "Contoso Ltd", "code.example", "contoso.example"} {
		assert.NotContains(t, strings.ToLower(page), strings.ToLower(name))
	}
}

// TestDiscoveryByEmail: ?email= starts the sign-in of the connection whose
// verified domains include the email's domain, stored or configured in
// code; a person signs in through it.
func TestDiscoveryByEmail(t *testing.T) {
	h := discoveryHarness(t)
	for email, want := range map[string]string{
		"ada@contoso.example":    "/saml/contoso/login?return_to=%2Freports",
		" Ada@CONTOSO.example. ": "/saml/contoso/login?return_to=%2Freports",
		"grace@code.example":     "/saml/code/login?return_to=%2Freports",
		"x\"<y>@code.example":    "/saml/code/login?return_to=%2Freports",
	} {
		resp, body := h.get("/saml/login?return_to=%2Freports&email=" + urlQueryEscape(email))
		require.Equal(t, http.StatusFound, resp.StatusCode, "%s: %s", email, body)
		assert.Equal(t, want, resp.Header.Get("Location"), email)
		got, err := h.mw.LoginURLForEmail(email, "/reports")
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	name, err := h.mw.ConnectionForEmail("ada@contoso.example")
	require.NoError(t, err)
	assert.Equal(t, "contoso", name)

	// The whole way through, as a browser.
	c := h.client()
	resp, err := h.idp("contoso").SignIn(context.Background(), c, h.app.URL+"/saml/login?email=ada%40contoso.example", "p-contoso")
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, readBody(t, resp))
	assert.True(t, hasSession(t, h, c))
}

// TestDiscoveryRefusals: an unknown, unverified or sub-domain gets a clear
// page that names no connection; what is not an email gets a 400.
func TestDiscoveryRefusals(t *testing.T) {
	h := discoveryHarness(t)
	for email, status := range map[string]int{
		"ada@contoso.test":       http.StatusNotFound, // claimed, not verified
		"ada@eu.contoso.example": http.StatusNotFound, // a subdomain is another domain
		"ada@unknown.example":    http.StatusNotFound,
		"ada":                    http.StatusBadRequest,
		"ada@":                   http.StatusBadRequest,
		"@contoso.example":       http.StatusBadRequest,
		"ada@localhost":          http.StatusBadRequest,
		"":                       http.StatusBadRequest,
		strings.Repeat("a", 400) + "@contoso.example": http.StatusBadRequest,
	} {
		resp, body := h.get("/saml/login?email=" + urlQueryEscape(email))
		require.Equal(t, status, resp.StatusCode, "%q: %s", email, body)
		assert.NotContains(t, body, "Contoso Ltd")
		assert.NotContains(t, body, "/saml/contoso/")
		assert.Contains(t, body, `name="email"`, "the page asks again")
		_, err := h.mw.ConnectionForEmail(email)
		if status == http.StatusNotFound {
			require.ErrorIs(t, err, jit.ErrUnknownDomain)
			assert.Contains(t, body, "not set up for "+userstore.EmailDomain(email))
		} else {
			require.ErrorIs(t, err, jit.ErrNotAnEmail)
		}
	}
}

// TestDiscoveryFollowsTheStore: a domain routes to its connection while
// the connection is enabled, and only then.
func TestDiscoveryFollowsTheStore(t *testing.T) {
	h := discoveryHarness(t)
	ctx := context.Background()
	require.NoError(t, h.mw.SetConnectionEnabled(ctx, "contoso", false))
	_, err := h.mw.ConnectionForEmail("ada@contoso.example")
	require.ErrorIs(t, err, jit.ErrUnknownDomain)
	require.NoError(t, h.mw.SetConnectionEnabled(ctx, "contoso", true))
	_, err = h.mw.ConnectionForEmail("ada@contoso.example")
	require.NoError(t, err)
	require.NoError(t, h.mw.RemoveConnection(ctx, "contoso"))
	_, err = h.mw.ConnectionForEmail("ada@contoso.example")
	require.ErrorIs(t, err, jit.ErrUnknownDomain)
}

// TestChooserReplaced: Options.Chooser serves the sign-in page; ?email=
// and ?connection= still work.
func TestChooserReplaced(t *testing.T) {
	h := discoveryHarness(t, func(o *jit.Options) {
		o.Chooser = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "our own chooser, back to "+r.URL.Query().Get("return_to"))
		})
	})
	resp, body := h.get("/saml/login?return_to=%2Fx")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "our own chooser, back to /x", body)
	resp, _ = h.get("/saml/login?email=ada%40contoso.example")
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	u, ok := h.mw.ConnectionLoginURL("contoso", "/x")
	require.True(t, ok)
	assert.Equal(t, "/saml/contoso/login?return_to=%2Fx", u)
	_, ok = h.mw.ConnectionLoginURL("initech", "/x")
	assert.False(t, ok)
}

// TestCodeDomainsOwnedOnce: two code-configured connections cannot list
// one domain.
func TestCodeDomainsOwnedOnce(t *testing.T) {
	key, cert := spKeyPair()
	_, err := jit.New(context.Background(), jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert, Store: newMem(), SessionKeys: [][]byte{make32()},
		Connections: []jit.Connection{
			{Name: "a", IDPMetadata: newIdPMetadata(t), Domains: []string{"example.com"}},
			{Name: "b", IDPMetadata: newIdPMetadata(t), Domains: []string{"example.com"}},
		},
	})
	require.ErrorContains(t, err, "both list the domain")
}

// fakeTXT is a DNS with a few TXT records.
type fakeTXT map[string][]string

func (f fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	if name == "_samljit-verification.down.example" {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	txt, ok := f[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txt, nil
}

// TestVerifyDomain: a domain is verified by the TXT record naming the
// token, and by nothing else.
func TestVerifyDomain(t *testing.T) {
	const token = "0123456789abcdef0123"
	name, value := jit.DomainVerificationRecord("contoso.example", token)
	assert.Equal(t, "_samljit-verification.contoso.example", name)
	dns := fakeTXT{
		name:                                  {"v=spf1 -all", value},
		"_samljit-verification.other.example": {"samljit-verification=someone-elses-token"},
	}
	ctx := context.Background()
	require.NoError(t, jit.VerifyDomain(ctx, dns, "contoso.example", token))
	require.ErrorIs(t, jit.VerifyDomain(ctx, dns, "other.example", token), jit.ErrDomainNotVerified)
	require.ErrorIs(t, jit.VerifyDomain(ctx, dns, "absent.example", token), jit.ErrDomainNotVerified)
	require.ErrorIs(t, jit.VerifyDomain(ctx, dns, "contoso.example", "short"), jit.ErrDomainNotVerified)
	require.ErrorIs(t, jit.VerifyDomain(ctx, dns, "Contoso.example", token), jit.ErrDomainNotVerified)
	err := jit.VerifyDomain(ctx, dns, "down.example", token)
	require.Error(t, err)
	assert.False(t, errors.Is(err, jit.ErrDomainNotVerified), "a failed lookup is not a verdict: %v", err)
}

func newIdPMetadata(t *testing.T) []byte {
	return jittest.New(t).Metadata()
}

// TestDiscoveryEmailLengthBound: an address of up to 320 bytes (RFC 3696's
// 64-byte local part, @, 255-byte domain) is looked up; a longer one is
// refused as not an email, before any lookup.
func TestDiscoveryEmailLengthBound(t *testing.T) {
	h := discoveryHarness(t)
	const bound = 320
	domain := "@contoso.example"
	atBound := strings.Repeat("a", bound-len(domain)) + domain
	require.Len(t, atBound, bound)
	name, err := h.mw.ConnectionForEmail(atBound)
	require.NoError(t, err, "an address of exactly %d bytes", bound)
	assert.Equal(t, "contoso", name)
	_, err = h.mw.ConnectionForEmail("a" + atBound)
	require.ErrorIs(t, err, jit.ErrNotAnEmail, "an address of %d bytes", bound+1)
}

// TestChooserKeepsTheRefusedEmailUpToTheBound: the page that refuses an
// address gives it back in the form, to be corrected, when it is within
// the 320-byte bound; a longer one is not given back.
func TestChooserKeepsTheRefusedEmailUpToTheBound(t *testing.T) {
	h := discoveryHarness(t)
	const bound = 320
	domain := "@unknown.example"
	atBound := strings.Repeat("a", bound-len(domain)) + domain
	for email, kept := range map[string]bool{
		"ada@unknown.example": true,
		"ada@":                true,
		atBound:               true,
		"a" + atBound:         false,
	} {
		resp, body := h.get("/saml/login?email=" + urlQueryEscape(email))
		require.NotEqual(t, http.StatusFound, resp.StatusCode, "%q: %s", email, body)
		if kept {
			assert.Contains(t, body, `value="`+email+`"`, "an address of %d bytes", len(email))
		} else {
			assert.NotContains(t, body, atBound, "an address of %d bytes", len(email))
			assert.Contains(t, body, `value=""`)
		}
	}
}

// TestVerifyDomainTokenOfSixteenCharacters: a token of 16 characters, the
// least there may be, verifies a domain; one of 15 does not, even with
// its record published.
func TestVerifyDomainTokenOfSixteenCharacters(t *testing.T) {
	ctx := context.Background()
	for token, ok := range map[string]bool{"0123456789abcdef": true, "0123456789abcde": false} {
		name, value := jit.DomainVerificationRecord("contoso.example", token)
		err := jit.VerifyDomain(ctx, fakeTXT{name: {value}}, "contoso.example", token)
		if ok {
			assert.NoError(t, err, "a token of %d characters", len(token))
		} else {
			assert.ErrorIs(t, err, jit.ErrDomainNotVerified, "a token of %d characters", len(token))
		}
	}
}
