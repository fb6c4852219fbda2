package jittest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/jit/jittest/forge"
)

// SPKeys are the certificates an IdP's administrator has on file for one
// service provider, as loaded from its metadata: they are what an SP key
// rollover has to get right.
type SPKeys struct {
	// Signing are the certificates the SP's AuthnRequests may be signed
	// with. When it is not empty, the IdP refuses an AuthnRequest from
	// that SP that is unsigned or signed by another key (as an IdP that
	// wants requests signed does); the HTTP-Redirect binding only.
	Signing []*x509.Certificate
	// EncryptTo, when set, is the certificate the IdP encrypts the
	// assertions for that SP to (RSA-OAEP, AES-128-GCM), after signing
	// the assertion and before signing the Response.
	EncryptTo *x509.Certificate
}

// spKeyRegistry holds the SPKeys set with SetSPKeys, by SP entity ID.
type spKeyRegistry struct {
	mu   sync.Mutex
	keys map[string]SPKeys
}

// SetSPKeys makes the IdP know the keys of the service provider with the
// entity ID spEntityID, replacing what it knew; a zero SPKeys forgets them.
func (p *IdP) SetSPKeys(spEntityID string, k SPKeys) {
	p.spKeys.mu.Lock()
	defer p.spKeys.mu.Unlock()
	if p.spKeys.keys == nil {
		p.spKeys.keys = map[string]SPKeys{}
	}
	if len(k.Signing) == 0 && k.EncryptTo == nil {
		delete(p.spKeys.keys, spEntityID)
		return
	}
	p.spKeys.keys[spEntityID] = k
}

func (p *IdP) spKeysFor(spEntityID string) (SPKeys, bool) {
	p.spKeys.mu.Lock()
	defer p.spKeys.mu.Unlock()
	k, ok := p.spKeys.keys[spEntityID]
	return k, ok
}

// SPKeysFromMetadata reads SP metadata as an IdP loading it does: the
// entity ID, every certificate listed for signing (KeyDescriptors with use
// "signing" or no use), and the first one listed for encryption (use
// "encryption" or none) as the one to encrypt to.
func SPKeysFromMetadata(metadata []byte) (entityID string, k SPKeys, err error) {
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(metadata, &ed); err != nil {
		return "", k, fmt.Errorf("jittest: parsing SP metadata: %w", err)
	}
	if ed.EntityID == "" || len(ed.SPSSODescriptors) == 0 {
		return "", k, errors.New("jittest: SP metadata has no entityID or no SPSSODescriptor")
	}
	for _, d := range ed.SPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return "", k, fmt.Errorf("jittest: SP certificate: %w", err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return "", k, fmt.Errorf("jittest: SP certificate: %w", err)
				}
				if kd.Use == "" || kd.Use == "signing" {
					k.Signing = append(k.Signing, cert)
				}
				if (kd.Use == "" || kd.Use == "encryption") && k.EncryptTo == nil {
					k.EncryptTo = cert
				}
			}
		}
	}
	return ed.EntityID, k, nil
}

// checkRequestSignature verifies the signature of an AuthnRequest sent
// with the HTTP-Redirect binding against the signing certificates known
// for its SP, when any are known.
func (p *IdP) checkRequestSignature(r *http.Request, spEntityID string) error {
	k, ok := p.spKeysFor(spEntityID)
	if !ok || len(k.Signing) == 0 {
		return nil
	}
	if r.Method != http.MethodGet {
		return errors.New("jittest: this IdP verifies AuthnRequest signatures on the HTTP-Redirect binding only")
	}
	// The signed octets are the parameters as they were sent, in the
	// binding's order (saml-bindings §3.4.4.1).
	raw := map[string]string{}
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		name, val, _ := strings.Cut(kv, "=")
		if _, dup := raw[name]; !dup {
			raw[name] = val
		}
	}
	sigAlg, err := url.QueryUnescape(raw["SigAlg"])
	if err != nil || raw["Signature"] == "" {
		return errors.New("jittest: the AuthnRequest is not signed, and this IdP has signing certificates for its SP")
	}
	if sigAlg != dsig.RSASHA256SignatureMethod {
		return fmt.Errorf("jittest: AuthnRequest SigAlg %q: only RSA-SHA256 is accepted", sigAlg)
	}
	signed := "SAMLRequest=" + raw["SAMLRequest"]
	if rs, ok := raw["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + raw["SigAlg"]
	b64, err := url.QueryUnescape(raw["Signature"])
	if err != nil {
		return fmt.Errorf("jittest: AuthnRequest Signature: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("jittest: AuthnRequest Signature: %w", err)
	}
	sum := sha256.Sum256([]byte(signed))
	for _, c := range k.Signing {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			return nil
		}
	}
	return errors.New("jittest: the AuthnRequest's signature is by none of the SP's certificates this IdP knows")
}

// encryptFor encrypts the assertion of resp to the certificate known for
// the SP, when there is one.
func (p *IdP) encryptFor(spEntityID string, resp *etree.Element) error {
	k, ok := p.spKeysFor(spEntityID)
	if !ok || k.EncryptTo == nil {
		return nil
	}
	if err := forge.EncryptAssertion(resp, k.EncryptTo, forge.Encryption{}); err != nil {
		return fmt.Errorf("jittest: encrypting the assertion: %w", err)
	}
	return nil
}
