package jit

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"

	"github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

// serviceProvider returns crewjam/saml's ServiceProvider for connection c,
// without IdP metadata. The middleware and Explain both build it here, so
// that they validate alike. Every check crewjam offers is on unless the
// connection opted out:
//   - Clock is the injected clock: crewjam judges every time (validity
//     windows and the IdP certificate's) against it, with no global;
//   - SHA-1 signatures are refused unless the connection allows them;
//   - unknown Conditions are refused (saml-core §2.5.1.1), as the
//     structural check also does;
//   - an AES-CBC encrypted assertion is decrypted only inside a Response
//     with a valid signature, unless the connection allows otherwise;
//   - InResponseTo is judged by validateRequestID, which ties a response
//     to this browser's request.
func (c *connection) serviceProvider(key crypto.Signer, cert *x509.Certificate, older []*rsa.PrivateKey, metadataURL, acsURL url.URL, now func() time.Time) saml.ServiceProvider {
	return saml.ServiceProvider{
		EntityID:                    c.entityID,
		Key:                         key,
		Certificate:                 cert,
		DecryptionKeys:              older,
		MetadataURL:                 metadataURL,
		AcsURL:                      acsURL,
		AllowIDPInitiated:           c.allowIDPInit,
		ValidateRequestID:           validateRequestID(c.allowIDPInit),
		LogoutBindings:              []string{saml.HTTPPostBinding},
		Clock:                       dsigClock(now),
		RejectSHA1Signatures:        !c.allowSHA1,
		RejectUnknownConditions:     true,
		RequireSignedResponseForCBC: !c.allowCBC,
	}
}

// decryptionKeys lists the keys that may decrypt an assertion, in the order
// crewjam tries them: the SP key, when it is an RSA key, then the older
// ones.
func decryptionKeys(key *rsa.PrivateKey, older []*rsa.PrivateKey) ([]*rsa.PrivateKey, error) {
	var keys []*rsa.PrivateKey
	if key != nil {
		keys = append(keys, key)
	}
	for i, k := range older {
		if k == nil {
			return nil, fmt.Errorf("jit: Options.DecryptionKeys[%d] is nil", i)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// dsigClock adapts an injected clock to the *dsig.Clock crewjam/saml's
// ServiceProvider.Clock takes. Only the reading of the time is replaced;
// crewjam neither sleeps nor sets timers while validating.
func dsigClock(now func() time.Time) *dsig.Clock {
	return dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: now})
}

// funcClock is a clockwork.Clock whose time is now().
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time                  { return c.now() }
func (c funcClock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c funcClock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }
