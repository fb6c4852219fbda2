package jit

import (
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/samljit/samljit/claims"
)

// This file holds crewjam as the fast path's oracle. compareWithOracle runs
// one response through the fast path and through crewjam's
// ParseXMLResponse, each followed by this package's checks (checkAssertion
// and the claims), and names any difference that matters: the fast path
// accepting what the oracle refuses, or reading another identity. The fast
// path declining what the oracle accepts is no error (validate then runs
// crewjam), but on the harness it is a mismatch (see SetOracle), and
// TestFastPathTakesCommonShapes checks it takes what IdPs send.

// SetOracle makes m run every response that passes the structural checks
// through both paths as well, reporting each mismatch to report. Every
// test on the harness runs with it. Unless mayDecline, a plaintext
// response the oracle accepts and the fast path declines is a mismatch
// too: the harness's IdP sends the shapes the fast path is for, and a
// fast path that declined them would only be slower, which no outcome
// shows.
func SetOracle(m *Middleware, mayDecline bool, report func(msg string)) {
	m.crossCheck = func(s *signIn, raw []byte, root *etree.Element, st structure, ids []string) {
		msg, fastErr, oracleErr := m.compareWithOracle(s, raw, root, st, ids)
		if msg == "" && !mayDecline && st.encrypted == nil && fastErr != nil && oracleErr == nil {
			msg = fmt.Sprintf("the fast path declines a response the oracle accepts (%v):\n%s", fastErr, raw)
		}
		if msg != "" {
			report(msg)
		}
	}
}

// CompareWithOracle runs the base64 response b64, as posted to m's
// connection conn (its first when ""), through the structural checks and
// then through both paths. It returns the mismatch, "" when there is
// none, and each path's refusal (nil when it accepts). A response the
// structural checks refuse is refused by both, with their error.
func CompareWithOracle(m *Middleware, conn, b64, requestID string, solicited bool) (mismatch string, fastErr, oracleErr error) {
	c := m.conns[0]
	if conn != "" {
		c = m.byName[conn]
	}
	s := &signIn{corr: "oracle", conn: c, idp: c.current(), now: m.now()}
	raw, err := decodeResponse(b64, m.maxBytes)
	if err != nil {
		return "", err, err
	}
	root, err := parseXML(raw, m.maxDepth)
	if err != nil {
		return "", err, err
	}
	st, err := checkResponse(root, c.allowSHA1)
	if err == nil && st.encrypted != nil && len(m.decryptKeys) == 0 {
		err = invalid("encrypted, no key")
	}
	if err != nil {
		return "", err, err
	}
	var ids []string
	if solicited {
		ids = []string{requestID}
	}
	return m.compareWithOracle(s, raw, root, st, ids)
}

// pathResult is what one path, with this package's checks, made of a
// response, in values that compare with ==.
type pathResult struct {
	err  error
	view string
}

func (m *Middleware) compareWithOracle(s *signIn, raw []byte, root *etree.Element, st structure, ids []string) (mismatch string, fastErr, oracleErr error) {
	c := s.conn
	requestID := ""
	if len(ids) == 1 {
		requestID = ids[0]
	}
	ck := checks{now: s.now, skew: m.skew, issuer: c.issuer, audience: c.entityID, acsURL: c.acsURL,
		requestID: requestID, solicited: len(ids) == 1, unsolicitedAllowed: c.allowIDPInit}
	finish := func(a *saml.Assertion, sha1 bool, err error) pathResult {
		if err != nil {
			return pathResult{err: err}
		}
		expires, err := ck.checkAssertion(a)
		if err != nil {
			return pathResult{err: err}
		}
		id, err := claims.FromAssertion(a)
		if err != nil {
			return pathResult{err: err}
		}
		return pathResult{view: assertionView(a, id, expires, sha1)}
	}
	fst := st
	fa, ferr := s.idp.fast.fastAssertion(root, fst, ck)
	fast := finish(fa, fst.sha1, ferr)
	ost := st
	oa, oerr := m.crewjamAssertion(s, raw, &ost, ids)
	oracle := finish(oa, ost.sha1, oerr)
	switch {
	case fast.err != nil:
		return "", fast.err, oracle.err
	case oracle.err != nil:
		return fmt.Sprintf("the fast path accepts a response the oracle refuses (%v):\n%s", oracle.err, raw), nil, oracle.err
	case fast.view != oracle.view:
		return fmt.Sprintf("the fast path reads\n%s\nwhere the oracle reads\n%s\nfrom:\n%s", fast.view, oracle.view, raw), nil, nil
	}
	return "", nil, nil
}

