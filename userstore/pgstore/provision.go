package pgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/samljit/samljit/userstore"
	"github.com/samljit/samljit/userstore/internal/sqlcore"
)

// Provision creates the user with the given key, or replaces its profile,
// as [userstore.Store.Provision] describes, in one SQL statement (an
// INSERT … ON CONFLICT … DO UPDATE with a CTE that locks and reads the
// existing row). It never changes a user's status, local roles, creation
// time or ID. It refuses a time outside the years 1 to 9999, and keys or
// profiles containing NUL characters.
func (s *Store) Provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	if err := key.Validate(); err != nil {
		return userstore.Provisioned{}, err
	}
	res, err := s.provision(ctx, key, p, now)
	if err != nil {
		return userstore.Provisioned{}, fmt.Errorf("pgstore: provision %s: %w", key, err)
	}
	return res, nil
}

// provisionUser creates or updates a user in one statement, returning the
// row's ID, status, creation time and local roles, then the before image:
// all NULL when the statement created the user. It takes the arguments of
// sqlcore.Queries.InsertUser: (id, issuer, subject, profile, now).
//
// The CTE old reads the existing row FOR UPDATE. In READ COMMITTED, a row
// locked by a concurrent Provision is waited for and re-read at its latest
// committed version, so old is the exact before image and the row stays
// locked until the statement commits. The upsert then inserts, or updates
// the row old locked: its DO UPDATE applies only to that row (u.id =
// old.id). When the key was absent from the statement's snapshot but a
// concurrent Provision created it before the insert, old is empty and the
// conflicting row is not updated: the statement returns no row and writes
// nothing, and Provision runs it again with a new snapshot, which finds
// and locks the row.
const provisionUser = `WITH old AS (
		SELECT ` + userColumns + ` FROM samljit_users
		WHERE issuer = $2 AND subject = $3
		FOR UPDATE
	), up AS (
		INSERT INTO samljit_users AS u (id, issuer, subject, email, display_name, given_name, family_name,
			groups, attributes, roles, email_norm, status, created_at, created_ns, updated_at, updated_ns, last_sign_in_at, last_sign_in_ns)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, 0,
			$12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint, $12::timestamptz, $13::smallint)
		ON CONFLICT (issuer, subject) DO UPDATE SET
			email = EXCLUDED.email,
			display_name = EXCLUDED.display_name,
			given_name = EXCLUDED.given_name,
			family_name = EXCLUDED.family_name,
			groups = EXCLUDED.groups,
			attributes = EXCLUDED.attributes,
			roles = EXCLUDED.roles,
			email_norm = EXCLUDED.email_norm,
			updated_at = EXCLUDED.updated_at,
			updated_ns = EXCLUDED.updated_ns,
			last_sign_in_at = EXCLUDED.last_sign_in_at,
			last_sign_in_ns = EXCLUDED.last_sign_in_ns
		WHERE u.id = (SELECT id FROM old)
		RETURNING u.id, u.status, u.created_at, u.created_ns, u.local_roles::text
	)
	SELECT up.id, up.status, up.created_at, up.created_ns, up.local_roles, old.*
	FROM up LEFT JOIN old ON true`

// provision is Provision after the key is validated: provisionUser, run
// again by sqlcore.Retry when it wrote nothing because the user was
// created meanwhile, or failed with an error the database asks to retry.
func (s *Store) provision(ctx context.Context, key userstore.Key, p userstore.Profile, now time.Time) (userstore.Provisioned, error) {
	now, err := s.core.Stamp(key, now)
	if err != nil {
		return userstore.Provisioned{}, err
	}
	e, err := s.core.Encode(p)
	if err != nil {
		return userstore.Provisioned{}, err
	}
	id, err := userstore.NewID()
	if err != nil {
		return userstore.Provisioned{}, err
	}
	args := s.core.AppendInsertArgs(nil, id, key, &e, now)

	var res userstore.Provisioned
	err = sqlcore.Retry(ctx, retryable, func() error {
		var (
			u          userstore.User
			status     int64
			localRoles string
			old        nullableUser
		)
		dest := append(splitTimes{}.AppendDest([]any{&u.ID, &status}, &u.CreatedAt), &localRoles)
		err := s.db.QueryRowContext(ctx, provisionUser, args...).Scan(append(dest, old.dest()...)...)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// The user was created by a concurrent call after this
			// statement's snapshot, and nothing was written.
			return sqlcore.ErrCreatedMeanwhile
		case emailTaken(err):
			return fmt.Errorf("%w (%w)", userstore.ErrEmailInUse, err)
		case err != nil:
			return err
		}
		res = userstore.Provisioned{}
		if old.id != nil {
			before, err := old.user(key)
			if err != nil {
				return err
			}
			if before.ID != u.ID {
				return fmt.Errorf("read user %s before, but wrote %s", before.ID, u.ID)
			}
			res.Before = &before
		}
		if u.LocalRoles, err = sqlcore.DecodeLocalRoles(localRoles); err != nil {
			return fmt.Errorf("user %s: local roles: %w", u.ID, err)
		}
		u.Status = userstore.Status(status)
		res.User = sqlcore.Written(u, key, p, now)
		return nil
	})
	if err != nil {
		return userstore.Provisioned{}, err
	}
	return res, nil
}

// nullableUser receives the before image of provisionUser, whose columns
// are all NULL when the call created the user.
type nullableUser struct {
	id, email, displayName, givenName, familyName, groups, attrs, roles, localRoles *string
	status, createdNS, updatedNS, signedInNS                                        *int64
	created, updated, signedIn                                                      *time.Time
}

// dest returns the scan destinations in the order of userColumns.
func (n *nullableUser) dest() []any {
	return []any{&n.id, &n.email, &n.displayName, &n.givenName, &n.familyName, &n.groups, &n.attrs, &n.roles, &n.localRoles, &n.status,
		&n.created, &n.createdNS, &n.updated, &n.updatedNS, &n.signedIn, &n.signedInNS}
}

// user returns the user n holds, which must not be NULL.
func (n *nullableUser) user(key userstore.Key) (userstore.User, error) {
	for _, p := range []*string{n.email, n.displayName, n.givenName, n.familyName, n.groups, n.attrs, n.roles, n.localRoles} {
		if p == nil {
			return userstore.User{}, errors.New("before image has NULL columns")
		}
	}
	for _, p := range []*int64{n.status, n.createdNS, n.updatedNS, n.signedInNS} {
		if p == nil {
			return userstore.User{}, errors.New("before image has NULL columns")
		}
	}
	if n.created == nil || n.updated == nil || n.signedIn == nil {
		return userstore.User{}, errors.New("before image has NULL columns")
	}
	u := userstore.User{
		ID:  *n.id,
		Key: key,
		Profile: userstore.Profile{
			Email:       *n.email,
			DisplayName: *n.displayName,
			GivenName:   *n.givenName,
			FamilyName:  *n.familyName,
		},
		CreatedAt:    joinTime(*n.created, *n.createdNS),
		UpdatedAt:    joinTime(*n.updated, *n.updatedNS),
		LastSignInAt: joinTime(*n.signedIn, *n.signedInNS),
	}
	err := sqlcore.Decode(&u, &sqlcore.Row{Groups: *n.groups, Attributes: *n.attrs, Roles: *n.roles, LocalRoles: *n.localRoles, Status: *n.status})
	if err != nil {
		return userstore.User{}, err
	}
	return u, nil
}
