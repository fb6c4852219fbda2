package jit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// ExplainRequest is what [Explain] judges: a captured response and the
// configuration of the connection it was sent to. Explain builds that
// connection with the constructor [New] uses: SPEntityID is
// [Connection.EntityID], ACSURL stands for the ACS URL New derives from
// [Options.RootURL], and the other fields are those of [Options] and
// [Connection] with the same names.
type ExplainRequest struct {
	// Response is the captured SAMLResponse: base64 as posted to the ACS,
	// the whole form body the browser posted (SAMLResponse=…&RelayState=…),
	// or the XML itself.
	Response []byte
	// IDPMetadata is the IdP's metadata XML; its signing certificates are
	// the only ones trusted.
	IDPMetadata []byte
	// SPEntityID is this SP's entity ID towards the IdP (the audience).
	SPEntityID string
	// ACSURL is the connection's assertion consumer service URL (the
	// Recipient and Destination).
	ACSURL string
	// Mapper derives the key and profile; default [claims.Generic].
	Mapper claims.Mapper
	// Policy is the connection's policy. Hooks, Prove and GroupResolver
	// are not called: Explain reports where they would be.
	Policy Policy
	// Now is the instant the response is judged at, by every check,
	// crewjam/saml's included (the IdP certificate's validity too); zero
	// means the current time.
	Now time.Time
	// ClockSkew is the tolerance on validity windows; default 180 s.
	ClockSkew time.Duration
	// AllowSHA1, AllowIDPInitiated and AllowCBCWithoutSignedResponse are
	// the connection's opt-ins (see [Connection]).
	AllowSHA1                     bool
	AllowIDPInitiated             bool
	AllowCBCWithoutSignedResponse bool
	// Key and Certificate are the SP's key pair, needed only to decrypt
	// an encrypted assertion; DecryptionKeys are older SP keys, as in
	// [Options].
	Key            crypto.Signer
	Certificate    *x509.Certificate
	DecryptionKeys []*rsa.PrivateKey
	// Store, when set, is read (never written) to tell a first sign-in
	// from a returning one and to find brownfield conflicts. Without it
	// the sign-in is judged as a first sign-in into an empty store. As
	// with New, a Brownfield policy that links accounts needs a store
	// that implements [userstore.Linker].
	Store userstore.Store
	// MaxResponseBytes and MaxXMLDepth are the input bounds; defaults as
	// in [Options].
	MaxResponseBytes, MaxXMLDepth int
}

// Explain judges a captured sign-in the way the middleware would, and
// writes nothing: it runs every check of the ACS, maps the claims, and
// works out what the connection's policy would do (create, update with a
// diff, link, or refuse and why) and which roles it would grant and remove.
// It is how an administrator debugs a tenant's sign-in without reading
// XML.
//
// A captured response answers a request Explain never saw, so its
// InResponseTo is reported as not checkable rather than refused; the replay
// record is not consulted either. A refused sign-in is a Trace whose
// Decision.Action is "refuse", with a nil error; the error is for a request
// that cannot be judged at all (unreadable metadata, a bad URL).
func Explain(ctx context.Context, req ExplainRequest) (*Trace, error) {
	return explain(ctx, req, true)
}

// explain is Explain; retry says whether a refusal for the time window
// may be judged again at the response's issue instant to set RetryAt.
func explain(ctx context.Context, req ExplainRequest, retry bool) (*Trace, error) {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	acs, err := url.Parse(req.ACSURL)
	if err != nil || (acs.Scheme != "https" && acs.Scheme != "http") || acs.Host == "" {
		return nil, fmt.Errorf("jit: explain: ACS URL %q is not an absolute http(s) URL", req.ACSURL)
	}
	if req.SPEntityID == "" {
		return nil, errors.New("jit: explain: the SP entity ID is required")
	}
	opts, cfg := req.connection(now)
	m, err := newMiddleware(&opts)
	if err != nil {
		return nil, fmt.Errorf("jit: explain: %w", err)
	}
	c, err := m.newConnection(ctx, &opts, &cfg, url.URL{}, *acs)
	if err != nil {
		return nil, fmt.Errorf("jit: explain: %w", err)
	}
	m.conns = []*connection{c}

	t := &Trace{}
	b64 := responseBase64(req.Response)
	root := readResponse(b64, m.maxBytes, m.maxDepth)
	requestID := inResponseTo(root)
	solicited := requestID != ""
	if solicited {
		t.Notes = append(t.Notes, fmt.Sprintf("InResponseTo %q: not checkable, the request was made to the application, not to explain; judged as if it were this browser's", requestID))
	}
	t.Notes = append(t.Notes, "replay record: not consulted")
	if reflect.ValueOf(req.Policy).IsZero() {
		t.Notes = append(t.Notes, "policy: none given, judged with the zero Policy: no roles are derived (a returning user's IdP-derived roles would all be removed), every field is synced, brownfield is deny; give the connection's policy to judge with it")
	}
	idp := c.current()
	t.SigningCertificates = responseCertificates(root)
	t.TrustedCertificates = trustedCertificates(idp.sp.IDPMetadata)
	for _, u := range t.Untrusted() {
		t.Notes = append(t.Notes, fmt.Sprintf("the response is signed with a certificate the IdP metadata does not list: %s (SHA-256 %s); the metadata trusts %d other certificate(s), listed with the trace: update the IdP metadata if the IdP rolled its certificate over", u.Subject, u.SHA256, len(t.TrustedCertificates)))
	}
	s := &signIn{corr: "explain", conn: c, idp: idp, now: now, trace: t}
	err = m.validate(ctx, s, b64, requestID, solicited)
	for _, w := range m.Warnings() {
		t.Notes = append(t.Notes, fmt.Sprintf("warning %s: %s", w.Code, w.Message))
	}
	if err != nil {
		t.Decision = refuseDecision(err)
		if retry {
			t.RetryAt = retryAt(ctx, req, root, now, m.skew, t)
		}
		return t, nil
	}
	t.Identity, t.Key, t.Profile = s.identity, s.key, s.profile.Clone()
	t.Decision = m.explainDecision(ctx, s)
	return t, nil
}

