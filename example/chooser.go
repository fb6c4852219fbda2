package main

import (
	"html/template"
	"net/http"

	"github.com/samljit/samljit/jit"
)

// chooserPage is the example's sign-in chooser, which replaces the
// middleware's (jit.Options.Chooser). It asks for a work email, as the
// default does, and also lists the tenants configured on the command line
// (or the development IdP's sample tenants): they are this operator's own
// configuration. An application serving many customers would not list
// them, and would keep the email form only.
var chooserPage = template.Must(template.New("chooser").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>Sign in</h1>
<form method="get" action="{{.Action}}">
<label for="email">Your work email address</label><br>
<input id="email" name="email" type="email" autocomplete="email" required>
{{if .ReturnTo}}<input type="hidden" name="return_to" value="{{.ReturnTo}}">{{end}}
<button type="submit">Continue</button>
</form>
{{if .Tenants}}<p>Or pick your organisation:</p>
<ul>{{range .Tenants}}<li><a href="{{.URL}}">{{.Name}}</a></li>{{end}}</ul>{{end}}
</body></html>
`))

// chooser returns the sign-in chooser listing conns. a.mw is read when a
// request comes, after jit.New has set it.
func (a *app) chooser(conns []jit.Connection) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type tenant struct{ Name, URL string }
		returnTo := r.URL.Query().Get("return_to")
		var ts []tenant
		for _, c := range conns {
			if u, ok := a.mw.ConnectionLoginURL(c.Name, returnTo); ok {
				name := c.DisplayName
				if name == "" {
					name = c.Name
				}
				ts = append(ts, tenant{Name: name, URL: u})
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = chooserPage.Execute(w, struct {
			Action, ReturnTo string
			Tenants          []tenant
		}{a.mw.Prefix() + "/login", returnTo, ts})
	})
}
