package jittest

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/jit/jittest/internal/xmlsign"
)

// Single Logout. The IdP keeps a session for every response it issues
// (NameID, SessionIndex, SP). At [IdP.SLOURL] it answers a service
// provider's signed LogoutRequest by ending the sessions it names and
// sending back a signed LogoutResponse, and it accepts the service
// provider's LogoutResponse to a LogoutRequest made by
// [IdP.LogoutRequestFor]. Both need the service provider's metadata
// ([IdP.AddServiceProvider]): its signing certificate and its
// SingleLogoutService. The metadata lists the IdP's SingleLogoutService
// only with [Options.SingleLogout].

const sloPath = "/slo"

// maxSkew is the clock skew the IdP allows on a logout message's
// IssueInstant.
const maxSkew = 3 * time.Minute

// Session is one sign-in the IdP issued a response for, live until a
// Single Logout ends it.
type Session struct {
	// NameID is the user's NameID.
	NameID string
	// SessionIndex is the AuthnStatement's SessionIndex.
	SessionIndex string
	// SPEntityID is the service provider the response was for.
	SPEntityID string
}

// LogoutResult is a service provider's answer to a LogoutRequest made by
// [IdP.LogoutRequestFor], as the IdP received it with a valid signature.
type LogoutResult struct {
	// Status is the top-level StatusCode, such as
	// "urn:oasis:names:tc:SAML:2.0:status:Success".
	Status string
	// SubStatus is the second-level StatusCode, "" when there is none.
	SubStatus string
	// Binding is how the answer came: saml.HTTPRedirectBinding or
	// saml.HTTPPostBinding.
	Binding string
}

// serviceProvider is a service provider added with AddServiceProvider.
type serviceProvider struct {
	certs []*x509.Certificate
	slo   []saml.Endpoint
}

// SLOURL returns the URL of the Single Logout endpoint, which accepts the
// HTTP-Redirect and HTTP-POST bindings.
func (p *IdP) SLOURL() string { return p.baseURL + sloPath }

// AddServiceProvider registers a service provider by its SAML metadata,
// as an IdP's administrator does: its signing certificates verify its
// logout messages, and its SingleLogoutService receives the IdP's. It
// replaces a service provider with the same entity ID.
func (p *IdP) AddServiceProvider(metadata []byte) error {
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(metadata, &ed); err != nil {
		return fmt.Errorf("jittest: parsing SP metadata: %w", err)
	}
	if ed.EntityID == "" || len(ed.SPSSODescriptors) == 0 {
		return errors.New("jittest: SP metadata has no entityID or no SPSSODescriptor")
	}
	var sp serviceProvider
	for _, d := range ed.SPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return fmt.Errorf("jittest: SP certificate: %w", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("jittest: SP certificate: %w", err)
				}
				sp.certs = append(sp.certs, cert)
			}
		}
		sp.slo = append(sp.slo, d.SingleLogoutServices...)
	}
	if len(sp.certs) == 0 {
		return errors.New("jittest: SP metadata has no signing certificate")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sps == nil {
		p.sps = make(map[string]serviceProvider)
	}
	p.sps[ed.EntityID] = sp
	return nil
}

// Sessions returns the live sessions of the user with the given NameID,
// in no particular order.
func (p *IdP) Sessions(nameID string) []Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Session
	for _, s := range p.sessions {
		if s.NameID == nameID {
			out = append(out, s)
		}
	}
	return out
}

// LogoutResult returns the service provider's answer to the LogoutRequest
// with the given ID, once the IdP has received it with a valid signature.
func (p *IdP) LogoutResult(requestID string) (LogoutResult, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.logoutResults[requestID]
	return r, ok
}

// recordSession remembers the session a response starts.
func (p *IdP) recordSession(s Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions == nil {
		p.sessions = make(map[string]Session)
	}
	p.sessions[s.SessionIndex] = s
}

