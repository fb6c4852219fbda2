package memstore_test

import (
	"testing"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) userstore.Store { return memstore.New() })
}
