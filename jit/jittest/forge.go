package jittest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
)

// This file holds forging helpers for hostile-response tests. They work on
// the etree elements the IdP's hooks receive: sign (with a trusted or an
// attacker's key), wrap a signed element the way XML Signature Wrapping
// attacks do, and encrypt an assertion to the service provider.

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

// Sign returns a copy of el with an enveloped RSA-SHA256 signature made
// with key, cert in its KeyInfo, placed right after el's Issuer. Any
// signature el already carries as a direct child is removed first. Use it
// with the IdP's own [IdP.Key] to re-sign after a change, or with an
// attacker's key to forge a signature the SP must not trust.
func Sign(el *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate) (*etree.Element, error) {
	el = el.Copy()
	if sig := child(el, nsDSig, "Signature"); sig != nil {
		el.RemoveChild(sig)
	}
	p := &IdP{key: key, cert: cert, opts: Options{SignatureMethod: dsig.RSASHA256SignatureMethod}}
	return p.sign(el)
}

// GenerateKeyPair returns a fresh RSA-2048 key and a self-signed
// certificate for it: an SP's key pair in a test, or an attacker's signing
// key.
func GenerateKeyPair() (*rsa.PrivateKey, *x509.Certificate, error) {
	return generateKeyPair(time.Now())
}

// XSW names an XML Signature Wrapping variant (Somorovsky et al., "On
// Breaking SAML: Be Whoever You Want to Be", USENIX Security 2012, as
// SAML Raider implements them). In each, the element the signature
// references keeps its ID and still verifies, while an evil copy sits
// where a careless consumer reads identity.
type XSW int

// The eight variants. XSW1 and XSW2 wrap a signed Response (the IdP must
// sign the Response); XSW3 to XSW8 wrap a signed Assertion.
const (
	// XSW1: the evil Response (new ID) holds the original Signature, and
	// the original Response, unsigned, inside that Signature.
	XSW1 XSW = iota + 1
	// XSW2: as XSW1, with the original Response placed before the
	// Signature (detached) instead of inside it.
	XSW2
	// XSW3: an evil unsigned Assertion (new ID) before the signed one.
	XSW3
	// XSW4: an evil unsigned Assertion that contains the signed one.
	XSW4
	// XSW5: the evil Assertion carries the original Signature; an unsigned
	// copy of the original Assertion follows at the end of the Response.
	XSW5
	// XSW6: the evil Assertion carries the original Signature, which
	// contains the unsigned original Assertion.
	XSW6
	// XSW7: the evil Assertion contains an Extensions element holding the
	// signed original Assertion.
	XSW7
	// XSW8: the evil Assertion carries the original Signature, which
	// holds the unsigned original Assertion inside a ds:Object.
	XSW8
)

func (x XSW) String() string { return fmt.Sprintf("XSW%d", int(x)) }

// Wrap applies variant x to resp, a complete signed Response, in place, as
// a hook set with [IdP.SetMutateResponse] would. evil changes the evil copy of the
// Assertion (for example its NameID); it may be nil.
func Wrap(resp *etree.Element, x XSW, evil func(assertion *etree.Element)) error {
	if evil == nil {
		evil = func(*etree.Element) {}
	}
	switch x {
	case XSW1, XSW2:
		sig := child(resp, nsDSig, "Signature")
		if sig == nil {
			return fmt.Errorf("jittest: %s needs a signed Response", x)
		}
		orig := resp.Copy()
		orig.RemoveChild(child(orig, nsDSig, "Signature"))
		setID(resp, "_evil-response")
		if a := child(resp, nsAssertion, "Assertion"); a != nil {
			evil(a)
		}
		if x == XSW1 {
			sig.AddChild(orig)
		} else {
			resp.InsertChildAt(sig.Index(), orig)
		}
		return nil
	}
	a := child(resp, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("jittest: the Response has no Assertion")
	}
	sig := child(a, nsDSig, "Signature")
	if sig == nil {
		return fmt.Errorf("jittest: %s needs a signed Assertion", x)
	}
	evilA := a.Copy()
	evilA.RemoveChild(child(evilA, nsDSig, "Signature"))
	setID(evilA, "_evil-assertion")
	evil(evilA)
	unsigned := a.Copy()
	unsigned.RemoveChild(child(unsigned, nsDSig, "Signature"))
	at := a.Index()
	switch x {
	case XSW3:
		resp.InsertChildAt(at, evilA)
	case XSW4:
		resp.RemoveChild(a)
		evilA.AddChild(a)
		resp.InsertChildAt(at, evilA)
	case XSW5, XSW6, XSW8:
		a.RemoveChild(sig)
		resp.RemoveChild(a)
		evilA.InsertChildAt(afterIssuer(evilA), sig)
		resp.InsertChildAt(at, evilA)
		switch x {
		case XSW5:
			resp.AddChild(unsigned)
		case XSW6:
			sig.AddChild(unsigned)
		case XSW8:
			obj := sig.CreateElement(sig.Space + ":Object")
			obj.AddChild(unsigned)
		}
	case XSW7:
		resp.RemoveChild(a)
		ext := evilA.CreateElement("samlp:Extensions")
		ext.CreateAttr("xmlns:samlp", "urn:oasis:names:tc:SAML:2.0:protocol")
		ext.AddChild(a)
		resp.InsertChildAt(at, evilA)
	default:
		return fmt.Errorf("jittest: unknown XSW variant %d", int(x))
	}
	return nil
}

