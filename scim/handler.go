package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Store is what a [Handler] needs of a store: the sign-in contract, the
// directory side (users by indexed attributes, paging, writes with a
// userName; groups) and Admin, for the status changes SCIM may make and
// the sign-in path may not. memstore, sqlitestore and pgstore implement
// it.
type Store interface {
	userstore.Store
	userstore.Directory
	userstore.GroupDirectory
	userstore.Admin
}

// DeletePolicy is what DELETE /Users/{id} does.
type DeletePolicy int

const (
	// DeleteSuspends suspends the user and keeps the record, for audit:
	// the default. It also detaches the record from SCIM: its userName is
	// freed and SCIM answers 404 for it (RFC 7644 §3.6), though a list
	// without a filter still shows it, inactive. A later POST of the same
	// externalId adopts the record again (and active true reinstates it).
	DeleteSuspends DeletePolicy = iota
	// DeleteRemoves removes the record and ends its sessions. A later
	// sign-in through the connection creates a new record.
	DeleteRemoves
)

// Defaults of [Options].
const (
	// DefaultMaxBodyBytes bounds a request body.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultPageSize is the count of a list request that gives none.
	DefaultPageSize = 100
	// MaxPageSize is the largest count served; a larger one is lowered.
	MaxPageSize = 1000
	// MaxResponseMembers is the most members the answer to a PATCH of a
	// group lists. A group PATCH answers 204 No Content, as Entra ID and
	// Okta expect; one that names attributes or excludedAttributes gets
	// the group projected, except that a PATCH of a larger group answers
	// 204 unless its projection leaves members out.
	MaxResponseMembers = 1000
)

// Options configures a [Handler]. Store, Issuer, Subject and Tokens are
// required.
type Options struct {
	// Store keeps the users and groups.
	Store Store
	// Issuer is the connection's IdP entity ID: the Key.Issuer of every
	// user this handler reads or writes, as the connection's sign-ins
	// set it. userstore.LocalIssuer is refused.
	Issuer string
	// Connection names the connection in events and logs.
	Connection string
	// Subject turns externalId into the subject of a user's key.
	Subject SubjectMapping
	// Tokens are the bearer tokens the connection's IdP presents.
	Tokens TokenSource
	// Roles derives Profile.Roles from Profile.Groups when a group's
	// membership changes: the connection's role mapping, the one its
	// sign-ins use (jit.RoleMapping.Derive). Nil leaves roles as they
	// are until the user's next sign-in.
	Roles userstore.RoleFunc
	// OnDelete is what DELETE /Users does; the zero value suspends.
	OnDelete DeletePolicy
	// OnEvent, when set, receives an [Event] for every change.
	OnEvent func(ctx context.Context, e Event)
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BaseURL, when set, is the absolute URL the handler is mounted at
	// (https://app.example.com/scim/v2), for meta.location.
	BaseURL string
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Handler is the SCIM 2.0 service provider of one connection. Create one
// with [New]; it is safe for concurrent use.
type Handler struct {
	store      Store
	issuer     string
	connection string
	mapping    SubjectMapping
	tokens     TokenSource
	roles      userstore.RoleFunc
	onDelete   DeletePolicy
	onEvent    func(context.Context, Event)
	log        *slog.Logger
	now        func() time.Time
	baseURL    string
	maxBody    int64
}

// New returns the handler of one connection. It refuses options that
// lack a required field, and the local issuer.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("scim: Options.Store is required")
	case opts.Issuer == "":
		return nil, errors.New("scim: Options.Issuer is required")
	case opts.Issuer == userstore.LocalIssuer:
		return nil, fmt.Errorf("scim: Options.Issuer: %w", userstore.ErrLocalAccount)
	case opts.Subject.Subject == nil || opts.Subject.ExternalID == nil:
		return nil, errors.New("scim: Options.Subject is required (EntraObjectID or PersistentNameID)")
	case opts.Tokens == nil:
		return nil, errors.New("scim: Options.Tokens is required")
	}
	h := &Handler{
		store: opts.Store, issuer: opts.Issuer, connection: opts.Connection, mapping: opts.Subject,
		tokens: opts.Tokens, roles: opts.Roles, onDelete: opts.OnDelete, onEvent: opts.OnEvent,
		log: opts.Logger, now: opts.Now, baseURL: strings.TrimSuffix(opts.BaseURL, "/"), maxBody: opts.MaxBodyBytes,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	return h, nil
}

// contentType is the media type of every response (RFC 7644 §3.1).
const contentType = "application/scim+json"

// ServeHTTP serves one SCIM request. The handler expects the mount prefix
// stripped: it serves /Users, /Users/{id}, /Groups, /Groups/{id},
// /ServiceProviderConfig, /ResourceTypes[/{name}] and /Schemas[/{id}].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.authorize(r); err != nil {
		h.fail(w, r, err)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 2 || parts[0] == "" {
		h.fail(w, r, notFound("no such endpoint"))
		return
	}
	id := ""
	if len(parts) == 2 {
		id = parts[1]
	}
	var err error
	switch parts[0] {
	case "Users":
		err = h.serveUsers(w, r, id)
	case "Groups":
		err = h.serveGroups(w, r, id)
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		err = h.serveDiscovery(w, r, parts[0], id)
	default:
		err = notFound("no such endpoint")
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

// authorize checks the request's bearer token.
func (h *Handler) authorize(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return &Error{Status: http.StatusUnauthorized, Detail: "a bearer token is required", Err: ErrUnauthorized}
	}
	hashes, err := h.tokens.TokenHashes(r.Context())
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Detail: "tokens unavailable", Err: err}
	}
	if !tokenValid(strings.TrimSpace(token), hashes) {
		return &Error{Status: http.StatusUnauthorized, Detail: "the bearer token is not valid for this connection", Err: ErrUnauthorized}
	}
	return nil
}

