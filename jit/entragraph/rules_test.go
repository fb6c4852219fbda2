package entragraph_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/jit/entragraph"
)

// TestOnlyGroupsAreMemberships: transitiveMemberOf may list other
// directory objects; one typed as anything but a group is skipped, and one
// without @odata.type counts as a group (the cast to microsoft.graph.group
// leaves it out).
func TestOnlyGroupsAreMemberships(t *testing.T) {
	f := newFixture(t)
	untyped, role, unit := guid(), guid(), guid()
	f.g.set(func(g *graphDouble) {
		g.others = []map[string]string{
			{"id": untyped},
			{"@odata.type": "#microsoft.graph.directoryRole", "id": role},
			{"@odata.type": "#microsoft.graph.administrativeUnit", "id": unit},
		}
	})
	got, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Equal(t, append([]string{untyped}, f.groups...), got)
}

// TestPageSizeCapIsExact: a page of exactly entragraph.MaxBodyBytes is
// read; one byte more is refused as over the cap.
func TestPageSizeCapIsExact(t *testing.T) {
	f := newFixture(t)
	f.g.set(func(g *graphDouble) { g.padTo = entragraph.MaxBodyBytes })
	got, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err, "pages of exactly the cap")
	assert.Equal(t, f.groups, got)

	f.g.set(func(g *graphDouble) { g.padTo = entragraph.MaxBodyBytes + 1 })
	_, err = f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
	require.ErrorIs(t, err, entragraph.ErrGraph)
	assert.ErrorContains(t, err, "a page is over")
}

// TestRetryAfterZeroRetriesAtOnce: "Retry-After: 0" means retry now, not
// after the default wait of a 429 that names none (a second, past this
// budget).
func TestRetryAfterZeroRetriesAtOnce(t *testing.T) {
	f := newFixture(t)
	f.g.set(func(g *graphDouble) { g.throttle, g.retryAfter = 1, "0" })
	got, err := f.resolver(t, func(o *entragraph.Options) { o.Timeout = 900 * time.Millisecond }).MemberGroups(t.Context(), f.tenant, f.user)
	require.NoError(t, err)
	assert.Len(t, got, 250)
	_, pages := f.g.calls()
	assert.Equal(t, 4, pages)
}

// TestRemoteTextTruncatedPast200Bytes: text from Graph put into an error
// is kept whole up to 200 bytes, and cut there, marked "…", past it.
func TestRemoteTextTruncatedPast200Bytes(t *testing.T) {
	for n, want := range map[int]string{
		200: `"` + strings.Repeat("x", 200) + `"`,
		201: `"` + strings.Repeat("x", 200) + `…"`,
	} {
		f := newFixture(t)
		f.g.set(func(g *graphDouble) { g.others = []map[string]string{{"id": strings.Repeat("x", n)}} })
		_, err := f.resolver(t).MemberGroups(t.Context(), f.tenant, f.user)
		require.ErrorIs(t, err, entragraph.ErrGraph)
		assert.Contains(t, err.Error(), "group ID "+want+" that is not a GUID", "an ID of %d bytes", n)
	}
}
