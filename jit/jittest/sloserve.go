package jittest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The IdP's SLO endpoint: verifying a service provider's LogoutRequest
// or LogoutResponse, and answering it.

// serveSLO answers a service provider's LogoutRequest, or records its
// LogoutResponse to a request of the IdP.
func (p *IdP) serveSLO(w http.ResponseWriter, r *http.Request) {
	if !readGetOrPost(w, r) {
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
