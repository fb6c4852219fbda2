<?php
// SimpleSAMLphp 1.19 configuration for example/interop_test.go.
// Rendered with Go text/template; the php template function writes a
// single-quoted PHP string literal. Rendered into t.TempDir() at test time.

$config = [
    // Full URL: SimpleSAMLphp builds every endpoint (SSO, metadata, the login
    // form's own URL) from it instead of guessing from the request.
    'baseurlpath' => {{php .BaseURL}},
    'certdir' => {{php .CertDir}},
    'metadatadir' => {{php .MetadataDir}},
    'tempdir' => {{php .TempDir}},
    'datadir' => {{php .TempDir}},
    'loggingdir' => {{php .TempDir}},
    // The package keeps its attribute maps outside the code base
    // (/etc/simplesamlphp/attributemap on Debian).
    'attributenamemapdir' => {{php .AttributeMapDir}},

    'secretsalt' => {{php .SecretSalt}},
    'auth.adminpassword' => {{php .AdminPassword}},
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'technicalcontact_name' => 'samljit interop test',
    'technicalcontact_email' => 'interop@example.invalid',
    'timezone' => 'UTC',

    'enable.saml20-idp' => true,
    // 1.19: modules without a default-enable file (exampleauth) must be
    // enabled here; core and saml are default-enabled, listed for clarity.
    'module.enable' => [
        'core' => true,
        'saml' => true,
        'exampleauth' => true,
        'admin' => true,
    ],

    'logging.handler' => 'stderr',
    'logging.level' => SimpleSAML\Logger::DEBUG,
    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],
    'showerrors' => true,
    'errorreporting' => false,
    'production' => false,

    'store.type' => 'phpsession',
    'session.phpsession.savepath' => {{php .SessionDir}},
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.cookie.name' => 'SimpleSAMLSessionID',
    'session.cookie.path' => '/',
    // Plain http on 127.0.0.1: a Secure cookie would never come back.
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'language.cookie.secure' => false,
    'language.cookie.samesite' => null,

    'metadata.sources' => [
        ['type' => 'flatfile'],
    ],
    'authproc.idp' => [],
];
