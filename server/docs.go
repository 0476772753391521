package server

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"

	"example.com/gateway/docs"
)

// docsPage is the frame around a rendered page. Pages are the project's own
// Markdown, rendered without raw HTML.
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Provider Access Gateway</title>
<style>
body{font:16px/1.55 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
pre{background:#f4f6f8;padding:.8rem;overflow:auto;border-radius:4px}code{font-size:.92em}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;vertical-align:top}
nav a{margin-right:1rem}
</style></head><body>
<nav>{{range .Pages}}<a href="/docs/{{.}}">{{.}}</a>{{end}}</nav>
{{.Body}}
</body></html>`))

// docsHandler renders docs/*.md at /docs (the Provider Access API page) and
// /docs/{page}.
func (s *Server) docsHandler() http.Handler {
	md := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithParserOptions(parser.WithAutoHeadingID()))
	names, _ := fs.Glob(docs.FS, "*.md")
	sort.Strings(names)
	pages := make([]string, len(names))
	for i, n := range names {
		pages[i] = strings.TrimSuffix(n, ".md")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("page")
		if name == "" {
			name = "provider-access-api"
		}
		src, err := fs.ReadFile(docs.FS, path.Clean(strings.TrimSuffix(name, ".md"))+".md")
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var body bytes.Buffer
		if err := md.Convert(src, &body); err != nil {
			s.Logger.ErrorContext(r.Context(), "render docs", "page", name, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("Cache-Control", "public, max-age=300")
		docsPage.Execute(w, map[string]any{"Title": name, "Pages": pages, "Body": template.HTML(body.String())})
	})
}