// assertionView prints everything of a verified assertion that this
// package or its callers read, times with their zones.
func assertionView(a *saml.Assertion, id *claims.Identity, expires time.Time, sha1 bool) string {
	const layout = "2006-01-02T15:04:05.999999999Z07:00"
	tm := func(t time.Time) string { return t.Format(layout) }
	v := fmt.Sprintf("ID=%q Version=%q IssueInstant=%s Issuer=%q expires=%s sha1=%t\n", a.ID, a.Version, tm(a.IssueInstant), a.Issuer.Value, tm(expires), sha1)
	if s := a.Subject; s != nil {
		if n := s.NameID; n != nil {
			v += fmt.Sprintf("NameID=%q Format=%q NQ=%q SPNQ=%q SPPID=%q\n", n.Value, n.Format, n.NameQualifier, n.SPNameQualifier, n.SPProvidedID)
		}
		for _, sc := range s.SubjectConfirmations {
			v += fmt.Sprintf("SubjectConfirmation Method=%q NameID=%t", sc.Method, sc.NameID != nil)
			if d := sc.SubjectConfirmationData; d != nil {
				v += fmt.Sprintf(" Recipient=%q InResponseTo=%q NotBefore=%s NotOnOrAfter=%s", d.Recipient, d.InResponseTo, tm(d.NotBefore), tm(d.NotOnOrAfter))
			}
			v += "\n"
		}
	}
	if cond := a.Conditions; cond != nil {
		v += fmt.Sprintf("Conditions NotBefore=%s NotOnOrAfter=%s OneTimeUse=%t\n", tm(cond.NotBefore), tm(cond.NotOnOrAfter), cond.OneTimeUse != nil)
		for _, r := range cond.AudienceRestrictions {
			v += fmt.Sprintf("AudienceRestriction %q\n", r.AllAudiences())
		}
	}
	for _, st := range a.AuthnStatements {
		v += fmt.Sprintf("AuthnStatement AuthnInstant=%s SessionIndex=%q", tm(st.AuthnInstant), st.SessionIndex)
		if st.SessionNotOnOrAfter != nil {
			v += " SessionNotOnOrAfter=" + tm(*st.SessionNotOnOrAfter)
		}
		if st.AuthnContext.AuthnContextClassRef != nil {
			v += fmt.Sprintf(" ClassRef=%q", st.AuthnContext.AuthnContextClassRef.Value)
		}
		v += fmt.Sprintf(" Authorities=%q\n", st.AuthnContext.AuthenticatingAuthorities)
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			vals := make([]string, len(at.Values))
			for i, x := range at.Values {
				vals[i] = x.Value
				if x.NameID != nil {
					vals[i] = "NameID:" + x.NameID.Value
				}
			}
			v += fmt.Sprintf("Attribute Name=%q FriendlyName=%q NameFormat=%q Values=%q\n", at.Name, at.FriendlyName, at.NameFormat, vals)
		}
	}
	idv := *id
	idv.AuthnInstant, idv.SessionNotOnOrAfter = time.Time{}, time.Time{}
	v += fmt.Sprintf("Identity %+v AuthnInstant=%s SessionNotOnOrAfter=%s\n", idv, tm(id.AuthnInstant), tm(id.SessionNotOnOrAfter))
	return v
}

// VerifyFast is the validation a sign-in does before its store is
// touched, through the fast path alone: decode, parse, structural checks,
// fastAssertion, this package's checks and the claims. It is nil when the
// fast path accepts b64 as an IdP-initiated response to m's first
// connection. BenchmarkSignInPaired times it beside the floor.
func VerifyFast(m *Middleware, b64 string) error {
	c := m.conns[0]
	idp, now := c.current(), m.now()
	raw, err := decodeResponse(b64, m.maxBytes)
	if err != nil {
		return err
	}
	root, err := parseXML(raw, m.maxDepth)
	if err != nil {
		return err
	}
	st, err := checkResponse(root, c.allowSHA1)
	if err != nil {
		return err
	}
	ck := checks{now: now, skew: m.skew, issuer: c.issuer, audience: c.entityID, acsURL: c.acsURL, unsolicitedAllowed: c.allowIDPInit}
	a, err := idp.fast.fastAssertion(root, st, ck)
	if err != nil {
		return err
	}
	if _, err := ck.checkAssertion(a); err != nil {
		return err
	}
	_, err = claims.FromAssertion(a)
	return err
}
