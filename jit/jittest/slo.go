package jittest

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/ecdsa"
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

// serveSLO answers a service provider's LogoutRequest, or records its
// LogoutResponse to a request of the IdP.
func (p *IdP) serveSLO(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestSize)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "jittest: cannot parse form: "+err.Error(), http.StatusBadRequest)
		return
	}
	param := "SAMLRequest"
	if r.Form.Get("SAMLResponse") != "" {
		param = "SAMLResponse"
	}
	root, binding, sp, err := p.verifySPMessage(r, param)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if param == "SAMLResponse" {
		p.acceptLogoutResponse(w, root, binding)
		return
	}
	p.answerLogoutRequest(w, r, root, binding, sp)
}

// verifySPMessage decodes the SP's message in param and verifies its
// signature (required) with the certificates of the service provider
// its Issuer names, and its Destination.
func (p *IdP) verifySPMessage(r *http.Request, param string) (*etree.Element, string, serviceProvider, error) {
	var raw []byte
	var err error
	binding := saml.HTTPPostBinding
	if r.Method == http.MethodGet {
		binding = saml.HTTPRedirectBinding
		raw, err = decodeRedirectBinding(r.URL.Query().Get(param))
	} else {
		raw, err = base64.StdEncoding.DecodeString(r.PostForm.Get(param))
	}
	if err != nil {
		return nil, "", serviceProvider{}, fmt.Errorf("jittest: cannot decode %s: %w", param, err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, "", serviceProvider{}, fmt.Errorf("jittest: %s is not XML", param)
	}
	root := doc.Root()
	issuer := ""
	if el := root.FindElement("./Issuer"); el != nil {
		issuer = strings.TrimSpace(el.Text())
	}
	p.mu.Lock()
	sp, ok := p.sps[issuer]
	p.mu.Unlock()
	if !ok {
		return nil, "", serviceProvider{}, fmt.Errorf("jittest: %s from unknown service provider %q: add its metadata with AddServiceProvider", param, issuer)
	}
	if binding == saml.HTTPRedirectBinding && r.URL.Query().Get("Signature") != "" {
		err = verifyQuerySignature(r.URL.RawQuery, param, sp.certs)
	} else {
		ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: sp.certs})
		ctx.IdAttribute = "ID"
		ctx.Clock = dsig.NewFakeClockAt(p.opts.Now())
		root, err = ctx.Validate(root)
	}
	if err != nil {
		return nil, "", serviceProvider{}, fmt.Errorf("jittest: %s signature from %q: %w", param, issuer, err)
	}
	if dest := root.SelectAttrValue("Destination", ""); dest != p.SLOURL() {
		return nil, "", serviceProvider{}, fmt.Errorf("jittest: %s Destination is %q, not %q", param, dest, p.SLOURL())
	}
	return root, binding, sp, nil
}

// verifyQuerySignature checks an HTTP-Redirect binding signature: over
// param, RelayState and SigAlg, as they appear in rawQuery.
func verifyQuerySignature(rawQuery, param string, certs []*x509.Certificate) error {
	parts := map[string]string{}
	for _, kv := range strings.Split(rawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if _, dup := parts[k]; !dup {
			parts[k] = kv
		}
	}
	var signed []string
	for _, k := range []string{param, "RelayState", "SigAlg"} {
		if kv, ok := parts[k]; ok {
			signed = append(signed, kv)
		}
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(q.Get("Signature"))
	if err != nil {
		return err
	}
	var h crypto.Hash
	switch alg := q.Get("SigAlg"); alg {
	case dsig.RSASHA256SignatureMethod, dsig.ECDSASHA256SignatureMethod:
		h = crypto.SHA256
	case dsig.RSASHA384SignatureMethod:
		h = crypto.SHA384
	case dsig.RSASHA512SignatureMethod:
		h = crypto.SHA512
	default:
		return fmt.Errorf("SigAlg %q not accepted", alg)
	}
	d := h.New()
	d.Write([]byte(strings.Join(signed, "&")))
	sum := d.Sum(nil)
	for _, c := range certs {
		switch pub := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if rsa.VerifyPKCS1v15(pub, h, sum, sig) == nil {
				return nil
			}
		case *ecdsa.PublicKey:
			if ecdsa.VerifyASN1(pub, sum, sig) {
				return nil
			}
		}
	}
	return errors.New("no certificate of the service provider verifies the query signature")
}

