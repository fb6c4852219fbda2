package sqlcore

import (
	"context"
	"fmt"

	"github.com/samljit/samljit/userstore"
)

// Migration takes a schema from one version to the next, inside the
// transaction [Migrate] runs it in.
type Migration func(ctx context.Context, q Querier) error

// Schema is how a dialect's schema is created, migrated and versioned.
type Schema struct {
	// Version is the version of the schema the store creates and
	// understands.
	Version int
	// TooNew is the error, wrapped, for a database whose version is newer
	// than Version.
	TooNew error
	// Migrations[v] takes the schema from version v to v+1; version 0 is
	// an empty database.
	Migrations []Migration
	// ReadVersion returns the version the database records, 0 when it
	// records none.
	ReadVersion func(ctx context.Context, q Querier) (int64, error)
	// WriteVersion records version v in the database.
	WriteVersion func(ctx context.Context, q Querier, v int) error
}

// Migrate reads the schema version on q. It refuses, before writing
// anything, a version newer than s.Version or one that is negative. When
// the version is older, it begins a transaction with begin, which must
// hold the lock that serializes migrations, reads the version again under
// that lock, since another connection or process may have migrated
// meanwhile, runs the missing migrations, records the version and ends the
// transaction. current reports whether the first read found the schema
// current, so that nothing was written.
func Migrate(ctx context.Context, q Querier, begin func(ctx context.Context) (*Tx, error), s Schema) (current bool, err error) {
	v, err := s.version(ctx, q)
	if err != nil {
		return false, err
	}
	if v == s.Version {
		return true, nil
	}
	tx, err := begin(ctx)
	if err != nil {
		return false, err
	}
	return false, run(tx, func(tx *Tx) error {
		v, err := s.version(ctx, tx)
		if err != nil || v == s.Version {
			return err
		}
		for from := v; from < s.Version; from++ {
			if err := s.Migrations[from](ctx, tx); err != nil {
				return fmt.Errorf("migrate schema from version %d: %w", from, err)
			}
		}
		if err := s.WriteVersion(ctx, tx, s.Version); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		return nil
	})
}

// version returns the database's schema version, or an error when it is
// one this package cannot handle.
func (s *Schema) version(ctx context.Context, q Querier) (int, error) {
	v, err := s.ReadVersion(ctx, q)
	switch {
	case err != nil:
		return 0, err
	case v > int64(s.Version):
		return 0, fmt.Errorf("schema version %d, this package supports up to %d: %w", v, s.Version, s.TooNew)
	case v < 0:
		return 0, fmt.Errorf("unknown schema version %d", v)
	}
	return int(v), nil
}

// Statements returns a migration that runs stmts in order.
func Statements(stmts ...string) Migration {
	return func(ctx context.Context, q Querier) error {
		for _, stmt := range stmts {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	}
}

// IDEmail is a user's ID and normalized email.
type IDEmail struct {
	// ID is the user's ID.
	ID string
	// Norm is the user's email in the form of userstore.NormalizeEmail.
	Norm string
}

// NormalizedEmails runs query, which reads the id and email of every user
// whose email is not empty, and returns the normalized emails, computed
// with [userstore.NormalizeEmail] rather than SQL, of those whose
// normalized email is not empty either: what a migration that adds the
// normalized email column writes into it.
func NormalizedEmails(ctx context.Context, q Querier, query string) ([]IDEmail, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read emails: %w", err)
	}
	var todo []IDEmail
	for rows.Next() {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read emails: %w", err)
		}
		if norm := userstore.NormalizeEmail(email); norm != "" {
			todo = append(todo, IDEmail{id, norm})
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read emails: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read emails: %w", err)
	}
	return todo, nil
}

// Steps returns a migration that runs steps in order.
func Steps(steps ...Migration) Migration {
	return func(ctx context.Context, q Querier) error {
		for _, step := range steps {
			if err := step(ctx, q); err != nil {
				return err
			}
		}
		return nil
	}
}
