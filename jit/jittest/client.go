package jittest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// maxPageSize bounds the pages Respond reads.
const maxPageSize = 4 << 20

// Form is a SAML HTTP-POST binding form as a browser would submit it to the
// service provider's assertion consumer service.
type Form struct {
	// ACS is the URL the form is posted to.
	ACS string
	// SAMLResponse is the base64-encoded Response XML.
	SAMLResponse string
	// RelayState is posted alongside when not empty.
	RelayState string
	// Origin, if not empty, is sent as the Origin header, as a browser does
	// when it submits a form from the IdP's page. Forms built by the IdP set
	// it to [IdP.URL], so that an application's cross-origin protection
	// meets the ACS request a browser would send.
	Origin string
}

// Post submits the form with c (nil means http.DefaultClient) as an
// application/x-www-form-urlencoded POST to f.ACS. The client's
// CheckRedirect decides whether the ACS's redirects are followed.
func (f Form) Post(ctx context.Context, c *http.Client) (*http.Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	vals := url.Values{"SAMLResponse": {f.SAMLResponse}}
	if f.RelayState != "" {
		vals.Set("RelayState", f.RelayState)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.ACS, strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if f.Origin != "" {
		req.Header.Set("Origin", f.Origin)
	}
	return c.Do(req)
}

// XML returns the decoded Response XML.
func (f Form) XML() ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(f.SAMLResponse)
	if err != nil {
		return nil, fmt.Errorf("jittest: decoding SAMLResponse: %w", err)
	}
	return b, nil
}

