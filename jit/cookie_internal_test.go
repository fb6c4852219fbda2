package jit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCookieSerializerRoundTrip(t *testing.T) {
	var s cookieSerializer
	in := map[any]any{sessID: "2vJ1s8dW6qLq0x4m3H6x8yQ2b6oYw9b3uEJZ4u9nQ1k", sessConn: "acme", sessExpires: int64(1767225600)}
	b, err := s.Serialize(in)
	require.NoError(t, err)
	assert.JSONEq(t, `{"sid":"2vJ1s8dW6qLq0x4m3H6x8yQ2b6oYw9b3uEJZ4u9nQ1k","conn":"acme","exp":1767225600}`, string(b))
	var out map[any]any
	require.NoError(t, s.Deserialize(b, &out))
	assert.Equal(t, in, out)

	// A cookie of the earlier form, which held the user's key, holds no
	// session ID: it is no session.
	out = nil
	require.NoError(t, s.Deserialize([]byte(`{"iss":"https://idp.example/","sub":"p-1","conn":"acme","exp":1767225600}`), &out))
	assert.Equal(t, "", out[sessID])

	tr := trackedRequests{{Relay: "0123", ID: "_r1", Conn: "acme", ReturnTo: "/x", Expires: 42}, {Relay: "4567", ID: "_r2", Expires: 43}}
	b, err = s.Serialize(tr)
	require.NoError(t, err)
	var got trackedRequests
	require.NoError(t, s.Deserialize(b, &got))
	assert.Equal(t, tr, got)
}

func TestCookieSerializerRefusesForeignValues(t *testing.T) {
	var s cookieSerializer
	for name, v := range map[string]any{
		"UnknownKey":  map[any]any{"role": "admin"},
		"UserKey":     map[any]any{"sub": "p-1"},
		"WrongType":   map[any]any{sessExpires: "tomorrow"},
		"OtherStruct": struct{ X int }{1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Serialize(v)
			require.Error(t, err)
		})
	}
	var out map[any]any
	require.Error(t, s.Deserialize([]byte("not json"), &out))
	var n int
	require.Error(t, s.Deserialize([]byte("1"), &n))
}
