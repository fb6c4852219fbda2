package jit

import (
	"crypto/rsa"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// checkDecrypted decrypts a copy of an EncryptedAssertion whose methods
// checkEncryptionMethods allowed, with the first of keys that opens it, and
// checks the plaintext as checkResponse checks a plain assertion. It runs
// only after crewjam has accepted the response, so that a forged response
// never gets a decryption from this layer. It reports whether a signature
// inside used SHA-1.
func checkDecrypted(enc *etree.Element, keys []*rsa.PrivateKey, maxDepth int, allowSHA1 bool) (sha1 bool, err error) {
	plain, err := decryptAssertion(enc, keys, maxDepth)
	if err != nil {
		return false, err
	}
	n, sha1, err := checkTree(plain, allowSHA1)
	switch {
	case err != nil:
		return false, err
	case n != 1:
		return false, invalid("encrypted assertion holds %d assertions", n)
	}
	return sha1, checkAssertionTree(plain)
}

// checkEncryptionMethods checks an EncryptedAssertion's shape and
// algorithms without decrypting it: one EncryptedData with an allowed block
// cipher, one EncryptedKey with RSA-OAEP key transport.
func checkEncryptionMethods(enc *etree.Element) error {
	data, encKey, err := encryptedParts(enc)
	if err != nil {
		return err
	}
	if alg := encryptionMethod(data); !blockEncryptionMethods[alg] {
		return invalid("block encryption %q is not allowed", alg)
	}
	keys := data.FindElements("./KeyInfo/EncryptedKey")
	if encKey != nil {
		keys = append(keys, encKey)
	}
	if len(keys) != 1 {
		return invalid("encrypted assertion has %d EncryptedKey elements, want exactly one", len(keys))
	}
	if alg := encryptionMethod(keys[0]); !keyTransportMethods[alg] {
		return invalid("key transport %q is not allowed", alg)
	}
	return nil
}

// encryptedParts returns an EncryptedAssertion's EncryptedData and its
// sibling EncryptedKey (nil when the key is inside the data's KeyInfo).
func encryptedParts(enc *etree.Element) (data, encKey *etree.Element, err error) {
	for _, c := range enc.ChildElements() {
		switch {
		case is(c, nsXMLEnc, "EncryptedData"):
			if data != nil {
				return nil, nil, invalid("EncryptedAssertion has more than one EncryptedData")
			}
			data = c
		case is(c, nsXMLEnc, "EncryptedKey"):
			encKey = c
		default:
			return nil, nil, invalid("unexpected element {%s}%s in EncryptedAssertion", c.NamespaceURI(), c.Tag)
		}
	}
	if data == nil {
		return nil, nil, invalid("EncryptedAssertion has no EncryptedData")
	}
	return data, encKey, nil
}

// decryptAssertion decrypts a copy of an EncryptedAssertion the way crewjam
// does, trying each key in order (the SP key, then Options.DecryptionKeys),
// and parses the plaintext under the same bounds as the response.
func decryptAssertion(enc *etree.Element, keys []*rsa.PrivateKey, maxDepth int) (*etree.Element, error) {
	data, encKey, err := encryptedParts(enc)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, invalid("encrypted assertion but no SP RSA key")
	}
	var plain []byte
	for _, key := range keys {
		var k any = key
		if encKey != nil {
			if k, err = xmlenc.Decrypt(key, encKey); err != nil {
				continue
			}
		}
		if plain, err = xmlenc.Decrypt(k, data); err == nil {
			break
		}
	}
	if err != nil {
		return nil, invalid("cannot decrypt the assertion: %v", err)
	}
	return parseXML(plain, maxDepth)
}

func encryptionMethod(el *etree.Element) string {
	for _, c := range el.ChildElements() {
		if is(c, nsXMLEnc, "EncryptionMethod") {
			return c.SelectAttrValue("Algorithm", "")
		}
	}
	return ""
}
