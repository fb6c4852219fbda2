package jittest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// SAML identifiers used in generated messages and metadata.
const (
	// NameIDFormatPersistent is the default NameID format of a [User].
	NameIDFormatPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	// NameIDFormatEmail is the email-address NameID format.
	NameIDFormatEmail = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	// NameIDFormatUnspecified is the unspecified NameID format.
	NameIDFormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	// NameIDFormatTransient is the transient NameID format.
	NameIDFormatTransient = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

	nameIDFormatEntity      = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
	attrNameFormatURI       = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	bearerMethod            = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	passwordProtectedTransp = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	statusSuccess           = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// Paths served by the IdP, relative to [IdP.URL].
const (
	metadataPath = "/metadata"
	ssoPath      = "/sso"
)

// ErrUnknownUser is returned (wrapped) when a response is requested for a
// NameID that was never added with [IdP.AddUser].
var ErrUnknownUser = errors.New("jittest: unknown user")

// User is a person the IdP can sign in. Users are keyed by NameID.
type User struct {
	// NameID is the Subject's NameID value, and the key of the user in the IdP.
	NameID string
	// NameIDFormat is the NameID's Format; empty means
	// [NameIDFormatPersistent].
	NameIDFormat string
	// Attributes maps an attribute Name (a URI, such as
	// "http://schemas.microsoft.com/identity/claims/objectidentifier") to its
	// values. Attributes are emitted sorted by Name, with NameFormat uri and
	// xsi:type xs:string values.
	Attributes map[string][]string
	// FriendlyNames optionally maps an attribute Name to the FriendlyName
	// emitted with it.
	FriendlyNames map[string]string
}

func (u User) clone() User {
	u.Attributes = maps.Clone(u.Attributes)
	for k, v := range u.Attributes {
		u.Attributes[k] = append([]string(nil), v...)
	}
	u.FriendlyNames = maps.Clone(u.FriendlyNames)
	return u
}

// Options configures an [IdP]. The zero value is a working IdP that signs the
// assertion (not the Response) with RSA-SHA256, as Entra ID does by default.
type Options struct {
	// EntityID is the IdP's entity ID, used as Issuer and in the metadata.
	// Empty means the metadata URL. Set it to imitate a real IdP, e.g.
	// "https://sts.windows.net/<tenant-id>/".
	EntityID string
	// Now returns the current time; nil means time.Now. It drives every
	// timestamp the IdP writes: IssueInstant, NotBefore, NotOnOrAfter,
	// AuthnInstant, SessionNotOnOrAfter, and the generated certificate's
	// validity.
	Now func() time.Time
	// AssertionLifetime is the time from issue to Conditions/@NotOnOrAfter
	// and SubjectConfirmationData/@NotOnOrAfter; zero means 5 minutes.
	AssertionLifetime time.Duration
	// SessionLifetime, if positive, sets AuthnStatement/@SessionNotOnOrAfter
	// to now plus this duration; otherwise the attribute is omitted.
	SessionLifetime time.Duration
	// SignResponse also signs the Response element (after the assertion is
	// signed and embedded).
	SignResponse bool
	// UnsignedAssertion leaves the Assertion unsigned; by default it is
	// signed. With UnsignedAssertion set and SignResponse not, responses
	// are entirely unsigned.
	UnsignedAssertion bool
	// SignatureMethod is the XML-DSig signature algorithm URI; empty means
	// dsig.RSASHA256SignatureMethod. The digest algorithm follows it (SHA-256
	// for RSA-SHA256, SHA-1 for dsig.RSASHA1SignatureMethod).
	SignatureMethod string
	// Key and Certificate, if both set, replace the freshly generated
	// signing key pair: to share one key between IdPs, or to present a
	// certificate that has expired. The certificate must hold Key's public
	// key.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
	// UserListTemplate, if set, renders the page the SSO endpoint shows
	// when a request names no user, in place of the built-in bare list of
	// NameIDs. It is executed with a [UserList]; a development IdP uses it
	// to show people's names and attributes and a warning banner.
	UserListTemplate *template.Template
	// SingleLogout lists the IdP's SingleLogoutService ([IdP.SLOURL],
	// HTTP-Redirect and HTTP-POST) in its metadata, so that a service
	// provider sends it LogoutRequests. The endpoint is served either way.
	SingleLogout bool
}

// IdP is an in-process SAML 2.0 identity provider serving HTTP on
// 127.0.0.1. Create one with [NewServer] or, in tests, [New]. Its methods
// are safe for concurrent use.
//
// Hooks set with [IdP.SetMutateAssertion], [IdP.SetMutateAssertionElement]
// and [IdP.SetMutateResponse] forge hostile responses. A test sets them
// after the IdP exists, case by case; the IdP reads them under its mutex
// when it builds a response, so they may change while another goroutine
// signs in.
type IdP struct {
	opts     Options
	key      *rsa.PrivateKey
	cert     *x509.Certificate
	srv      *httptest.Server
	baseURL  string
	ssoURL   *url.URL
	entityID string
	metadata []byte
	spKeys   spKeyRegistry // the SP keys set with SetSPKeys (spkeys.go)

	mu    sync.Mutex
	users map[string]User
	// The hooks, guarded by mu.
	mutateAssertion        func(a *saml.Assertion)
	mutateAssertionElement func(a *etree.Element)
	mutateResponse         func(resp *etree.Element)
	// Single Logout state, guarded by mu.
	sps            map[string]serviceProvider // by entity ID
	sessions       map[string]Session         // live sessions by SessionIndex
	pendingLogouts map[string]string          // LogoutRequest ID -> SP entity ID
	logoutResults  map[string]LogoutResult    // by LogoutRequest ID
}

// NewServer generates a signing key and certificate and starts an IdP on
// 127.0.0.1. Call [IdP.Close] to stop it.
func NewServer(opts Options) (*IdP, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AssertionLifetime <= 0 {
		opts.AssertionLifetime = 5 * time.Minute
	}
	switch opts.SignatureMethod {
	case "":
		opts.SignatureMethod = dsig.RSASHA256SignatureMethod
	case dsig.RSASHA1SignatureMethod, dsig.RSASHA256SignatureMethod, dsig.RSASHA384SignatureMethod, dsig.RSASHA512SignatureMethod:
	default:
		return nil, fmt.Errorf("jittest: unsupported SignatureMethod %q: the IdP signs with RSA", opts.SignatureMethod)
	}

	p := &IdP{opts: opts, users: make(map[string]User)}
	switch {
	case opts.Key != nil && opts.Certificate != nil:
		if !opts.Key.PublicKey.Equal(opts.Certificate.PublicKey) {
			return nil, errors.New("jittest: Options.Certificate does not hold the public key of Options.Key")
		}
		p.key, p.cert = opts.Key, opts.Certificate
	case opts.Key != nil || opts.Certificate != nil:
		return nil, errors.New("jittest: set both Options.Key and Options.Certificate, or neither")
	default:
		var err error
		if p.key, p.cert, err = generateKeyPair(opts.Now()); err != nil {
			return nil, err
		}
	}
	// Fail now, not at the first sign-in, if signing cannot work.
	if _, err := p.signingContext(); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc(metadataPath, p.serveMetadata)
	mux.HandleFunc(ssoPath, p.serveSSO)
	mux.HandleFunc(sloPath, p.serveSLO)
	p.srv = httptest.NewServer(mux)
	p.baseURL = p.srv.URL
	p.ssoURL, _ = url.Parse(p.baseURL + ssoPath)
	p.entityID = opts.EntityID
	if p.entityID == "" {
		p.entityID = p.MetadataURL()
	}
	md, err := p.buildMetadata()
	if err != nil {
		p.srv.Close()
		return nil, err
	}
	p.metadata = md
	return p, nil
}

// Close stops the HTTP server. Responses can still be built with
// [IdP.ResponseFor] afterwards.
func (p *IdP) Close() { p.srv.Close() }

// URL returns the base URL of the IdP's HTTP server, such as
// "http://127.0.0.1:41234".
func (p *IdP) URL() string { return p.baseURL }

// EntityID returns the IdP's entity ID: [Options.EntityID] or, by default,
// the metadata URL.
func (p *IdP) EntityID() string { return p.entityID }

// MetadataURL returns the URL serving the IdP's metadata.
func (p *IdP) MetadataURL() string { return p.baseURL + metadataPath }

// SSOURL returns the URL of the single sign-on endpoint, which accepts the
// HTTP-Redirect and HTTP-POST bindings.
func (p *IdP) SSOURL() string { return p.ssoURL.String() }

// Metadata returns the IdP's SAML metadata: an EntityDescriptor with an
// IDPSSODescriptor holding the signing certificate and SingleSignOnService
// endpoints for the HTTP-Redirect and HTTP-POST bindings. It is the document
// served at [IdP.MetadataURL]. The caller may modify the returned slice.
func (p *IdP) Metadata() []byte { return bytes.Clone(p.metadata) }

// Certificate returns the IdP's signing certificate.
func (p *IdP) Certificate() *x509.Certificate { return p.cert }

// Key returns the IdP's signing key, for tests that sign forgeries
// themselves.
func (p *IdP) Key() *rsa.PrivateKey { return p.key }

// AddUser adds u, or replaces the user with the same NameID.
func (p *IdP) AddUser(u User) {
	u = u.clone()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.NameID] = u
}

