package jit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/userstore"
)

// Policy is what sign-ins through one connection may create and change.
// The zero value is the safe default: first sign-ins create users, every
// profile field follows the IdP at every sign-in, no roles are derived, and
// an email already held by another user refuses the first sign-in.
type Policy struct {
	// DisableCreate refuses first sign-ins: only users that already exist
	// (created earlier, by an administrator, SCIM or an import) may sign
	// in. An unknown user is refused with [ErrUnknownUser]. Linking an
	// existing local account under the Brownfield policy is not a creation
	// and is still allowed.
	DisableCreate bool

	// Sync says, per profile field, when a sign-in writes it. Keys are
	// "email", "display_name", "given_name", "family_name", "groups",
	// "attributes" (every kept attribute) and "attributes/NAME" (one kept
	// attribute, which overrides "attributes"). A field not listed is
	// [SyncAlways]. The attributes a provisioning directory owns
	// ([userstore.IsDirectoryAttribute]: SCIM's, such as the enterprise
	// department or manager) are outside these rules: a sign-in never
	// writes or removes them, so the default keeps what SCIM wrote there.
	// Groups are not: a sign-in with the default rewrites them from its
	// claims (set "groups" to SyncNever for a connection whose groups
	// SCIM provisions).
	Sync map[string]SyncRule

	// Roles derives application roles from the asserted groups. Roles are
	// re-derived at every sign-in into [userstore.Profile.Roles], so a role
	// whose group disappeared at the IdP is removed; roles granted in the
	// application ([userstore.User.LocalRoles]) are never touched.
	Roles RoleMapping

	// GroupResolver fetches a user's groups when the IdP omitted them
	// because there were too many (Entra ID's groups overage: a groups.link
	// claim instead of groups). Without one, the sign-in fails closed: a
	// first sign-in is refused with [ErrGroupsOverage] when Roles depends
	// on groups; a returning user is refused the same way when Roles has
	// RequiredGroups, and otherwise signs in with the DefaultRoles only:
	// the stored groups and every role derived from them are dropped
	// until a sign-in carries the groups again. (Keeping them would keep
	// a revoked admin group for as long as the person is in over 150
	// groups.) Either way an [EventGroupsOverage] is emitted, and the
	// connection warns with [WarnGroupsOverage].
	GroupResolver GroupResolver

	// Brownfield says what a first sign-in does when its email belongs to
	// an existing user. Default [BrownfieldDeny].
	Brownfield Brownfield

	// BeforeCreate, when set, is called before a first sign-in creates a
	// user (not before a brownfield link, which Brownfield.Prove guards),
	// outside any store transaction. Returning an error made by
	// [Veto] refuses the sign-in and shows the person the veto's reason;
	// any other error refuses it as a temporary failure (503).
	BeforeCreate func(ctx context.Context, u NewUser) error
}

// SyncRule says when a sign-in writes one profile field.
type SyncRule int

// The sync rules.
const (
	// SyncAlways writes the asserted value at every sign-in (the default).
	SyncAlways SyncRule = iota
	// SyncOnCreate writes the asserted value when the user is created and
	// keeps the stored value afterwards.
	SyncOnCreate
	// SyncIfEmpty writes the asserted value while the stored one is empty.
	SyncIfEmpty
	// SyncNever never writes the field from the assertion: it starts empty
	// and is the application's to manage.
	SyncNever
)

// String returns the rule's name.
func (r SyncRule) String() string {
	switch r {
	case SyncAlways:
		return "always"
	case SyncOnCreate:
		return "on-create"
	case SyncIfEmpty:
		return "if-empty"
	case SyncNever:
		return "never"
	default:
		return fmt.Sprintf("SyncRule(%d)", int(r))
	}
}

// The profile fields that [Policy.Sync] and [Event.Changed] name.
const (
	fieldEmail       = "email"
	fieldDisplayName = "display_name"
	fieldGivenName   = "given_name"
	fieldFamilyName  = "family_name"
	fieldGroups      = "groups"
	fieldAttributes  = "attributes"
	fieldRoles       = "roles"
)

// RoleAdmin is the role [RoleMapping.AdminGroups] grant: an administrator
// of the user's own connection, as that connection's IdP says.
const RoleAdmin = "admin"

// RoleMapping derives application roles from IdP groups. Group values are
// compared exactly (Entra ID sends group object IDs; other IdPs names).
// The zero value derives no roles and leaves [userstore.Profile.Roles] nil.
//
// A derived role is only as trustworthy as the connection's IdP: each
// customer's IdP can put its own users in any group, under any name. Grant
// with it rights over that connection's users only (compare the users'
// Key.Issuer), and test it with [userstore.User.HasIdPRole]. Rights across
// connections, such as an operator's, come from the application
// ([userstore.Admin.GrantRole], [userstore.User.HasLocalRole]), never from
// a tenant's claims.
type RoleMapping struct {
	// GroupRoles maps a group ID or name to the roles it grants.
	GroupRoles map[string][]string
	// RequiredGroups, when not empty, refuses a sign-in whose groups
	// include none of them ([ErrNotAuthorized]).
	RequiredGroups []string
	// AdminGroups grant [RoleAdmin].
	AdminGroups []string
	// DefaultRoles are granted to every user of the connection.
	DefaultRoles []string
}

