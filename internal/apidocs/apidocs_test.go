package apidocs

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

const testSpecURL = "/openapi.json"

// newServer serves Mount(mux, testSpecURL) and returns the server's URL.
func newServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	Mount(mux, testSpecURL)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// get fetches rawURL, following redirects, and returns the response with
// its body read.
func get(t *testing.T, rawURL string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// noRedirect fetches rawURL without following a redirect.
func noRedirect(t *testing.T, method, rawURL string) *http.Response {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

var linkAttr = regexp.MustCompile(`\b(?:src|href)="([^"]*)"`)

// links returns the src and href values of page.
func links(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for _, m := range linkAttr.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatalf("no src or href in the page:\n%s", page)
	}
	return out
}

func TestPage(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	for _, p := range []string{"/docs", "/docs/"} {
		resp, body := get(t, base+p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, resp.StatusCode)
		}
		if got := resp.Request.URL.Path; got != "/docs/" {
			t.Errorf("GET %s: the page is served at %s, want /docs/", p, got)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q, want text/html", p, ct)
		}
		for _, want := range []string{
			"<title>rawevents API</title>",
			`<elements-api apiDescriptionUrl="` + testSpecURL + `" router="hash" layout="sidebar">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: the page lacks %s:\n%s", p, want, body)
			}
		}
		for _, l := range links(t, body) {
			if strings.Contains(l, "http://") || strings.Contains(l, "https://") || strings.HasPrefix(l, "//") {
				t.Errorf("GET %s: the page links outside the server: %s", p, l)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "style-src 'self' 'unsafe-inline'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %s", p, csp, want)
			}
		}
		if strings.Contains(csp, "http") {
			t.Errorf("GET %s: Content-Security-Policy %q admits another origin", p, csp)
		}
	}
}

func TestRedirectToSlash(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	resp := noRedirect(t, http.MethodGet, base+"/docs?x=1")
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("GET /docs: status %d, want %d", resp.StatusCode, http.StatusMovedPermanently)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path != "/docs/" || loc.RawQuery != "x=1" {
		t.Errorf("GET /docs?x=1 redirects to %s, want /docs/?x=1", loc)
	}
}

func TestAssetsOfThePage(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	// From the redirected /docs as well as from /docs/: the links are
	// relative, so they must resolve against the URL the page ends up at.
	for _, p := range []string{"/docs", "/docs/"} {
		resp, page := get(t, base+p)
		pageURL := resp.Request.URL
		seen := map[string]bool{}
		for _, l := range links(t, page) {
			ref, err := url.Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			u := pageURL.ResolveReference(ref)
			if !strings.HasPrefix(u.Path, "/docs/assets/") {
				t.Errorf("GET %s: %s resolves to %s, outside /docs/assets/", p, l, u.Path)
				continue
			}
			seen[path.Ext(u.Path)] = true
			resp, body := get(t, u.String())
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: status %d", u.Path, resp.StatusCode)
				continue
			}
			want := map[string]string{".js": "text/javascript", ".css": "text/css"}[path.Ext(u.Path)]
			if ct := resp.Header.Get("Content-Type"); want == "" || !strings.HasPrefix(ct, want) {
				t.Errorf("GET %s: Content-Type %q, want %q", u.Path, ct, want)
			}
			if len(body) < 100_000 {
				t.Errorf("GET %s: %d bytes, want the whole file", u.Path, len(body))
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
				t.Errorf("GET %s: Cache-Control %q, want a long max-age", u.Path, cc)
			}
		}
		if !seen[".js"] || !seen[".css"] {
			t.Errorf("GET %s: want a script and a stylesheet, the page links %v", p, links(t, page))
		}
	}
}

func TestEveryAsset(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	for _, name := range []string{"web-components.min.js", "styles.min.css", "LICENSE", "web-components.min.js.LICENSE.txt"} {
		resp, body := get(t, base+"/docs/assets/"+name)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", name, resp.StatusCode)
			continue
		}
		if body != string(assets[name].body) || len(body) < 1000 {
			t.Errorf("GET %s: %d bytes, not the embedded file", name, len(body))
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", name, got)
		}
		// Without the page's ?v=hash the URL is not pinned to one version.
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s without ?v: Cache-Control %q, want no-cache", name, cc)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", name)
			continue
		}
		resp, _ = get(t, base+"/docs/assets/"+name, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match: status %d, want 304", name, resp.StatusCode)
		}
	}
	if lic := string(assets["LICENSE"].body); !strings.Contains(lic, "Apache License") {
		t.Errorf("assets/LICENSE is not Elements' Apache license")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	for _, p := range []string{
		"/docs/assets/nope.js",
		"/docs/assets/",
		"/docs/assets",
		"/docs/assets/styles.min.css/x",
		"/docs/index.html",
		"/docs/apidocs.go",
		"/docs/assets/%2e%2e/apidocs.go",
	} {
		resp, _ := get(t, base+p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	base := newServer(t)

	for _, p := range []string{"/docs/", "/docs/assets/styles.min.css"} {
		if resp := noRedirect(t, http.MethodHead, base+p); resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: status %d", p, resp.StatusCode)
		}
		if resp := noRedirect(t, http.MethodPost, base+p); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: status %d, want 405", p, resp.StatusCode)
		}
	}

	// Without the mux's method patterns, the handler refuses on its own.
	rec := httptest.NewRecorder()
	Handler(testSpecURL).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("Handler, POST /: status %d, want 405", rec.Code)
	}
}

// Mounted elsewhere than /docs, say behind an /api prefix, the page and its
// relative links still work.
func TestHandlerUnderAnotherPrefix(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	h := http.StripPrefix("/api/docs", Handler(testSpecURL))
	mux.Handle("/api/docs", h)
	mux.Handle("/api/docs/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, page := get(t, srv.URL+"/api/docs")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/api/docs/" {
		t.Fatalf("GET /api/docs: status %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	for _, l := range links(t, page) {
		ref, err := url.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		u := resp.Request.URL.ResolveReference(ref)
		if r, _ := get(t, u.String()); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", u.Path, r.StatusCode)
		}
	}
}

func TestSpecURL(t *testing.T) {
	t.Parallel()

	rec := httptest.NewRecorder()
	Handler(`/openapi.json?a=1&b="x"`).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if want := `apiDescriptionUrl="/openapi.json?a=1&amp;b=&#34;x&#34;"`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("the spec URL is not escaped: want %s in\n%s", want, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	Handler("https://api.example.com:8443/openapi.json").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://api.example.com:8443;") {
		t.Errorf("Content-Security-Policy %q does not let the page fetch an absolute spec URL", csp)
	}

	defer func() {
		if recover() == nil {
			t.Error("Handler accepted an empty spec URL")
		}
	}()
	Handler("")
}

// huma registers "GET /docs" for its CDN-loaded page unless its config's
// DocsPath is ""; Mount must then fail loudly rather than be shadowed.
func TestMountClashesWithAnotherDocsRoute(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /docs", func(http.ResponseWriter, *http.Request) {})
	defer func() {
		if recover() == nil {
			t.Error("Mount did not panic on a mux that already serves GET /docs")
		}
	}()
	Mount(mux, testSpecURL)
}

// update.sh reads and rewrites the version from this exact line.
func TestVersionLineForUpdateScript(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("apidocs.go")
	if err != nil {
		t.Fatal(err)
	}
	line := "\nconst ElementsVersion = \"" + ElementsVersion + "\"\n"
	if !strings.Contains(string(src), line) {
		t.Errorf("apidocs.go lacks the line %q that update.sh looks for", strings.TrimSpace(line))
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(ElementsVersion) {
		t.Errorf("ElementsVersion %q is not a version", ElementsVersion)
	}
}
