package forge_test

import (
	"crypto/x509"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/jit/jittest/forge"
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
	signed, err := forge.Sign(a, key, cert)
	require.NoError(t, err)
	assert.Len(t, signed.FindElements("./Signature"), 1, "the old signature is replaced")
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	_, err = vc.Validate(signed)
	require.NoError(t, err)
}

func TestWrapNeedsASignature(t *testing.T) {
	r := forgeResponse(t, func(o *jittest.Options) { o.UnsignedAssertion = true })
	for x := forge.XSW1; x <= forge.XSW8; x++ {
		assert.Error(t, forge.Wrap(r.Copy(), x, nil), x.String())
	}
	r = forgeResponse(t)
	for x := forge.XSW3; x <= forge.XSW8; x++ {
		w := r.Copy()
		require.NoError(t, forge.Wrap(w, x, nil), x.String())
		assert.Len(t, w.FindElements("//Assertion"), 2, x.String())
	}
}

func TestEncryptAssertionDecrypts(t *testing.T) {
	key, cert, err := jittest.GenerateKeyPair()
	require.NoError(t, err)
	for _, enc := range []forge.Encryption{{}, {Block: forge.BlockAES256CBC}, {Block: forge.BlockAES128CBC}} {
		r := forgeResponse(t)
		require.NoError(t, forge.EncryptAssertion(r, cert, enc))
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
