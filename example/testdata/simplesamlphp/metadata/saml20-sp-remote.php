<?php
// The samljit example app as seen by the SimpleSAMLphp IdP in
// example/interop_test.go (SimpleSAMLphp 1.19).

$metadata[{{php .SPEntityID}}] = [
    'AssertionConsumerService' => [
        [
            'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
            'Location' => {{php .ACS}},
            'index' => 0,
        ],
    ],
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'saml20.sign.assertion' => true,
    'saml20.sign.response' => true,
    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'assertion.encryption' => false,
{{- if .SLO}}
    // Single Logout: the app's endpoint, and its certificate, which checks
    // the signatures of its LogoutRequests and LogoutResponses.
    'SingleLogoutService' => [
        [
            'Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
            'Location' => {{php .SLO}},
        ],
    ],
    'certData' => {{php .SPCertData}},
    'validate.logout' => true,
    'sign.logout' => true,
{{- end}}
];
