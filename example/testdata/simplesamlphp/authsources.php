<?php
// SimpleSAMLphp 1.19 authentication sources for example/interop_test.go.

$config = [
    'admin' => [
        'core:AdminPassword',
    ],

    'example-userpass' => [
        'exampleauth:UserPass',
        {{php .Username}} . ':' . {{php .Password}} => [
            'uid' => [{{php .UID}}],
            'mail' => [{{php .Mail}}],
            'givenName' => [{{php .GivenName}}],
            'sn' => [{{php .Surname}}],
            'displayName' => [{{php .DisplayName}}],
            'eduPersonPrincipalName' => [{{php .EPPN}}],
            'isMemberOf' => [{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{php $g}}{{end}}],
        ],
    ],
];
