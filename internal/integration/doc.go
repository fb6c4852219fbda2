// Package integration holds tests that join packages which must not
// import each other: a SCIM endpoint (package scim, which never imports
// jit) and SAML sign-ins (package jit) over one store, through real HTTP
// and a real SAML IdP (jit/jittest). It has no code of its own.
package integration
