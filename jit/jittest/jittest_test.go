package jittest_test

import (
	"bytes"
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
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

const (
	spEntityID = "https://sp.example.test/saml/metadata"
	spACS      = "https://sp.example.test/saml/acs"

	attrEmail  = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	attrOID    = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	attrGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
)

var alice = jittest.User{
	NameID: "alice-0001",
	Attributes: map[string][]string{
		attrEmail:  {"alice@example.com"},
		attrOID:    {"7f1e0c2a-0000-4000-8000-000000000001"},
		attrGroups: {"g-admins", "g-users"},
	},
	FriendlyNames: map[string]string{attrEmail: "mail"},
}

// newSP returns a crewjam service provider that trusts p through its
// metadata and consumes assertions at acs.
func newSP(t *testing.T, p *jittest.IdP, acs string) *saml.ServiceProvider {
	t.Helper()
	var md saml.EntityDescriptor
	require.NoError(t, xml.Unmarshal(p.Metadata(), &md))
	acsURL, err := url.Parse(acs)
	require.NoError(t, err)
	return &saml.ServiceProvider{EntityID: spEntityID, AcsURL: *acsURL, IDPMetadata: &md}
}

func parse(t *testing.T, sp *saml.ServiceProvider, f jittest.Form, requestIDs ...string) (*saml.Assertion, error) {
	t.Helper()
	raw, err := f.XML()
	require.NoError(t, err)
	return sp.ParseXMLResponse(raw, requestIDs, sp.AcsURL)
}

func privateErr(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return fmt.Sprint(err)
}

func doc(t *testing.T, f jittest.Form) *etree.Element {
	t.Helper()
	raw, err := f.XML()
	require.NoError(t, err)
	d := etree.NewDocument()
	require.NoError(t, d.ReadFromBytes(raw))
	require.NotNil(t, d.Root())
	return d.Root()
}

func attrMap(a *saml.Assertion) map[string][]string {
	m := make(map[string][]string)
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				m[at.Name] = append(m[at.Name], v.Value)
			}
		}
	}
	return m
}

func childTags(el *etree.Element) []string {
	var tags []string
	for _, c := range el.ChildElements() {
		tags = append(tags, c.Tag)
	}
	return tags
}

func TestResponseForVerifiesWithCrewjam(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	sp := newSP(t, p, spACS)

	f, err := p.ResponseFor(jittest.Request{ID: "_req1", SPEntityID: spEntityID, ACSURL: spACS, RelayState: "/after"}, alice.NameID)
	require.NoError(t, err)
	assert.Equal(t, spACS, f.ACS)
	assert.Equal(t, "/after", f.RelayState)
	assert.Equal(t, p.URL(), f.Origin)

	a, err := parse(t, sp, f, "_req1")
	require.NoError(t, err, privateErr(err))
	assert.Equal(t, alice.NameID, a.Subject.NameID.Value)
	assert.Equal(t, jittest.NameIDFormatPersistent, a.Subject.NameID.Format)
	assert.Equal(t, spEntityID, a.Subject.NameID.SPNameQualifier)
	assert.Equal(t, alice.Attributes, attrMap(a))

	// Another request ID is refused: InResponseTo is the request's.
	_, err = parse(t, sp, f, "_other")
	require.Error(t, err)
}

