package jit

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// TestDecide walks the decision through its rules and the facts it asks
// for, and checks that it changes neither its policy nor its facts.
func TestDecide(t *testing.T) {
	const issuer = "https://idp.example/"
	key := userstore.Key{Issuer: issuer, Subject: "p-ada"}
	in := userstore.Profile{Email: "ada@example.com", DisplayName: "Ada", Groups: []string{"staff"}}
	stored := &userstore.User{ID: "u1", Key: key, Profile: userstore.Profile{Email: "ada@old.example"}}
	local := userstore.User{ID: "l1", Key: userstore.Key{Issuer: userstore.LocalIssuer, Subject: "acct-1"}, Profile: userstore.Profile{Email: in.Email}}
	other := userstore.User{ID: "o1", Key: userstore.Key{Issuer: "https://other.example/", Subject: "x"}}
	same := userstore.User{ID: "s1", Key: userstore.Key{Issuer: issuer, Subject: "p-old"}}
	veto := Veto("no")
	proof := Policy{Brownfield: Brownfield{Mode: BrownfieldLinkAfterProof, Prove: proveNothing}}
	linkVerified := Policy{Brownfield: Brownfield{Mode: BrownfieldLinkVerifiedDomains, VerifiedDomains: []string{"example.com"}}}
	withHook := Policy{BeforeCreate: beforeCreateNothing}
	facts := func(edit func(*signInFacts)) signInFacts {
		f := signInFacts{issuer: issuer, key: key, profile: in.Clone(), linker: true}
		if edit != nil {
			edit(&f)
		}
		return f
	}
	looked := func(users ...userstore.User) func(*signInFacts) {
		return func(f *signInFacts) { f.emailUsers, f.emailLooked = users, true }
	}

	tests := []struct {
		name   string
		policy Policy
		facts  signInFacts
		need   need
		action action
		is     error
		user   string
	}{
		{name: "Returning", facts: facts(func(f *signInFacts) { f.stored = stored }), action: actionUpdate, user: "u1"},
		{name: "ReturningSuspended", facts: facts(func(f *signInFacts) {
			s := *stored
			s.Status = userstore.Suspended
			f.stored = &s
		}), action: actionRefuse, is: ErrSuspended, user: "u1"},
		{name: "FirstAsksForTheEmailUsers", facts: facts(nil), need: needEmailUsers},
		{name: "FirstWithoutLinkerNeedsNothing", facts: facts(func(f *signInFacts) { f.linker = false }), action: actionCreate},
		{name: "FirstBlankEmailNeedsNothing", facts: facts(func(f *signInFacts) { f.profile.Email = " " }), action: actionCreate},
		{name: "FirstNoOneHoldsTheEmail", facts: facts(looked()), action: actionCreate},
		{name: "FirstItselfHoldsTheEmail", facts: facts(looked(userstore.User{ID: "u1", Key: key})), action: actionCreate},
		// Another tenant's user with this email is neither linked nor in
		// the way.
		{name: "AnotherConnectionsUser", policy: linkVerified, facts: facts(looked(other)), action: actionCreate},
		{name: "AnotherConnectionsUserAndLocal", policy: linkVerified, facts: facts(looked(other, local)), action: actionLink, user: "l1"},
		{name: "SameIdPAnotherSubject", policy: linkVerified, facts: facts(looked(same)), action: actionRefuse, is: ErrIdentifierConflict},
		{name: "LocalDenied", facts: facts(looked(local)), action: actionRefuse, is: ErrEmailConflict},
		{name: "LocalLinked", policy: linkVerified, facts: facts(looked(local)), action: actionLink, user: "l1"},
		{name: "TwoLocal", policy: linkVerified, facts: facts(looked(local, local)), action: actionRefuse, is: ErrEmailConflict},
		{name: "ProofAsked", policy: proof, facts: facts(looked(local)), need: needProof, user: "l1"},
		{name: "ProofGiven", policy: proof, facts: facts(func(f *signInFacts) {
			looked(local)(f)
			f.proof = answer{asked: true}
		}), action: actionLink, user: "l1"},
		{name: "ProofVetoed", policy: proof, facts: facts(func(f *signInFacts) {
			looked(local)(f)
			f.proof = answer{asked: true, err: veto}
		}), action: actionRefuse, is: ErrProofRequired},
		{name: "ProofNotRun", policy: proof, facts: facts(func(f *signInFacts) {
			looked(local)(f)
			f.proof = answer{asked: true, notRun: true}
		}), action: actionRefuse, is: ErrProofRequired},
		{name: "ApprovalAsked", policy: withHook, facts: facts(looked()), need: needApproval},
		{name: "ApprovalVetoed", policy: withHook, facts: facts(func(f *signInFacts) {
			looked()(f)
			f.approval = answer{asked: true, err: veto}
		}), action: actionRefuse, is: ErrVetoed},
		{name: "ApprovalFailed", policy: withHook, facts: facts(func(f *signInFacts) {
			looked()(f)
			f.approval = answer{asked: true, err: errors.New("down")}
		}), action: actionRefuse, is: ErrHook},
		{name: "ApprovalNotRun", policy: withHook, facts: facts(func(f *signInFacts) {
			looked()(f)
			f.approval = answer{asked: true, notRun: true}
		}), action: actionCreate},
		{name: "CreateDisabledBeforeTheHook", policy: Policy{DisableCreate: true, BeforeCreate: beforeCreateNothing}, facts: facts(looked()),
			action: actionRefuse, is: ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.facts
			copied := f
			copied.profile = f.profile.Clone()
			v := decide(&tt.policy, &f)
			assert.Equal(t, copied.profile, f.profile, "facts unchanged")
			assert.Equal(t, copied.stored, f.stored)
			require.Equal(t, tt.need, v.need)
			if tt.need == needNothing {
				require.Equal(t, tt.action, v.action, "%v", v.err)
			}
			if tt.is != nil {
				assert.ErrorIs(t, v.err, tt.is)
			} else {
				assert.NoError(t, v.err)
			}
			if tt.user != "" {
				require.NotNil(t, v.user)
				assert.Equal(t, tt.user, v.user.ID)
			}
		})
	}
}

// The hooks of TestDecide's policies: decide never calls them.
func proveNothing(*http.Request, userstore.User, userstore.Key, userstore.Profile) error {
	panic("decide called Prove")
}

func beforeCreateNothing(context.Context, NewUser) error { panic("decide called BeforeCreate") }
