package storetest_test

import (
	"testing"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/storetest"
)

// storeOnly has the two methods of userstore.Store and nothing else,
// whatever the store it wraps implements.
type storeOnly struct{ userstore.Store }

// withoutAdmin is a store with every optional interface but Admin, so
// the checks that need an Admin are skipped in every suite.
type withoutAdmin struct {
	userstore.Store
	userstore.ReplayCache
	userstore.Linker
	userstore.SignInStore
	userstore.Sessions
}

// TestStoreOnly runs the suite on a store that implements the plain
// Store contract only, as a third party's store may: the Store suite
// must run on it alone.
func TestStoreOnly(t *testing.T) {
	var s userstore.Store = storeOnly{memstore.New()}
	for name, ok := range map[string]bool{
		"ReplayCache": implements[userstore.ReplayCache](s),
		"Admin":       implements[userstore.Admin](s),
		"Linker":      implements[userstore.Linker](s),
		"SignInStore": implements[userstore.SignInStore](s),
		"Sessions":    implements[userstore.Sessions](s),
	} {
		if ok {
			t.Fatalf("storeOnly implements userstore.%s", name)
		}
	}
	storetest.Run(t, func(*testing.T) userstore.Store { return storeOnly{memstore.New()} })
}

// TestWithoutAdmin runs the suite on a store that has every optional
// interface but Admin, so each suite runs with the checks that need an
// Admin skipped.
func TestWithoutAdmin(t *testing.T) {
	newStore := func(*testing.T) userstore.Store {
		m := memstore.New()
		return withoutAdmin{m, m, m, m, m}
	}
	if implements[userstore.Admin](newStore(t)) {
		t.Fatal("withoutAdmin implements userstore.Admin")
	}
	storetest.Run(t, newStore)
}

// implements reports whether s implements I.
func implements[I any](s userstore.Store) bool {
	_, ok := s.(I)
	return ok
}
