package jittest

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
)

// maxRequestSize bounds an AuthnRequest, compressed or not, and the SSO
// request body.
const maxRequestSize = 256 << 10

// readGetOrPost parses the query and form of a GET or POST of up to
// maxRequestSize bytes. Any other request, or one that does not parse, is
// answered with an error, and it returns false.
func readGetOrPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestSize)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "jittest: cannot parse form: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// serveSSO answers an AuthnRequest sent with the HTTP-Redirect binding (GET)
// or the HTTP-POST binding (POST). The parameter "user" (query or form)
// names the NameID to sign in; without it, the IdP lists its users.
func (p *IdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	if !readGetOrPost(w, r) {
		return
	}
	var (
		raw        []byte
		relayState string
		err        error
	)
	if r.Method == http.MethodGet {
		raw, err = decodeRedirectBinding(r.URL.Query().Get("SAMLRequest"))
		relayState = r.URL.Query().Get("RelayState")
	} else {
		raw, err = base64.StdEncoding.DecodeString(r.PostForm.Get("SAMLRequest"))
		relayState = r.PostForm.Get("RelayState")
	}
	if err != nil {
		http.Error(w, "jittest: cannot decode SAMLRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	authn, err := p.parseAuthnRequest(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	if err := p.checkRequestSignature(r, authn.Issuer.Value); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	nameID := r.Form.Get("user")
	if nameID == "" {
		p.serveUserList(w, r)
		return
	}
	form, err := p.ResponseFor(Request{
		ID:         authn.ID,
		SPEntityID: authn.Issuer.Value,
		ACSURL:     authn.AssertionConsumerServiceURL,
		RelayState: relayState,
	}, nameID)
	if errors.Is(err, ErrUnknownUser) {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := postFormTemplate.Execute(&buf, form); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// decodeRedirectBinding undoes the HTTP-Redirect binding's encoding: base64,
// then raw DEFLATE, within maxRequestSize.
func decodeRedirectBinding(s string) ([]byte, error) {
	compressed, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	fr := flate.NewReader(bytes.NewReader(compressed))
	defer func() { _ = fr.Close() }()
	raw, err := io.ReadAll(io.LimitReader(fr, maxRequestSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxRequestSize {
		return nil, errors.New("request too large")
	}
	return raw, nil
}

// parseAuthnRequest checks that raw is an AuthnRequest this IdP can answer.
// A test IdP trusts every SP, so the ACS URL comes from the request itself.
func (p *IdP) parseAuthnRequest(raw []byte) (*saml.AuthnRequest, error) {
	if err := xrv.Validate(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("jittest: invalid AuthnRequest XML: %w", err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("jittest: cannot parse AuthnRequest: %w", err)
	}
	switch {
	case req.ID == "":
		return nil, errors.New("jittest: AuthnRequest has no ID")
	case req.Version != "2.0":
		return nil, fmt.Errorf("jittest: AuthnRequest Version is %q, not 2.0", req.Version)
	case req.Issuer == nil || req.Issuer.Value == "":
		return nil, errors.New("jittest: AuthnRequest has no Issuer")
	case req.Destination != "" && req.Destination != p.SSOURL():
		return nil, fmt.Errorf("jittest: AuthnRequest Destination is %q, not %q", req.Destination, p.SSOURL())
	case req.AssertionConsumerServiceURL == "":
		return nil, errors.New("jittest: AuthnRequest has no AssertionConsumerServiceURL (jittest has no SP metadata to look one up in)")
	case req.ProtocolBinding != "" && req.ProtocolBinding != saml.HTTPPostBinding:
		return nil, fmt.Errorf("jittest: AuthnRequest ProtocolBinding %q is not supported, only HTTP-POST", req.ProtocolBinding)
	}
	if u, err := url.Parse(req.AssertionConsumerServiceURL); err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("jittest: AuthnRequest AssertionConsumerServiceURL %q is not an absolute http(s) URL", req.AssertionConsumerServiceURL)
	}
	return &req, nil
}

// serveUserList renders a page on which a person picks the user to sign in
// as; each choice repeats the SSO request with "user" added. The page is
// [Options.UserListTemplate] or, by default, a bare list of NameIDs.
func (p *IdP) serveUserList(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	users := make([]User, 0, len(p.users))
	for _, u := range p.users {
		users = append(users, u.clone())
	}
	p.mu.Unlock()
	slices.SortFunc(users, func(a, b User) int { return strings.Compare(a.NameID, b.NameID) })

	data := UserList{Post: r.Method == http.MethodPost, Action: ssoPath}
	for _, u := range users {
		data.Users = append(data.Users, UserChoice{
			User:   u,
			NameID: u.NameID,
			Href:   "?" + appendUserParam(r.URL.RawQuery, u.NameID),
		})
	}
	if data.Post {
		data.SAMLRequest = r.PostForm.Get("SAMLRequest")
		data.RelayState = r.PostForm.Get("RelayState")
	}
	tmpl := userListTemplate
	if p.opts.UserListTemplate != nil {
		tmpl = p.opts.UserListTemplate
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// appendUserParam returns rawQuery with user=nameID appended, keeping the
// original parameters byte for byte.
func appendUserParam(rawQuery, nameID string) string {
	q := "user=" + url.QueryEscape(nameID)
	if rawQuery != "" {
		q = rawQuery + "&" + q
	}
	return q
}

// UserList is what [Options.UserListTemplate] is executed with: the users
// a person may pick, and how to send the pick back to the SSO endpoint.
//
// With the HTTP-Redirect binding (Post false), each [UserChoice.Href]
// repeats the request with "user" added. With the HTTP-POST binding (Post
// true), the page must POST a form to Action holding SAMLRequest,
// RelayState (when not empty) and "user" set to the chosen NameID.
type UserList struct {
	// Post is true when the AuthnRequest came with the HTTP-POST binding.
	Post bool
	// Action is the SSO endpoint's path, the form action when Post is true.
	Action string
	// SAMLRequest and RelayState are the posted values to send back when
	// Post is true.
	SAMLRequest string
	RelayState  string
	// Users are the IdP's users, sorted by NameID.
	Users []UserChoice
}

// UserChoice is one user on the [UserList] page.
type UserChoice struct {
	// User is a copy of the IdP's user, attributes included.
	User User
	// NameID is User.NameID, the value of the "user" parameter.
	NameID string
	// Href is the relative link that signs in as this user with the
	// HTTP-Redirect binding.
	Href string
}

var userListTemplate = template.Must(template.New("users").Parse(strings.TrimSpace(`
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>jittest IdP: sign in</title></head>
<body>
<h1>jittest IdP: sign in as</h1>
{{- if not .Users}}
<p>No users. Add some with AddUser.</p>
{{- else if .Post}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">
{{- end}}
<ul>
{{- range .Users}}
<li><button type="submit" name="user" value="{{.NameID}}">{{.NameID}}</button></li>
{{- end}}
</ul>
</form>
{{- else}}
<ul>
{{- range .Users}}
<li><a href="{{.Href}}">{{.NameID}}</a></li>
{{- end}}
</ul>
{{- end}}
</body></html>
`)))

// postFormTemplate is the HTTP-POST binding page. Respond parses it with
// formPattern and inputPattern: keep them in step.
var postFormTemplate = template.Must(template.New("post").Parse(strings.TrimSpace(`
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>jittest IdP: continue</title></head>
<body>
<form method="post" action="{{.ACS}}">
<input type="hidden" name="SAMLResponse" value="{{.SAMLResponse}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">
{{- end}}
<noscript><button type="submit">Continue</button></noscript>
</form>
<script>document.forms[0].submit();</script>
</body></html>
`)))