// LogoutRequest describes an IdP-initiated LogoutRequest. The fields
// after Binding forge hostile requests.
type LogoutRequest struct {
	// SPEntityID names the service provider, which must have been added
	// with [IdP.AddServiceProvider]; the request goes to its
	// SingleLogoutService.
	SPEntityID string
	// NameID is the user's NameID. The request repeats it with the
	// format of the user, if the IdP has them, and SPEntityID as
	// SPNameQualifier.
	NameID string
	// SessionIndex, if set, limits the logout to that session; without
	// it, every session of the user at the service provider ends.
	SessionIndex string
	// RelayState is sent along when not empty.
	RelayState string
	// Binding is saml.HTTPRedirectBinding or saml.HTTPPostBinding; empty
	// means HTTP-Redirect when the service provider offers it.
	Binding string

	// ID replaces the fresh request ID.
	ID string
	// Issuer replaces the IdP's entity ID.
	Issuer string
	// SPNameQualifier replaces SPEntityID as the NameID's SPNameQualifier.
	SPNameQualifier string
	// Destination replaces the service provider's SingleLogoutService
	// location in the message (the request is still sent there).
	Destination string
	// IssueInstant replaces the current time.
	IssueInstant time.Time
	// NotOnOrAfter replaces IssueInstant plus 5 minutes.
	NotOnOrAfter time.Time
	// Unsigned leaves the request unsigned.
	Unsigned bool
	// Key and Certificate, if set, sign in place of the IdP's key.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
}

// Message is a SAML protocol message as a browser carries it to its
// destination: a GET (HTTP-Redirect binding) or a form POST (HTTP-POST
// binding).
type Message struct {
	// ID is the ID of the request the message carries.
	ID string
	// Method is http.MethodGet or http.MethodPost.
	Method string
	// URL is where the message goes; with GET it carries the message.
	URL string
	// Form is the posted form with POST.
	Form url.Values
	// Origin is the Origin header a browser sends with the POST.
	Origin string
}

// Send delivers the message with c (nil means http.DefaultClient), whose
// CheckRedirect decides whether the answer's redirects are followed.
func (m Message) Send(ctx context.Context, c *http.Client) (*http.Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	var body *strings.Reader
	if m.Method == http.MethodPost {
		body = strings.NewReader(m.Form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, m.Method, m.URL, body)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	if m.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if m.Origin != "" {
			req.Header.Set("Origin", m.Origin)
		}
	}
	return c.Do(req)
}

// LogoutRequestFor builds an IdP-initiated LogoutRequest, signed with
// [Options.SignatureMethod] (a query-string signature with HTTP-Redirect,
// an enveloped one with HTTP-POST), and remembers its ID so that the
// service provider's LogoutResponse can be checked ([IdP.LogoutResult]).
func (p *IdP) LogoutRequestFor(lr LogoutRequest) (Message, error) {
	p.mu.Lock()
	sp, ok := p.sps[lr.SPEntityID]
	u, hasUser := p.users[lr.NameID]
	p.mu.Unlock()
	if !ok {
		return Message{}, fmt.Errorf("jittest: unknown service provider %q: add its metadata with AddServiceProvider", lr.SPEntityID)
	}
	binding, loc := sloEndpoint(sp.slo, lr.Binding, false)
	if loc == "" {
		return Message{}, fmt.Errorf("jittest: service provider %q has no usable SingleLogoutService", lr.SPEntityID)
	}
	now := p.opts.Now().UTC().Truncate(time.Millisecond)
	req := &saml.LogoutRequest{
		ID:           orString(lr.ID, newID()),
		Version:      "2.0",
		IssueInstant: now,
		Destination:  orString(lr.Destination, loc),
		Issuer:       &saml.Issuer{Format: nameIDFormatEntity, Value: orString(lr.Issuer, p.entityID)},
		NameID:       &saml.NameID{Value: lr.NameID, Format: NameIDFormatPersistent, SPNameQualifier: orString(lr.SPNameQualifier, lr.SPEntityID)},
	}
	if hasUser && u.NameIDFormat != "" {
		req.NameID.Format = u.NameIDFormat
	}
	if !lr.IssueInstant.IsZero() {
		req.IssueInstant = lr.IssueInstant.UTC()
	}
	notOnOrAfter := req.IssueInstant.Add(5 * time.Minute)
	if !lr.NotOnOrAfter.IsZero() {
		notOnOrAfter = lr.NotOnOrAfter.UTC()
	}
	req.NotOnOrAfter = &notOnOrAfter
	if lr.SessionIndex != "" {
		req.SessionIndex = &saml.SessionIndex{Value: lr.SessionIndex}
	}
	key, cert := p.key, p.cert
	if lr.Key != nil && lr.Certificate != nil {
		key, cert = lr.Key, lr.Certificate
	}
	if lr.Unsigned {
		key = nil
	}
	msg, err := p.message(req.Element(), "SAMLRequest", binding, loc, lr.RelayState, key, cert)
	if err != nil {
		return Message{}, err
	}
	msg.ID = req.ID
	p.mu.Lock()
	if p.pendingLogouts == nil {
		p.pendingLogouts = make(map[string]string)
	}
	p.pendingLogouts[req.ID] = lr.SPEntityID
	p.mu.Unlock()
	return msg, nil
}