// retryAt returns the instant to judge a refused response at when it was
// judged outside its issue window and judging it just after its
// IssueInstant gets further; zero otherwise.
func retryAt(ctx context.Context, req ExplainRequest, root *etree.Element, now time.Time, skew time.Duration, refused *Trace) time.Time {
	issued := issueInstant(root)
	if issued.IsZero() {
		return time.Time{}
	}
	if !now.Before(issued.Add(-skew)) && !now.After(issued.Add(MaxIssueDelay)) {
		return time.Time{}
	}
	at := issued.Truncate(time.Second).Add(time.Second)
	req.Now = at
	again, err := explain(ctx, req, false)
	if err != nil || (again.Decision.Action == string(actionRefuse) && passed(again) <= passed(refused)) {
		return time.Time{}
	}
	return at
}

// passed counts the checks of t that passed.
func passed(t *Trace) int {
	n := 0
	for _, s := range t.Steps {
		if s.OK {
			n++
		}
	}
	return n
}

// connection maps req onto the Options and the Connection that New would
// be given for the same connection, so that Explain builds its connection
// with the middleware's own constructor. Hooks stay in the policy: the
// decision says where they would be asked, and Explain does not run them.
func (req *ExplainRequest) connection(now time.Time) (Options, Connection) {
	opts := Options{
		Store:            req.Store,
		Key:              req.Key,
		Certificate:      req.Certificate,
		DecryptionKeys:   req.DecryptionKeys,
		Now:              func() time.Time { return now },
		ClockSkew:        req.ClockSkew,
		MaxResponseBytes: req.MaxResponseBytes,
		MaxXMLDepth:      req.MaxXMLDepth,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg := Connection{
		Name:                          "explain",
		IDPMetadata:                   req.IDPMetadata,
		EntityID:                      req.SPEntityID,
		Mapper:                        req.Mapper,
		AllowIDPInitiated:             req.AllowIDPInitiated,
		AllowSHA1:                     req.AllowSHA1,
		AllowCBCWithoutSignedResponse: req.AllowCBCWithoutSignedResponse,
		Policy:                        req.Policy,
	}
	return opts, cfg
}

// explainDecision is what provision would decide, writing nothing: the
// same decision, its facts read from the store when one is given, with no
// hook and no GroupResolver run.
func (m *Middleware) explainDecision(ctx context.Context, s *signIn) Decision {
	t := s.trace
	if _, ok := s.identity.GroupsOverage(); ok {
		s.overage = true
		t.Notes = append(t.Notes, "groups overage: the IdP omitted the groups; a configured GroupResolver would be asked for them, without one the stored groups and roles are kept")
	}
	f := m.facts(s)
	if m.store == nil {
		t.Notes = append(t.Notes, "no store given: judged as a first sign-in into an empty store")
	} else if err := m.lookupStored(ctx, s, f); err != nil {
		return refuseDecision(err)
	}
	v := m.settle(ctx, nil, s, f)
	switch v.action {
	case actionCreate:
		return Decision{Action: string(actionCreate), After: &v.profile, RolesGranted: v.profile.Roles}
	case actionUpdate, actionLink:
		return changeDecision(v.action, v.user, v.profile)
	}
	d := refuseDecision(v.err)
	if v.user != nil {
		d.UserID = v.user.ID
	}
	return d
}

func refuseDecision(err error) Decision {
	return Decision{Action: "refuse", Reason: err.Error(), Err: err}
}

// changeDecision describes an update or link of u to the profile after.
func changeDecision(a action, u *userstore.User, after userstore.Profile) Decision {
	before := u.Profile.Clone()
	d := Decision{Action: string(a), UserID: u.ID, Before: &before, After: &after, Changed: Diff(before, after)}
	for _, r := range after.Roles {
		if !slices.Contains(before.Roles, r) {
			d.RolesGranted = append(d.RolesGranted, r)
		}
	}
	for _, r := range before.Roles {
		if !slices.Contains(after.Roles, r) {
			d.RolesRemoved = append(d.RolesRemoved, r)
		}
	}
	return d
}

// responseBase64 returns a captured response as the base64 the ACS
// receives: XML is encoded, a form body as a browser posts it
// (SAMLResponse=…&RelayState=…, as copied from developer tools) has its
// SAMLResponse taken out, base64 has its whitespace removed.
func responseBase64(raw []byte) string {
	trimmed := bytes.TrimSpace(raw)
	if bytes.HasPrefix(trimmed, []byte("<")) {
		return base64.StdEncoding.EncodeToString(trimmed)
	}
	if bytes.HasPrefix(trimmed, []byte("SAMLResponse=")) || bytes.Contains(trimmed, []byte("&SAMLResponse=")) {
		if form, err := url.ParseQuery(string(trimmed)); err == nil && form.Get("SAMLResponse") != "" {
			return form.Get("SAMLResponse")
		}
	}
	return strings.Join(strings.Fields(string(trimmed)), "")
}

// readResponse parses a captured response for what Explain reports
// beside the checks; nil when it cannot be read (validation then says
// why).
func readResponse(b64 string, maxBytes, maxDepth int) *etree.Element {
	raw, err := decodeResponse(b64, maxBytes)
	if err != nil {
		return nil
	}
	root, err := parseXML(raw, maxDepth)
	if err != nil || !is(root, nsProtocol, "Response") {
		return nil
	}
	return root
}

// assertions returns the plain assertions of a Response.
func assertions(root *etree.Element) []*etree.Element {
	var out []*etree.Element
	for _, a := range root.ChildElements() {
		if is(a, nsAssertion, "Assertion") {
			out = append(out, a)
		}
	}
	return out
}

// inResponseTo reads the request ID a response answers: the Response's
// InResponseTo, else its bearer confirmation's. It returns "" when there
// is none or root is nil.
func inResponseTo(root *etree.Element) string {
	if root == nil {
		return ""
	}
	if id := root.SelectAttrValue("InResponseTo", ""); id != "" {
		return id
	}
	for _, a := range assertions(root) {
		for _, d := range a.FindElements("./Subject/SubjectConfirmation/SubjectConfirmationData") {
			if id := d.SelectAttrValue("InResponseTo", ""); id != "" {
				return id
			}
		}
	}
	return ""
}

// issueInstant reads the Response's IssueInstant, else its assertion's;
// zero when there is none or it does not parse.
func issueInstant(root *etree.Element) time.Time {
	if root == nil {
		return time.Time{}
	}
	v := root.SelectAttrValue("IssueInstant", "")
	if v == "" {
		for _, a := range assertions(root) {
			v = a.SelectAttrValue("IssueInstant", "")
		}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// responseCertificates returns the certificates in the KeyInfo of the
// Response's signature and of its plain assertions' signatures, without
// duplicates. They say which key the IdP signed with; they are never
// trusted for that.
func responseCertificates(root *etree.Element) []CertificateSummary {
	if root == nil {
		return nil
	}
	var out []CertificateSummary
	for _, el := range append([]*etree.Element{root}, assertions(root)...) {
		for _, sig := range el.ChildElements() {
			if !is(sig, nsDSig, "Signature") {
				continue
			}
			for _, x := range sig.FindElements("./KeyInfo/X509Data/X509Certificate") {
				if c, ok := summarize(x.Text()); ok && !slices.ContainsFunc(out, func(o CertificateSummary) bool { return o.SHA256 == c.SHA256 }) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// trustedCertificates returns the IdP metadata's signing certificates,
// those crewjam/saml verifies signatures with.
func trustedCertificates(md *saml.EntityDescriptor) []CertificateSummary {
	if md == nil {
		return nil
	}
	var out []CertificateSummary
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, x := range kd.KeyInfo.X509Data.X509Certificates {
				if c, ok := summarize(x.Data); ok && !slices.ContainsFunc(out, func(o CertificateSummary) bool { return o.SHA256 == c.SHA256 }) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// summarize parses a base64 DER certificate as XML carries it.
func summarize(b64 string) (CertificateSummary, bool) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		return CertificateSummary{}, false
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return CertificateSummary{}, false
	}
	sum := sha256.Sum256(c.Raw)
	hexSum := strings.ToUpper(hex.EncodeToString(sum[:]))
	var fp strings.Builder
	for i := 0; i < len(hexSum); i += 2 {
		if i > 0 {
			fp.WriteByte(':')
		}
		fp.WriteString(hexSum[i : i+2])
	}
	return CertificateSummary{Subject: c.Subject.String(), Issuer: c.Issuer.String(), SHA256: fp.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}, true
}
