<?php
// The hosted IdP for example/interop_test.go (SimpleSAMLphp 1.19).

$metadata['__DYNAMIC:1__'] = [
    // Entity ID __DYNAMIC:1__ becomes BASEURL/saml2/idp/metadata.php.
    'host' => '__DEFAULT__',
    'privatekey' => {{php .KeyFile}},
    'certificate' => {{php .CertFile}},
    'auth' => 'example-userpass',

    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    // Logout messages are signed, and must be (SAML 2.0 Profiles §4.4.4.1).
    'sign.logout' => true,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',

    'authproc' => [
        // An opaque persistent NameID: sha1 over the secret salt, both entity
        // IDs and uid. Runs before the attributes are renamed.
        10 => [
            'class' => 'saml:PersistentNameID',
            'attribute' => 'uid',
            'NameQualifier' => false,
            'SPNameQualifier' => true,
        ],
        // LDAP names to urn:oid: names (SAML V2.0 X.500/LDAP attribute profile).
        90 => [
            'class' => 'core:AttributeMap',
            'name2oid',
        ],
    ],
];
