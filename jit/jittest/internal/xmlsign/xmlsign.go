// Package xmlsign makes the enveloped XML signatures of the jittest IdP and
// of its forge package, placed where the SAML schema wants them.
package xmlsign

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Context returns a signing context for key and cert with exclusive
// canonicalization and the signature method given by its URI.
func Context(key *rsa.PrivateKey, cert *x509.Certificate, method string) (*dsig.SigningContext, error) {
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		return nil, err
	}
	return ctx, nil
}

// Enveloped returns a copy of el with an enveloped signature made with ctx,
// placed right after el's Issuer (or first, if el has no Issuer).
func Enveloped(ctx *dsig.SigningContext, el *etree.Element) (*etree.Element, error) {
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", el.Tag, err)
	}
	// SignEnveloped appends the Signature without setting its parent, so
	// detach it by hand; InsertChildAt then adopts it properly.
	sig := signed.Child[len(signed.Child)-1]
	signed.Child = signed.Child[:len(signed.Child)-1]
	at := 0
	for i, tok := range signed.Child {
		if child, ok := tok.(*etree.Element); ok && child.Tag == "Issuer" {
			at = i + 1
			break
		}
	}
	signed.InsertChildAt(at, sig)
	return signed, nil
}
