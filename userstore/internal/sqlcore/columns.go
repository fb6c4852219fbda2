package sqlcore

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samljit/samljit/userstore"
)

// Encoded is a profile in the form of the users table's columns.
type Encoded struct {
	// profile is the profile encoded.
	profile userstore.Profile
	// groups, attrs and roles are the JSON of Groups, Attributes and
	// Roles.
	groups, attrs, roles string
	// emailNorm is the email in the form of userstore.NormalizeEmail.
	emailNorm string
}

// Encode checks that the database can store p and encodes it. Groups,
// Attributes and Roles become JSON that keeps nil (null) and empty ([] or
// {}) apart, nested too; encoding/json replaces bytes that are not valid
// UTF-8 with U+FFFD.
func (c *Core) Encode(p userstore.Profile) (Encoded, error) {
	nul := c.d.TextRefusesNUL
	if nul && (hasNUL(p.Email) || hasNUL(p.DisplayName) || hasNUL(p.GivenName) || hasNUL(p.FamilyName)) {
		return Encoded{}, errors.New("profile contains a NUL character")
	}
	e := Encoded{profile: p, emailNorm: userstore.NormalizeEmail(p.Email)}
	var err error
	if e.groups, err = encodeJSON(p.Groups, p.Groups == nil, len(p.Groups), "[]", nul); err != nil {
		return Encoded{}, fmt.Errorf("encode groups: %w", err)
	}
	if e.attrs, err = encodeJSON(p.Attributes, p.Attributes == nil, len(p.Attributes), "{}", nul); err != nil {
		return Encoded{}, fmt.Errorf("encode attributes: %w", err)
	}
	if e.roles, err = encodeJSON(p.Roles, p.Roles == nil, len(p.Roles), "[]", nul); err != nil {
		return Encoded{}, fmt.Errorf("encode roles: %w", err)
	}
	return e, nil
}

// hasNUL reports whether s contains the NUL character.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// appendArgs appends the eight arguments a statement takes for a profile:
// email, display name, given name, family name, groups, attributes,
// roles and normalized email.
func (e *Encoded) appendArgs(args []any) []any {
	p := &e.profile
	return append(args, p.Email, p.DisplayName, p.GivenName, p.FamilyName, e.groups, e.attrs, e.roles, e.emailNorm)
}

// AppendInsertArgs appends the arguments of Queries.InsertUser: (id,
// issuer, subject, profile, now).
func (c *Core) AppendInsertArgs(args []any, id string, key userstore.Key, e *Encoded, now time.Time) []any {
	args = e.appendArgs(append(args, id, key.Issuer, key.Subject))
	return c.appendTime(args, now)
}

// appendTime appends the statement arguments of t.
func (c *Core) appendTime(args []any, t time.Time) []any {
	first, second := c.d.Time.Args(t)
	if c.timeCols == 1 {
		return append(args, first)
	}
	return append(args, first, second)
}

