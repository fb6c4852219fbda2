package entragraph

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"
)

// TestTokenCacheBound: the token cache grows to maxTenants tenants; the
// next tenant drops those holding no valid token, and keeps those that do.
func TestTokenCacheBound(t *testing.T) {
	var c tokenCache
	valid := &oauth2.Token{AccessToken: "t", Expiry: time.Now().Add(time.Hour)}
	for i := range maxTenants {
		e := c.entry(fmt.Sprint("tenant-", i))
		if i%2 == 0 {
			e.tok = valid
		}
	}
	assert.Len(t, c.m, maxTenants, "none dropped up to the bound")
	c.entry("one-more")
	assert.Len(t, c.m, maxTenants/2+1, "past it, the tenants without a valid token are dropped")
	assert.Contains(t, c.m, "tenant-0")
	assert.NotContains(t, c.m, "tenant-1")
	assert.Contains(t, c.m, "one-more")
}