// methodNotAllowed is the error for a method an endpoint does not serve.
func methodNotAllowed(r *http.Request) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Detail: r.Method + " is not served here"}
}

// fail writes err as a SCIM error response and logs it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *Error
	if !errors.As(err, &se) {
		se = storeError(err)
	}
	level := slog.LevelInfo
	if se.Status >= 500 {
		level = slog.LevelError
	}
	h.log.Log(r.Context(), level, "scim: request refused", "connection", h.connection, "method", r.Method,
		"path", r.URL.Path, "status", se.Status, "scim_type", se.Type, "detail", se.Detail, "err", err)
	if se.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
	}
	body := map[string]any{"schemas": []string{schemaError}, "status": strconv.Itoa(se.Status), "detail": se.Detail}
	if se.Type != "" {
		body["scimType"] = se.Type
	}
	writeJSON(w, se.Status, body)
}

// storeError maps an error of the store to a SCIM error.
func storeError(err error) *Error {
	switch {
	case errors.Is(err, userstore.ErrUserNameInUse):
		return conflict(err, "userName is in use by another user of this connection")
	case errors.Is(err, userstore.ErrEmailInUse):
		return conflict(err, "the email is in use by another user of this connection")
	case errors.Is(err, userstore.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Detail: "not found", Err: err}
	case errors.Is(err, userstore.ErrNotMember):
		return &Error{Status: http.StatusBadRequest, Type: scimInvalidValue, Detail: "a member is not a user of this connection", Err: err}
	case errors.Is(err, ErrUnkeyable):
		return &Error{Status: http.StatusBadRequest, Type: scimInvalidValue, Detail: err.Error(), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Detail: "the request was cancelled", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
}

// writeJSON writes v with status in application/scim+json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// readBody decodes the request's JSON object body, bounded, into a map
// whose numbers are json.Number.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != contentType && mt != "application/json") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Detail: "send application/scim+json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body is over %d bytes", h.maxBody)}
	}
	if err != nil {
		return nil, badRequest(scimInvalidSyntax, "the body could not be read")
	}
	return decodeObject(body)
}

// decodeObject decodes one JSON object, numbers as json.Number.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, badRequest(scimInvalidSyntax, "the body is not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(scimInvalidSyntax, "the body has data after its JSON object")
	}
	return m, nil
}

// location returns the URL of a resource.
func (h *Handler) location(kind, id string) string { return h.baseURL + "/" + kind + "/" + id }

// subject returns the subject of externalID, or an error wrapping
// ErrUnkeyable.
func (h *Handler) subject(externalID string) (string, error) {
	if externalID == "" {
		return "", fmt.Errorf("%w: externalId is required: it carries the connection's immutable subject, which joins this user to their sign-ins", ErrUnkeyable)
	}
	s, err := h.mapping.Subject(externalID)
	if err != nil {
		if !errors.Is(err, ErrUnkeyable) {
			err = fmt.Errorf("%w: %w", ErrUnkeyable, err)
		}
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%w: the mapping gave an empty subject", ErrUnkeyable)
	}
	return s, nil
}

// externalID returns the externalId of a user with subject.
func (h *Handler) externalID(subject string) (string, bool) { return h.mapping.ExternalID(subject) }

// page is the paging of a list request (RFC 7644 §3.4.2.4).
type page struct{ start, count int }

// readPage reads startIndex and count.
func readPage(r *http.Request) (page, error) {
	p := page{start: 1, count: DefaultPageSize}
	q := r.URL.Query()
	if s := q.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, badRequest(scimInvalidValue, "startIndex is not an integer")
		}
		p.start = max(n, 1)
	}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, badRequest(scimInvalidValue, "count is not an integer")
		}
		p.count = min(max(n, 0), MaxPageSize)
	}
	return p, nil
}

// listResponse writes a ListResponse of resources.
func listResponse(w http.ResponseWriter, total int, p page, resources []map[string]any) {
	if resources == nil {
		resources = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas": []string{schemaList}, "totalResults": total, "startIndex": p.start,
		"itemsPerPage": len(resources), "Resources": resources,
	})
}

// emit sends e to OnEvent, stamped.
func (h *Handler) emit(ctx context.Context, e Event) {
	e.Source, e.Connection, e.Time = SourceSCIM, h.connection, h.now()
	h.log.InfoContext(ctx, "scim: change", "connection", h.connection, "kind", e.Kind, "user_id", e.UserID,
		"group_id", e.GroupID, "changed", e.Changed)
	if h.onEvent != nil {
		h.onEvent(ctx, e)
	}
}
