package jit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit"
)

// actionError is a resolver failure that names an administrator's to-do.
type actionError struct{ todo string }

func (e actionError) Error() string   { return "resolver: " + e.todo }
func (e actionError) Warning() string { return e.todo }

// A resolver error with a Warning method refuses the sign-in like any
// other, and its to-do is listed once in Warnings; a plain error is not.
func TestGroupResolverWarning(t *testing.T) {
	roles := jit.RoleMapping{GroupRoles: map[string][]string{"g-eng": {"editor"}}}
	t.Run("Actionable", func(t *testing.T) {
		fail := jit.GroupResolverFunc(func(context.Context, jit.GroupsQuery) ([]string, error) {
			return nil, fmt.Errorf("wrapped: %w", actionError{todo: "grant admin consent at https://consent.example/"})
		})
		h := policyHarness(t, jit.Policy{Roles: roles, GroupResolver: fail})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		for range 2 {
			resp, body := h.signIn(h.client(), "", "p-ada")
			corr := refusal(t, resp, body, http.StatusServiceUnavailable)
			assert.True(t, h.logged(corr, "https://consent.example/"))
		}
		require.ErrorIs(t, h.lastRefusal(), jit.ErrGroupsUnavailable)
		var ws []jit.Warning
		for _, w := range h.mw.Warnings() {
			if w.Code == jit.WarnGroupResolver {
				ws = append(ws, w)
			}
		}
		require.Len(t, ws, 1)
		assert.Equal(t, "grant admin consent at https://consent.example/", ws[0].Message)
		assert.Empty(t, h.users())
	})
	t.Run("Plain", func(t *testing.T) {
		fail := jit.GroupResolverFunc(func(context.Context, jit.GroupsQuery) ([]string, error) {
			return nil, errors.New("graph down")
		})
		h := policyHarness(t, jit.Policy{Roles: roles, GroupResolver: fail})
		h.idp().AddUser(overagePerson("p-ada", "ada@example.com"))
		resp, body := h.signIn(h.client(), "", "p-ada")
		refusal(t, resp, body, http.StatusServiceUnavailable)
		for _, w := range h.mw.Warnings() {
			assert.NotEqual(t, jit.WarnGroupResolver, w.Code)
		}
	})
}
