package entragraph_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/claims"
	"github.com/samljit/samljit/jit"
	"github.com/samljit/samljit/jit/entragraph"
	"github.com/samljit/samljit/jit/jittest"
	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/sqlitestore"
)

// app is an application protected by jit with one Entra-shaped
// connection whose groups overage is resolved by an entragraph.Resolver
// against the Graph double; a real SQLite file; real HTTP.
type app struct {
	t testing.TB
	*fixture
	idp    *jittest.IdP
	mw     *jit.Middleware
	srv    *httptest.Server
	store  *sqlitestore.Store
	logs   *syncBuffer
	editor string // the group that grants "editor", on the last page
	admin  string // the admin group, on the first page

	mu     sync.Mutex
	events []jit.Event
}

// newApp's RoleMapping requires membership of the editor or admin group:
// without the groups no one is admitted.
func newApp(t testing.TB, edit ...func(*entragraph.Options)) *app {
	f := newFixture(t)
	a := &app{t: t, fixture: f, logs: &syncBuffer{}, admin: f.groups[3], editor: f.groups[240]}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("middleware log:\n%s", a.logs.String())
		}
	})
	a.idp = jittest.New(t, func(o *jittest.Options) { o.EntityID = "https://sts.windows.net/" + f.tenant + "/" })
	db, err := sql.Open("sqlite3", sqlitestore.DSN(filepath.Join(t.TempDir(), "users.db")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	a.store, err = sqlitestore.Open(context.Background(), db, sqlitestore.Options{})
	require.NoError(t, err)

	var handler http.Handler = http.NotFoundHandler()
	var hmu sync.RWMutex
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		defer hmu.RUnlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	key, cert := spKeyPair()
	a.mw, err = jit.New(context.Background(), jit.Options{
		RootURL: a.srv.URL, Key: key, Certificate: cert, Store: a.store,
		SessionKeys: [][]byte{bytes.Repeat([]byte{7}, 32)},
		Logger:      slog.New(slog.NewJSONHandler(a.logs, nil)),
		OnEvent: func(_ context.Context, e jit.Event) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.events = append(a.events, e)
		},
		Connections: []jit.Connection{{
			Name: "contoso", IDPMetadata: a.idp.Metadata(), Mapper: claims.Entra(),
			Policy: jit.Policy{
				Roles: jit.RoleMapping{
					GroupRoles:     map[string][]string{a.editor: {"editor"}},
					AdminGroups:    []string{a.admin},
					RequiredGroups: []string{a.editor, a.admin},
					DefaultRoles:   []string{"viewer"},
				},
				GroupResolver: f.resolver(t, edit...),
			},
		}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.mw.Close() })
	mux := http.NewServeMux()
	mux.Handle(a.mw.Prefix()+"/", a.mw)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "home") })
	hmu.Lock()
	handler = mux
	hmu.Unlock()
	return a
}

// addPerson adds an Entra-shaped person to the IdP: with groups, the
// groups claim; without, the groups.link overage claim instead, as Entra
// ID sends it past 150 groups.
func (a *app) addPerson(nameID, objectID string, groups []string) {
	attrs := map[string][]string{
		claims.ClaimEntraTenantID:    {a.tenant},
		claims.ClaimEntraObjectID:    {objectID},
		claims.ClaimEmailAddress:     {nameID + "@contoso.example"},
		claims.ClaimDisplayName:      {"Person " + nameID},
		claims.ClaimIdentityProvider: {"https://sts.windows.net/" + a.tenant + "/"},
	}
	if groups != nil {
		attrs[claims.ClaimGroups] = groups
	} else {
		attrs[claims.ClaimGroupsLink] = []string{"https://graph.windows.net/" + a.tenant + "/users/" + objectID + "/getMemberObjects"}
	}
	a.idp.AddUser(jittest.User{NameID: nameID, NameIDFormat: claims.NameIDFormatPersistent, Attributes: attrs})
}

func (a *app) signIn(nameID string) (*http.Response, string) {
	a.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(a.t, err)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := a.idp.SignIn(context.Background(), c, a.srv.URL+"/saml/contoso/login", nameID)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return resp, string(body)
}

func (a *app) users() []userstore.User {
	a.t.Helper()
	us, err := a.store.List(context.Background())
	require.NoError(a.t, err)
	return us
}

func (a *app) eventsOf(kind jit.EventKind) []jit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []jit.Event
	for _, e := range a.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestOverageSignInGetsRolesFromGraph(t *testing.T) {
	a := newApp(t)
	a.addPerson("ada", a.user, nil)
	resp, body := a.signIn("ada")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	us := a.users()
	require.Len(t, us, 1)
	assert.Equal(t, userstore.Key{Issuer: "https://sts.windows.net/" + a.tenant + "/", Subject: a.tenant + "/" + a.user}, us[0].Key)
	assert.Equal(t, a.groups, us[0].Profile.Groups, "all 250 groups, from three pages")
	assert.Equal(t, []string{"admin", "editor", "viewer"}, us[0].Profile.Roles, "the editor group is on the third page")
	over := a.eventsOf(jit.EventGroupsOverage)
	require.Len(t, over, 1)
	assert.True(t, over[0].Resolved)
	assert.Empty(t, a.mw.Warnings())
}

