package userstore_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestLazyUserDecodeErrorFailsClosed checks that a LazyUser whose
// decoding fails returns no user, the same error at every call, and
// decodes once, also when called concurrently.
func TestLazyUserDecodeErrorFailsClosed(t *testing.T) {
	errDamaged := errors.New("damaged row")
	calls := 0
	head := userstore.User{ID: "u1", Key: userstore.Key{Issuer: "i", Subject: "s"}, Status: userstore.Suspended}
	lu := userstore.NewLazyUser(head, func(u *userstore.User) error {
		calls++
		u.Profile.Groups = []string{"half", "read"}
		return errDamaged
	})
	assert.Equal(t, "u1", lu.ID())
	assert.Equal(t, head.Key, lu.Key())
	assert.Equal(t, userstore.Suspended, lu.Status())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			u, err := lu.User()
			assert.ErrorIs(t, err, errDamaged)
			assert.Equal(t, userstore.User{}, u, "no user, not a half-decoded one")
		})
	}
	wg.Wait()
	require.Equal(t, 1, calls)
}

// TestLazyUserNilDecode checks that a LazyUser of a complete user
// returns it as it is.
func TestLazyUserNilDecode(t *testing.T) {
	u := userstore.User{ID: "u1", Profile: userstore.Profile{Groups: []string{}}, LocalRoles: []string{"auditor"}}
	got, err := userstore.NewLazyUser(u, nil).User()
	require.NoError(t, err)
	assert.Equal(t, u, got)
}
