package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/samljit/samljit/userstore"
)

// Connections is an in-memory [userstore.ConnectionAdmin]: stored
// connections, kept in this process only. The zero value is not usable;
// create one with [NewConnections]. It is safe for concurrent use and
// copies what it is given and what it returns.
type Connections struct {
	mu      sync.Mutex
	version int64
	conns   map[string]userstore.Connection
	domains map[string]string // domain -> connection name
}

var _ userstore.ConnectionAdmin = (*Connections)(nil)

// NewConnections returns an empty connection store.
func NewConnections() *Connections {
	return &Connections{conns: map[string]userstore.Connection{}, domains: map[string]string{}}
}

// ConnectionsVersion implements [userstore.Connections].
func (s *Connections) ConnectionsVersion(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// ListConnections implements [userstore.Connections].
func (s *Connections) ListConnections(context.Context) ([]userstore.Connection, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]userstore.Connection, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.Clone())
	}
	slices.SortFunc(out, func(a, b userstore.Connection) int { return strings.Compare(a.Name, b.Name) })
	return out, s.version, nil
}

// GetConnection implements [userstore.Connections].
func (s *Connections) GetConnection(_ context.Context, name string) (userstore.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[name]
	if !ok {
		return userstore.Connection{}, fmt.Errorf("%w: %q", userstore.ErrConnectionNotFound, name)
	}
	return c.Clone(), nil
}

// PutConnection implements [userstore.ConnectionAdmin].
func (s *Connections) PutConnection(_ context.Context, c userstore.Connection, now time.Time) (userstore.Connection, error) {
	if err := userstore.CheckConnection(c); err != nil {
		return userstore.Connection{}, err
	}
	c = c.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range c.Domains {
		if owner, ok := s.domains[d.Name]; ok && owner != c.Name {
			return userstore.Connection{}, fmt.Errorf("%w: %q belongs to connection %q", userstore.ErrDomainTaken, d.Name, owner)
		}
	}
	if old, ok := s.conns[c.Name]; ok {
		for _, d := range old.Domains {
			delete(s.domains, d.Name)
		}
	}
	for _, d := range c.Domains {
		s.domains[d.Name] = c.Name
	}
	s.version++
	c.Revision, c.UpdatedAt = s.version, now
	s.conns[c.Name] = c
	return c.Clone(), nil
}

// SetConnectionEnabled implements [userstore.ConnectionAdmin].
func (s *Connections) SetConnectionEnabled(_ context.Context, name string, enabled bool, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[name]
	if !ok {
		return fmt.Errorf("%w: %q", userstore.ErrConnectionNotFound, name)
	}
	if c.Enabled == enabled {
		return nil
	}
	s.version++
	c.Enabled, c.Revision, c.UpdatedAt = enabled, s.version, now
	s.conns[name] = c
	return nil
}

// RemoveConnection implements [userstore.ConnectionAdmin].
func (s *Connections) RemoveConnection(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[name]
	if !ok {
		return fmt.Errorf("%w: %q", userstore.ErrConnectionNotFound, name)
	}
	for _, d := range c.Domains {
		delete(s.domains, d.Name)
	}
	delete(s.conns, name)
	s.version++
	return nil
}
