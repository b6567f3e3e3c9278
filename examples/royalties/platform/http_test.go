package platform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/rawevents/rawevents/examples/royalties"
)

func get(t *testing.T, srv *httptest.Server, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// walk reads the history page by page, with limit (0: the default).
func walk(t *testing.T, srv *httptest.Server, limit string) (items []json.RawMessage, pages int) {
	t.Helper()
	cursor := ""
	for {
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if limit != "" {
			q.Set("limit", limit)
		}
		status, header, body := get(t, srv, "/v1/history?"+q.Encode())
		if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
			t.Fatalf("cursor %q: %d %s", cursor, status, body)
		}
		var page Page
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		items = append(items, page.Items...)
		if page.Done {
			// The last cursor reads an empty page, done.
			_, _, again := get(t, srv, "/v1/history?cursor="+page.Next)
			if want := `{"items":[],"next":"` + page.Next + `","done":true}` + "\n"; string(again) != want {
				t.Errorf("after the end: %s, want %s", again, want)
			}
			return items, pages
		}
		if page.Next == cursor || len(page.Items) == 0 {
			t.Fatalf("cursor %q: no progress", cursor)
		}
		cursor = page.Next
	}
}

func TestHistoryPaging(t *testing.T) {
	d := Generate(Config{Seed: 1})
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	want := d.JSON()[:d.HistoryLen]
	for _, c := range []struct {
		limit string
		pages int
	}{
		{"", (d.HistoryLen + 99) / 100},
		{"7", (d.HistoryLen + 6) / 7},
		{"1000", (d.HistoryLen + 999) / 1000},
	} {
		items, pages := walk(t, srv, c.limit)
		if pages != c.pages || len(items) != len(want) {
			t.Errorf("limit %q: %d items in %d pages, want %d in %d", c.limit, len(items), pages, len(want), c.pages)
			continue
		}
		for i := range items {
			if !bytes.Equal(items[i], want[i]) {
				t.Fatalf("limit %q: item %d is %s, want %s", c.limit, i, items[i], want[i])
			}
		}
	}
	// The same request, the same page.
	_, _, a := get(t, srv, "/v1/history?limit=50&cursor="+encodeCursor(123))
	_, _, b := get(t, srv, "/v1/history?cursor="+encodeCursor(123)+"&limit=50")
	if !bytes.Equal(a, b) {
		t.Error("the same page twice: not the same bytes")
	}
}

func TestHistoryBadInput(t *testing.T) {
	d := Generate(Config{Seed: 1, Months: 2, Tracks: 10})
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, q := range []string{
		"cursor=nonsense!", "cursor=" + enc("history:-1"), "cursor=" + enc("history:1000000"),
		"cursor=" + enc("history:007"), "cursor=" + enc("log:3"), "cursor=" + enc("history:") + "==",
		"limit=0", "limit=-1", "limit=1001", "limit=ten", "limit=", "limit=1.5",
	} {
		status, header, body := get(t, srv, "/v1/history?"+q)
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &p); err != nil || status != http.StatusBadRequest ||
			header.Get("Content-Type") != "application/problem+json" || p.Status != 400 || p.Detail == "" {
			t.Errorf("%s: %d %s %s", q, status, header.Get("Content-Type"), body)
		}
	}
	for _, q := range []string{"", "limit=1", "limit=1000", "cursor=" + encodeCursor(d.HistoryLen)} {
		if status, _, body := get(t, srv, "/v1/history?"+q); status != http.StatusOK {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	resp, err := srv.Client().Post(srv.URL+"/v1/history", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestInfo(t *testing.T) {
	d := Generate(Config{Seed: 1})
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	status, _, body := get(t, srv, "/v1/info")
	var info Info
	if err := json.Unmarshal(body, &info); err != nil || status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	if info.Seed != 1 || len(info.Months) != 12 || info.Current != "2026-01" || info.History != d.HistoryLen ||
		info.Live != len(d.Live()) || info.Holders != 40 || len(info.Platforms) != 3 ||
		info.HistoryByType[royalties.TypeTrackRegistered] != 200 || info.LiveByType[royalties.TypeUsageReported] != info.Live {
		t.Errorf("%s", body)
	}
}
