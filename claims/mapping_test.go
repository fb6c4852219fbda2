package claims_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

const issuer = "https://idp.example.com/"

// persistent returns an identity keyed by a persistent NameID.
func persistent(attrs ...claims.Attribute) *claims.Identity {
	return &claims.Identity{
		Issuer:       issuer,
		NameID:       "p-123",
		NameIDFormat: claims.NameIDFormatPersistent,
		Attributes:   attrs,
	}
}

func TestMapErrors(t *testing.T) {
	t.Parallel()
	scoped := claims.Mapping{
		Subject:      claims.Field{Names: []string{"oid"}},
		SubjectScope: claims.Field{Names: []string{"tid"}},
	}
	required := claims.Mapping{
		Email:  claims.Field{Names: []string{"urn:email", "email"}, Required: true},
		Groups: claims.Field{Names: []string{"groups"}, Required: true},
	}
	withNameID := func(format, value string) *claims.Identity {
		return &claims.Identity{Issuer: issuer, NameID: value, NameIDFormat: format}
	}

	tests := []struct {
		name    string
		m       claims.Mapping
		id      *claims.Identity
		want    error
		missing *claims.MissingAttributeError
		ambig   *claims.AmbiguousAttributeError
		msg     string
	}{
		{name: "nil identity", m: claims.Generic(), id: nil, want: claims.ErrInvalidAssertion},
		{name: "empty issuer", m: claims.Generic(), id: &claims.Identity{NameID: "n"}, want: claims.ErrNoIssuer},
		{name: "blank issuer", m: claims.Generic(), id: &claims.Identity{Issuer: " \t\n", NameID: "n"}, want: claims.ErrNoIssuer},

		{name: "no NameID", m: claims.Generic(), id: withNameID(claims.NameIDFormatPersistent, ""), want: claims.ErrEmptySubject},
		{name: "blank NameID", m: claims.Generic(), id: withNameID(claims.NameIDFormatPersistent, " \u00a0\t"), want: claims.ErrEmptySubject},
		{name: "transient NameID", m: claims.Generic(), id: withNameID(claims.NameIDFormatTransient, "_t1"), want: claims.ErrTransientNameID},
		{name: "email NameID", m: claims.Generic(), id: withNameID(claims.NameIDFormatEmailAddress, "a@example.com"), want: claims.ErrEmailNameID},
		{
			name: "email NameID, SAML 2.0 spelling",
			m:    claims.Okta(),
			id:   withNameID("urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress", "a@example.com"),
			want: claims.ErrEmailNameID,
		},

		{
			name:    "subject attribute absent",
			m:       scoped,
			id:      persistent(attr("tid", "t")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldSubject, Names: []string{"oid"}},
			msg:     `claims: required attribute for "subject" missing (tried "oid")`,
		},
		{
			name:    "subject attribute without values",
			m:       scoped,
			id:      persistent(attr("oid"), attr("tid", "t")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldSubject, Names: []string{"oid"}, Found: "oid"},
			msg:     `claims: required attribute for "subject" has no value (attribute "oid")`,
		},
		{name: "subject attribute empty", m: scoped, id: persistent(attr("oid", ""), attr("tid", "t")), want: claims.ErrEmptySubject},
		{name: "subject attribute blank", m: scoped, id: persistent(attr("oid", "\u2003"), attr("tid", "t")), want: claims.ErrEmptySubject},
		{
			name:  "subject attribute with two values",
			m:     scoped,
			id:    persistent(attr("oid", "o1", "o2"), attr("tid", "t")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldSubject, Name: "oid"},
		},
		{
			name:  "subject attribute twice, same value",
			m:     scoped,
			id:    persistent(attr("oid", "o1"), attr("tid", "t"), attr("oid", "o1")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldSubject, Name: "oid"},
		},
		{
			name:  "subject by FriendlyName twice",
			m:     scoped,
			id:    persistent(claims.Attribute{Name: "u1", FriendlyName: "oid", Values: []string{"a"}}, claims.Attribute{Name: "u2", FriendlyName: "oid", Values: []string{"b"}}, attr("tid", "t")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldSubject, Name: "oid"},
		},
		{
			name:    "scope absent",
			m:       scoped,
			id:      persistent(attr("oid", "o")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldSubjectScope, Names: []string{"tid"}},
		},
		{name: "scope blank", m: scoped, id: persistent(attr("oid", "o"), attr("tid", " ")), want: claims.ErrEmptySubject},
		{
			name:  "scope twice",
			m:     scoped,
			id:    persistent(attr("oid", "o"), attr("tid", "t"), attr("tid", "u")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldSubjectScope, Name: "tid"},
		},
		{name: "scope with slash", m: scoped, id: persistent(attr("oid", "o"), attr("tid", "t/u")), want: claims.ErrInvalidScope},
		{
			name:    "subject names all empty",
			m:       claims.Mapping{Subject: claims.Field{Names: []string{""}}},
			id:      persistent(attr("", "x")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldSubject, Names: []string{""}},
		},

		{
			name:    "required email absent",
			m:       required,
			id:      persistent(attr("groups", "g")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldEmail, Names: []string{"urn:email", "email"}},
			msg:     `claims: required attribute for "email" missing (tried "urn:email", "email")`,
		},
		{
			name:    "required email without values",
			m:       required,
			id:      persistent(attr("email"), attr("groups", "g")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldEmail, Names: []string{"urn:email", "email"}, Found: "email"},
		},
		{
			name:    "required email only empty",
			m:       required,
			id:      persistent(attr("email", ""), attr("groups", "g")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldEmail, Names: []string{"urn:email", "email"}, Found: "email"},
		},
		{
			name:    "first present wins even when empty",
			m:       required,
			id:      persistent(attr("urn:email", ""), attr("email", "a@example.com"), attr("groups", "g")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldEmail, Names: []string{"urn:email", "email"}, Found: "urn:email"},
		},
		{
			name:    "required groups only empty",
			m:       required,
			id:      persistent(attr("email", "a@example.com"), attr("groups", "", "")),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldGroups, Names: []string{"groups"}, Found: "groups"},
		},
		{
			name:    "required field without names",
			m:       claims.Mapping{GivenName: claims.Field{Required: true}},
			id:      persistent(),
			want:    claims.ErrMissingAttribute,
			missing: &claims.MissingAttributeError{Field: claims.FieldGivenName},
			msg:     `claims: required attribute for "givenName" missing (no attribute names configured)`,
		},
		{
			name:  "email with two distinct values",
			m:     claims.Generic(),
			id:    persistent(attr("email", "a@example.com", "b@example.com")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldEmail, Name: "email"},
			msg:   `claims: attribute "email" for "email" is ambiguous: more than one distinct value`,
		},
		{
			name:  "display name distinct across elements",
			m:     claims.Generic(),
			id:    persistent(attr("displayName", "Ada"), attr("displayName", "ada")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldDisplayName, Name: "displayName"},
		},
		{
			name:  "given name differs only by Kelvin sign",
			m:     claims.Generic(),
			id:    persistent(attr("givenName", "Kim", "\u212Aim")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldGivenName, Name: "givenName"},
		},
		{
			name:  "family name in two statements",
			m:     claims.Entra(),
			id:    entraIdentity(attr(claims.ClaimSurname, "Lovelace"), attr(claims.ClaimSurname, "Byron")),
			want:  claims.ErrAmbiguousAttribute,
			ambig: &claims.AmbiguousAttributeError{Field: claims.FieldFamilyName, Name: claims.ClaimSurname},
		},
		{
			name: "too many groups",
			m:    claims.Mapping{Groups: claims.Field{Names: []string{"groups"}}, MaxValues: 3},
			id:   persistent(attr("groups", "a", "b"), attr("groups", "c", "d")),
			want: claims.ErrTooManyValues,
			msg:  `claims: attribute "groups" for "groups" has more than 3 values`,
		},
		{
			name: "too many kept values",
			m:    claims.Mapping{Keep: []string{"role"}, MaxValues: 1},
			id:   persistent(attr("role", "a", "b")),
			want: claims.ErrTooManyValues,
		},
		{
			name: "too many email values",
			m:    claims.Mapping{Email: claims.Field{Names: []string{"email"}}, MaxValues: 2},
			id:   persistent(attr("email", "a", "a", "a")),
			want: claims.ErrTooManyValues,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, p, err := tt.m.Map(tt.id)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, userstore.Key{}, key)
			assert.Equal(t, userstore.Profile{}, p)
			for _, s := range sentinels() {
				if s != tt.want {
					assert.NotErrorIs(t, err, s, "an error wraps exactly one sentinel")
				}
			}
			if tt.missing != nil {
				var got *claims.MissingAttributeError
				require.ErrorAs(t, err, &got)
				assert.Equal(t, tt.missing, got)
			}
			if tt.ambig != nil {
				var got *claims.AmbiguousAttributeError
				require.ErrorAs(t, err, &got)
				assert.Equal(t, tt.ambig.Field, got.Field)
				assert.Equal(t, tt.ambig.Name, got.Name)
			}
			if tt.msg != "" {
				assert.EqualError(t, err, tt.msg)
			}
		})
	}
}

