package claims

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package. Every error it returns wraps exactly one of
// them; test with [errors.Is].
var (
	// ErrInvalidAssertion means there was no assertion (or no identity) to
	// read.
	ErrInvalidAssertion = errors.New("claims: invalid assertion")

	// ErrNoIssuer means the identity has an empty or all-whitespace issuer,
	// so no key can be scoped to an identity provider.
	ErrNoIssuer = errors.New("claims: assertion has no issuer")

	// ErrMissingAttribute means a required attribute was absent, or present
	// without a usable value. The concrete error is a
	// [*MissingAttributeError].
	ErrMissingAttribute = errors.New("claims: required attribute missing")

	// ErrAmbiguousAttribute means an identity attribute (subject or subject
	// scope) was asserted in more than one Attribute element or with more
	// than one value, or a single-valued profile attribute had more than one
	// distinct value. The concrete error is an [*AmbiguousAttributeError].
	ErrAmbiguousAttribute = errors.New("claims: ambiguous attribute")

	// ErrTooManyValues means one field was asserted with more values than
	// [Mapping.MaxValues] allows. The concrete error is a
	// [*TooManyValuesError].
	ErrTooManyValues = errors.New("claims: too many attribute values")

	// ErrEmptySubject means the subject, or its scope when one is
	// configured, is empty or only whitespace, including when the NameID is
	// the subject and the assertion has none.
	ErrEmptySubject = errors.New("claims: empty subject")

	// ErrInvalidScope means the subject scope contains a "/", which would
	// make the combined subject "scope/subject" ambiguous.
	ErrInvalidScope = errors.New("claims: invalid subject scope")

	// ErrTransientNameID means the NameID was to be the key but has the
	// transient format, which changes at every sign-in. See
	// [Mapping.InsecureAllowTransientNameID].
	ErrTransientNameID = errors.New("claims: transient NameID cannot identify a user")

	// ErrEmailNameID means the NameID was to be the key but has the
	// emailAddress format; email addresses change and get reassigned. See
	// [Mapping.AllowEmailNameID].
	ErrEmailNameID = errors.New("claims: emailAddress NameID cannot identify a user")

	// ErrUnknownPreset means [Preset] was given a name it does not know.
	ErrUnknownPreset = errors.New("claims: unknown preset")
)

// Field names used in errors, one per field of a [Mapping]. Values kept
// through [Mapping.Keep] are reported with [FieldAttributes].
const (
	// FieldSubject is [Mapping.Subject], or the NameID when that is the
	// subject.
	FieldSubject = "subject"
	// FieldSubjectScope is [Mapping.SubjectScope].
	FieldSubjectScope = "subjectScope"
	// FieldEmail is [Mapping.Email].
	FieldEmail = "email"
	// FieldDisplayName is [Mapping.DisplayName].
	FieldDisplayName = "displayName"
	// FieldGivenName is [Mapping.GivenName].
	FieldGivenName = "givenName"
	// FieldFamilyName is [Mapping.FamilyName].
	FieldFamilyName = "familyName"
	// FieldGroups is [Mapping.Groups].
	FieldGroups = "groups"
	// FieldAttributes is [Mapping.Keep].
	FieldAttributes = "attributes"
)

// MissingAttributeError reports a required field for which no attribute was
// present, or for which the first present attribute had no usable value. It
// matches [ErrMissingAttribute] with [errors.Is].
type MissingAttributeError struct {
	// Field is the mapping field, one of the Field constants.
	Field string
	// Names are the attribute names that were tried, in order.
	Names []string
	// Found is the name of the attribute that was present but had no
	// usable value (no value, or only empty ones). It is empty when no
	// attribute was present.
	Found string
}

// Error describes the field and the attribute names tried.
func (e *MissingAttributeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "claims: required attribute for %q ", e.Field)
	if e.Found != "" {
		fmt.Fprintf(&b, "has no value (attribute %q)", e.Found)
		return b.String()
	}
	b.WriteString("missing (")
	if len(e.Names) == 0 {
		b.WriteString("no attribute names configured)")
		return b.String()
	}
	b.WriteString("tried ")
	for i, n := range e.Names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	b.WriteString(")")
	return b.String()
}

// Is reports whether target is [ErrMissingAttribute].
func (e *MissingAttributeError) Is(target error) bool { return target == ErrMissingAttribute }

// AmbiguousAttributeError reports an attribute that cannot be reduced to one
// value: an identity attribute asserted more than once or with several values,
// or a single-valued profile attribute with distinct values. It matches
// [ErrAmbiguousAttribute] with [errors.Is].
type AmbiguousAttributeError struct {
	// Field is the mapping field, one of the Field constants.
	Field string
	// Name is the attribute name that matched.
	Name string

	reason string
}

// Error names the field and the attribute.
func (e *AmbiguousAttributeError) Error() string {
	msg := fmt.Sprintf("claims: attribute %q for %q is ambiguous", e.Name, e.Field)
	if e.reason != "" {
		msg += ": " + e.reason
	}
	return msg
}

// Is reports whether target is [ErrAmbiguousAttribute].
func (e *AmbiguousAttributeError) Is(target error) bool { return target == ErrAmbiguousAttribute }

// TooManyValuesError reports a field asserted with more values than the
// mapping's limit. It matches [ErrTooManyValues] with [errors.Is].
type TooManyValuesError struct {
	// Field is the mapping field, one of the Field constants.
	Field string
	// Name is the attribute name that matched.
	Name string
	// Limit is the number of values that was exceeded.
	Limit int
}

// Error names the field, the attribute and the limit.
func (e *TooManyValuesError) Error() string {
	return fmt.Sprintf("claims: attribute %q for %q has more than %d values", e.Name, e.Field, e.Limit)
}

// Is reports whether target is [ErrTooManyValues].
func (e *TooManyValuesError) Is(target error) bool { return target == ErrTooManyValues }