// RemoveUser removes the user with the given NameID, if any. A removed user
// can no longer sign in.
func (p *IdP) RemoveUser(nameID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.users, nameID)
}

// User returns a copy of the user with the given NameID.
func (p *IdP) User(nameID string) (User, bool) {
	p.mu.Lock()
	u, ok := p.users[nameID]
	p.mu.Unlock()
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// SetMutateAssertion sets the hook called with each assertion before it is
// rendered and signed, so that its changes are covered by the signature;
// nil removes it.
func (p *IdP) SetMutateAssertion(f func(a *saml.Assertion)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mutateAssertion = f
}

// SetMutateAssertionElement sets the hook called with each rendered
// Assertion element before it is signed: for forgeries the struct cannot
// express, such as elements in a foreign namespace, which the signature
// then covers. nil removes it.
func (p *IdP) SetMutateAssertionElement(f func(a *etree.Element)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mutateAssertionElement = f
}

// SetMutateResponse sets the hook called with each complete Response
// element after all signing and before it is serialized and
// base64-encoded: its changes are not covered by any signature. The
// [github.com/samljit/samljit/jit/jittest/forge] package forges such
// changes. nil removes the hook.
func (p *IdP) SetMutateResponse(f func(resp *etree.Element)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mutateResponse = f
}

func (p *IdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(p.metadata)
}

func (p *IdP) buildMetadata() ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	ed := doc.CreateElement("md:EntityDescriptor")
	ed.CreateAttr("xmlns:md", "urn:oasis:names:tc:SAML:2.0:metadata")
	ed.CreateAttr("xmlns:ds", "http://www.w3.org/2000/09/xmldsig#")
	ed.CreateAttr("entityID", p.entityID)

	idp := ed.CreateElement("md:IDPSSODescriptor")
	idp.CreateAttr("WantAuthnRequestsSigned", "false")
	idp.CreateAttr("protocolSupportEnumeration", "urn:oasis:names:tc:SAML:2.0:protocol")

	kd := idp.CreateElement("md:KeyDescriptor")
	kd.CreateAttr("use", "signing")
	kd.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
		SetText(base64.StdEncoding.EncodeToString(p.cert.Raw))

	// SingleLogoutService precedes NameIDFormat (saml-metadata §2.4.2).
	if p.opts.SingleLogout {
		for _, b := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
			slo := idp.CreateElement("md:SingleLogoutService")
			slo.CreateAttr("Binding", b)
			slo.CreateAttr("Location", p.SLOURL())
		}
	}
	for _, f := range []string{NameIDFormatPersistent, NameIDFormatEmail, NameIDFormatUnspecified, NameIDFormatTransient} {
		idp.CreateElement("md:NameIDFormat").SetText(f)
	}
	for _, b := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		sso := idp.CreateElement("md:SingleSignOnService")
		sso.CreateAttr("Binding", b)
		sso.CreateAttr("Location", p.SSOURL())
	}
	doc.Indent(2)
	return doc.WriteToBytes()
}

// GenerateKeyPair returns a fresh RSA-2048 key and a self-signed
// certificate for it: an SP's key pair in a test, or an attacker's signing
// key.
func GenerateKeyPair() (*rsa.PrivateKey, *x509.Certificate, error) {
	return generateKeyPair(time.Now())
}

// generateKeyPair makes an RSA-2048 key and a self-signed certificate valid
// from an hour before now for ten years.
func generateKeyPair(now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("jittest: generating key: %w", err)
	}
	cert, err := selfSigned(key, now)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// selfSigned makes a self-signed certificate of key valid from an hour
// before now for ten years.
func selfSigned(key *rsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("jittest: generating serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "jittest IdP", Organization: []string{"samljit jittest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("jittest: creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("jittest: parsing certificate: %w", err)
	}
	return cert, nil
}
