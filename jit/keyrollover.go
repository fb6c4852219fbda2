package jit

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/crewjam/saml"
)

// keyRollover is the SP's next key pair during a rollover, and the keys
// besides the current one that decrypt assertions.
type keyRollover struct {
	nextCert *x509.Certificate // Options.NextCertificate; nil when no rollover is under way
	// older are the keys crewjam tries after Key: the next key, when it is
	// an RSA key, then Options.DecryptionKeys.
	older []*rsa.PrivateKey
}

// setKeys checks the SP's key pairs in opts and records the next one: the
// next certificate must hold the next key's public key and differ from
// the current certificate. m.decryptKeys becomes every key that decrypts,
// current first.
func (m *Middleware) setKeys(opts *Options) error {
	if (opts.NextKey == nil) != (opts.NextCertificate == nil) {
		return errors.New("jit: set both Options.NextKey and Options.NextCertificate, or neither")
	}
	if opts.NextKey != nil {
		if !publicKeyEqual(opts.NextKey.Public(), opts.NextCertificate.PublicKey) {
			return errors.New("jit: Options.NextCertificate does not hold the public key of Options.NextKey")
		}
		if opts.Certificate != nil && opts.Certificate.Equal(opts.NextCertificate) {
			return errors.New("jit: Options.NextCertificate is the current Certificate; to finish a rollover, move the next pair to Key and Certificate and clear NextKey")
		}
		m.rollover.nextCert = opts.NextCertificate
		if rk, ok := opts.NextKey.(*rsa.PrivateKey); ok {
			m.rollover.older = append(m.rollover.older, rk)
		}
	}
	for i, k := range opts.DecryptionKeys {
		if k == nil {
			return fmt.Errorf("jit: Options.DecryptionKeys[%d] is nil", i)
		}
	}
	m.rollover.older = append(m.rollover.older, opts.DecryptionKeys...)
	var err error
	m.decryptKeys, err = decryptionKeys(m.spKey, m.rollover.older)
	return err
}

// publicKeyEqual reports whether two public keys are equal.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// publishNextKey adds the next certificate to SP metadata md beside the
// current one: for every KeyDescriptor crewjam wrote (signing, and
// encryption when the current key is an RSA key), one more naming the next
// certificate, after it. The next certificate is offered for encryption
// only when it holds an RSA key, which XML encryption needs. An IdP that
// loads this metadata trusts either key's signatures and may encrypt to
// either certificate, so the current pair can be replaced by the next
// without a failed sign-in.
func (m *Middleware) publishNextKey(md *saml.EntityDescriptor) {
	next := m.rollover.nextCert
	if next == nil {
		return
	}
	_, nextRSA := next.PublicKey.(*rsa.PublicKey)
	for i := range md.SPSSODescriptors {
		d := &md.SPSSODescriptors[i]
		var added []saml.KeyDescriptor
		for _, kd := range d.KeyDescriptors {
			if kd.Use == "encryption" && !nextRSA {
				continue
			}
			nkd := kd
			nkd.EncryptionMethods = append([]saml.EncryptionMethod(nil), kd.EncryptionMethods...)
			nkd.KeyInfo = saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
				{Data: base64.StdEncoding.EncodeToString(next.Raw)},
			}}}
			added = append(added, nkd)
		}
		if !hasEncryption(d.KeyDescriptors) && nextRSA {
			// The current key cannot decrypt (an ECDSA key), the next
			// one can: offer it for encryption.
			added = append(added, saml.KeyDescriptor{Use: "encryption", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
				X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(next.Raw)}},
			}}})
		}
		d.KeyDescriptors = append(d.KeyDescriptors, added...)
	}
}

func hasEncryption(kds []saml.KeyDescriptor) bool {
	for _, kd := range kds {
		if kd.Use == "encryption" {
			return true
		}
	}
	return false
}
