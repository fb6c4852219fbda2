package scim

import (
	"maps"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// SourceSCIM is the Source of every [Event] of this package: it names the
// path that made the change, so that an audit trail holding sign-ins'
// events and administrators' changes too can tell SCIM's apart.
const SourceSCIM = "scim"

// EventKind is what a SCIM request changed.
type EventKind string

// The kinds of [Event].
const (
	// EventUserCreated: a POST created the user.
	EventUserCreated EventKind = "user.created"
	// EventUserAdopted: a POST named a user a sign-in had created (same
	// externalId, no userName yet): the record was adopted, not
	// duplicated.
	EventUserAdopted EventKind = "user.adopted"
	// EventUserUpdated: a PUT or PATCH, or a group change, changed the
	// profile or userName (Changed lists the fields).
	EventUserUpdated EventKind = "user.updated"
	// EventUserSuspended: active false, or a DELETE under DeleteSuspends.
	EventUserSuspended EventKind = "user.suspended"
	// EventUserReactivated: active true reinstated a suspended user.
	EventUserReactivated EventKind = "user.reactivated"
	// EventUserDeleted: a DELETE under DeleteRemoves removed the record.
	EventUserDeleted EventKind = "user.deleted"
	// EventGroupCreated, EventGroupUpdated and EventGroupDeleted: a
	// group's own change; each member it changed has an
	// EventUserUpdated of its own.
	EventGroupCreated EventKind = "group.created"
	EventGroupUpdated EventKind = "group.updated"
	EventGroupDeleted EventKind = "group.deleted"
)

// Event is the audit record of one SCIM change, passed to
// [Options.OnEvent]. Its fields follow those of a sign-in's event, so an
// audit trail can hold both.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Source is always [SourceSCIM].
	Source string
	// Time is when, by the handler's clock.
	Time time.Time
	// Connection is the handler's connection.
	Connection string
	// Key and UserID name the user of a user event.
	Key    userstore.Key
	UserID string
	// GroupID names the group of a group event, or the group whose
	// change changed the user.
	GroupID string
	// Changed names what changed, in the names a sign-in's event uses:
	// "email", "display_name", "given_name", "family_name", "groups",
	// "roles", "attributes/NAME"; and "user_name" for SCIM's userName.
	Changed []string
	// Before and After are the profile before and after; After alone
	// for a creation.
	Before, After *userstore.Profile
}

// diff names the fields that differ between two profiles, in the order
// and names of a sign-in's event (jit.Diff, which this package cannot
// import); nil and empty count as equal.
func diff(before, after userstore.Profile) []string {
	var changed []string
	add := func(name string, differ bool) {
		if differ {
			changed = append(changed, name)
		}
	}
	add("email", before.Email != after.Email)
	add("display_name", before.DisplayName != after.DisplayName)
	add("given_name", before.GivenName != after.GivenName)
	add("family_name", before.FamilyName != after.FamilyName)
	add("groups", !slices.Equal(before.Groups, after.Groups))
	add("roles", !slices.Equal(before.Roles, after.Roles))
	names := map[string]struct{}{}
	for k := range before.Attributes {
		names[k] = struct{}{}
	}
	for k := range after.Attributes {
		names[k] = struct{}{}
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		add("attributes/"+k, !slices.Equal(before.Attributes[k], after.Attributes[k]))
	}
	return changed
}