func TestTooManyValuesError(t *testing.T) {
	t.Parallel()
	m := claims.Mapping{Groups: claims.Field{Names: []string{"groups"}}}
	values := make([]string, claims.DefaultMaxValues+1)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	_, _, err := m.Map(persistent(attr("groups", values...)))
	var tm *claims.TooManyValuesError
	require.ErrorAs(t, err, &tm)
	assert.Equal(t, &claims.TooManyValuesError{Field: claims.FieldGroups, Name: "groups", Limit: claims.DefaultMaxValues}, tm)

	// At the limit is fine, and duplicates are dropped with a map.
	_, p, err := m.Map(persistent(attr("groups", values[:claims.DefaultMaxValues]...)))
	require.NoError(t, err)
	assert.Len(t, p.Groups, claims.DefaultMaxValues)
}

func TestTypedErrorsIs(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("wrapped: %w", &claims.MissingAttributeError{Field: "email"})
	assert.ErrorIs(t, err, claims.ErrMissingAttribute)
	assert.NotErrorIs(t, err, claims.ErrAmbiguousAttribute)

	err = fmt.Errorf("wrapped: %w", &claims.AmbiguousAttributeError{Field: "subject", Name: "oid"})
	assert.ErrorIs(t, err, claims.ErrAmbiguousAttribute)
	assert.EqualError(t, errors.Unwrap(err), `claims: attribute "oid" for "subject" is ambiguous`)

	err = fmt.Errorf("wrapped: %w", &claims.TooManyValuesError{Field: "groups", Name: "g", Limit: 1})
	assert.ErrorIs(t, err, claims.ErrTooManyValues)
	assert.NotErrorIs(t, err, claims.ErrMissingAttribute)
}

func TestMapNameIDFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format string
		m      claims.Mapping
		want   error
	}{
		{claims.NameIDFormatPersistent, claims.Generic(), nil},
		{claims.NameIDFormatUnspecified, claims.Generic(), nil},
		{"", claims.Generic(), nil},
		{claims.NameIDFormatEntity, claims.Generic(), nil},
		{claims.NameIDFormatKerberos, claims.Generic(), nil},
		{claims.NameIDFormatWindowsDomainQualifiedName, claims.Generic(), nil},
		{claims.NameIDFormatTransient, claims.Generic(), claims.ErrTransientNameID},
		{claims.NameIDFormatTransient, claims.Mapping{InsecureAllowTransientNameID: true}, nil},
		{claims.NameIDFormatTransient, claims.Mapping{AllowEmailNameID: true}, claims.ErrTransientNameID},
		{claims.NameIDFormatEmailAddress, claims.Generic(), claims.ErrEmailNameID},
		{claims.NameIDFormatEmailAddress, claims.Mapping{AllowEmailNameID: true}, nil},
		{claims.NameIDFormatEmailAddress, claims.Mapping{InsecureAllowTransientNameID: true}, claims.ErrEmailNameID},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			id := &claims.Identity{Issuer: issuer, NameID: "n-1", NameIDFormat: tt.format}
			key, _, err := tt.m.Map(id)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, userstore.Key{Issuer: issuer, Subject: "n-1"}, key)
		})
	}
}