// DuplicateID inserts, before the signed Assertion of resp, an evil
// unsigned copy carrying the same ID, changed by evil.
func DuplicateID(resp *etree.Element, evil func(assertion *etree.Element)) error {
	a := child(resp, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("jittest: the Response has no Assertion")
	}
	evilA := a.Copy()
	if sig := child(evilA, nsDSig, "Signature"); sig != nil {
		evilA.RemoveChild(sig)
	}
	if evil != nil {
		evil(evilA)
	}
	resp.InsertChildAt(a.Index(), evilA)
	return nil
}

// Key transport algorithms for [Encryption].
const (
	KeyTransportOAEP     = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	KeyTransportOAEP11   = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
	KeyTransportPKCS1v15 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
)

// Block encryption algorithms for [Encryption].
const (
	BlockAES128GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	BlockAES128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	BlockAES256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	BlockTripleDES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
)

// Encryption chooses how [EncryptAssertion] encrypts. Zero values mean
// RSA-OAEP (mgf1p) and AES-128-GCM.
type Encryption struct {
	KeyTransport string
	Block        string
}

// EncryptAssertion replaces the Assertion child of resp with an
// EncryptedAssertion holding it, encrypted to cert (the service
// provider's certificate) as enc says. Run it from a
// [IdP.SetMutateResponse] hook; the assertion's own signature, if any, stays
// inside the ciphertext.
func EncryptAssertion(resp *etree.Element, cert *x509.Certificate, enc Encryption) error {
	a := child(resp, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("jittest: the Response has no Assertion")
	}
	var rsaEnc xmlenc.RSA
	switch enc.KeyTransport {
	case "", KeyTransportOAEP:
		rsaEnc = xmlenc.OAEP()
	case KeyTransportOAEP11:
		rsaEnc = xmlenc.OAEP_SHA256()
	case KeyTransportPKCS1v15:
		rsaEnc = xmlenc.PKCS1v15()
	default:
		return fmt.Errorf("jittest: unknown key transport %q", enc.KeyTransport)
	}
	switch enc.Block {
	case "", BlockAES128GCM:
		rsaEnc.BlockCipher = aes128GCM{}
	case BlockAES128CBC:
		rsaEnc.BlockCipher = xmlenc.AES128CBC
	case BlockAES256CBC:
		rsaEnc.BlockCipher = xmlenc.AES256CBC
	case BlockTripleDES:
		rsaEnc.BlockCipher = xmlenc.TripleDES
	default:
		return fmt.Errorf("jittest: unknown block encryption %q", enc.Block)
	}
	plain := a.Copy()
	declareInherited(plain, a)
	doc := etree.NewDocument()
	doc.SetRoot(plain)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return fmt.Errorf("jittest: serializing the assertion: %w", err)
	}
	data, err := rsaEnc.Encrypt(cert, buf, nil)
	if err != nil {
		return fmt.Errorf("jittest: encrypting the assertion: %w", err)
	}
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.CreateAttr("xmlns:saml", nsAssertion)
	ea.AddChild(data)
	at := a.Index()
	resp.RemoveChild(a)
	resp.InsertChildAt(at, ea)
	return nil
}

// aes128GCM encrypts with AES-128-GCM as XML Encryption 1.1 says: the
// CipherValue is the 12-byte nonce, the ciphertext and the 16-byte tag.
// crewjam/saml v0.5.1's own GCM encrypter cannot be used: it shadows the
// nonce it generates (so Seal panics on a nil nonce) and seals zeros.
type aes128GCM struct{}

func (aes128GCM) KeySize() int      { return 16 }
func (aes128GCM) Algorithm() string { return BlockAES128GCM }
func (aes128GCM) Decrypt(key any, el *etree.Element) ([]byte, error) {
	return xmlenc.AES128GCM.Decrypt(key, el)
}

func (aes128GCM) Encrypt(key any, plaintext, _ []byte) (*etree.Element, error) {
	k, ok := key.([]byte)
	if !ok || len(k) != 16 {
		return nil, errors.New("jittest: AES-128-GCM needs a 16-byte key")
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ed := etree.NewElement("xenc:EncryptedData")
	ed.CreateAttr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#")
	ed.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", BlockAES128GCM)
	ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").
		SetText(base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plaintext, nil)))
	return ed, nil
}

// TruncateCiphertext cuts the assertion ciphertext of an encrypted
// Response (see [EncryptAssertion]) to its first n bytes.
func TruncateCiphertext(resp *etree.Element, n int) error {
	cv := resp.FindElement("./EncryptedAssertion/EncryptedData/CipherData/CipherValue")
	if cv == nil {
		return errors.New("jittest: no EncryptedData CipherValue")
	}
	b, err := base64.StdEncoding.DecodeString(cv.Text())
	if err != nil {
		return err
	}
	if n < len(b) {
		b = b[:n]
	}
	cv.SetText(base64.StdEncoding.EncodeToString(b))
	return nil
}

// declareInherited copies onto dst the namespace declarations in scope at
// src that dst does not declare itself, so dst serializes on its own.
func declareInherited(dst, src *etree.Element) {
	for p := src.Parent(); p != nil; p = p.Parent() {
		for _, at := range p.Attr {
			if at.Space == "xmlns" || (at.Space == "" && at.Key == "xmlns") {
				if dst.SelectAttr(at.FullKey()) == nil {
					dst.CreateAttr(at.FullKey(), at.Value)
				}
			}
		}
	}
}

func child(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

func afterIssuer(el *etree.Element) int {
	for i, tok := range el.Child {
		if c, ok := tok.(*etree.Element); ok && c.Tag == "Issuer" {
			return i + 1
		}
	}
	return 0
}

func setID(el *etree.Element, id string) {
	el.RemoveAttr("ID")
	el.CreateAttr("ID", id)
}
