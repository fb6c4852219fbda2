package jit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/memstore"
)

// A customer's connection is added while the application runs, and found
// from its people's email domain; a connection whose metadata cannot be
// served is refused before it is stored.
func ExampleMiddleware_PutConnection() {
	ctx := context.Background()
	idp, err := jittest.NewServer(jittest.Options{EntityID: "https://idp.contoso.example/"})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	key, cert, err := jittest.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	mw, err := jit.New(ctx, jit.Options{
		RootURL: "https://app.example.com", Key: key, Certificate: cert,
		Store: memstore.New(), SessionKeys: [][]byte{bytes.Repeat([]byte{1}, 32)},
		ConnectionStore: memstore.NewConnections(),
	})
	if err != nil {
		panic(err)
	}
	defer mw.Close()

	_, err = mw.PutConnection(ctx, userstore.Connection{
		Name: "contoso", IDPMetadata: idp.Metadata(), Preset: "generic", Enabled: true,
		Domains: []userstore.Domain{{Name: "contoso.example", Verified: true}},
	})
	fmt.Println(err)
	login, _ := mw.LoginURLForEmail("ada@contoso.example", "/reports")
	fmt.Println(login)
	_, err = mw.LoginURLForEmail("ada@fabrikam.example", "/")
	fmt.Println(errors.Is(err, jit.ErrUnknownDomain))

	_, err = mw.PutConnection(ctx, userstore.Connection{Name: "broken", IDPMetadata: []byte("<html></html>"), Enabled: true})
	fmt.Println(errors.Is(err, userstore.ErrInvalidConnection))
	fmt.Println(mw.Connections())
	// Output:
	// <nil>
	// /saml/contoso/login?return_to=%2Freports
	// true
	// true
	// [contoso]
}

// The DNS record a customer publishes to prove they control a domain.
func ExampleDomainVerificationRecord() {
	name, value := jit.DomainVerificationRecord("contoso.example", "3q2+7wAAAAAAAAAAAAAAAA")
	fmt.Println(name)
	fmt.Println(value)
	// Output:
	// _samljit-verification.contoso.example
	// samljit-verification=3q2+7wAAAAAAAAAAAAAAAA
}