func TestMapSubjectFromAttributeIgnoresNameID(t *testing.T) {
	t.Parallel()
	m := claims.Mapping{Subject: claims.Field{Names: []string{"uid"}}}
	for _, nameID := range []*claims.Identity{
		{Issuer: issuer, NameID: "_t", NameIDFormat: claims.NameIDFormatTransient},
		{Issuer: issuer, NameID: "a@example.com", NameIDFormat: claims.NameIDFormatEmailAddress},
		{Issuer: issuer},
	} {
		nameID.Attributes = []claims.Attribute{attr("uid", "u-1")}
		key, _, err := m.Map(nameID)
		require.NoError(t, err)
		assert.Equal(t, userstore.Key{Issuer: issuer, Subject: "u-1"}, key)
	}

	// A scope with the NameID as subject.
	scopedNameID := claims.Mapping{SubjectScope: claims.Field{Names: []string{"tid"}}}
	key, _, err := scopedNameID.Map(persistent(attr("tid", "t")))
	require.NoError(t, err)
	assert.Equal(t, "t/p-123", key.Subject)
}

func TestMapExact(t *testing.T) {
	t.Parallel()
	m := claims.Mapping{Subject: claims.Field{Names: []string{"uid"}}}
	subjects := []string{"Kim", "\u212Aim", "kim", "KIM", "s", "\u017F", "e\u0301", "\u00e9", " kim", "kim "}
	seen := make(map[string]string)
	for _, s := range subjects {
		key, _, err := m.Map(persistent(attr("uid", s)))
		require.NoError(t, err)
		assert.Equal(t, s, key.Subject, "the subject is copied exactly, untrimmed")
		other, dup := seen[key.Subject]
		assert.False(t, dup, "%q and %q map to the same subject", s, other)
		seen[key.Subject] = s
	}

	// The same holds for NameIDs and issuers.
	k1, _, err := claims.Generic().Map(&claims.Identity{Issuer: "https://idp.example.com/K", NameID: "K"})
	require.NoError(t, err)
	k2, _, err := claims.Generic().Map(&claims.Identity{Issuer: "https://idp.example.com/\u212A", NameID: "\u212A"})
	require.NoError(t, err)
	assert.NotEqual(t, k1, k2)
	assert.NotEqual(t, k1.Subject, k2.Subject)
	assert.NotEqual(t, k1.Issuer, k2.Issuer)

	// Attribute names are matched exactly too.
	_, p, err := claims.Generic().Map(persistent(attr("EMAIL", "a@example.com"), attr("\u212Ael", "x")))
	require.NoError(t, err)
	assert.Empty(t, p.Email)
}

