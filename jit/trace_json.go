package jit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// TraceFormatVersion is the version of the JSON form of a [Trace]. The
// form is stable: names are snake_case, fields are added but never
// renamed, removed or given another meaning within a version; a change
// that would break a reader gets a new version.
const TraceFormatVersion = 1

// The JSON form of a Trace. Trace, Step, Decision and CertificateSummary
// carry their own tags; the types they embed from claims and userstore
// have none (their Go names are their API), so they are written here.
type (
	traceJSON struct {
		Version             int                  `json:"version"`
		Steps               []Step               `json:"steps"`
		Notes               []string             `json:"notes,omitempty"`
		RetryAt             time.Time            `json:"retry_at,omitzero"`
		SigningCertificates []CertificateSummary `json:"signing_certificates,omitempty"`
		TrustedCertificates []CertificateSummary `json:"trusted_certificates,omitempty"`
		Identity            *identityJSON        `json:"identity,omitempty"`
		Key                 *keyJSON             `json:"key,omitempty"`
		Profile             *profileJSON         `json:"profile,omitempty"`
		Decision            decisionJSON         `json:"decision"`
	}
	identityJSON struct {
		Issuer              string          `json:"issuer"`
		NameID              string          `json:"name_id"`
		NameIDFormat        string          `json:"name_id_format,omitempty"`
		NameQualifier       string          `json:"name_qualifier,omitempty"`
		SPNameQualifier     string          `json:"sp_name_qualifier,omitempty"`
		SessionIndex        string          `json:"session_index,omitempty"`
		AuthnInstant        time.Time       `json:"authn_instant,omitzero"`
		SessionNotOnOrAfter time.Time       `json:"session_not_on_or_after,omitzero"`
		Attributes          []attributeJSON `json:"attributes"`
	}
	attributeJSON struct {
		Name string `json:"name"`
		// KnownName is claims.KnownName(Name), for people; FriendlyName
		// is what the IdP sent.
		KnownName    string   `json:"known_name,omitempty"`
		FriendlyName string   `json:"friendly_name,omitempty"`
		NameFormat   string   `json:"name_format,omitempty"`
		Values       []string `json:"values"`
	}
	keyJSON struct {
		Issuer  string `json:"issuer"`
		Subject string `json:"subject"`
	}
	profileJSON struct {
		Email       string              `json:"email"`
		DisplayName string              `json:"display_name"`
		GivenName   string              `json:"given_name"`
		FamilyName  string              `json:"family_name"`
		Groups      []string            `json:"groups"`
		Attributes  map[string][]string `json:"attributes,omitempty"`
		Roles       []string            `json:"roles"`
	}
	decisionJSON struct {
		Action       string       `json:"action"`
		Reason       string       `json:"reason,omitempty"`
		UserID       string       `json:"user_id,omitempty"`
		Changed      []string     `json:"changed,omitempty"`
		Before       *profileJSON `json:"before,omitempty"`
		After        *profileJSON `json:"after,omitempty"`
		RolesGranted []string     `json:"roles_granted,omitempty"`
		RolesRemoved []string     `json:"roles_removed,omitempty"`
	}
)

// MarshalJSON writes the trace in its stable JSON form, version
// [TraceFormatVersion], with snake_case names throughout; identity
// attributes carry [claims.KnownName] as known_name. Key and profile are
// omitted when validation failed before the mapping.
func (t Trace) MarshalJSON() ([]byte, error) {
	out := traceJSON{
		Version: TraceFormatVersion, Steps: t.Steps, Notes: t.Notes, RetryAt: t.RetryAt,
		SigningCertificates: t.SigningCertificates, TrustedCertificates: t.TrustedCertificates,
		Decision: decisionJSON{
			Action: t.Decision.Action, Reason: t.Decision.Reason, UserID: t.Decision.UserID, Changed: t.Decision.Changed,
			Before: profileOut(t.Decision.Before), After: profileOut(t.Decision.After),
			RolesGranted: t.Decision.RolesGranted, RolesRemoved: t.Decision.RolesRemoved,
		},
	}
	if out.Steps == nil {
		out.Steps = []Step{}
	}
	if id := t.Identity; id != nil {
		out.Identity = &identityJSON{
			Issuer: id.Issuer, NameID: id.NameID, NameIDFormat: id.NameIDFormat, NameQualifier: id.NameQualifier,
			SPNameQualifier: id.SPNameQualifier, SessionIndex: id.SessionIndex, AuthnInstant: id.AuthnInstant,
			SessionNotOnOrAfter: id.SessionNotOnOrAfter, Attributes: []attributeJSON{},
		}
		for _, a := range id.Attributes {
			out.Identity.Attributes = append(out.Identity.Attributes, attributeJSON{
				Name: a.Name, KnownName: claims.KnownName(a.Name), FriendlyName: a.FriendlyName,
				NameFormat: a.NameFormat, Values: a.Values,
			})
		}
	}
	if t.Identity != nil || !t.Key.IsZero() {
		out.Key = &keyJSON{Issuer: t.Key.Issuer, Subject: t.Key.Subject}
		out.Profile = profileOut(&t.Profile)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the JSON form MarshalJSON writes. Decision.Err is
// not part of it and stays nil.
func (t *Trace) UnmarshalJSON(b []byte) error {
	var in traceJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.Version != TraceFormatVersion {
		return fmt.Errorf("jit: trace format version %d, want %d", in.Version, TraceFormatVersion)
	}
	*t = Trace{
		Steps: in.Steps, Notes: in.Notes, RetryAt: in.RetryAt,
		SigningCertificates: in.SigningCertificates, TrustedCertificates: in.TrustedCertificates,
		Decision: Decision{
			Action: in.Decision.Action, Reason: in.Decision.Reason, UserID: in.Decision.UserID, Changed: in.Decision.Changed,
			Before: profileIn(in.Decision.Before), After: profileIn(in.Decision.After),
			RolesGranted: in.Decision.RolesGranted, RolesRemoved: in.Decision.RolesRemoved,
		},
	}
	if id := in.Identity; id != nil {
		t.Identity = &claims.Identity{
			Issuer: id.Issuer, NameID: id.NameID, NameIDFormat: id.NameIDFormat, NameQualifier: id.NameQualifier,
			SPNameQualifier: id.SPNameQualifier, SessionIndex: id.SessionIndex, AuthnInstant: id.AuthnInstant,
			SessionNotOnOrAfter: id.SessionNotOnOrAfter,
		}
		for _, a := range id.Attributes {
			t.Identity.Attributes = append(t.Identity.Attributes, claims.Attribute{
				Name: a.Name, FriendlyName: a.FriendlyName, NameFormat: a.NameFormat, Values: a.Values,
			})
		}
	}
	if in.Key != nil {
		t.Key = userstore.Key{Issuer: in.Key.Issuer, Subject: in.Key.Subject}
	}
	if p := profileIn(in.Profile); p != nil {
		t.Profile = *p
	}
	return nil
}

func profileOut(p *userstore.Profile) *profileJSON {
	if p == nil {
		return nil
	}
	return &profileJSON{Email: p.Email, DisplayName: p.DisplayName, GivenName: p.GivenName, FamilyName: p.FamilyName,
		Groups: p.Groups, Attributes: p.Attributes, Roles: p.Roles}
}

func profileIn(p *profileJSON) *userstore.Profile {
	if p == nil {
		return nil
	}
	return &userstore.Profile{Email: p.Email, DisplayName: p.DisplayName, GivenName: p.GivenName, FamilyName: p.FamilyName,
		Groups: p.Groups, Attributes: p.Attributes, Roles: p.Roles}
}
