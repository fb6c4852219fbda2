package claims

import (
	"fmt"
	"slices"
	"strings"

	"github.com/samljit/samljit/userstore"
)

// DefaultMaxValues is the number of values one field may carry when
// [Mapping.MaxValues] is zero. It is well above Entra ID's limit of 150 groups
// in a SAML token.
const DefaultMaxValues = 2048

// Mapper turns an [Identity] into the key and profile of a user.
//
// Implementations must return an error, never a zero key with a nil error,
// when the identity cannot be mapped.
type Mapper interface {
	// Map returns the key identifying the person and the profile to store.
	Map(id *Identity) (userstore.Key, userstore.Profile, error)
}

// MapperFunc adapts an ordinary function to a [Mapper].
type MapperFunc func(id *Identity) (userstore.Key, userstore.Profile, error)

// Map calls f(id).
func (f MapperFunc) Map(id *Identity) (userstore.Key, userstore.Profile, error) { return f(id) }

// Field says which attributes carry one field of the user record.
type Field struct {
	// Names are candidate attribute names tried in order; the first one
	// PRESENT in the identity wins, even if its value is empty. Each name is
	// looked up as by [Identity.Find]: by Name exactly, else by
	// FriendlyName. Empty names are skipped.
	Names []string
	// Required makes the mapping fail with a [*MissingAttributeError] when
	// no candidate is present, or the one present has no non-empty value.
	// It is ignored for [Mapping.Subject] and [Mapping.SubjectScope], which
	// are always required once they have Names.
	Required bool
}

// Mapping is a declarative [Mapper]: it says which attributes make up the key
// and the profile. Start from a preset ([Generic], [Entra], [Okta], [ADFS])
// and adjust it to the identity provider's configuration.
//
// # Key
//
// Key.Issuer is the identity's issuer, copied exactly; an empty or
// all-whitespace issuer fails with [ErrNoIssuer].
//
// Key.Subject comes from Subject, or from the NameID when Subject has no
// Names. When SubjectScope has Names, Key.Subject is scope + "/" + subject, as
// in Entra ID's tenantid/objectidentifier. Identity attributes are strict:
// the first present candidate must appear in exactly one Attribute element
// with exactly one value ([ErrAmbiguousAttribute] otherwise), that value must
// not be empty or only whitespace ([ErrEmptySubject]), and no candidate
// present at all, or one present without values, is a
// [*MissingAttributeError]. A scope containing "/" is refused with
// [ErrInvalidScope] so that distinct (scope, subject) pairs never produce the
// same Key.Subject. Values are used exactly as asserted: not trimmed, not case
// folded, not normalised.
//
// When the NameID is the subject its format is checked: transient fails with
// [ErrTransientNameID] unless InsecureAllowTransientNameID is set, and
// emailAddress (the SAML 1.1 URI and the non-standard SAML 2.0 spelling)
// fails with [ErrEmailNameID] unless AllowEmailNameID is set. Persistent,
// unspecified, an absent format and every other format (entity, Kerberos,
// Windows domain qualified name, X.509 subject name, custom URIs) are
// accepted: the mapping cannot tell whether an unspecified NameID is stable,
// so request persistent NameIDs from the identity provider. When the subject
// comes from an attribute, the NameID is not looked at at all (Entra ID's
// NameID is often the user principal name, which is not a key). The NameID's
// NameQualifier and SPNameQualifier are not part of the key: Key.Issuer
// already scopes it to the identity provider.
//
// # Profile
//
// Email, DisplayName, GivenName and FamilyName are single-valued: values are
// gathered from every Attribute element of the first present candidate,
// empty values are ignored, and more than one distinct value fails with
// [ErrAmbiguousAttribute]. Groups is multi-valued: values keep their order,
// exact duplicates and empty strings are dropped. A field whose candidates
// are all absent is empty (nil for Groups) unless Required; a present Groups
// attribute yields a non-nil slice. Keep copies further attributes, values
// unchanged, into Profile.Attributes under the requested name; the map is nil
// when none of them is present.
//
// No field may carry more than MaxValues values in total ([ErrTooManyValues]),
// so work is linear in the size of the assertion.
//
// Map does not modify the Mapping or the Identity and shares no storage with
// either in its results, so one Mapping may serve concurrent sign-ins.
type Mapping struct {
	// Subject is the attribute holding the immutable subject identifier.
	// With no Names, the NameID is the subject.
	Subject Field
	// SubjectScope is optional; when it has Names, Key.Subject is
	// scope + "/" + subject (Entra ID: tenantid/objectidentifier).
	SubjectScope Field
	// Email is display and contact data only, never part of the key.
	Email Field
	// DisplayName is the person's full name.
	DisplayName Field
	// GivenName is the person's first name.
	GivenName Field
	// FamilyName is the person's last name.
	FamilyName Field
	// Groups are group identifiers or names, multi-valued.
	Groups Field
	// Keep lists further attribute names copied into Profile.Attributes,
	// keyed by the requested name. The map is nil when none is kept.
	Keep []string
	// InsecureAllowTransientNameID lets a transient NameID be the subject.
	// Transient NameIDs change every sign-in; keying on one creates a new
	// user each time. Use it only for throwaway demo users.
	InsecureAllowTransientNameID bool
	// AllowEmailNameID lets an emailAddress-format NameID be the subject.
	// Email addresses change and get reassigned, so a later holder of an
	// address would inherit the earlier holder's account.
	AllowEmailNameID bool
	// MaxValues caps the number of values considered for one field (the
	// total over all its Attribute elements). Zero or negative means
	// [DefaultMaxValues].
	MaxValues int
}

