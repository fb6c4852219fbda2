// Package jittest is a real, in-process SAML 2.0 identity provider for tests.
//
// An [IdP] listens on 127.0.0.1 (an [net/http/httptest.Server]), publishes its
// metadata, and answers AuthnRequests at its SSO endpoint (HTTP-Redirect or
// HTTP-POST binding) with an auto-submitting HTML form that POSTs a signed
// SAML Response to the service provider's ACS URL, the way Microsoft Entra ID
// and other IdPs do. It signs with an RSA-2048 key and a self-signed
// certificate generated when it is constructed, so no key material is ever
// committed. It trusts every service provider: no SP metadata is needed.
// To test what depends on the SP's keys (an SP key rollover), give it an
// SP's certificates with [IdP.SetSPKeys] ([SPKeysFromMetadata] reads them
// from SP metadata): it then refuses AuthnRequests not signed by one of
// them and encrypts assertions to the SP.
//
// Tests forge hostile responses with three hooks, set on an [IdP] case by
// case: [IdP.SetMutateAssertion] edits the assertion struct before it is
// signed, [IdP.SetMutateAssertionElement] edits the rendered assertion XML
// before it is signed, and [IdP.SetMutateResponse] edits the complete,
// signed Response XML (sign, then mutate: strip or move signatures, wrap,
// duplicate assertions, change namespaces). The
// [github.com/samljit/samljit/jit/jittest/forge] package holds ready-made
// forgeries for that last hook: XML Signature Wrapping, duplicate IDs,
// signatures by other keys, and encryption with chosen algorithms.
//
// A test drives a browser-like sign-in with [IdP.SignIn]. The application
// under test needs its RootURL before it starts, and httptest picks the
// port: take the address from an unstarted server, then build the handler
// (ExampleNew shows the whole of it):
//
//	func TestSignIn(t *testing.T) {
//		idp := jittest.New(t)
//		idp.AddUser(jittest.User{NameID: "alice", Attributes: map[string][]string{claims.OIDMail: {"alice@example.com"}}})
//
//		app := httptest.NewUnstartedServer(nil) // the port is chosen here
//		key, cert, err := jittest.GenerateKeyPair()
//		require.NoError(t, err)
//		mw, err := jit.New(t.Context(), jit.Options{
//			RootURL: "http://" + app.Listener.Addr().String(),
//			Key: key, Certificate: cert, Store: memstore.New(),
//			SessionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
//			Connections: []jit.Connection{{IDPMetadata: idp.Metadata()}},
//		})
//		require.NoError(t, err)
//		t.Cleanup(mw.Close)
//		app.Config.Handler = newHandler(mw) // mounts mw at mw.Prefix()+"/"
//		app.Start()
//		t.Cleanup(app.Close)
//
//		jar, _ := cookiejar.New(nil)
//		resp, err := idp.SignIn(t.Context(), &http.Client{Jar: jar}, app.URL+"/saml/login", "alice")
//		// ... assert on resp: the page after sign-in
//	}
//
// [IdP.Respond] stops before posting, returning the [Form] so that the test
// can alter it or post it twice; [IdP.ResponseFor] and [IdP.Unsolicited]
// build responses without any HTTP.
//
// Single Logout: the IdP keeps a session per response ([IdP.Sessions]). Given
// the service provider's metadata ([IdP.AddServiceProvider]), it answers the
// SP's signed LogoutRequest at [IdP.SLOURL] by ending those sessions, and
// [IdP.LogoutRequestFor] builds an IdP-initiated LogoutRequest (or a forgery
// of one) whose signed answer it checks ([IdP.LogoutResult]). Its metadata
// lists the SingleLogoutService with [Options.SingleLogout].
//
// The core ([NewServer] and the methods of [IdP]) needs no *testing.T, so a
// development-only program, such as an example application, can run it as a
// local IdP. [New] is the convenience wrapper for tests. Never use this
// package in production: it signs in anyone who asks.
package jittest
