package jit

import (
	"maps"
	"slices"
	"time"

	"github.com/samljit/samljit/userstore"
)

// EventKind is what happened at a sign-in.
type EventKind string

// The kinds of [Event].
const (
	// EventCreated: a first sign-in created the user.
	EventCreated EventKind = "created"
	// EventUpdated: a returning user signed in; Changed lists the profile
	// fields the sign-in changed (empty when nothing changed).
	EventUpdated EventKind = "updated"
	// EventLinked: a first sign-in was bound to an existing local
	// (brownfield) account by the connection's [Brownfield] policy;
	// Before is the local account's profile.
	EventLinked EventKind = "linked"
	// EventRefused: the sign-in was refused; Err says why.
	EventRefused EventKind = "refused"
	// EventGroupsOverage: the IdP omitted the groups because there were
	// too many. Emitted before the sign-in's outcome; Resolved says
	// whether the [GroupResolver] supplied them, and when it did not the
	// stored groups and roles were kept unchanged. When the resolver
	// failed, Err says why ([ErrGroupsUnavailable]) and the sign-in is
	// refused.
	EventGroupsOverage EventKind = "groups_overage"
)

// Event is the audit record of one sign-in outcome, passed to
// [Options.OnEvent].
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Time is when, by the middleware's clock.
	Time time.Time
	// CorrelationID ties the event to the log and to the page the person
	// saw.
	CorrelationID string
	// Connection is the IdP connection's name.
	Connection string
	// Key is the user's key, when the claims could be mapped.
	Key userstore.Key
	// UserID is the store's ID of the user, when one exists.
	UserID string
	// Changed names the profile fields an update changed: "email",
	// "display_name", "given_name", "family_name", "groups", "roles", and
	// "attributes/NAME" for each kept attribute.
	Changed []string
	// Before and After are the profile before and after an update; After
	// alone for a creation.
	Before, After *userstore.Profile
	// Err is the reason for a refusal, or, on an [EventGroupsOverage],
	// the group resolver's failure.
	Err error
	// Resolved is set on an [EventGroupsOverage] when the connection's
	// GroupResolver supplied the groups.
	Resolved bool
}

// Diff names the fields that differ between two profiles, in a stable
// order. Nil and empty slices and maps count as equal here: both mean
// "none asserted".
func Diff(before, after userstore.Profile) []string {
	var changed []string
	if before.Email != after.Email {
		changed = append(changed, "email")
	}
	if before.DisplayName != after.DisplayName {
		changed = append(changed, "display_name")
	}
	if before.GivenName != after.GivenName {
		changed = append(changed, "given_name")
	}
	if before.FamilyName != after.FamilyName {
		changed = append(changed, "family_name")
	}
	if !slices.Equal(before.Groups, after.Groups) {
		changed = append(changed, "groups")
	}
	if !slices.Equal(before.Roles, after.Roles) {
		changed = append(changed, "roles")
	}
	names := make(map[string]struct{}, len(before.Attributes)+len(after.Attributes))
	for k := range before.Attributes {
		names[k] = struct{}{}
	}
	for k := range after.Attributes {
		names[k] = struct{}{}
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if !slices.Equal(before.Attributes[k], after.Attributes[k]) {
			changed = append(changed, "attributes/"+k)
		}
	}
	return changed
}