func TestResponseLooksLikeARealIdP(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	f, err := p.ResponseFor(jittest.Request{ID: "_req1", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
	require.NoError(t, err)
	resp := doc(t, f)

	assert.Equal(t, "Response", resp.Tag)
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:protocol", resp.NamespaceURI())
	assert.True(t, strings.HasPrefix(resp.SelectAttrValue("ID", ""), "_"))
	assert.Equal(t, "_req1", resp.SelectAttrValue("InResponseTo", ""))
	assert.Equal(t, spACS, resp.SelectAttrValue("Destination", ""))
	assert.Equal(t, "2.0", resp.SelectAttrValue("Version", ""))
	assert.Equal(t, []string{"Issuer", "Status", "Assertion"}, childTags(resp), "the Response is not signed by default")
	assert.Equal(t, p.EntityID(), resp.FindElement("Issuer").Text())
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:status:Success", resp.FindElement("Status/StatusCode").SelectAttrValue("Value", ""))

	a := resp.FindElement("Assertion")
	require.NotNil(t, a)
	assert.Equal(t, []string{"Issuer", "Signature", "Subject", "Conditions", "AuthnStatement", "AttributeStatement"}, childTags(a))
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", a.FindElement("Issuer").SelectAttrValue("Format", ""))

	sig := a.FindElement("Signature")
	assert.Equal(t, "http://www.w3.org/2000/09/xmldsig#", sig.NamespaceURI())
	assert.Equal(t, dsig.CanonicalXML10ExclusiveAlgorithmId.String(), sig.FindElement("SignedInfo/CanonicalizationMethod").SelectAttrValue("Algorithm", ""))
	assert.Equal(t, dsig.RSASHA256SignatureMethod, sig.FindElement("SignedInfo/SignatureMethod").SelectAttrValue("Algorithm", ""))
	assert.Equal(t, "#"+a.SelectAttrValue("ID", ""), sig.FindElement("SignedInfo/Reference").SelectAttrValue("URI", ""))
	assert.Equal(t, "http://www.w3.org/2001/04/xmlenc#sha256", sig.FindElement("SignedInfo/Reference/DigestMethod").SelectAttrValue("Algorithm", ""))
	assert.Equal(t, base64.StdEncoding.EncodeToString(p.Certificate().Raw), sig.FindElement("KeyInfo/X509Data/X509Certificate").Text())

	nameID := a.FindElement("Subject/NameID")
	assert.Equal(t, alice.NameID, nameID.Text())
	assert.Equal(t, spEntityID, nameID.SelectAttrValue("SPNameQualifier", ""))
	sc := a.FindElement("Subject/SubjectConfirmation")
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:cm:bearer", sc.SelectAttrValue("Method", ""))
	scd := sc.FindElement("SubjectConfirmationData")
	assert.Equal(t, "_req1", scd.SelectAttrValue("InResponseTo", ""))
	assert.Equal(t, spACS, scd.SelectAttrValue("Recipient", ""))
	assert.NotEmpty(t, scd.SelectAttrValue("NotOnOrAfter", ""))
	assert.Equal(t, spEntityID, a.FindElement("Conditions/AudienceRestriction/Audience").Text())
	authn := a.FindElement("AuthnStatement")
	assert.NotEmpty(t, authn.SelectAttrValue("SessionIndex", ""))
	assert.Empty(t, authn.SelectAttrValue("SessionNotOnOrAfter", ""))
	assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport", authn.FindElement("AuthnContext/AuthnContextClassRef").Text())

	// Attributes are sorted by Name, with NameFormat uri and xs:string values.
	var names []string
	for _, at := range a.FindElements("AttributeStatement/Attribute") {
		names = append(names, at.SelectAttrValue("Name", ""))
		assert.Equal(t, "urn:oasis:names:tc:SAML:2.0:attrname-format:uri", at.SelectAttrValue("NameFormat", ""))
		for _, v := range at.FindElements("AttributeValue") {
			assert.Equal(t, "xs:string", v.SelectAttrValue("xsi:type", ""))
			assert.Equal(t, "http://www.w3.org/2001/XMLSchema", v.SelectAttrValue("xmlns:xs", ""), "the assertion binds xs itself")
		}
	}
	assert.Equal(t, []string{attrOID, attrGroups, attrEmail}, names)
	assert.Equal(t, "mail", a.FindElement("AttributeStatement/Attribute[@Name='"+attrEmail+"']").SelectAttrValue("FriendlyName", ""))
	assert.Len(t, a.FindElements("AttributeStatement/Attribute[@Name='"+attrGroups+"']/AttributeValue"), 2)
}

func TestIDsAreUniquePerResponse(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	seen := map[string]bool{}
	for range 3 {
		f, err := p.ResponseFor(jittest.Request{SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
		require.NoError(t, err)
		r := doc(t, f)
		for _, id := range []string{
			r.SelectAttrValue("ID", ""),
			r.FindElement("Assertion").SelectAttrValue("ID", ""),
			r.FindElement("Assertion/AuthnStatement").SelectAttrValue("SessionIndex", ""),
		} {
			assert.False(t, seen[id], "repeated %s", id)
			seen[id] = true
		}
	}
}

func TestTimestampsFollowOptionsNow(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("CET", 3600))
	p := jittest.New(t, func(o *jittest.Options) {
		o.Now = func() time.Time { return now }
		o.AssertionLifetime = 2 * time.Minute
		o.SessionLifetime = 8 * time.Hour
	})
	p.AddUser(alice)
	f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
	require.NoError(t, err)
	raw, err := f.XML()
	require.NoError(t, err)
	assert.Contains(t, string(raw), `IssueInstant="2030-01-02T02:04:05.678Z"`, "times are written in UTC")

	var resp saml.Response
	require.NoError(t, xml.Unmarshal(raw, &resp))
	a := resp.Assertion
	require.NotNil(t, a)
	assert.True(t, now.Equal(resp.IssueInstant))
	assert.True(t, now.Equal(a.IssueInstant))
	assert.True(t, now.Equal(a.Conditions.NotBefore))
	assert.True(t, now.Add(2*time.Minute).Equal(a.Conditions.NotOnOrAfter))
	assert.True(t, now.Add(2*time.Minute).Equal(a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter))
	assert.True(t, now.Equal(a.AuthnStatements[0].AuthnInstant))
	require.NotNil(t, a.AuthnStatements[0].SessionNotOnOrAfter)
	assert.True(t, now.Add(8*time.Hour).Equal(*a.AuthnStatements[0].SessionNotOnOrAfter))
	assert.True(t, p.Certificate().NotBefore.Before(now) && p.Certificate().NotAfter.After(now))
}

func TestSigningOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		opts          func(*jittest.Options)
		responseSig   bool
		assertionSig  bool
		wantSigMethod string
	}{
		{"default", func(*jittest.Options) {}, false, true, dsig.RSASHA256SignatureMethod},
		{"response and assertion", func(o *jittest.Options) { o.SignResponse = true }, true, true, dsig.RSASHA256SignatureMethod},
		{"response only", func(o *jittest.Options) { o.SignResponse = true; o.UnsignedAssertion = true }, true, false, dsig.RSASHA256SignatureMethod},
		{"RSA-SHA1", func(o *jittest.Options) { o.SignatureMethod = dsig.RSASHA1SignatureMethod }, false, true, dsig.RSASHA1SignatureMethod},
		{"unsigned", func(o *jittest.Options) { o.UnsignedAssertion = true }, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := jittest.New(t, tc.opts)
			p.AddUser(alice)
			sp := newSP(t, p, spACS)
			f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
			require.NoError(t, err)

			r := doc(t, f)
			responseSig := r.FindElement("Signature")
			assertionSig := r.FindElement("Assertion/Signature")
			assert.Equal(t, tc.responseSig, responseSig != nil)
			assert.Equal(t, tc.assertionSig, assertionSig != nil)
			for _, sig := range []*etree.Element{responseSig, assertionSig} {
				if sig != nil {
					assert.Equal(t, "Issuer", sig.Parent().ChildElements()[0].Tag)
					assert.Equal(t, sig, sig.Parent().ChildElements()[1], "Signature follows Issuer")
					assert.Equal(t, tc.wantSigMethod, sig.FindElement("SignedInfo/SignatureMethod").SelectAttrValue("Algorithm", ""))
				}
			}

			a, err := parse(t, sp, f, "_r")
			if tc.wantSigMethod == "" {
				require.Error(t, err, "crewjam refuses unsigned responses")
				return
			}
			require.NoError(t, err, privateErr(err))
			assert.Equal(t, alice.NameID, a.Subject.NameID.Value)
		})
	}
}

