package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
)

// TokenHash is the SHA-256 hash of a bearer token: what a handler keeps
// instead of the token.
type TokenHash [sha256.Size]byte

// HashToken returns the hash of token to configure a handler with.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// NewToken returns a new random bearer token: 256 bits in the URL-safe
// base64 alphabet without padding, to give the IdP, and its hash, to keep.
// Tokens are random and long, so an unsalted hash is enough: there is no
// dictionary to try.
func NewToken() (string, TokenHash, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", TokenHash{}, fmt.Errorf("scim: new token: %w", err)
	}
	t := base64.RawURLEncoding.EncodeToString(b[:])
	return t, HashToken(t), nil
}

// TokenSource gives a handler the hashes of the tokens it accepts. It is
// asked at every request, so a rotation needs no restart: an application
// that runs several instances keeps the hashes where every instance reads
// them, its database, with [TokenTable].
type TokenSource interface {
	// TokenHashes returns the hashes of the tokens valid now. An error
	// refuses the request (503), failing closed.
	TokenHashes(ctx context.Context) ([]TokenHash, error)
}

// Tokens is a [TokenSource] in memory: the hashes it was last given. The
// zero value accepts no token. Rotate by setting the new hash beside the
// old one, reconfiguring the IdP, then setting the new one alone.
type Tokens struct {
	mu     sync.RWMutex
	hashes []TokenHash
}

// NewTokens returns Tokens that accept the tokens with the given hashes.
func NewTokens(hashes ...TokenHash) *Tokens {
	t := &Tokens{}
	t.Set(hashes...)
	return t
}

// Set replaces the accepted hashes.
func (t *Tokens) Set(hashes ...TokenHash) {
	t.mu.Lock()
	t.hashes = slices.Clone(hashes)
	t.mu.Unlock()
}

// TokenHashes returns the accepted hashes.
func (t *Tokens) TokenHashes(context.Context) ([]TokenHash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Clone(t.hashes), nil
}

// tokenValid reports whether token's hash is one of hashes. It compares
// with every hash in constant time, whichever matches.
func tokenValid(token string, hashes []TokenHash) bool {
	h := HashToken(token)
	ok := 0
	for i := range hashes {
		ok |= subtle.ConstantTimeCompare(h[:], hashes[i][:])
	}
	return ok == 1 && token != ""
}
