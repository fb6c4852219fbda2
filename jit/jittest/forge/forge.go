// Package forge forges hostile SAML responses for tests of a service
// provider: it signs (with a trusted or an attacker's key), wraps a signed
// element the way XML Signature Wrapping attacks do, duplicates IDs, and
// encrypts an assertion to the service provider with chosen algorithms.
//
// Its functions work on the etree elements the hooks of a
// [github.com/samljit/samljit/jit/jittest.IdP] receive; most run from the
// hook set with its SetMutateResponse method, on the complete signed
// Response:
//
//	idp := jittest.New(t, func(o *jittest.Options) { o.SignResponse = true })
//	idp.SetMutateResponse(func(resp *etree.Element) {
//		err := forge.Wrap(resp, forge.XSW1, func(a *etree.Element) {
//			a.FindElement("./Subject/NameID").SetText("admin")
//		})
//		if err != nil {
//			t.Error(err)
//		}
//	})
//
// Never use this package outside tests.
package forge

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/samljit/samljit/jit/jittest/internal/xmlsign"
)

const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

// Sign returns a copy of el with an enveloped RSA-SHA256 signature made
// with key, cert in its KeyInfo, placed right after el's Issuer. Any
// signature el already carries as a direct child is removed first. Use it
// with the IdP's own key (its Key and Certificate methods) to re-sign after
// a change, or with an attacker's key (from jittest.GenerateKeyPair) to
// forge a signature the SP must not trust.
func Sign(el *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate) (*etree.Element, error) {
	el = el.Copy()
	if sig := child(el, nsDSig, "Signature"); sig != nil {
		el.RemoveChild(sig)
	}
	ctx, err := xmlsign.Context(key, cert, dsig.RSASHA256SignatureMethod)
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	signed, err := xmlsign.Enveloped(ctx, el)
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	return signed, nil
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

// String returns the variant's name, such as "XSW1".
func (x XSW) String() string { return fmt.Sprintf("XSW%d", int(x)) }

// Wrap applies variant x to resp, a complete signed Response, in place, as
// a response hook of the IdP would. evil changes the evil copy of the
// Assertion (for example its NameID); it may be nil.
func Wrap(resp *etree.Element, x XSW, evil func(assertion *etree.Element)) error {
	if evil == nil {
		evil = func(*etree.Element) {}
	}
	switch x {
	case XSW1, XSW2:
		sig := child(resp, nsDSig, "Signature")
		if sig == nil {
			return fmt.Errorf("forge: %s needs a signed Response", x)
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
		return errors.New("forge: the Response has no Assertion")
	}
	sig := child(a, nsDSig, "Signature")
	if sig == nil {
		return fmt.Errorf("forge: %s needs a signed Assertion", x)
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
		return fmt.Errorf("forge: unknown XSW variant %d", int(x))
	}
	return nil
}

// DuplicateID inserts, before the signed Assertion of resp, an evil
// unsigned copy carrying the same ID, changed by evil.
func DuplicateID(resp *etree.Element, evil func(assertion *etree.Element)) error {
	a := child(resp, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("forge: the Response has no Assertion")
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
	// KeyTransportOAEP is RSA-OAEP with MGF1 and SHA-1 (XML Encryption 1.0).
	KeyTransportOAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
	// KeyTransportOAEP11 is RSA-OAEP as XML Encryption 1.1 names it, here
	// with SHA-256.
	KeyTransportOAEP11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
	// KeyTransportPKCS1v15 is RSA PKCS #1 v1.5, open to padding-oracle
	// attacks.
	KeyTransportPKCS1v15 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
)

// Block encryption algorithms for [Encryption].
const (
	// BlockAES128GCM is AES-128 in GCM mode (XML Encryption 1.1).
	BlockAES128GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
	// BlockAES128CBC is AES-128 in CBC mode.
	BlockAES128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	// BlockAES256CBC is AES-256 in CBC mode.
	BlockAES256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
	// BlockTripleDES is Triple DES in CBC mode.
	BlockTripleDES = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
)

// Encryption chooses how [EncryptAssertion] encrypts.
type Encryption struct {
	// KeyTransport is the key transport algorithm, one of the KeyTransport
	// constants; empty means [KeyTransportOAEP] (RSA-OAEP with mgf1p).
	KeyTransport string
	// Block is the block encryption algorithm, one of the Block constants;
	// empty means [BlockAES128GCM].
	Block string
}

// EncryptAssertion replaces the Assertion child of resp with an
// EncryptedAssertion holding it, encrypted to cert (the service
// provider's certificate) as enc says. Run it from the IdP's response hook;
// the assertion's own signature, if any, stays inside the ciphertext.
func EncryptAssertion(resp *etree.Element, cert *x509.Certificate, enc Encryption) error {
	a := child(resp, nsAssertion, "Assertion")
	if a == nil {
		return errors.New("forge: the Response has no Assertion")
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
		return fmt.Errorf("forge: unknown key transport %q", enc.KeyTransport)
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
		return fmt.Errorf("forge: unknown block encryption %q", enc.Block)
	}
	plain := a.Copy()
	declareInherited(plain, a)
	doc := etree.NewDocument()
	doc.SetRoot(plain)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return fmt.Errorf("forge: serializing the assertion: %w", err)
	}
	data, err := rsaEnc.Encrypt(cert, buf, nil)
	if err != nil {
		return fmt.Errorf("forge: encrypting the assertion: %w", err)
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
		return nil, errors.New("forge: AES-128-GCM needs a 16-byte key")
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
		return errors.New("forge: no EncryptedData CipherValue")
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
