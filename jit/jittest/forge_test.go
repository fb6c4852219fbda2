package jittest_test

import (
	"crypto/x509"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
)

func forgeResponse(t *testing.T, opts ...func(*jittest.Options)) *etree.Element {
	t.Helper()
	idp := jittest.New(t, opts...)
	idp.AddUser(jittest.User{NameID: "p-1"})
	f, err := idp.ResponseFor(jittest.Request{ID: "id-1", SPEntityID: "https://sp.example/m", ACSURL: "https://sp.example/acs"}, "p-1")
	require.NoError(t, err)
	raw, err := f.XML()
	require.NoError(t, err)
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(raw))
	return doc.Root()
}

func TestSignVerifiesWithTheGivenCertificate(t *testing.T) {
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	a := forgeResponse(t).FindElement("./Assertion")
	signed, err := jittest.Sign(a, key, cert)
	require.NoError(t, err)
	assert.Len(t, signed.FindElements("./Signature"), 1, "the old signature is replaced")
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	_, err = vc.Validate(signed)
	require.NoError(t, err)
}

func TestWrapNeedsASignature(t *testing.T) {
	r := forgeResponse(t, func(o *jittest.Options) { o.UnsignedAssertion = true })
	for x := jittest.XSW1; x <= jittest.XSW8; x++ {
		assert.Error(t, jittest.Wrap(r.Copy(), x, nil), x.String())
	}
	r = forgeResponse(t)
	for x := jittest.XSW3; x <= jittest.XSW8; x++ {
		w := r.Copy()
		require.NoError(t, jittest.Wrap(w, x, nil), x.String())
		assert.Len(t, w.FindElements("//Assertion"), 2, x.String())
	}
}

func TestEncryptAssertionDecrypts(t *testing.T) {
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	for _, enc := range []jittest.Encryption{{}, {Block: jittest.BlockAES256CBC}, {Block: jittest.BlockAES128CBC}} {
		r := forgeResponse(t)
		require.NoError(t, jittest.EncryptAssertion(r, cert, enc))
		assert.Nil(t, r.FindElement("./Assertion"))
		ed := r.FindElement("./EncryptedAssertion/EncryptedData")
		require.NotNil(t, ed)
		plain, err := xmlenc.Decrypt(key, ed)
		require.NoError(t, err)
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(plain))
		assert.Equal(t, "Assertion", doc.Root().Tag)
		assert.Equal(t, "p-1", doc.Root().FindElement("./Subject/NameID").Text())
	}
}