func TestBadSignatureMethod(t *testing.T) {
	t.Parallel()
	_, err := jittest.NewServer(jittest.Options{SignatureMethod: dsig.ECDSASHA256SignatureMethod})
	require.Error(t, err)
	_, err = jittest.NewServer(jittest.Options{SignatureMethod: "urn:nonsense"})
	require.Error(t, err)
}

func TestMutateAssertionIsSigned(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	sp := newSP(t, p, spACS)
	p.SetMutateAssertion(func(a *saml.Assertion) {
		for i, at := range a.AttributeStatements[0].Attributes {
			if at.Name == attrEmail {
				a.AttributeStatements[0].Attributes[i].Values[0].Value = "mallory@example.com"
			}
		}
	})
	f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
	require.NoError(t, err)
	a, err := parse(t, sp, f, "_r")
	require.NoError(t, err, privateErr(err))
	assert.Equal(t, []string{"mallory@example.com"}, attrMap(a)[attrEmail])

	// The hook edited a copy: the stored user is unchanged.
	u, ok := p.User(alice.NameID)
	require.True(t, ok)
	assert.Equal(t, alice.Attributes, u.Attributes)
}

func TestMutateAssertionElementIsSigned(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	sp := newSP(t, p, spACS)
	p.SetMutateAssertionElement(func(a *etree.Element) {
		// A NameID in a foreign namespace, covered by the signature.
		ext := a.FindElement("Subject").CreateElement("evil:NameID")
		ext.CreateAttr("xmlns:evil", "urn:example:evil")
		ext.SetText("admin")
	})
	f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
	require.NoError(t, err)
	raw, err := f.XML()
	require.NoError(t, err)
	assert.Contains(t, string(raw), `<evil:NameID xmlns:evil="urn:example:evil">admin</evil:NameID>`)
	_, err = parse(t, sp, f, "_r")
	require.NoError(t, err, "the forged element is signed: "+privateErr(err))
}