// usesGroups reports whether the mapping depends on the user's groups.
func (rm *RoleMapping) usesGroups() bool {
	return len(rm.GroupRoles) > 0 || len(rm.RequiredGroups) > 0 || len(rm.AdminGroups) > 0
}

// isZero reports whether the mapping derives nothing at all.
func (rm *RoleMapping) isZero() bool { return !rm.usesGroups() && len(rm.DefaultRoles) == 0 }

// roles returns the roles groups grant, sorted and unique; nil when the
// mapping is zero.
func (rm *RoleMapping) roles(groups []string) []string {
	if rm.isZero() {
		return nil
	}
	out := slices.Clone(rm.DefaultRoles)
	if out == nil {
		out = []string{}
	}
	for _, g := range groups {
		out = append(out, rm.GroupRoles[g]...)
		if slices.Contains(rm.AdminGroups, g) {
			out = append(out, RoleAdmin)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Derive returns the roles groups grant, as a sign-in derives
// [userstore.Profile.Roles]: sorted and unique, nil when the mapping is
// zero. It is a [userstore.RoleFunc], for a provisioning directory (the
// scim package) to derive roles from group changes the same way.
func (rm RoleMapping) Derive(groups []string) []string { return rm.roles(groups) }

// admits reports whether groups satisfy RequiredGroups.
func (rm *RoleMapping) admits(groups []string) bool {
	if len(rm.RequiredGroups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(rm.RequiredGroups, g) {
			return true
		}
	}
	return false
}

// GroupResolver fetches the groups of a user whose assertion carried a
// groups overage claim instead of groups. Package
// [github.com/samljit/samljit/jit/entragraph] implements it with Microsoft
// Graph for Entra ID; an application may write its own.
//
// Any error refuses the sign-in with [ErrGroupsUnavailable] (a 503 the
// person may retry). An error that has, in its chain, a method
// Warning() string names something an administrator must do: its text is
// also recorded as a [WarnGroupResolver] warning.
type GroupResolver interface {
	ResolveGroups(ctx context.Context, q GroupsQuery) ([]string, error)
}

// GroupResolverFunc adapts a function to a [GroupResolver].
type GroupResolverFunc func(ctx context.Context, q GroupsQuery) ([]string, error)

// ResolveGroups calls f(ctx, q).
func (f GroupResolverFunc) ResolveGroups(ctx context.Context, q GroupsQuery) ([]string, error) {
	return f(ctx, q)
}

// GroupsQuery is what a [GroupResolver] is asked.
type GroupsQuery struct {
	// Connection is the IdP connection's name.
	Connection string
	// Key is the user's key.
	Key userstore.Key
	// Identity is the validated assertion's content (Entra ID: its
	// tenantid and objectidentifier claims).
	Identity *claims.Identity
	// Link is the overage claim's value: for Entra ID a Graph URL of the
	// user's group memberships.
	Link string
}

// BrownfieldMode says what a first sign-in does when its email belongs to
// an existing user.
type BrownfieldMode int

// The brownfield modes. In every mode a user bound to another IdP
// connection is never linked ([ErrEmailConflict]), and one bound to the
// same connection under another subject is an identifier conflict
// ([ErrIdentifierConflict]): neither a second account nor a takeover.
const (
	// BrownfieldDeny refuses the sign-in with [ErrEmailConflict] (the
	// default). An administrator resolves the conflict.
	BrownfieldDeny BrownfieldMode = iota
	// BrownfieldLinkVerifiedDomains links to the local account
	// ([userstore.LocalIssuer]) holding the email when the email's domain
	// is one of [Brownfield.VerifiedDomains]: domains whose every address
	// the connection's IdP is authoritative for.
	BrownfieldLinkVerifiedDomains
	// BrownfieldLinkAfterProof links to the local account holding the
	// email only when [Brownfield.Prove] accepts that the person proved
	// the account, for example by signing in to it locally first.
	BrownfieldLinkAfterProof
)

// Brownfield is a connection's policy for users that existed in the
// application before JIT. Linking needs a store that implements
// [userstore.Linker] (every bundled store does); detecting the conflict
// too, and with a store that does not, a first sign-in creates a new user
// whatever its email.
type Brownfield struct {
	// Mode is what to do; default [BrownfieldDeny].
	Mode BrownfieldMode
	// VerifiedDomains are the email domains the IdP is authoritative for,
	// compared after ASCII lower-casing; no subdomain is implied.
	VerifiedDomains []string
	// Prove decides, for [BrownfieldLinkAfterProof], whether the request
	// proves the person holds the existing local account (for example,
	// the application's own session for that account). It returns nil to
	// link; an error made by [Veto] shows its reason; any other error is
	// logged and the sign-in refused with [ErrProofRequired].
	Prove func(r *http.Request, existing userstore.User, key userstore.Key, p userstore.Profile) error
}

// domainVerified reports whether email's domain is in VerifiedDomains.
// An address without a local part names no mailbox, and is never in one.
func (b *Brownfield) domainVerified(email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return false
	}
	domain := userstore.NormalizeEmail(email[at+1:])
	for _, d := range b.VerifiedDomains {
		if domain != "" && userstore.NormalizeEmail(d) == domain {
			return true
		}
	}
	return false
}

// NewUser is what [Policy.BeforeCreate] is told about a user about to be
// created.
type NewUser struct {
	// Connection is the IdP connection's name.
	Connection string
	// Key and Profile are what the user would be created with.
	Key     userstore.Key
	Profile userstore.Profile
	// Request is the ACS request.
	Request *http.Request
}

// VetoError is a refusal by an application hook, with a reason the person
// may read.
type VetoError struct {
	// Reason is shown to the person as it is.
	Reason string
}

// Error returns the reason.
func (e *VetoError) Error() string { return "vetoed: " + e.Reason }

// Is reports whether target is [ErrVetoed].
func (e *VetoError) Is(target error) bool { return target == ErrVetoed }

// Veto returns the error a hook returns to refuse a sign-in and show the
// person reason.
func Veto(reason string) error { return &VetoError{Reason: reason} }

// syncFields are the fields [Policy.Sync] may name, besides
// "attributes/NAME".
var syncFields = []string{fieldEmail, fieldDisplayName, fieldGivenName, fieldFamilyName, fieldGroups, fieldAttributes}

// checkPolicy validates p at New.
func checkPolicy(p *Policy) error {
	for k, r := range p.Sync {
		if !slices.Contains(syncFields, k) && (!strings.HasPrefix(k, fieldAttributes+"/") || k == fieldAttributes+"/") {
			return fmt.Errorf("Policy.Sync names unknown field %q (want one of %s or attributes/NAME)", k, strings.Join(syncFields, ", "))
		}
		if r < SyncAlways || r > SyncNever {
			return fmt.Errorf("Policy.Sync[%q] is %s", k, r)
		}
		if name, ok := strings.CutPrefix(k, fieldAttributes+"/"); ok && userstore.IsDirectoryAttribute(name) {
			return fmt.Errorf("Policy.Sync names %q, an attribute a provisioning directory owns: sign-ins never write it", k)
		}
	}
	switch p.Brownfield.Mode {
	case BrownfieldDeny:
	case BrownfieldLinkVerifiedDomains:
		if len(p.Brownfield.VerifiedDomains) == 0 {
			return errors.New("Policy.Brownfield.Mode is BrownfieldLinkVerifiedDomains but VerifiedDomains is empty")
		}
		for _, d := range p.Brownfield.VerifiedDomains {
			if d == "" || strings.ContainsAny(d, "@ ") {
				return fmt.Errorf("Policy.Brownfield.VerifiedDomains has %q, not a domain", d)
			}
		}
	case BrownfieldLinkAfterProof:
		if p.Brownfield.Prove == nil {
			return errors.New("Policy.Brownfield.Mode is BrownfieldLinkAfterProof but Prove is nil")
		}
	default:
		return fmt.Errorf("Policy.Brownfield.Mode %d is unknown", p.Brownfield.Mode)
	}
	for g, roles := range p.Roles.GroupRoles {
		if g == "" || slices.Contains(roles, "") {
			return errors.New("Policy.Roles.GroupRoles has an empty group or role")
		}
	}
	if slices.Contains(p.Roles.DefaultRoles, "") || slices.Contains(p.Roles.RequiredGroups, "") || slices.Contains(p.Roles.AdminGroups, "") {
		return errors.New("Policy.Roles has an empty group or role")
	}
	return nil
}

// rule returns the sync rule of field.
func (p *Policy) rule(field string) SyncRule {
	if r, ok := p.Sync[field]; ok {
		return r
	}
	if strings.HasPrefix(field, fieldAttributes+"/") {
		return p.Sync[fieldAttributes]
	}
	return SyncAlways
}

// apply returns the profile a sign-in writes: in merged with the stored
// before (nil on creation) field by field by the sync rules, the groups
// kept from before when an unresolved overage left them unknown, and the
// roles derived from the resulting groups. It refuses a user the role
// mapping does not admit, and a first sign-in when creation is disabled
// or an overage leaves group-based roles unknown.
func (p *Policy) apply(before *userstore.User, in userstore.Profile, overage bool) (userstore.Profile, error) {
	if before == nil {
		if p.DisableCreate {
			return userstore.Profile{}, ErrUnknownUser
		}
		if overage && p.Roles.usesGroups() {
			return userstore.Profile{}, fmt.Errorf("%w: the IdP omitted the groups and no GroupResolver is configured", ErrGroupsOverage)
		}
	}
	var old userstore.Profile
	if before != nil {
		old = before.Profile
	}
	out := userstore.Profile{
		Email:       syncString(p.rule(fieldEmail), before != nil, old.Email, in.Email),
		DisplayName: syncString(p.rule(fieldDisplayName), before != nil, old.DisplayName, in.DisplayName),
		GivenName:   syncString(p.rule(fieldGivenName), before != nil, old.GivenName, in.GivenName),
		FamilyName:  syncString(p.rule(fieldFamilyName), before != nil, old.FamilyName, in.FamilyName),
		Groups:      syncSlice(p.rule(fieldGroups), before != nil, old.Groups, in.Groups),
	}
	if overage {
		// The groups are unknown. Keeping the stored ones would keep
		// whatever the IdP has since revoked (an admin group, say) for
		// as long as the person is in enough groups to cause an
		// overage, which they can often arrange themselves: fail closed.
		if len(p.Roles.RequiredGroups) > 0 {
			return userstore.Profile{}, fmt.Errorf("%w: the IdP omitted the groups, so membership of a required group %q cannot be checked, and no GroupResolver is configured", ErrGroupsOverage, p.Roles.RequiredGroups)
		}
		out.Groups = nil
	}
	out.Attributes = p.syncAttributes(before != nil, old.Attributes, in.Attributes)
	if !p.Roles.admits(out.Groups) {
		return userstore.Profile{}, fmt.Errorf("%w: none of the required groups %q", ErrNotAuthorized, p.Roles.RequiredGroups)
	}
	// Under an overage out.Groups is nil: only the default roles remain,
	// and every role derived from groups is dropped until the groups are
	// known again.
	out.Roles = p.Roles.roles(out.Groups)
	return out, nil
}

func syncString(r SyncRule, exists bool, old, in string) string {
	switch {
	case r == SyncNever:
		if exists {
			return old
		}
		return ""
	case !exists, r == SyncAlways:
		return in
	case r == SyncIfEmpty && old == "":
		return in
	default:
		return old
	}
}

func syncSlice(r SyncRule, exists bool, old, in []string) []string {
	switch {
	case r == SyncNever:
		if exists {
			return slices.Clone(old)
		}
		return nil
	case !exists, r == SyncAlways:
		return slices.Clone(in)
	case r == SyncIfEmpty && len(old) == 0:
		return slices.Clone(in)
	default:
		return slices.Clone(old)
	}
}

// syncAttributes merges kept attributes name by name. The attributes a
// provisioning directory owns (userstore.IsDirectoryAttribute) are outside
// the sync rules: an assertion never writes one, and a stored one is kept.
func (p *Policy) syncAttributes(exists bool, old, in map[string][]string) map[string][]string {
	if len(p.Sync) == 0 && !hasDirectoryAttribute(in) && !(exists && hasDirectoryAttribute(old)) {
		return cloneAttrs(in)
	}
	var out map[string][]string
	set := func(k string, v []string) {
		if out == nil {
			out = map[string][]string{}
		}
		out[k] = slices.Clone(v)
	}
	for k, v := range in {
		if userstore.IsDirectoryAttribute(k) {
			continue
		}
		r := p.rule(fieldAttributes + "/" + k)
		switch {
		case r == SyncNever:
		case !exists, r == SyncAlways:
			set(k, v)
		case r == SyncIfEmpty && len(old[k]) == 0:
			set(k, v)
		}
	}
	for k, v := range old {
		if _, done := out[k]; done {
			continue
		}
		r := p.rule(fieldAttributes + "/" + k)
		if exists && (r != SyncAlways || userstore.IsDirectoryAttribute(k)) {
			set(k, v)
		}
	}
	if out == nil && in != nil && len(in) == 0 {
		return map[string][]string{}
	}
	return out
}

// hasDirectoryAttribute reports whether attrs has an attribute a
// provisioning directory owns.
func hasDirectoryAttribute(attrs map[string][]string) bool {
	for k := range attrs {
		if userstore.IsDirectoryAttribute(k) {
			return true
		}
	}
	return false
}

func cloneAttrs(in map[string][]string) map[string][]string {
	if in == nil {
		return nil
	}
	out := make(map[string][]string, len(in))
	for k, v := range in {
		out[k] = slices.Clone(v)
	}
	return out
}
