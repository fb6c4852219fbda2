package jit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCookieSerializerRoundTrip(t *testing.T) {
	var s cookieSerializer
	in := map[any]any{sessIssuer: "https://idp.example/", sessSubject: "p-1", sessConn: "acme", sessExpires: int64(1767225600)}
	b, err := s.Serialize(in)
	require.NoError(t, err)
	assert.JSONEq(t, `{"iss":"https://idp.example/","sub":"p-1","conn":"acme","exp":1767225600}`, string(b))
	var out map[any]any
	require.NoError(t, s.Deserialize(b, &out))
	assert.Equal(t, in, out)

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