func TestMutateResponseAfterSigningBreaksSignature(t *testing.T) {
	t.Parallel()
	for _, signResponse := range []bool{false, true} {
		t.Run(fmt.Sprintf("SignResponse=%v", signResponse), func(t *testing.T) {
			p := jittest.New(t, func(o *jittest.Options) { o.SignResponse = signResponse })
			p.AddUser(alice)
			sp := newSP(t, p, spACS)
			p.SetMutateResponse(func(resp *etree.Element) {
				resp.FindElement("Assertion/Subject/NameID").SetText("admin")
			})
			f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
			require.NoError(t, err)
			raw, err := f.XML()
			require.NoError(t, err)
			assert.Contains(t, string(raw), ">admin</saml:NameID>")
			_, err = parse(t, sp, f, "_r")
			require.Error(t, err)
			assert.Contains(t, privateErr(err), "validate signature")

			// Without the hook, the same IdP verifies again.
			p.SetMutateResponse(nil)
			f, err = p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
			require.NoError(t, err)
			_, err = parse(t, sp, f, "_r")
			require.NoError(t, err, privateErr(err))
		})
	}
}

func TestMutateResponseCanStripSignatures(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	sp := newSP(t, p, spACS)
	p.SetMutateResponse(func(resp *etree.Element) {
		a := resp.FindElement("Assertion")
		a.RemoveChild(a.FindElement("Signature"))
	})
	f, err := p.ResponseFor(jittest.Request{ID: "_r", SPEntityID: spEntityID, ACSURL: spACS}, alice.NameID)
	require.NoError(t, err)
	_, err = parse(t, sp, f, "_r")
	require.Error(t, err)
}

func TestUnsolicited(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	sp := newSP(t, p, spACS)
	f, err := p.Unsolicited(spEntityID, spACS, alice.NameID, "/deep/link")
	require.NoError(t, err)
	assert.Equal(t, "/deep/link", f.RelayState)
	r := doc(t, f)
	assert.Nil(t, r.SelectAttr("InResponseTo"))
	assert.Nil(t, r.FindElement("Assertion/Subject/SubjectConfirmation/SubjectConfirmationData").SelectAttr("InResponseTo"))

	_, err = parse(t, sp, f)
	require.Error(t, err, "IdP-initiated is refused unless allowed")
	sp.AllowIDPInitiated = true
	a, err := parse(t, sp, f)
	require.NoError(t, err, privateErr(err))
	assert.Equal(t, alice.NameID, a.Subject.NameID.Value)
}

func TestResponseForErrors(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	_, err := p.ResponseFor(jittest.Request{SPEntityID: spEntityID, ACSURL: spACS}, "nobody")
	require.ErrorIs(t, err, jittest.ErrUnknownUser)
	_, err = p.ResponseFor(jittest.Request{ACSURL: spACS}, alice.NameID)
	require.Error(t, err)
	_, err = p.ResponseFor(jittest.Request{SPEntityID: spEntityID}, alice.NameID)
	require.Error(t, err)
}

