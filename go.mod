module github.com/samljit/samljit

go 1.24

require (
	github.com/beevik/etree v1.8.1 // indirect
	github.com/crewjam/saml v0.5.1 // indirect
	github.com/gorilla/securecookie v1.1.2 // indirect
	github.com/gorilla/sessions v1.4.0 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/mattermost/xml-roundtrip-validator v0.1.0 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/russellhaering/goxmldsig v1.6.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/crypto v0.33.0 // indirect
)
