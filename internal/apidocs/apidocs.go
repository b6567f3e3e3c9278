// Package apidocs serves the HTTP API's reference page, rendered in the
// browser by Stoplight Elements from the server's OpenAPI document, without
// any internet access: the Elements script and stylesheet are embedded in the
// binary (see assets/ and update.sh) instead of being loaded from a CDN as
// huma's built-in docs page does.
//
// Mount serves the page at /docs/ (and redirects /docs there). When the API
// is built with huma, turn huma's own docs route off, or the two clash:
//
//	config := huma.DefaultConfig("rawevents", version)
//	config.DocsPath = "" // served by apidocs instead
//	api := humago.New(mux, config)
//	apidocs.Mount(mux, "/openapi.json")
//
// The embedded files load nothing else from anywhere: no fonts (Elements
// uses the system's fonts and draws its icons as inline SVG), no further
// chunks. Elements does hold some absolute URLs that it fetches only when
// the API description asks for them: a ```mermaid block in a Markdown
// description makes it load mermaid from unpkg.com, and a link to YouTube,
// CodePen, Twitter and the like in a description makes it embed a player or
// fetch an oEmbed preview. Offline, and under the page's
// Content-Security-Policy, those fail (the diagram shows as its source text,
// the embed as an empty frame) and the rest of the page renders; so keep
// descriptions free of them. The "powered by Stoplight" footer is a plain
// link.
package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// ElementsVersion is the version of the npm package @stoplight/elements
// whose files are embedded under assets/. update.sh reads it from here, and
// rewrites this line when it fetches another version.
const ElementsVersion = "9.0.25"

// Title is the title of the docs page.
const Title = "rawevents API"

//go:embed assets
var assetFS embed.FS

// An asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	hash        string // of body; the version in the page's links, and the ETag
}

// assets holds every file under assets/, by name.
var assets = loadAssets()

// contentTypes are the types of the embedded files, by extension; they are
// spelled out rather than looked up in the system's MIME tables, whose answer
// for .js varies. A name without an extension (LICENSE) is text.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
	"":     "text/plain; charset=utf-8",
}

func loadAssets() map[string]asset {
	files, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		panic("apidocs: " + err.Error())
	}
	m := make(map[string]asset, len(files))
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		body, err := assetFS.ReadFile("assets/" + f.Name())
		if err != nil {
			panic("apidocs: " + err.Error())
		}
		ct, ok := contentTypes[path.Ext(f.Name())]
		if !ok {
			panic("apidocs: no content type for assets/" + f.Name() + "; add its extension to contentTypes")
		}
		m[f.Name()] = asset{body: body, contentType: ct, hash: hashOf(body)}
	}
	for _, name := range []string{"web-components.min.js", "styles.min.css"} {
		if _, ok := m[name]; !ok {
			panic("apidocs: assets/" + name + " is missing; run update.sh")
		}
	}
	return m
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// assetURL is the link to an embedded file, relative to the page. The query
// carries the file's hash, so that a browser which cached an older file
// (served for a year, see serveAsset) fetches the new one after an update.
func assetURL(name string) string {
	return "assets/" + name + "?v=" + assets[name].hash
}

// policy is the page's Content-Security-Policy: everything from this server
// only. Styles may also be inline, because Elements injects a <style> element
// (Font Awesome's icon CSS) and the page has one; images may also be blob:
// URLs, which is how the "Try It" panel shows an image response.
// connect-src also admits the origin of an absolute spec URL, so that the
// page can fetch the spec.
func policy(specURL string) string {
	connect := "'self'"
	if u, err := url.Parse(specURL); err == nil && u.Scheme != "" && u.Host != "" {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return strings.Join([]string{
		"default-src 'self'",
		"connect-src " + connect,
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' blob:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func renderPage(specURL string) []byte {
	return fmt.Appendf(nil, `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>%s</title>
<link rel="stylesheet" href="%s">
<script src="%s"></script>
<style>html, body { height: 100%%; margin: 0; }</style>
</head>
<body>
<elements-api apiDescriptionUrl="%s" router="hash" layout="sidebar"></elements-api>
</body>
</html>
`,
		html.EscapeString(Title),
		html.EscapeString(assetURL("styles.min.css")),
		html.EscapeString(assetURL("web-components.min.js")),
		html.EscapeString(specURL))
}

// Handler returns the handler of the docs page, for the OpenAPI document at
// specURL (a path on the same server such as "/openapi.json", or an absolute
// URL). It panics if specURL is empty.
//
// Request paths are relative to where the handler is mounted, which is what
// http.StripPrefix makes of them: "/" is the page, "/assets/NAME" an embedded
// file (served for a year: the page's links to them change when they do), and
// anything else is not found. The page links its files relative to its own
// URL, so it has to be served from a URL that ends in "/": the bare mount
// point, which StripPrefix turns into "", is redirected there. Mount does all
// of this for /docs.
func Handler(specURL string) http.Handler {
	if specURL == "" {
		panic("apidocs: empty spec URL")
	}
	page := asset{body: renderPage(specURL), contentType: "text/html; charset=utf-8"}
	page.hash = hashOf(page.body)
	csp := policy(specURL)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		switch {
		case p == "" && redirectToSlash(w, r):
		case p == "" || p == "/":
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cache-Control", "no-cache")
			serve(w, r, page)
		case strings.HasPrefix(p, "/assets/"):
			a, ok := assets[strings.TrimPrefix(p, "/assets/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			if r.URL.Query().Get("v") == a.hash {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				// A link from another version of the page: do not let it
				// pin this file in a cache under that URL.
				w.Header().Set("Cache-Control", "no-cache")
			}
			serve(w, r, a)
		default:
			http.NotFound(w, r)
		}
	})
}

// serve answers with a, honouring HEAD, conditional and range requests.
func serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", `"`+a.hash+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// redirectToSlash redirects a request for the bare mount point (say /docs)
// to the same URL with a slash (/docs/), where the page's relative links
// resolve, and reports whether it did. The original path comes from
// RequestURI, since StripPrefix has emptied URL.Path; the Location is
// relative, so that it stays right behind a proxy that adds a prefix.
func redirectToSlash(w http.ResponseWriter, r *http.Request) bool {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return false
	}
	p := u.EscapedPath()
	last := p[strings.LastIndex(p, "/")+1:]
	if last == "" {
		return false
	}
	loc := "./" + last + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
	return true
}

// Mount serves Handler(specURL) on mux at /docs/, and redirects /docs there.
// It registers the patterns "GET /docs" and "GET /docs/" (GET includes HEAD),
// so it panics if mux already serves GET /docs, as huma's own docs route
// does unless huma.Config.DocsPath is "".
func Mount(mux *http.ServeMux, specURL string) {
	h := http.StripPrefix("/docs", Handler(specURL))
	mux.Handle("GET /docs", h)
	mux.Handle("GET /docs/", h)
}