// Map returns the key and profile the mapping selects from id. See [Mapping]
// for the rules. A nil id fails with an error wrapping [ErrInvalidAssertion].
func (m Mapping) Map(id *Identity) (userstore.Key, userstore.Profile, error) {
	if id == nil {
		return userstore.Key{}, userstore.Profile{}, fmt.Errorf("%w: nil identity", ErrInvalidAssertion)
	}
	if isBlank(id.Issuer) {
		return userstore.Key{}, userstore.Profile{}, ErrNoIssuer
	}
	limit := m.MaxValues
	if limit <= 0 {
		limit = DefaultMaxValues
	}

	subject, err := m.subject(id)
	if err != nil {
		return userstore.Key{}, userstore.Profile{}, err
	}
	var p userstore.Profile
	singles := []struct {
		field string
		f     Field
		dst   *string
	}{
		{FieldEmail, m.Email, &p.Email},
		{FieldDisplayName, m.DisplayName, &p.DisplayName},
		{FieldGivenName, m.GivenName, &p.GivenName},
		{FieldFamilyName, m.FamilyName, &p.FamilyName},
	}
	for _, s := range singles {
		if *s.dst, err = single(id, s.field, s.f, limit); err != nil {
			return userstore.Key{}, userstore.Profile{}, err
		}
	}
	if p.Groups, err = multi(id, FieldGroups, m.Groups, limit); err != nil {
		return userstore.Key{}, userstore.Profile{}, err
	}
	if p.Attributes, err = keep(id, m.Keep, limit); err != nil {
		return userstore.Key{}, userstore.Profile{}, err
	}
	return userstore.Key{Issuer: id.Issuer, Subject: subject}, p, nil
}

// subject returns Key.Subject.
func (m Mapping) subject(id *Identity) (string, error) {
	var subject string
	if len(m.Subject.Names) == 0 {
		if isBlank(id.NameID) {
			return "", fmt.Errorf("%w: no NameID", ErrEmptySubject)
		}
		switch id.NameIDFormat {
		case NameIDFormatTransient:
			if !m.InsecureAllowTransientNameID {
				return "", ErrTransientNameID
			}
		case NameIDFormatEmailAddress, nameIDFormatEmailAddress20:
			if !m.AllowEmailNameID {
				return "", ErrEmailNameID
			}
		}
		subject = id.NameID
	} else {
		v, err := identityValue(id, FieldSubject, m.Subject.Names)
		if err != nil {
			return "", err
		}
		subject = v
	}
	if len(m.SubjectScope.Names) == 0 {
		return subject, nil
	}
	scope, err := identityValue(id, FieldSubjectScope, m.SubjectScope.Names)
	if err != nil {
		return "", err
	}
	if strings.Contains(scope, "/") {
		return "", fmt.Errorf("%w: scope contains %q", ErrInvalidScope, "/")
	}
	return scope + "/" + subject, nil
}