func TestUsers(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	u := jittest.User{NameID: "bob", NameIDFormat: jittest.NameIDFormatEmail, Attributes: map[string][]string{attrEmail: {"bob@example.com"}}}
	p.AddUser(u)
	u.Attributes[attrEmail][0] = "changed" // the IdP keeps its own copy
	got, ok := p.User("bob")
	require.True(t, ok)
	assert.Equal(t, []string{"bob@example.com"}, got.Attributes[attrEmail])
	got.Attributes[attrEmail] = nil
	again, _ := p.User("bob")
	assert.Equal(t, []string{"bob@example.com"}, again.Attributes[attrEmail])

	f, err := p.Unsolicited(spEntityID, spACS, "bob", "")
	require.NoError(t, err)
	assert.Equal(t, jittest.NameIDFormatEmail, doc(t, f).FindElement("Assertion/Subject/NameID").SelectAttrValue("Format", ""))
	assert.Nil(t, doc(t, f).FindElement("Assertion/AttributeStatement/Attribute").SelectAttr("FriendlyName"))

	p.AddUser(jittest.User{NameID: "bob"}) // replace
	got, _ = p.User("bob")
	assert.Empty(t, got.Attributes)
	f, err = p.Unsolicited(spEntityID, spACS, "bob", "")
	require.NoError(t, err)
	assert.Nil(t, doc(t, f).FindElement("Assertion/AttributeStatement"), "no empty AttributeStatement")

	p.RemoveUser("bob")
	_, ok = p.User("bob")
	assert.False(t, ok)
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	p := jittest.New(t, func(o *jittest.Options) { o.EntityID = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/" })
	assert.Equal(t, "https://sts.windows.net/00000000-0000-0000-0000-000000000001/", p.EntityID())
	assert.Equal(t, p.URL()+"/metadata", p.MetadataURL())
	assert.Equal(t, p.URL()+"/sso", p.SSOURL())
	assert.True(t, strings.HasPrefix(p.URL(), "http://127.0.0.1:"))

	resp, err := http.Get(p.MetadataURL())
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/samlmetadata+xml", resp.Header.Get("Content-Type"))
	assert.Equal(t, p.Metadata(), body)

	var md saml.EntityDescriptor
	require.NoError(t, xml.Unmarshal(body, &md))
	assert.Equal(t, p.EntityID(), md.EntityID)
	require.Len(t, md.IDPSSODescriptors, 1)
	idp := md.IDPSSODescriptors[0]
	require.Len(t, idp.KeyDescriptors, 1)
	assert.Equal(t, "signing", idp.KeyDescriptors[0].Use)
	der, err := base64.StdEncoding.DecodeString(idp.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	assert.True(t, cert.Equal(p.Certificate()))
	assert.True(t, p.Key().PublicKey.Equal(cert.PublicKey))
	assert.Equal(t, 2048, p.Key().N.BitLen())
	bindings := map[string]string{}
	for _, s := range idp.SingleSignOnServices {
		bindings[s.Binding] = s.Location
	}
	assert.Equal(t, map[string]string{saml.HTTPRedirectBinding: p.SSOURL(), saml.HTTPPostBinding: p.SSOURL()}, bindings)

	// Metadata returns a copy.
	m := p.Metadata()
	m[0] = 'X'
	assert.NotEqual(t, m, p.Metadata())
}

func TestKeyPairOptions(t *testing.T) {
	t.Parallel()
	a := jittest.New(t)
	b := jittest.New(t, func(o *jittest.Options) { o.Key, o.Certificate = a.Key(), a.Certificate() })
	assert.Equal(t, a.Key(), b.Key())
	c := jittest.New(t)
	_, err := jittest.NewServer(jittest.Options{Key: a.Key(), Certificate: c.Certificate()})
	require.Error(t, err)
	_, err = jittest.NewServer(jittest.Options{Key: a.Key()})
	require.Error(t, err)
	assert.False(t, a.Key().Equal(c.Key()), "each IdP generates its own key")
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	p.Close() // and again at cleanup
	_, err := http.Get(p.MetadataURL())
	require.Error(t, err)
	_, err = p.Unsolicited(spEntityID, spACS, alice.NameID, "")
	require.NoError(t, err, "responses can still be built")
}

// testSP is a minimal crewjam service provider application: /login starts
// an SP-initiated sign-in (HTTP-Redirect binding), /login-post the same with
// the HTTP-POST binding, /acs consumes the response, and /home greets the
// signed-in user.
type testSP struct {
	*httptest.Server
	sp *saml.ServiceProvider

	mu      sync.Mutex
	origins []string
}

func newTestSP(t *testing.T, p *jittest.IdP) *testSP {
	t.Helper()
	app := &testSP{}
	mux := http.NewServeMux()
	app.Server = httptest.NewServer(mux)
	t.Cleanup(app.Close)
	app.sp = newSP(t, p, app.URL+"/acs")

	start := func(w http.ResponseWriter, r *http.Request, binding string) {
		req, err := app.sp.MakeAuthenticationRequest(app.sp.GetSSOBindingLocation(binding), binding, saml.HTTPPostBinding)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "saml_request", Value: req.ID, Path: "/", HttpOnly: true})
		if binding == saml.HTTPPostBinding {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(req.Post("/home"))
			return
		}
		u, err := req.Redirect("/home", app.sp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { start(w, r, saml.HTTPRedirectBinding) })
	mux.HandleFunc("GET /login-post", func(w http.ResponseWriter, r *http.Request) { start(w, r, saml.HTTPPostBinding) })
	mux.HandleFunc("POST /acs", func(w http.ResponseWriter, r *http.Request) {
		app.mu.Lock()
		app.origins = append(app.origins, r.Header.Get("Origin"))
		app.mu.Unlock()
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ids []string
		if c, err := r.Cookie("saml_request"); err == nil {
			ids = append(ids, c.Value)
		}
		a, err := app.sp.ParseResponse(r, ids)
		if err != nil {
			http.Error(w, "refused: "+privateErr(err), http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "user", Value: a.Subject.NameID.Value, Path: "/", HttpOnly: true})
		http.Redirect(w, r, r.PostForm.Get("RelayState"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("user")
		if err != nil {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		_, _ = fmt.Fprintf(w, "hello %s", c.Value)
	})
	return app
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestSignInRedirectBinding(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)

	resp, err := p.SignIn(t.Context(), newClient(t), app.URL+"/login", alice.NameID)
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "hello "+alice.NameID, body)
	assert.Equal(t, app.URL+"/home", resp.Request.URL.String())
	app.mu.Lock()
	defer app.mu.Unlock()
	assert.Equal(t, []string{p.URL()}, app.origins, "the ACS sees the IdP's Origin, as from a browser")
}

func TestSignInPostBinding(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)

	resp, err := p.SignIn(t.Context(), newClient(t), app.URL+"/login-post", alice.NameID)
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "hello "+alice.NameID, body)
}

func TestSignInHonoursClientRedirectPolicyAtTheACS(t *testing.T) {
	t.Parallel()
	p := jittest.New(t, func(o *jittest.Options) { o.SignResponse = true })
	p.AddUser(alice)
	app := newTestSP(t, p)
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// The redirects to the IdP are followed regardless; the ACS's is not.
	resp, err := p.SignIn(t.Context(), c, app.URL+"/login", alice.NameID)
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	assert.Equal(t, "/home", resp.Header.Get("Location"))
}

func TestRespond(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)
	c := newClient(t)

	f, err := p.Respond(t.Context(), c, app.URL+"/login", alice.NameID)
	require.NoError(t, err)
	assert.Equal(t, app.URL+"/acs", f.ACS)
	assert.Equal(t, "/home", f.RelayState)
	assert.Equal(t, p.URL(), f.Origin)

	// The response answers the request the SP stashed in its cookie.
	appURL, err := url.Parse(app.URL)
	require.NoError(t, err)
	var requestID string
	for _, ck := range c.Jar.Cookies(appURL) {
		if ck.Name == "saml_request" {
			requestID = ck.Value
		}
	}
	require.NotEmpty(t, requestID)
	r := doc(t, f)
	assert.Equal(t, requestID, r.SelectAttrValue("InResponseTo", ""))
	assert.Equal(t, app.URL+"/acs", r.SelectAttrValue("Destination", ""))
	assert.Equal(t, spEntityID, r.FindElement("Assertion/Conditions/AudienceRestriction/Audience").Text())
	assert.Equal(t, app.URL+"/acs", r.FindElement("Assertion/Subject/SubjectConfirmation/SubjectConfirmationData").SelectAttrValue("Recipient", ""))

	// The form can be altered before posting.
	tampered := f
	tampered.SAMLResponse = base64.StdEncoding.EncodeToString(bytes.Replace(mustXML(t, f), []byte(alice.NameID), []byte("admin"), 1))
	resp, err := tampered.Post(t.Context(), c)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, readAll(t, resp))

	resp, err = f.Post(t.Context(), c)
	require.NoError(t, err)
	assert.Equal(t, "hello "+alice.NameID, readAll(t, resp))
}

