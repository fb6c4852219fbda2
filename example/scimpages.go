package main

import "html/template"

// The pages' parts about SCIM: the admin page's endpoints, the JIT vs
// SCIM page's live comparison, and the development IdP's push buttons.
var _ = template.Must(pages.Parse(`
{{define "scim-endpoints"}}{{if .SCIM}}
<div class="card" id="scim">
<h2>SCIM provisioning</h2>
<p class="muted">Give your IdP's provisioning this endpoint and bearer token: it then creates, disables and groups people here, and a disabled person's open session is refused at their next request.</p>
<div class="scroll"><table id="scim-endpoints"><tr><th>Connection</th><th>Endpoint (Tenant URL)</th><th>Bearer token (Secret Token)</th></tr>
{{range .SCIM}}<tr data-connection="{{.Connection}}"><td>{{.Connection}}</td><td class="nowrap"><code class="scim-url">{{.URL}}</code></td>
<td class="nowrap">{{if .Token}}<code class="scim-token">{{.Token}}</code><p class="hint">Made at the first run for the development IdP, kept in the data directory (<code>scim-tokens</code>).</p>{{else}}<span class="muted">given with <code>-scim-token</code></span>{{end}}</td></tr>
{{end}}</table></div>
</div>
{{end}}{{end}}

{{define "jitvsscim-live"}}
<div class="card" id="live">
<h2>Live: what each path did to your record</h2>
{{with .Live}}
<p class="muted">Your record is one record for both paths, keyed <code>{{.User.Key.Subject}}</code> at <code>{{.User.Key.Issuer}}</code>. Status now: <b class="status">{{.User.Status}}</b>. Groups now: {{range .User.Profile.Groups}}<span class="tag">{{.}}</span>{{else}}none{{end}}.</p>
<div class="scroll"><table><tr><th>SAML JIT (at your sign-ins)</th><th>SCIM (pushed by your IdP)</th></tr>
<tr><td id="live-jit">{{range .JIT}}<div class="live-entry" data-kind="{{.Kind}}"><span class="nowrap">{{when .Time}}</span> <b>{{.Kind}}</b>{{range .Changes}}<div class="change"><span class="tag">{{.Field}}</span> <del>{{.Before}}</del> → <ins>{{.After}}</ins></div>{{end}}</div>{{else}}<i>nothing</i>{{end}}</td>
<td id="live-scim">{{range .SCIM}}<div class="live-entry" data-kind="{{.Kind}}"><span class="nowrap">{{when .Time}}</span> <b>{{.Kind}}</b>{{range .Changes}}<div class="change"><span class="tag">{{.Field}}</span> <del>{{.Before}}</del> → <ins>{{.After}}</ins></div>{{end}}</div>{{else}}<i>nothing{{if not .Endpoint}}: your connection has no SCIM endpoint (<code>-scim-token</code>){{end}}</i>{{end}}</td></tr></table></div>
<p class="muted">JIT wrote what your sign-ins asserted, and only when you signed in; it can never suspend you. SCIM wrote when your IdP pushed, whether or not you were here, and its <code>active false</code> suspends you at once.{{if .DevPush}} Try it: <a href="/dev-idp#tenant-{{.Tenant}}">push a change over SCIM from the development IdP</a>, then reload this page.{{end}}</p>
{{else}}
<p class="muted">Sign in to see, side by side, what JIT did to your record at your sign-ins and what SCIM did when your IdP pushed.{{if .Dev}} The development IdP can push over SCIM: <a href="/dev-idp">its people page</a> has the buttons.{{end}}</p>
{{end}}
</div>
{{end}}

{{define "dev-scim-buttons"}}
<form method="post" action="{{.}}" class="inline"><button class="scim-disable danger" name="action" value="disable">Disable (SCIM)</button></form>
<form method="post" action="{{.}}" class="inline"><button class="scim-enable" name="action" value="enable">Enable (SCIM)</button></form>
{{end}}
`))
