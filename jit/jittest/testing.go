package jittest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"testing"
	"time"
)

// New starts an IdP for the test t with [Options] edited by opts, and stops
// it when the test ends. It fails the test if the IdP cannot start.
//
// Unless opts set Key and Certificate, the IdP signs with a key reused
// from an IdP of a test that has ended, or a new one when there is none,
// and a certificate of its own: IdPs open at the same time never share a
// key, and a suite of many tests does not spend most of its time
// generating RSA keys. [NewServer] always generates a new key.
//
//	idp := jittest.New(t, func(o *jittest.Options) { o.SignResponse = true })
func New(t testing.TB, opts ...func(*Options)) *IdP {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(&o)
	}
	var pooled *rsa.PrivateKey
	if o.Key == nil && o.Certificate == nil {
		now := time.Now
		if o.Now != nil {
			now = o.Now
		}
		var err error
		if pooled, err = keys.take(); err == nil {
			o.Key = pooled
			o.Certificate, err = selfSigned(pooled, now())
		}
		if err != nil {
			keys.give(pooled)
			t.Fatalf("jittest.New: %v", err)
		}
	}
	p, err := NewServer(o)
	if err != nil {
		keys.give(pooled)
		t.Fatalf("jittest.New: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		keys.give(pooled)
	})
	return p
}

// keys is the pool of the signing keys of the IdPs New starts. Generating
// an RSA key takes about a tenth of a second, most of the time of a test
// that signs in once; a key from the pool takes none. No two IdPs that
// are open at once share a key, so a test in which one IdP forges another's
// response still sees a foreign signature: a key returns to the pool only
// when its IdP's test has ended. Each IdP gets a certificate of its own.
var keys keyPool

// keyPool is a free list of RSA keys.
type keyPool struct {
	mu   sync.Mutex
	free []*rsa.PrivateKey
}

// take returns a key no open IdP holds, generating one when the pool is
// empty.
func (k *keyPool) take() (*rsa.PrivateKey, error) {
	k.mu.Lock()
	if n := len(k.free); n > 0 {
		key := k.free[n-1]
		k.free = k.free[:n-1]
		k.mu.Unlock()
		return key, nil
	}
	k.mu.Unlock()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

// give returns key to the pool; a nil key is ignored.
func (k *keyPool) give(key *rsa.PrivateKey) {
	if key == nil {
		return
	}
	k.mu.Lock()
	k.free = append(k.free, key)
	k.mu.Unlock()
}