func mustXML(t *testing.T, f jittest.Form) []byte {
	t.Helper()
	b, err := f.XML()
	require.NoError(t, err)
	return b
}

func TestRespondErrors(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)

	_, err := p.Respond(t.Context(), &http.Client{}, app.URL+"/login", alice.NameID)
	require.ErrorContains(t, err, "cookie jar")
	_, err = p.Respond(t.Context(), newClient(t), app.URL+"/login", "nobody")
	require.ErrorContains(t, err, "403")
	_, err = p.Respond(t.Context(), newClient(t), app.URL+"/home", alice.NameID)
	require.ErrorContains(t, err, "did not lead to the IdP")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = p.Respond(ctx, newClient(t), app.URL+"/login", alice.NameID)
	require.ErrorIs(t, err, context.Canceled)
}

// redirectURL is an HTTP-Redirect binding request from app's SP, without
// going through the app.
func redirectURL(t *testing.T, sp *saml.ServiceProvider, relayState string) (*url.URL, string) {
	t.Helper()
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	require.NoError(t, err)
	u, err := req.Redirect(relayState, sp)
	require.NoError(t, err)
	return u, req.ID
}

func TestRespondStartingAtTheSSOEndpoint(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)
	u, id := redirectURL(t, app.sp, "rs")
	f, err := p.Respond(t.Context(), newClient(t), u.String(), alice.NameID)
	require.NoError(t, err)
	assert.Equal(t, "rs", f.RelayState)
	assert.Equal(t, id, doc(t, f).SelectAttrValue("InResponseTo", ""))
}