func TestMapProfile(t *testing.T) {
	t.Parallel()
	m := claims.Mapping{
		Email:       claims.Field{Names: []string{"urn:email", "email"}},
		DisplayName: claims.Field{Names: []string{"displayName"}},
		GivenName:   claims.Field{Names: []string{"givenName"}},
		FamilyName:  claims.Field{Names: []string{"sn"}},
		Groups:      claims.Field{Names: []string{"isMemberOf", "groups"}},
		Keep:        []string{"role", "absent", "eduPersonAffiliation"},
	}

	tests := []struct {
		name string
		id   *claims.Identity
		want userstore.Profile
	}{
		{
			name: "nothing asserted",
			id:   persistent(),
			want: userstore.Profile{},
		},
		{
			name: "everything",
			id: persistent(
				attr("email", "ada@example.com"),
				attr("displayName", " Ada Lovelace "),
				claims.Attribute{Name: "urn:oid:2.5.4.42", FriendlyName: "givenName", Values: []string{"Ada"}},
				attr("sn", "Lovelace", "", "Lovelace"),
				attr("groups", "b", "a", "", "b", "B"),
				attr("groups", "c", "a"),
				attr("role", "admin", "", "admin"),
				claims.Attribute{Name: "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", FriendlyName: "eduPersonAffiliation", Values: []string{"staff"}},
			),
			want: userstore.Profile{
				Email:       "ada@example.com",
				DisplayName: " Ada Lovelace ",
				GivenName:   "Ada",
				FamilyName:  "Lovelace",
				Groups:      []string{"b", "a", "B", "c"},
				Attributes: map[string][]string{
					"role":                 {"admin", "", "admin"},
					"eduPersonAffiliation": {"staff"},
				},
			},
		},
		{
			name: "first present candidate wins",
			id:   persistent(attr("email", "later@example.com"), attr("urn:email", "first@example.com"), attr("groups", "g"), attr("isMemberOf", "m")),
			want: userstore.Profile{Email: "first@example.com", Groups: []string{"m"}},
		},
		{
			name: "present without values",
			id:   persistent(attr("groups"), attr("role"), attr("email")),
			want: userstore.Profile{Groups: []string{}, Attributes: map[string][]string{"role": {}}},
		},
		{
			name: "only empty values",
			id:   persistent(attr("groups", "", ""), attr("email", "", "")),
			want: userstore.Profile{Groups: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, p, err := m.Map(tt.id)
			require.NoError(t, err)
			assert.Equal(t, userstore.Key{Issuer: issuer, Subject: "p-123"}, key)
			assert.Equal(t, tt.want, p)
			if tt.want.Groups == nil {
				assert.Nil(t, p.Groups)
			} else {
				assert.NotNil(t, p.Groups)
			}
			if tt.want.Attributes == nil {
				assert.Nil(t, p.Attributes)
			}
		})
	}
}

func TestMapDoesNotAlias(t *testing.T) {
	t.Parallel()
	m := claims.Mapping{Groups: claims.Field{Names: []string{"groups"}}, Keep: []string{"role"}}
	id := persistent(attr("groups", "g"), attr("role", "r"))
	_, p, err := m.Map(id)
	require.NoError(t, err)
	p.Groups[0] = "changed"
	p.Attributes["role"][0] = "changed"
	assert.Equal(t, []string{"g"}, id.Values("groups"))
	assert.Equal(t, []string{"r"}, id.Values("role"))
}

func TestMapLargeInputIsLinear(t *testing.T) {
	t.Parallel()
	// Many attributes and a full group list: must finish quickly.
	attrs := make([]claims.Attribute, 0, 20001)
	for i := range 20000 {
		attrs = append(attrs, attr("x"+strconv.Itoa(i), "v"))
	}
	groups := make([]string, claims.DefaultMaxValues)
	for i := range groups {
		groups[i] = strconv.Itoa(i % 100)
	}
	attrs = append(attrs, attr("groups", groups...))
	for name, m := range presets() {
		_, _, err := m.Map(persistent(attrs...))
		if name == claims.PresetEntra {
			require.ErrorIs(t, err, claims.ErrMissingAttribute)
			continue
		}
		require.NoError(t, err, name)
	}
	_, p, err := claims.Generic().Map(persistent(attrs...))
	require.NoError(t, err)
	assert.Len(t, p.Groups, 100)
}

func TestMapperFunc(t *testing.T) {
	t.Parallel()
	var m claims.Mapper = claims.MapperFunc(func(id *claims.Identity) (userstore.Key, userstore.Profile, error) {
		key, p, err := claims.Generic().Map(id)
		if err != nil {
			return userstore.Key{}, userstore.Profile{}, err
		}
		p.Groups = append(p.Groups, "everyone")
		return key, p, nil
	})
	key, p, err := m.Map(persistent(attr("groups", "g")))
	require.NoError(t, err)
	assert.Equal(t, userstore.Key{Issuer: issuer, Subject: "p-123"}, key)
	assert.Equal(t, []string{"g", "everyone"}, p.Groups)

	_, _, err = m.Map(nil)
	require.ErrorIs(t, err, claims.ErrInvalidAssertion)

	// Mapping itself is a Mapper.
	var _ claims.Mapper = claims.Mapping{}
}
