package memstore_test

import (
	"testing"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
	"github.com/samljit/samljit/userstore/storetest"
)

// TestConnectionsConformance runs the connection store suite on memstore.
func TestConnectionsConformance(t *testing.T) {
	storetest.RunConnections(t, func(*testing.T) userstore.ConnectionAdmin { return memstore.NewConnections() })
}
