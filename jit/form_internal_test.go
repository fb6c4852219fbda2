package jit

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// formRequest is a POST of body to the ACS with the given Content-Type and
// query, its body capped at limit bytes as serveACS caps it. short makes
// the body end early, as a client that sent less than its Content-Length
// does.
func formRequest(body []byte, contentType, rawQuery string, limit int64, short bool) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://sp.example/saml/acs", nil)
	r.URL.RawQuery = rawQuery
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var rd io.Reader = bytes.NewReader(body)
	r.ContentLength = int64(len(body))
	if short {
		rd = io.MultiReader(rd, errReader{io.ErrUnexpectedEOF})
		r.ContentLength += 10
	}
	r.Body = http.MaxBytesReader(nil, io.NopCloser(rd), limit)
	return r
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// compareWithParseForm fails t when readACSForm and ParseForm disagree on
// the request formRequest builds: on whether it is refused, on whether
// for its size, and on the two values.
func compareWithParseForm(t *testing.T, body []byte, contentType, rawQuery string, limit int64, short bool) {
	t.Helper()
	want := formRequest(body, contentType, rawQuery, limit, short)
	werr := want.ParseForm()
	got := formRequest(body, contentType, rawQuery, limit, short)
	response, relay, err := readACSForm(got)
	if (werr == nil) != (err == nil) {
		t.Fatalf("ParseForm error %v, readACSForm error %v\nbody %q, type %q, query %q", werr, err, body, contentType, rawQuery)
	}
	var wbig, big *http.MaxBytesError
	if errors.As(werr, &wbig) != errors.As(err, &big) {
		t.Fatalf("ParseForm error %v, readACSForm error %v: only one is MaxBytesError", werr, err)
	}
	if werr != nil {
		return
	}
	if w := want.PostForm.Get("SAMLResponse"); w != response {
		t.Fatalf("SAMLResponse %q, ParseForm's %q\nbody %q", response, w, body)
	}
	if w := want.PostForm.Get("RelayState"); w != relay {
		t.Fatalf("RelayState %q, ParseForm's %q\nbody %q", relay, w, body)
	}
	if !reflect.DeepEqual(want.PostForm, got.PostForm) || !reflect.DeepEqual(want.Form, got.Form) {
		t.Fatalf("PostForm %v and Form %v, ParseForm's %v and %v\nbody %q, query %q", got.PostForm, got.Form, want.PostForm, want.Form, body, rawQuery)
	}
}

const formType = "application/x-www-form-urlencoded"

// TestReadACSFormAsParseForm: readACSForm gives what ParseForm and
// PostForm.Get give, and refuses what ParseForm refuses.
func TestReadACSFormAsParseForm(t *testing.T) {
	b64 := strings.Repeat("PHNhbWxwOlJlc3BvbnNlPg+/=", 40)
	good := url.Values{"SAMLResponse": {b64}, "RelayState": {"r 1/2"}}.Encode()
	for _, tc := range []struct {
		name, body, ctype, query string
		limit                    int64
		short                    bool
	}{
		{name: "a form", body: good},
		{name: "a form with a charset", body: good, ctype: formType + "; charset=utf-8"},
		{name: "no escapes", body: "SAMLResponse=abc&RelayState=def"},
		{name: "plus is space", body: "SAMLResponse=a+b&RelayState=c+d"},
		{name: "the first value of each", body: "SAMLResponse=one&SAMLResponse=two&RelayState=x&RelayState=y"},
		{name: "escaped keys", body: "SAML%52esponse=k&%52elayState=r"},
		{name: "every hex digit at its bounds", body: "SAMLResponse=%00%09%0a%0f%0A%0F%a0%f0%A0%F0%2b%2B%99&RelayState=%aA%Fa"},
		{name: "a digit below 0", body: "SAMLResponse=%/0"},
		{name: "a digit above 9", body: "SAMLResponse=%0:"},
		{name: "a letter below a", body: "SAMLResponse=%`0"},
		{name: "a letter above f", body: "SAMLResponse=%0g"},
		{name: "a letter below A", body: "SAMLResponse=%@0"},
		{name: "a letter above F", body: "SAMLResponse=%0G"},
		{name: "an escape at the end", body: "SAMLResponse=ab%41"},
		{name: "a bad escape at the end of another pair", body: "SAMLResponse=ab&x=%4"},
		{name: "a good escape at the end of another pair", body: "SAMLResponse=ab&x=%41"},
		{name: "a pair that starts with a semicolon", body: "SAMLResponse=ab&;x=1"},
		{name: "empty pairs and no equals sign", body: "&&SAMLResponse&RelayState=&x=1&"},
		{name: "a semicolon", body: "SAMLResponse=a;b"},
		{name: "a semicolon in another pair", body: "SAMLResponse=a&x=1;y=2"},
		{name: "a bad escape in the value", body: "SAMLResponse=%zz"},
		{name: "a truncated escape", body: "SAMLResponse=abc%4"},
		{name: "a bad escape in another pair", body: "SAMLResponse=a&x=%g1"},
		{name: "a bad escape in a later duplicate", body: "SAMLResponse=a&SAMLResponse=%"},
		{name: "a bad escape in a key", body: "%zz=1&SAMLResponse=a"},
		{name: "another media type", body: good, ctype: "text/plain"},
		{name: "multipart", body: good, ctype: "multipart/form-data; boundary=x"},
		{name: "no Content-Type", body: good, ctype: "-"},
		{name: "a malformed Content-Type", body: good, ctype: formType + "; charset"},
		{name: "a bad query", body: good, query: "a=%zz"},
		{name: "a query with a semicolon", body: good, query: "a=1;b=2"},
		{name: "a good query", body: good, query: "SAMLResponse=fromquery&x=1"},
		{name: "over the limit", body: good, limit: 100},
		{name: "exactly the limit", body: good, limit: int64(len(good))},
		{name: "a body shorter than its length", body: good, short: true},
		{name: "too many pairs", body: strings.Repeat("a=1&", maxFormPairs) + "SAMLResponse=x"},
		{name: "just under the pair bound", body: strings.Repeat("a=1&", maxFormPairs-2) + "SAMLResponse=x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			switch ctype {
			case "":
				ctype = formType
			case "-":
				ctype = ""
			}
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			compareWithParseForm(t, []byte(tc.body), ctype, tc.query, limit, tc.short)
		})
	}
	response, relay, err := readACSForm(formRequest([]byte(good), formType, "", 1<<20, false))
	if err != nil || response != b64 || relay != "r 1/2" {
		t.Fatalf("readACSForm = %q, %q, %v", response, relay, err)
	}
}

// FuzzACSForm holds readACSForm to ParseForm on arbitrary bodies, media
// types and queries, under a size cap.
func FuzzACSForm(f *testing.F) {
	f.Add([]byte("SAMLResponse=PHNh%2B%2F%3D&RelayState=%2Fapp"), formType, "", uint16(4096), false)
	f.Add([]byte("SAMLResponse=a+b;c&x=%"), formType+"; charset=utf-8", "q=1", uint16(10), true)
	f.Add([]byte("%53AMLResponse=1&SAMLResponse=2"), "text/plain", "a;b", uint16(0), false)
	f.Fuzz(func(t *testing.T, body []byte, contentType, rawQuery string, limit uint16, short bool) {
		compareWithParseForm(t, body, contentType, rawQuery, int64(limit), short)
	})
}
