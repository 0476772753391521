package server

import (
	"html/template"
	"net/http"
)

// playgroundPage is GraphiQL with a sign-in bar. In DEV_MODE the bar gets a
// person's token from the development issuer (POST /dev/token); otherwise it
// takes a bearer token pasted by hand (a client's from /oauth/token). The
// token is kept in the browser's session storage and sent as
// Authorization: Bearer on every request; the gateway itself never sets a
// cookie.
var playgroundPage = template.Must(template.New("playground").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Provider Access Gateway · GraphQL</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/graphiql@3.8.3/graphiql.min.css" crossorigin="anonymous">
<style>
html,body{height:100%;margin:0;font-family:system-ui,sans-serif}
#bar{display:flex;gap:.5rem;align-items:center;padding:.4rem .8rem;background:#1f2937;color:#f9fafb;font-size:14px}
#bar input{padding:.25rem .4rem;min-width:18rem}#bar button{padding:.25rem .7rem}
#who{margin-left:auto;opacity:.85}#graphiql{height:calc(100% - 2.4rem)}
</style></head><body>
<div id="bar">
  <strong>Provider Access Gateway</strong>
  {{if .DevMode}}<input id="cred" type="email" placeholder="email (dev sign-in), e.g. {{.Operator}}">
  <button id="signin">Sign in</button>{{else}}<input id="cred" type="password" placeholder="paste a bearer token">
  <button id="signin">Use token</button>{{end}}
  <button id="signout">Sign out</button><span id="who"></span>
</div>
<div id="graphiql">Loading…</div>
<script src="https://cdn.jsdelivr.net/npm/react@18.3.1/umd/react.production.min.js" crossorigin="anonymous"></script>
<script src="https://cdn.jsdelivr.net/npm/react-dom@18.3.1/umd/react-dom.production.min.js" crossorigin="anonymous"></script>
<script src="https://cdn.jsdelivr.net/npm/graphiql@3.8.3/graphiql.min.js" crossorigin="anonymous"></script>
<script>
const endpoint = {{.Endpoint}}, devMode = {{.DevMode}};
const who = document.getElementById("who"), cred = document.getElementById("cred");
function show() { who.textContent = sessionStorage.getItem("who") || "not signed in"; }
document.getElementById("signin").onclick = async () => {
  if (!devMode) { sessionStorage.setItem("token", cred.value.trim()); sessionStorage.setItem("who", "token set"); show(); return; }
  const r = await fetch("/dev/token", {method: "POST", body: new URLSearchParams({email: cred.value})});
  if (!r.ok) { who.textContent = "sign-in failed (" + r.status + ")"; return; }
  sessionStorage.setItem("token", (await r.json()).access_token);
  sessionStorage.setItem("who", cred.value); show();
};
document.getElementById("signout").onclick = () => { sessionStorage.clear(); show(); };
show();
const fetcher = GraphiQL.createFetcher({url: endpoint, fetch: (url, init) => {
  const token = sessionStorage.getItem("token");
  init = init || {}; init.headers = Object.assign({}, init.headers || {});
  if (token && !init.headers.Authorization) init.headers.Authorization = "Bearer " + token;
  return fetch(url, init);
}});
ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL, {fetcher, defaultEditorToolsVisibility: true}));
</script></body></html>`))

// playgroundHandler serves GraphiQL against /graphql, with sign-in.
func (s *Server) playgroundHandler() http.Handler {
	operator := "operator@example.test"
	if len(s.Config.DevOperators) > 0 {
		operator = s.Config.DevOperators[0]
	}
	data := map[string]any{"Endpoint": "/graphql", "DevMode": s.Config.DevMode, "Operator": operator}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "+
			"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data:; font-src https://cdn.jsdelivr.net data:; connect-src 'self'")
		if err := playgroundPage.Execute(w, data); err != nil {
			s.Logger.ErrorContext(r.Context(), "render playground", "err", err)
		}
	})
}