// Row receives the columns of a user that are decoded after Scan.
type Row struct {
	// Groups, Attributes, Roles and LocalRoles are JSON text.
	Groups, Attributes, Roles, LocalRoles string
	// Status is the user's userstore.Status.
	Status int64
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanUser reads the user columns of one row into u, preceded by issuer
// and subject when withKey is set.
func (c *Core) scanUser(r scanner, u *userstore.User, withKey bool) error {
	var row Row
	if err := r.Scan(c.appendUserDest(make([]any, 0, 12+3*c.timeCols), u, &row, withKey)...); err != nil {
		return err
	}
	return Decode(u, &row)
}

// appendUserDest appends the Scan destinations of the user columns, into
// u and row, preceded by issuer and subject when withKey is set. [Decode]
// finishes u once the row is scanned.
func (c *Core) appendUserDest(dest []any, u *userstore.User, row *Row, withKey bool) []any {
	if withKey {
		dest = append(dest, &u.Key.Issuer, &u.Key.Subject)
	}
	dest = append(dest, &u.ID, &u.Profile.Email, &u.Profile.DisplayName, &u.Profile.GivenName, &u.Profile.FamilyName,
		&row.Groups, &row.Attributes, &row.Roles, &row.LocalRoles, &row.Status)
	dest = c.d.Time.AppendDest(dest, &u.CreatedAt)
	dest = c.d.Time.AppendDest(dest, &u.UpdatedAt)
	return c.d.Time.AppendDest(dest, &u.LastSignInAt)
}

// Qualify returns columns, a comma-separated list of a table's columns
// (with casts, as a select list may have them), each prefixed with
// alias and a dot, for a query that joins that table with another.
func Qualify(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, col := range cols {
		cols[i] = alias + "." + strings.TrimSpace(col)
	}
	return strings.Join(cols, ", ")
}

// Decode sets the groups, attributes, roles, local roles and status of u,
// whose ID is set, from r.
func Decode(u *userstore.User, r *Row) error {
	var err error
	if u.Profile.Groups, err = decodeStrings(r.Groups); err != nil {
		return fmt.Errorf("user %s: groups: %w", u.ID, err)
	}
	if u.Profile.Attributes, err = decodeAttributes(r.Attributes); err != nil {
		return fmt.Errorf("user %s: attributes: %w", u.ID, err)
	}
	if u.Profile.Roles, err = decodeStrings(r.Roles); err != nil {
		return fmt.Errorf("user %s: roles: %w", u.ID, err)
	}
	if u.LocalRoles, err = DecodeLocalRoles(r.LocalRoles); err != nil {
		return fmt.Errorf("user %s: local roles: %w", u.ID, err)
	}
	u.Status = userstore.Status(r.Status)
	return nil
}

// encodeJSON returns v, a slice or map of n elements, as JSON: "null"
// when v is nil, empty ("[]" or "{}") when n is 0, and json.Marshal's
// output otherwise, where nil and empty nested slices stay apart as null
// and []. With refuseNUL it refuses a NUL character.
func encodeJSON[T any](v T, isNil bool, n int, empty string, refuseNUL bool) (string, error) {
	switch {
	case isNil:
		return "null", nil
	case n == 0:
		return empty, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if refuseNUL && bytes.Contains(b, []byte(`\u0000`)) {
		return "", errors.New("contains a NUL character")
	}
	return string(b), nil
}

// decodeStrings is the inverse of encodeJSON for a []string: JSON null is
// nil and [] an empty slice.
func decodeStrings(s string) ([]string, error) {
	switch s {
	case "null":
		return nil, nil
	case "[]":
		return []string{}, nil
	}
	if ss, ok := plainStrings(s); ok {
		return ss, nil
	}
	var ss []string
	if err := json.Unmarshal([]byte(s), &ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// plainStrings decodes s, a JSON array of strings, when it is in the
// plain form encodeJSON writes for strings that need no escape: no
// whitespace, and no backslash, control character or invalid UTF-8 in any
// element. The elements share s's memory. ok is false for anything else,
// which encoding/json then decodes (or refuses): for every s where ok is
// true, the result is the one json.Unmarshal gives. A user's groups (up
// to 150 object IDs from Entra ID) are in this form, and encoding/json's
// reflection took most of an authenticated request's time.
func plainStrings(s string) (ss []string, ok bool) {
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' || s[1] != '"' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	// The separators are ASCII, so body is valid UTF-8 exactly when every
	// element is.
	switch plainText(body) {
	case textEscaped:
		return nil, false
	case textNonASCII:
		if !utf8.ValidString(body) {
			return nil, false
		}
	}
	ss = make([]string, 0, strings.Count(body, ",")+1)
	for {
		// body starts with an element's opening quote.
		end := strings.IndexByte(body[1:], '"') + 1
		if end == 0 {
			return nil, false
		}
		ss = append(ss, body[1:end])
		body = body[end+1:]
		switch {
		case body == "":
			return ss, true
		case len(body) < 3 || body[0] != ',' || body[1] != '"':
			return nil, false
		}
		body = body[1:]
	}
}

// What plainText finds in a text.
const (
	textASCII    = iota // printable ASCII only, no backslash
	textNonASCII        // bytes from 0x80, but no control character or backslash
	textEscaped         // a control character or a backslash
)

// plainText reports whether s holds a control character (below 0x20) or a
// backslash, which a JSON string must escape, or else a byte from 0x80,
// reading eight bytes at a time.
func plainText(s string) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	var high uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		high |= x
		// A byte below 0x20, or equal to a backslash (0x5c): the
		// classic test for a zero byte, on x and on x XOR backslashes,
		// with the bytes from 0x80 masked out (they are told apart by
		// high).
		low := x &^ highs
		b := low ^ (0x5c * ones)
		if ((low-0x20*ones)|(b-ones))&highs&^x != 0 {
			return textEscaped
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '\\' {
			return textEscaped
		}
		high |= uint64(c)
	}
	if high&highs != 0 {
		return textNonASCII
	}
	return textASCII
}

// decodeAttributes is the inverse of encodeJSON for attributes: JSON null
// is nil and {} an empty map.
func decodeAttributes(s string) (map[string][]string, error) {
	switch s {
	case "null":
		return nil, nil
	case "{}":
		return map[string][]string{}, nil
	}
	var attrs map[string][]string
	if err := json.Unmarshal([]byte(s), &attrs); err != nil {
		return nil, err
	}
	return attrs, nil
}

// EncodeLocalRoles returns roles as JSON, "null" when there are none.
func EncodeLocalRoles(roles []string) (string, error) {
	if len(roles) == 0 {
		return "null", nil
	}
	b, err := json.Marshal(roles)
	if err != nil {
		return "", fmt.Errorf("encode local roles: %w", err)
	}
	return string(b), nil
}

// DecodeLocalRoles decodes local roles: nil when there are none (JSON
// null, or an empty array), and otherwise sorted byte by byte and unique,
// whatever the column holds.
func DecodeLocalRoles(s string) ([]string, error) {
	if s == "null" {
		return nil, nil
	}
	var roles []string
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, nil
	}
	slices.Sort(roles)
	return slices.Compact(roles), nil
}

// ScanInt64 returns src, a value database/sql scans from an integer
// column, as an int64, for the Scan method of a [TimeCodec]'s destination.
func ScanInt64(src any) (int64, error) {
	if n, ok := src.(int64); ok {
		return n, nil
	}
	// Whatever else database/sql converts to an int64.
	var v sql.Null[int64]
	if err := v.Scan(src); err != nil {
		return 0, err
	}
	if !v.Valid {
		return 0, errors.New("converting NULL to int64 is unsupported")
	}
	return v.V, nil
}
