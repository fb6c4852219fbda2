package jit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// TestMetadataOfNoProviderSaysSo: an EntityDescriptor that describes
// neither an identity provider nor a service provider is refused as such,
// not mistaken for a service provider's metadata.
func TestMetadataOfNoProviderSaysSo(t *testing.T) {
	_, err := jit.ParseIDPMetadata([]byte(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://nobody.example/"/>`))
	require.ErrorIs(t, err, jit.ErrNotIDPMetadata)
	assert.ErrorContains(t, err, `entityID "https://nobody.example/" describes no identity provider`)
	assert.NotContains(t, err.Error(), "service provider")
}