func TestSSOUserList(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	p.AddUser(jittest.User{NameID: "bob <b>"})
	app := newTestSP(t, p)
	u, _ := redirectURL(t, app.sp, "rs")

	resp, err := http.Get(u.String())
	require.NoError(t, err)
	page := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `>alice-0001</a>`)
	assert.Contains(t, page, `>bob &lt;b&gt;</a>`)

	// Following a link signs in as that user.
	i := strings.Index(page, `<a href="`)
	require.GreaterOrEqual(t, i, 0)
	href := page[i+len(`<a href="`):]
	href = strings.ReplaceAll(href[:strings.Index(href, `"`)], "&amp;", "&")
	next, err := u.Parse(href)
	require.NoError(t, err)
	resp, err = http.Get(next.String())
	require.NoError(t, err)
	page = readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `name="SAMLResponse"`)
	assert.Contains(t, page, `action="`+app.URL+`/acs"`)

	// The HTTP-POST binding lists users as buttons in a form.
	req, err := app.sp.MakeAuthenticationRequest(p.SSOURL(), saml.HTTPPostBinding, saml.HTTPPostBinding)
	require.NoError(t, err)
	raw, err := xml.Marshal(req)
	require.NoError(t, err)
	resp, err = http.PostForm(p.SSOURL(), url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}})
	require.NoError(t, err)
	page = readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, page)
	assert.Contains(t, page, `<button type="submit" name="user" value="alice-0001">`)
}

