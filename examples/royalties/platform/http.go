package platform

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Page sizes of the history API.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Page is a page of the history API.
type Page struct {
	// Items are raw events, each a flat JSON object, in order.
	Items []json.RawMessage `json:"items"`
	// Next is the cursor of the page after this one; when Done, it reads
	// an empty page.
	Next string `json:"next"`
	// Done says there is nothing after this page.
	Done bool `json:"done"`
}

// Info is what GET /v1/info answers.
type Info struct {
	// Seed, Months and Current are the Data's.
	Seed    uint64   `json:"seed"`
	Months  []string `json:"months"`
	Current string   `json:"current"`
	// Platforms and Territories are the names in use; Holders counts the
	// holders.
	Platforms   []string `json:"platforms"`
	Territories []string `json:"territories"`
	Holders     int      `json:"holders"`
	// History counts the items served here, Live the items sent by
	// webhook; the ByType maps count them by type.
	History       int            `json:"history"`
	Live          int            `json:"live"`
	HistoryByType map[string]int `json:"history_by_type"`
	LiveByType    map[string]int `json:"live_by_type"`
}

// Handler serves d's history:
//
//   - GET /v1/history?cursor=C&limit=N answers a Page of at most N items
//     (default 100, at most 1000) from the cursor C (none: from the
//     start). Cursors are opaque; pages are the same for the same Data. A
//     bad cursor or limit is a 400 application/problem+json.
//   - GET /v1/info answers an Info: what the history holds.
func Handler(d *Data) http.Handler {
	items := make([]json.RawMessage, d.HistoryLen)
	for i, it := range d.History() {
		items[i] = it.JSON()
	}
	info := Info{
		Seed: d.Config.Seed, Months: d.Months, Current: d.Current,
		Platforms: d.Platforms, Territories: d.Territories, Holders: len(d.Holders),
		History: d.HistoryLen, Live: len(d.Items) - d.HistoryLen,
		HistoryByType: Counts(d.History()), LiveByType: Counts(d.Live()),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, err := decodeCursor(q.Get("cursor"), len(items))
		if err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := DefaultPageSize
		if s, ok := q["limit"]; ok {
			n, err := strconv.Atoi(s[0])
			if err != nil || n < 1 || n > MaxPageSize {
				problem(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", s[0], MaxPageSize))
				return
			}
			limit = n
		}
		to := min(len(items), from+limit)
		writeJSON(w, http.StatusOK, Page{
			Items: append([]json.RawMessage{}, items[from:to]...),
			Next:  encodeCursor(to),
			Done:  to == len(items),
		})
	})
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, info)
	})
	return mux
}

const cursorPrefix = "history:"

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

// decodeCursor reads a cursor made by encodeCursor, "" being the start.
func decodeCursor(c string, n int) (int, error) {
	if c == "" {
		return 0, nil
	}
	bad := fmt.Errorf("cursor %q is not one this API gave out", c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, bad
	}
	s, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, bad
	}
	offset, err := strconv.Atoi(s)
	if err != nil || offset < 0 || offset > n || encodeCursor(offset) != c {
		return 0, bad
	}
	return offset, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// problem answers an RFC 9457 problem.
func problem(w http.ResponseWriter, status int, detail string) {
	body, _ := json.Marshal(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