// identityValue returns the single value of the first present candidate,
// refusing anything that is not exactly one non-blank value in exactly one
// Attribute element.
func identityValue(id *Identity, field string, names []string) (string, error) {
	name, attrs := firstPresent(id, names)
	switch {
	case len(attrs) == 0:
		return "", &MissingAttributeError{Field: field, Names: slices.Clone(names)}
	case len(attrs) > 1:
		return "", &AmbiguousAttributeError{Field: field, Name: name, reason: "asserted in more than one Attribute element"}
	}
	vals := attrs[0].Values
	switch {
	case len(vals) == 0:
		return "", &MissingAttributeError{Field: field, Names: slices.Clone(names), Found: name}
	case len(vals) > 1:
		return "", &AmbiguousAttributeError{Field: field, Name: name, reason: "more than one value"}
	}
	if isBlank(vals[0]) {
		return "", fmt.Errorf("%w: attribute %q for %q is empty", ErrEmptySubject, name, field)
	}
	return vals[0], nil
}

// single returns the one distinct non-empty value of a single-valued field.
func single(id *Identity, field string, f Field, limit int) (string, error) {
	name, attrs := firstPresent(id, f.Names)
	if len(attrs) == 0 {
		if f.Required {
			return "", &MissingAttributeError{Field: field, Names: slices.Clone(f.Names)}
		}
		return "", nil
	}
	if err := checkCount(attrs, field, name, limit); err != nil {
		return "", err
	}
	var val string
	for _, a := range attrs {
		for _, v := range a.Values {
			switch {
			case v == "" || v == val:
			case val == "":
				val = v
			default:
				return "", &AmbiguousAttributeError{Field: field, Name: name, reason: "more than one distinct value"}
			}
		}
	}
	if val == "" && f.Required {
		return "", &MissingAttributeError{Field: field, Names: slices.Clone(f.Names), Found: name}
	}
	return val, nil
}

// multi returns the values of a multi-valued field in order, without empty
// strings or exact duplicates. It is nil when no candidate is present.
func multi(id *Identity, field string, f Field, limit int) ([]string, error) {
	name, attrs := firstPresent(id, f.Names)
	if len(attrs) == 0 {
		if f.Required {
			return nil, &MissingAttributeError{Field: field, Names: slices.Clone(f.Names)}
		}
		return nil, nil
	}
	if err := checkCount(attrs, field, name, limit); err != nil {
		return nil, err
	}
	out := []string{}
	seen := make(map[string]struct{})
	for _, a := range attrs {
		for _, v := range a.Values {
			if v == "" {
				continue
			}
			if _, dup := seen[v]; dup {
				continue
			}
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	if len(out) == 0 && f.Required {
		return nil, &MissingAttributeError{Field: field, Names: slices.Clone(f.Names), Found: name}
	}
	return out, nil
}

// keep copies the values of the named attributes, keyed by the requested
// name. The map is nil when none is present.
func keep(id *Identity, names []string, limit int) (map[string][]string, error) {
	var out map[string][]string
	for _, name := range names {
		attrs := id.find(name)
		if len(attrs) == 0 {
			continue
		}
		if err := checkCount(attrs, FieldAttributes, name, limit); err != nil {
			return nil, err
		}
		vals := []string{}
		for _, a := range attrs {
			vals = append(vals, a.Values...)
		}
		if out == nil {
			out = make(map[string][]string)
		}
		out[name] = vals
	}
	return out, nil
}

// firstPresent returns the first candidate name that matches at least one
// attribute, and the attributes it matches.
func firstPresent(id *Identity, names []string) (string, []Attribute) {
	for _, n := range names {
		if attrs := id.find(n); len(attrs) > 0 {
			return n, attrs
		}
	}
	return "", nil
}

// checkCount refuses more than limit values over attrs.
func checkCount(attrs []Attribute, field, name string, limit int) error {
	n := 0
	for _, a := range attrs {
		n += len(a.Values)
		if n > limit {
			return &TooManyValuesError{Field: field, Name: name, Limit: limit}
		}
	}
	return nil
}

// isBlank reports whether s is empty or only whitespace.
func isBlank(s string) bool { return strings.TrimSpace(s) == "" }
