package backfill_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/ingest"
)

// api is a source API for tests: n orders, served by page of size with the
// offset as cursor, in the shape {"data": [...], "meta": {"next": ..., "total": n}}.
type api struct {
	n, size int
	srv     *httptest.Server

	mu       sync.Mutex
	requests []*http.Request
	failures map[string]int // cursor -> how many 503s to answer first
}

func newAPI(t *testing.T, n, size int) *api {
	a := &api{n: n, size: size, failures: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r)
	cursor := r.URL.Query().Get("after")
	fail := a.failures[cursor] > 0
	if fail {
		a.failures[cursor]--
	}
	a.mu.Unlock()
	if fail {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	from, _ := strconv.Atoi(cursor)
	to := min(from+a.size, a.n)
	var items []string
	for i := from; i < to; i++ {
		items = append(items, fmt.Sprintf(`{"id": %d, "kind": "placed", "created_at": "2026-03-04T05:06:%02dZ", "total": %d.50}`, 9007199254740993+i, i%60, i))
	}
	next := "null"
	if to < a.n {
		next = strconv.Quote(strconv.Itoa(to))
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"data": [%s], "meta": {"next": %s, "total": %d}}`, strings.Join(items, ", "), next, a.n)
}

func (a *api) seen() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.requests...)
}

func (a *api) config() backfill.HTTPConfig {
	return backfill.HTTPConfig{
		Source: "https://shop.example", URL: a.srv.URL + "/orders?limit=" + strconv.Itoa(a.size), CursorParam: "after",
		Items: "/data", Next: "/meta/next", Total: "/meta/total",
		ID: "/id", Type: "/kind", TypePrefix: "com.shop.order.", Time: "/created_at",
		Token: "s3cret-token", Headers: map[string]string{"X-Api-Version": "2026-01"},
	}
}

func TestHTTPSource(t *testing.T) {
	t.Parallel()

	t.Run("PagesWithACursorParameter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := newAPI(t, 23, 10)
		bf, err := a.config().Backfill("shop-orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.runner(t, bf).Run(t.Context(), "shop-orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Items != 23 || p.Stored != 23 || p.Pages != 3 || p.Total != 23 || p.Source != "https://shop.example" {
			t.Errorf("progress = %+v", p)
		}
		reqs := a.seen()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		for i, want := range []string{"limit=10", "after=10&limit=10", "after=20&limit=10"} {
			r := reqs[i]
			if r.URL.RawQuery != want || r.Header.Get("Authorization") != "Bearer s3cret-token" || r.Header.Get("X-Api-Version") != "2026-01" {
				t.Errorf("request %d: %s %v, want query %s with the token and header", i, r.URL, r.Header, want)
			}
		}
		// Ids are kept as written (beyond float64's precision), types
		// prefixed, times parsed, and the item stored byte for byte.
		ids := rawIDs(t, b.store, "https://shop.example")
		if len(ids) != 23 || ids[0] != "9007199254740993" || ids[1] != "9007199254740994" {
			t.Fatalf("ids %v", ids[:min(3, len(ids))])
		}
		stored, err := b.store.LookupKeys(t.Context(), ingest.Key("https://shop.example", "9007199254740995"))
		if err != nil || len(stored) != 1 {
			t.Fatalf("lookup: %v, %v", stored, err)
		}
		e := stored[0]
		if !strings.HasSuffix(string(e.Data), `"data":{"id": 9007199254740995, "kind": "placed", "created_at": "2026-03-04T05:06:02Z", "total": 2.50}}`) ||
			e.Type != "com.shop.order.placed" || !e.OccurredAt.Equal(time.Date(2026, 3, 4, 5, 6, 2, 0, time.UTC)) {
			t.Errorf("stored %s %s %s", e.Type, e.OccurredAt, e.Data)
		}
	})

	t.Run("NextIsAURL", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.RequestURI() {
			case "/v2/events":
				fmt.Fprint(w, `{"events": [{"uuid": "a", "payload": {"x": 1}}], "links": {"next": "/v2/events?page=2"}}`)
			case "/v2/events?page=2":
				fmt.Fprint(w, `{"events": [{"uuid": "b", "payload": {"x": 2}}], "links": {"next": null}}`)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(srv.Close)
		src, err := backfill.NewHTTPSource("events", backfill.HTTPConfig{
			URL: srv.URL + "/v2/events", Items: "/events", Next: "/links/next", ID: "/uuid", TypeValue: "event", Data: "/payload",
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, err := src.Fetch(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if first.Last || first.Next != "/v2/events?page=2" || len(first.Items) != 1 || string(first.Items[0].Data) != `{"x": 1}` || first.Items[0].Type != "event" {
			t.Fatalf("first page %+v", first)
		}
		second, err := src.Fetch(t.Context(), first.Next)
		if err != nil {
			t.Fatal(err)
		}
		if !second.Last || second.Items[0].ID != "b" {
			t.Fatalf("second page %+v", second)
		}
	})

	t.Run("LastPage", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name, body string
			last       bool
		}{
			{"NextMissing", `{"items": [{"id": "1"}]}`, true},
			{"NextEmpty", `{"items": [{"id": "1"}], "next": ""}`, true},
			{"NoItems", `{"items": [], "next": "5"}`, true},
			{"ItemsNull", `{"items": null, "next": "5"}`, true},
			{"HasMoreFalse", `{"items": [{"id": "1"}], "next": "5", "has_more": false}`, true},
			{"HasMoreTrue", `{"items": [{"id": "1"}], "next": "5", "has_more": true}`, false},
			{"NumericCursor", `{"items": [{"id": "1"}], "next": 5}`, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				src := staticSource(t, tt.body, backfill.HTTPConfig{Items: "/items", Next: "/next", HasMore: "/has_more", ID: "/id", TypeValue: "t"})
				page, err := src.Fetch(t.Context(), "")
				if err != nil {
					t.Fatal(err)
				}
				if page.Last != tt.last {
					t.Errorf("Last = %v, want %v (page %+v)", page.Last, tt.last, page)
				}
			})
		}
	})

	t.Run("UnixTimes", func(t *testing.T) {
		t.Parallel()
		for format, body := range map[string]string{
			"unix":    `[{"id": "1", "at": 1767323045}]`,
			"unix_ms": `[{"id": "1", "at": 1767323045000}]`,
			"rfc3339": `[{"id": "1", "at": "2026-01-02T03:04:05Z"}]`,
		} {
			src := staticSource(t, body, backfill.HTTPConfig{Next: "/next", ID: "/id", TypeValue: "t", Time: "/at", TimeFormat: format})
			page, err := src.Fetch(t.Context(), "")
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC); !page.Items[0].Time.Equal(want) {
				t.Errorf("%s: time %v, want %v", format, page.Items[0].Time, want)
			}
		}
	})

	t.Run("BadPages", func(t *testing.T) {
		t.Parallel()
		cfg := backfill.HTTPConfig{Items: "/items", Next: "/next", ID: "/id", Type: "/type", Time: "/at"}
		for body, want := range map[string]string{
			`<html>`:               "the page is not JSON",
			`{"things": []}`:       `the page has nothing at "/items" (items)`,
			`{"items": {"id": 1}}`: `items at "/items" are not an array`,
			`{"items": [{"id": "1", "type": "t"}, {}]}`:            `item 1: no id at "/id"`,
			`{"items": [{"id": "1"}]}`:                             `item 0: id "1": no type at "/type"`,
			`{"items": [{"id": {"a": 1}}]}`:                        `item 0: id at "/id": not a string or a number`,
			`{"items": [{"id": 1, "type": "t", "at": 5}]}`:         `item 0: id "1": time at "/at": "5" is not an RFC 3339 time`,
			`{"items": [{"id": 1, "type": "t"}], "next": 1.5e400}`: "next cursor", // not representable: still read as written
		} {
			page, err := staticSource(t, body, cfg).Fetch(t.Context(), "")
			if want == "next cursor" {
				if err != nil || page.Next != "1.5e400" {
					t.Errorf("%s: %+v, %v; want the number as written", body, page, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", body, err, want)
			}
		}
	})

	t.Run("RetriesBusyAnswers", func(t *testing.T) {
		t.Parallel()
		a := newAPI(t, 5, 10)
		a.failures[""] = 2
		src, err := backfill.NewHTTPSource("orders", a.config(), nil)
		if err != nil {
			t.Fatal(err)
		}
		page, err := src.Fetch(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 5 || len(a.seen()) != 3 {
			t.Errorf("%d items after %d requests, want 5 after 3", len(page.Items), len(a.seen()))
		}
	})

	t.Run("FailsAtOnceOnAClientError", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			http.Error(w, `{"message": "Bad credentials"}`, http.StatusUnauthorized)
		}))
		t.Cleanup(srv.Close)
		cfg := backfill.HTTPConfig{URL: srv.URL + "/x?api_key=k3y", Next: "/next", ID: "/id", TypeValue: "t", Token: "s3cret-token"}
		src, err := backfill.NewHTTPSource("x", cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Fetch(t.Context(), "")
		if err == nil || !strings.Contains(err.Error(), `401 Unauthorized: {"message": "Bad credentials"}`) || calls.Load() != 1 {
			t.Fatalf("err = %v after %d calls, want the 401 at once", err, calls.Load())
		}
		if strings.Contains(err.Error(), "k3y") || strings.Contains(err.Error(), "s3cret") || strings.Contains(fmt.Sprint(cfg), "s3cret") {
			t.Errorf("a secret leaks: %v / %v", err, cfg)
		}
	})
}

// staticSource serves body to every request.
func staticSource(t *testing.T, body string, cfg backfill.HTTPConfig) *backfill.HTTPSource {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(srv.Close)
	cfg.URL = srv.URL
	src, err := backfill.NewHTTPSource("static", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestHTTPConfigValidate(t *testing.T) {
	t.Parallel()
	var cfg backfill.HTTPConfig
	if err := json.Unmarshal([]byte(`{"url": "ftp://x", "cursor_param": "a&b", "items": "data", "type": "/t", "type_value": "t",
		"time_format": "iso", "headers": {"Bad Header": "v"}, "rate": -1, "retries": -2}`), &cfg); err != nil {
		t.Fatal(err)
	}
	err := cfg.Validate("orders")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`backfill "orders": url "ftp://x": want an http:// or https:// URL`,
		`cursor_param "a&b": want a query parameter name`,
		"next is required", "id is required", "type and type_value are exclusive",
		`items "data": want a JSON pointer`, `time_format "iso"`, `header "Bad Header"`, "rate is negative", "retries must be",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
	if _, err := (backfill.HTTPConfig{}).Backfill("a/b", nil); err == nil || !strings.Contains(err.Error(), "url is required") ||
		!strings.Contains(err.Error(), "without spaces, '/'") || !strings.Contains(err.Error(), "type (a JSON pointer, in an item) or type_value") {
		t.Errorf("empty config: %v", err)
	}
}
