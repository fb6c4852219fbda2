package jittest

import "testing"

// New starts an IdP for the test t with [Options] edited by opts, and stops
// it when the test ends. It fails the test if the IdP cannot start.
//
//	idp := jittest.New(t, func(o *jittest.Options) { o.SignResponse = true })
func New(t testing.TB, opts ...func(*Options)) *IdP {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(&o)
	}
	p, err := NewServer(o)
	if err != nil {
		t.Fatalf("jittest.New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}
