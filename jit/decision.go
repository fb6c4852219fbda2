package jit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/samljit/samljit/userstore"
)

// The sign-in decision. decide is the only place that says what a sign-in
// does to the store: the ACS (on both store paths) and Explain call it, and
// each gathers the facts it asks for in its own way. decide does no I/O
// and calls no hook: when it cannot decide without a fact from outside
// (the users holding the email, an application hook's answer) it says
// which, and the caller gathers it, outside any store transaction, and
// asks again.

// action is what a sign-in does to the store. The values are those of
// [Decision.Action].
type action string

// The actions.
const (
	actionRefuse action = "refuse" // write nothing; verdict.err says why
	actionCreate action = "create" // create the user with verdict.profile
	actionUpdate action = "update" // write verdict.profile over the stored verdict.user
	actionLink   action = "link"   // bind the local account verdict.user to the key, with verdict.profile
)

// need is a fact decide cannot decide without.
type need int

// The facts decide may ask for.
const (
	needNothing    need = iota
	needEmailUsers      // the users holding the asserted email ([userstore.Linker.LookupEmail]): signInFacts.emailUsers
	needProof           // [Brownfield.Prove]'s answer for the local account verdict.user: signInFacts.proof
	needApproval        // [Policy.BeforeCreate]'s answer: signInFacts.approval
)

// answer is an application hook's answer: not asked yet, given (err nil
// accepts, anything else refuses), or not run because the caller does not
// run hooks (Explain).
type answer struct {
	asked  bool
	notRun bool
	err    error
}

// signInFacts is what decide judges, besides the connection's policy.
type signInFacts struct {
	issuer  string            // the connection's IdP entity ID
	key     userstore.Key     // the mapped key
	profile userstore.Profile // the mapped profile, groups resolved
	overage bool              // the IdP omitted the groups and they were not resolved
	stored  *userstore.User   // the user under key; nil when there is none
	linker  bool              // the store can find users by email and link them

	emailUsers  []userstore.User // the users holding profile.Email
	emailLooked bool             // emailUsers has been looked up
	proof       answer           // Brownfield.Prove's
	approval    answer           // BeforeCreate's
}

// verdict is what decide decided, or the fact it needs first.
type verdict struct {
	need    need
	action  action
	err     error             // why a refusal
	user    *userstore.User   // the user updated, the local account linked or to prove, the suspended user refused
	profile userstore.Profile // what a creation, update or link writes
}

func refusal(err error) verdict { return verdict{action: actionRefuse, err: err} }

// decide says what a sign-in through a connection with policy p does, given
// f. It reads nothing but its arguments, changes neither, and calls no
// hook. The order of the rules:
//
//   - a stored user: refused if suspended; otherwise updated by the
//     policy's sync rules and roles, or refused by them;
//   - a first sign-in whose email belongs to existing users (when the store
//     can tell): refused, or linked to the one local account the brownfield
//     policy allows;
//   - otherwise created, if the policy allows it and BeforeCreate accepts.
func decide(p *Policy, f *signInFacts) verdict {
	if u := f.stored; u != nil {
		if err := suspended(u); err != nil {
			v := refusal(err)
			v.user = u
			return v
		}
		profile, err := p.apply(u, f.profile, f.overage)
		if err != nil {
			return refusal(err)
		}
		return verdict{action: actionUpdate, user: u, profile: profile}
	}
	if v, ok := p.brownfield(f); ok {
		return v
	}
	profile, err := p.apply(nil, f.profile, f.overage)
	if err != nil {
		return refusal(err)
	}
	if p.BeforeCreate != nil {
		switch a := f.approval; {
		case !a.asked:
			return verdict{need: needApproval}
		case a.err != nil:
			return refusal(hookErr("BeforeCreate", a.err))
		}
	}
	return verdict{action: actionCreate, profile: profile}
}

// suspended refuses a suspended user. It is decide's first rule, also
// applied to the record a write returns: a user suspended while the
// sign-in ran is refused too.
func suspended(u *userstore.User) error {
	if u.Status == userstore.Suspended {
		return fmt.Errorf("%w: user %s", ErrSuspended, u.ID)
	}
	return nil
}

// brownfield is decide's rule for a first sign-in whose email belongs to
// existing users. ok is false when the brownfield policy has nothing to
// say: no such user, or a store that cannot tell.
func (p *Policy) brownfield(f *signInFacts) (v verdict, ok bool) {
	if !f.linker || strings.TrimSpace(f.profile.Email) == "" {
		return v, false
	}
	if !f.emailLooked {
		return verdict{need: needEmailUsers}, true
	}
	var local []userstore.User
	for _, u := range f.emailUsers {
		if u.Key == f.key {
			// Created by a concurrent sign-in of the same person since
			// the lookup: no conflict, the write will be an update.
			continue
		}
		switch u.Key.Issuer {
		case userstore.LocalIssuer:
			local = append(local, u)
		case f.issuer:
			// The store refuses this too, atomically (ErrEmailInUse);
			// deciding it here names the other subject.
			return refusal(fmt.Errorf("%w: user %s has this email under subject %q; the sign-in is for subject %q", ErrIdentifierConflict, u.ID, u.Key.Subject, f.key.Subject)), true
		default:
			// Another connection's user: never linked, and never in
			// the way. Each IdP asserts emails for its own users only,
			// so another tenant's claim to this address says nothing
			// about this person, and must not lock them out.
		}
	}
	if len(local) == 0 {
		return v, false
	}
	existing := &local[0]
	b := &p.Brownfield
	switch {
	case b.Mode == BrownfieldDeny:
		return refusal(fmt.Errorf("%w: local account %s has this email and the brownfield policy is deny", ErrEmailConflict, existing.ID)), true
	case len(local) > 1:
		return refusal(fmt.Errorf("%w: %d local accounts have this email", ErrEmailConflict, len(local))), true
	case b.Mode == BrownfieldLinkVerifiedDomains && !b.domainVerified(f.profile.Email):
		return refusal(fmt.Errorf("%w: local account %s has this email, whose domain is not verified for the connection", ErrEmailConflict, existing.ID)), true
	case b.Mode == BrownfieldLinkAfterProof:
		switch a := f.proof; {
		case !a.asked:
			return verdict{need: needProof, user: existing}, true
		case a.notRun:
			return refusal(fmt.Errorf("%w: local account %s has this email; linking needs the person to prove it (the Prove hook is not run here)", ErrProofRequired, existing.ID)), true
		case errors.Is(a.err, ErrVetoed):
			return refusal(fmt.Errorf("%w: %w", ErrProofRequired, a.err)), true
		case a.err != nil:
			return refusal(fmt.Errorf("%w: local account %s: %w", ErrProofRequired, existing.ID, a.err)), true
		}
	}
	if existing.Status == userstore.Suspended {
		return refusal(fmt.Errorf("%w: local account %s", ErrSuspended, existing.ID)), true
	}
	profile, err := p.apply(existing, f.profile, f.overage)
	if err != nil {
		return refusal(err), true
	}
	return verdict{action: actionLink, user: existing, profile: profile}, true
}
