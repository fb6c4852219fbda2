package scim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/samljit/samljit/userstore"
)

// FuzzDecodeCursor: a cursor is read without panic, as a key or as the
// invalidCursor error, and a key's cursor reads back as the key.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", "MTIz", "MTIzLmFi", "not base64!", encodeCursor(userstore.PageKey{CreatedAt: time.Unix(0, 1), ID: "x"})} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := decodeCursor(s)
		if err != nil {
			var se *Error
			require.ErrorAs(t, err, &se)
			require.Equal(t, scimInvalidCursor, se.Type)
			return
		}
		if s == "" {
			require.Equal(t, userstore.PageKey{}, k)
			return
		}
		again, err := decodeCursor(encodeCursor(k))
		require.NoError(t, err)
		require.Equal(t, k, again)
	})
}