// Every failure of the resolver is a refusal: 503, the reason in the log
// under the page's correlation id, an overage event, and nothing written,
// neither for a new person nor over a returning person's record.
func TestOverageFailuresAreRefusals(t *testing.T) {
	cases := []struct {
		name  string
		opts  func(*entragraph.Options)
		setup func(a *app)
		want  error
		log   string
	}{
		{name: "NoConsent", setup: func(a *app) { a.g.set(func(g *graphDouble) { g.consented[a.tenant] = false }) }, want: entragraph.ErrConsentRequired, log: "adminconsent?client_id=" + testClientID},
		{name: "PermissionNotGranted", setup: func(a *app) { a.g.set(func(g *graphDouble) { g.permitted[a.tenant] = false }) }, want: entragraph.ErrConsentRequired, log: "Authorization_RequestDenied"},
		{name: "ThrottledPastBudget", setup: func(a *app) { a.g.set(func(g *graphDouble) { g.throttle, g.retryAfter = 1000, "120" }) }, want: entragraph.ErrThrottled, log: "429"},
		{name: "SlowPage", opts: func(o *entragraph.Options) { o.Timeout = 300 * time.Millisecond }, setup: func(a *app) { a.g.set(func(g *graphDouble) { g.slowPage, g.slowBy = 3, 10*time.Second }) }, want: entragraph.ErrTimeout, log: "time budget"},
		{name: "TooManyPages", opts: func(o *entragraph.Options) { o.MaxPages = 2 }, want: entragraph.ErrTooManyGroups, log: "more than 2 pages"},
		{name: "WrongSecret", opts: func(o *entragraph.Options) { o.Credential.ClientSecret = "rotated" }, want: entragraph.ErrToken, log: "AADSTS7000215"},
		{name: "UnknownUser", setup: func(a *app) {
			a.g.set(func(g *graphDouble) { clear(g.members[a.tenant]) })
		}, want: entragraph.ErrGraph, log: "Request_ResourceNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var opts []func(*entragraph.Options)
			if c.opts != nil {
				opts = append(opts, c.opts)
			}
			a := newApp(t, opts...)
			// A returning person: first signed in with the groups in the
			// token; now Entra sends the overage claim.
			a.addPerson("bob", a.user, []string{a.editor})
			resp, body := a.signIn("bob")
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			before := a.users()
			require.Len(t, before, 1)
			a.addPerson("bob", a.user, nil)
			// And a new person in the same position.
			newcomer := guid()
			a.g.setMembers(a.tenant, newcomer, a.groups)
			a.addPerson("cy", newcomer, nil)
			if c.setup != nil {
				c.setup(a)
			}
			for _, who := range []string{"bob", "cy"} {
				resp, body := a.signIn(who)
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
				assert.Contains(t, body, "temporarily unavailable")
				assert.NotContains(t, body, "adminconsent", "details go to the log, not the page")
				refused := a.eventsOf(jit.EventRefused)
				require.NotEmpty(t, refused)
				last := refused[len(refused)-1]
				require.ErrorIs(t, last.Err, jit.ErrGroupsUnavailable)
				require.ErrorIs(t, last.Err, c.want)
				assert.True(t, logged(a.logs.String(), last.CorrelationID, c.log), "log names %q", c.log)
			}
			assert.Equal(t, before, a.users(), "nothing written")
			over := a.eventsOf(jit.EventGroupsOverage)
			require.Len(t, over, 2)
			for _, e := range over {
				assert.False(t, e.Resolved)
				require.ErrorIs(t, e.Err, c.want)
			}
			consent := slices.ContainsFunc(a.mw.Warnings(), func(w jit.Warning) bool {
				return w.Code == jit.WarnGroupResolver && strings.Contains(w.Message, "/"+a.tenant+"/adminconsent?client_id="+testClientID)
			})
			assert.Equal(t, c.want == entragraph.ErrConsentRequired, consent, "the admin consent URL is listed in Warnings exactly for consent failures")
		})
	}
}

// logged reports whether a log record with the correlation id mentions
// word.
func logged(logs, corr, word string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, corr) && strings.Contains(line, word) {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// spKeyPair is the SP's key pair, generated once for the package's tests.
var spKeyPair = sync.OnceValues(func() (*rsa.PrivateKey, *x509.Certificate) {
	key, cert, err := jittest.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	return key, cert
})
