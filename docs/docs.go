// Package docs holds the gateway's public API documentation (42 CFR
// 422.119(d) via 422.121(a)(1): API syntax, parameters, responses, errors
// and registration requirements must be public), embedded so the binary
// serves it at /docs.
package docs

import "embed"

// FS holds the Markdown pages.
//
//go:embed *.md
var FS embed.FS