// message encodes el as param for binding, to loc, signed with key unless
// it is nil.
func (p *IdP) message(el *etree.Element, param, binding, loc, relay string, key *rsa.PrivateKey, cert *x509.Certificate) (Message, error) {
	if binding == saml.HTTPRedirectBinding {
		u, err := p.redirectURL(el, param, loc, relay, key)
		if err != nil {
			return Message{}, err
		}
		return Message{Method: http.MethodGet, URL: u}, nil
	}
	if key != nil {
		ctx, err := xmlsign.Context(key, cert, p.opts.SignatureMethod)
		if err != nil {
			return Message{}, fmt.Errorf("jittest: %w", err)
		}
		if el, err = xmlsign.Enveloped(ctx, el); err != nil {
			return Message{}, fmt.Errorf("jittest: %w", err)
		}
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return Message{}, fmt.Errorf("jittest: %w", err)
	}
	form := url.Values{param: {base64.StdEncoding.EncodeToString(buf)}}
	if relay != "" {
		form.Set("RelayState", relay)
	}
	return Message{Method: http.MethodPost, URL: loc, Form: form, Origin: p.URL()}, nil
}

// redirectURL encodes el for the HTTP-Redirect binding and signs the query
// with key (saml-bindings §3.4.4.1) unless it is nil.
func (p *IdP) redirectURL(el *etree.Element, param, loc, relay string, key *rsa.PrivateKey) (string, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		return "", fmt.Errorf("jittest: %w", err)
	}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = fw.Write(raw)
	_ = fw.Close()
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relay != "" {
		q += "&RelayState=" + url.QueryEscape(relay)
	}
	if key != nil {
		h := signatureHash(p.opts.SignatureMethod)
		q += "&SigAlg=" + url.QueryEscape(p.opts.SignatureMethod)
		d := h.New()
		d.Write([]byte(q))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, d.Sum(nil))
		if err != nil {
			return "", fmt.Errorf("jittest: signing: %w", err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + q, nil
}

func signatureHash(method string) crypto.Hash {
	switch method {
	case dsig.RSASHA1SignatureMethod:
		return crypto.SHA1
	case dsig.RSASHA384SignatureMethod:
		return crypto.SHA384
	case dsig.RSASHA512SignatureMethod:
		return crypto.SHA512
	default:
		return crypto.SHA256
	}
}

// sloEndpoint picks the service provider's SingleLogoutService for
// binding ("" prefers HTTP-Redirect), returning its binding and the
// location to send a request to, or a response when response is set.
func sloEndpoint(eps []saml.Endpoint, binding string, response bool) (string, string) {
	order := []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding}
	if binding != "" {
		order = []string{binding}
	}
	for _, b := range order {
		for _, e := range eps {
			if e.Binding != b || e.Location == "" {
				continue
			}
			if response && e.ResponseLocation != "" {
				return b, e.ResponseLocation
			}
			return b, e.Location
		}
	}
	return "", ""
}

func elementBytes(el *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, _ := doc.WriteToBytes()
	return b
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// sloFormTemplate is the HTTP-POST binding page of a LogoutResponse.
var sloFormTemplate = template.Must(template.New("slo").Parse(strings.TrimSpace(`
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>jittest IdP: signing out</title></head>
<body>
<form method="post" action="{{.URL}}">
{{- range $k, $vs := .Form}}{{range $vs}}
<input type="hidden" name="{{$k}}" value="{{.}}">
{{- end}}{{end}}
<noscript><button type="submit">Continue</button></noscript>
</form>
<script>document.forms[0].submit();</script>
</body></html>
`)))