// Respond signs in the user with the given NameID the way a browser would,
// up to the point of posting the response. With c, which must have a cookie
// jar, it GETs loginURL and follows redirects, ignoring c's CheckRedirect,
// until the next request would reach this IdP's SSO endpoint; it also
// follows an SP page that submits the AuthnRequest with the HTTP-POST
// binding. It then sends that request with "user" set to nameID, and returns
// the auto-submitting form of the IdP's answer without posting it.
// loginURL may also be an HTTP-Redirect binding URL at the SSO endpoint.
func (p *IdP) Respond(ctx context.Context, c *http.Client, loginURL, nameID string) (Form, error) {
	if c == nil || c.Jar == nil {
		return Form{}, errors.New("jittest: Respond needs an http.Client with a cookie jar")
	}
	req, err := p.ssoRequest(ctx, c, loginURL, nameID)
	if err != nil {
		return Form{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Form{}, fmt.Errorf("jittest: sending the AuthnRequest to the IdP: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageSize))
	if err != nil {
		return Form{}, fmt.Errorf("jittest: reading the IdP's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Form{}, fmt.Errorf("jittest: the IdP answered %s: %s", resp.Status, snippet(body))
	}
	for _, f := range parseForms(body) {
		samlResponse, ok := f.get("SAMLResponse")
		if !ok {
			continue
		}
		relayState, _ := f.get("RelayState")
		acs, err := req.URL.Parse(f.action)
		if err != nil {
			return Form{}, fmt.Errorf("jittest: bad form action %q: %w", f.action, err)
		}
		return Form{ACS: acs.String(), SAMLResponse: samlResponse, RelayState: relayState, Origin: p.URL()}, nil
	}
	return Form{}, fmt.Errorf("jittest: no SAMLResponse form in the IdP's answer: %s", snippet(body))
}

// SignIn is [IdP.Respond] followed by [Form.Post]: it returns the ACS's
// response as c's redirect policy leaves it. The caller closes its body.
func (p *IdP) SignIn(ctx context.Context, c *http.Client, loginURL, nameID string) (*http.Response, error) {
	f, err := p.Respond(ctx, c, loginURL, nameID)
	if err != nil {
		return nil, err
	}
	return f.Post(ctx, c)
}

// ssoRequest walks from loginURL to the SSO endpoint and returns the request
// to send there, with user=nameID added.
func (p *IdP) ssoRequest(ctx context.Context, c *http.Client, loginURL, nameID string) (*http.Request, error) {
	u, err := url.Parse(loginURL)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	if p.isSSO(u) {
		return p.ssoGet(ctx, u, nameID)
	}

	var reached *url.URL
	walker := *c
	walker.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if p.isSSO(req.URL) {
			reached = req.URL
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loginURL, nil)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	resp, err := walker.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jittest: following %s to the IdP: %w", loginURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageSize))
	if err != nil {
		return nil, fmt.Errorf("jittest: following %s to the IdP: %w", loginURL, err)
	}
	if reached != nil {
		return p.ssoGet(ctx, reached, nameID)
	}

	// An SP using the HTTP-POST binding answers with a page whose form
	// carries the AuthnRequest to the SSO endpoint.
	if resp.StatusCode == http.StatusOK {
		for _, f := range parseForms(body) {
			action, err := resp.Request.URL.Parse(f.action)
			if err != nil || !p.isSSO(action) || !strings.EqualFold(f.method, http.MethodPost) {
				continue
			}
			if _, ok := f.get("SAMLRequest"); !ok {
				continue
			}
			vals := url.Values{}
			for _, in := range f.inputs {
				vals.Add(in.name, in.value)
			}
			vals.Set("user", nameID)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(vals.Encode()))
			if err != nil {
				return nil, fmt.Errorf("jittest: %w", err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", originOf(resp.Request.URL))
			return req, nil
		}
	}
	return nil, fmt.Errorf("jittest: %s did not lead to the IdP's SSO endpoint %s (it ended with %s at %s)",
		loginURL, p.SSOURL(), resp.Status, resp.Request.URL)
}

// ssoGet is the HTTP-Redirect binding request to u with user=nameID added.
func (p *IdP) ssoGet(ctx context.Context, u *url.URL, nameID string) (*http.Request, error) {
	u2 := *u
	u2.RawQuery = appendUserParam(u.RawQuery, nameID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u2.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("jittest: %w", err)
	}
	return req, nil
}

// isSSO reports whether u addresses this IdP's SSO endpoint.
func (p *IdP) isSSO(u *url.URL) bool {
	return u.Scheme == p.ssoURL.Scheme && u.Host == p.ssoURL.Host && u.Path == p.ssoURL.Path
}

func originOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

func snippet(b []byte) string {
	const n = 512
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// The IdP's own forms come from postFormTemplate, and SP forms from similar
// generated markup; this small parser is enough for both, without a full
// HTML parser.
var (
	formPattern  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form\s*>`)
	inputPattern = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrPattern  = regexp.MustCompile(`(?s)([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
)

type htmlForm struct {
	method, action string
	inputs         []htmlInput
}

type htmlInput struct{ name, value string }

func (f htmlForm) get(name string) (string, bool) {
	for _, in := range f.inputs {
		if in.name == name {
			return in.value, true
		}
	}
	return "", false
}

// parseForms returns the forms in page with the inputs a browser would
// submit without a click: named inputs other than buttons.
func parseForms(page []byte) []htmlForm {
	var forms []htmlForm
	for _, m := range formPattern.FindAllSubmatch(page, -1) {
		attrs := parseAttrs(m[1])
		f := htmlForm{method: attrs["method"], action: attrs["action"]}
		if f.method == "" {
			f.method = http.MethodGet
		}
		for _, im := range inputPattern.FindAllSubmatch(m[2], -1) {
			in := parseAttrs(im[1])
			switch strings.ToLower(in["type"]) {
			case "submit", "button", "image", "reset":
				continue
			}
			if in["name"] == "" {
				continue
			}
			f.inputs = append(f.inputs, htmlInput{name: in["name"], value: in["value"]})
		}
		forms = append(forms, f)
	}
	return forms
}

func parseAttrs(b []byte) map[string]string {
	attrs := make(map[string]string)
	for _, m := range attrPattern.FindAllSubmatch(b, -1) {
		name := strings.ToLower(string(m[1]))
		if _, dup := attrs[name]; dup {
			continue // as in HTML, the first occurrence wins
		}
		var v []byte
		for _, g := range m[2:] {
			if g != nil {
				v = g
				break
			}
		}
		attrs[name] = html.UnescapeString(string(v))
	}
	return attrs
}