func TestSSORejectsBadRequests(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	p.AddUser(alice)
	app := newTestSP(t, p)

	post := func(authn *saml.AuthnRequest) int {
		raw, err := xml.Marshal(authn)
		require.NoError(t, err)
		resp, err := http.PostForm(p.SSOURL(), url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}, "user": {alice.NameID}})
		require.NoError(t, err)
		_ = readAll(t, resp)
		return resp.StatusCode
	}
	fresh := func() *saml.AuthnRequest {
		req, err := app.sp.MakeAuthenticationRequest(p.SSOURL(), saml.HTTPPostBinding, saml.HTTPPostBinding)
		require.NoError(t, err)
		return req
	}
	assert.Equal(t, http.StatusOK, post(fresh()))
	for name, mutate := range map[string]func(*saml.AuthnRequest){
		"no ID":              func(r *saml.AuthnRequest) { r.ID = "" },
		"no Issuer":          func(r *saml.AuthnRequest) { r.Issuer = nil },
		"wrong Destination":  func(r *saml.AuthnRequest) { r.Destination = "https://elsewhere.example/sso" },
		"no ACS URL":         func(r *saml.AuthnRequest) { r.AssertionConsumerServiceURL = "" },
		"relative ACS URL":   func(r *saml.AuthnRequest) { r.AssertionConsumerServiceURL = "/acs" },
		"javascript ACS URL": func(r *saml.AuthnRequest) { r.AssertionConsumerServiceURL = "javascript:alert(1)" },
		"artifact binding":   func(r *saml.AuthnRequest) { r.ProtocolBinding = saml.HTTPArtifactBinding },
		"version 1.1":        func(r *saml.AuthnRequest) { r.Version = "1.1" },
	} {
		req := fresh()
		mutate(req)
		assert.Equal(t, http.StatusBadRequest, post(req), name)
	}

	for name, form := range map[string]url.Values{
		"no SAMLRequest":   {"user": {alice.NameID}},
		"not base64":       {"SAMLRequest": {"%%%"}},
		"not XML":          {"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte("hello"))}},
		"not AuthnRequest": {"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>`))}},
	} {
		resp, err := http.PostForm(p.SSOURL(), form)
		require.NoError(t, err)
		_ = readAll(t, resp)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}

	resp, err := http.Get(p.SSOURL() + "?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("not deflated"))))
	require.NoError(t, err)
	_ = readAll(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	req, err := http.NewRequest(http.MethodPut, p.SSOURL(), nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = readAll(t, resp)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestConcurrentSignIns(t *testing.T) {
	t.Parallel()
	p := jittest.New(t)
	app := newTestSP(t, p)
	const n = 8
	for i := range n {
		p.AddUser(jittest.User{NameID: fmt.Sprintf("user%d", i)})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.SetMutateAssertion(func(*saml.Assertion) {}) // hooks may change while others sign in
			jar, _ := cookiejar.New(nil)
			resp, err := p.SignIn(context.Background(), &http.Client{Jar: jar}, app.URL+"/login", fmt.Sprintf("user%d", i))
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("hello user%d", i); string(b) != want {
				errs <- fmt.Errorf("got %q, want %q", b, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNewNeverSharesAKeyBetweenOpenIdPs: IdPs open at once sign with
// different keys, even across a parent test and its subtest, so a forgery
// by one is a foreign signature to a connection trusting another; an
// IdP of a test that has ended gives its key to a later one, with a
// certificate of the later IdP's own.
func TestNewNeverSharesAKeyBetweenOpenIdPs(t *testing.T) {
	var first *rsa.PrivateKey
	var firstCert *x509.Certificate
	t.Run("ends", func(t *testing.T) {
		p := jittest.New(t)
		first, firstCert = p.Key(), p.Certificate()
	})
	parent := jittest.New(t)
	var child *jittest.IdP
	t.Run("child", func(t *testing.T) {
		child = jittest.New(t)
		require.False(t, child.Key().Equal(parent.Key()), "an IdP of a subtest shares its parent's key")
	})
	second := jittest.New(t)
	require.False(t, second.Key().Equal(parent.Key()), "two open IdPs share a key")
	reused := parent.Key().Equal(first) || second.Key().Equal(first)
	require.True(t, reused, "the key of the ended test's IdP was not reused")
	for _, p := range []*jittest.IdP{parent, second} {
		if p.Key().Equal(first) {
			require.NotEqual(t, firstCert.SerialNumber, p.Certificate().SerialNumber, "a reused key came with the ended IdP's certificate")
		}
		require.True(t, p.Key().PublicKey.Equal(p.Certificate().PublicKey), "the certificate holds the IdP's key")
	}
	// An IdP given a key keeps it.
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	own := jittest.New(t, func(o *jittest.Options) { o.Key, o.Certificate = key, cert })
	require.Same(t, key, own.Key())
}