// answerLogoutRequest ends the sessions a verified LogoutRequest names
// and sends the service provider a signed LogoutResponse.
func (p *IdP) answerLogoutRequest(w http.ResponseWriter, r *http.Request, root *etree.Element, binding string, sp serviceProvider) {
	var req saml.LogoutRequest
	if err := xml.Unmarshal(elementBytes(root), &req); err != nil {
		http.Error(w, "jittest: cannot parse LogoutRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	now := p.opts.Now()
	switch {
	case req.ID == "" || req.Version != "2.0":
		http.Error(w, "jittest: LogoutRequest has no ID or is not version 2.0", http.StatusBadRequest)
		return
	case req.NameID == nil || req.NameID.Value == "":
		http.Error(w, "jittest: LogoutRequest names no NameID", http.StatusBadRequest)
		return
	case now.Sub(req.IssueInstant) > saml.MaxIssueDelay+maxSkew || req.IssueInstant.Sub(now) > maxSkew:
		http.Error(w, "jittest: LogoutRequest IssueInstant out of range", http.StatusBadRequest)
		return
	}
	indexes := map[string]bool{}
	for _, si := range req.AllSessionIndexes() {
		indexes[si.Value] = true
	}
	p.mu.Lock()
	for k, s := range p.sessions {
		if s.NameID == req.NameID.Value && (len(indexes) == 0 || indexes[s.SessionIndex]) {
			delete(p.sessions, k)
		}
	}
	p.mu.Unlock()

	respBinding, loc := sloEndpoint(sp.slo, binding, true)
	if loc == "" {
		respBinding, loc = sloEndpoint(sp.slo, "", true)
	}
	if loc == "" {
		http.Error(w, "jittest: the service provider has no SingleLogoutService", http.StatusBadRequest)
		return
	}
	resp := &saml.LogoutResponse{
		ID:           newID(),
		InResponseTo: req.ID,
		Version:      "2.0",
		IssueInstant: now.UTC().Truncate(time.Millisecond),
		Destination:  loc,
		Issuer:       &saml.Issuer{Format: nameIDFormatEntity, Value: p.entityID},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: statusSuccess}},
	}
	msg, err := p.message(resp.Element(), "SAMLResponse", respBinding, loc, r.Form.Get("RelayState"), p.key, p.cert)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if msg.Method == http.MethodGet {
		http.Redirect(w, r, msg.URL, http.StatusFound)
		return
	}
	var buf bytes.Buffer
	if err := sloFormTemplate.Execute(&buf, msg); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// acceptLogoutResponse records a service provider's verified answer to a
// LogoutRequest of this IdP.
func (p *IdP) acceptLogoutResponse(w http.ResponseWriter, root *etree.Element, binding string) {
	var resp saml.LogoutResponse
	if err := xml.Unmarshal(elementBytes(root), &resp); err != nil {
		http.Error(w, "jittest: cannot parse LogoutResponse: "+err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	_, pending := p.pendingLogouts[resp.InResponseTo]
	if pending {
		delete(p.pendingLogouts, resp.InResponseTo)
		res := LogoutResult{Status: resp.Status.StatusCode.Value, Binding: binding}
		if sc := resp.Status.StatusCode.StatusCode; sc != nil {
			res.SubStatus = sc.Value
		}
		if p.logoutResults == nil {
			p.logoutResults = make(map[string]LogoutResult)
		}
		p.logoutResults[resp.InResponseTo] = res
	}
	p.mu.Unlock()
	if !pending {
		http.Error(w, fmt.Sprintf("jittest: LogoutResponse to %q answers no outstanding LogoutRequest", resp.InResponseTo), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("jittest IdP: signed out\n"))
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
