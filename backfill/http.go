package backfill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTPConfig configures a backfill from a JSON API that pages with a
// cursor, without code: the "backfills" entries of the config file of
// "rawevents serve" and "rawevents backfill". Locations in the JSON are RFC
// 6901 pointers: into the page for Items, Next, HasMore and Total, into
// each item for ID, Type, Time and Data.
//
// The first request is URL as given. Each next request is URL with the
// query parameter CursorParam set to the previous page's Next value; or,
// without CursorParam, the Next value itself, a URL (absolute or relative
// to URL), for APIs whose answers link to their next page. A page is the
// last when Next is missing, null or empty, when HasMore is false, or when
// it has no items.
type HTTPConfig struct {
	// Source is the CloudEvents source attribute of the stored events:
	// the one the source's webhooks arrive with, so that a fact both
	// delivered and pulled is stored once. Default: the backfill's name.
	Source string `json:"source,omitempty"`
	// URL is the first page's address. Required; http or https.
	URL string `json:"url"`
	// CursorParam is the query parameter that carries the cursor. Empty:
	// Next is the next page's URL.
	CursorParam string `json:"cursor_param,omitempty"`
	// Items points at the page's array of items. Empty: the page is the
	// array.
	Items string `json:"items,omitempty"`
	// Next points at the next page's cursor (a string or a number), or its
	// URL when CursorParam is empty. Required.
	Next string `json:"next"`
	// HasMore, when set, points at a boolean that is false on the last
	// page; where the page has none, Next alone decides.
	HasMore string `json:"has_more,omitempty"`
	// Total, when set, points at the number of items the source holds, for
	// progress bars.
	Total string `json:"total,omitempty"`
	// ID points, in an item, at its CloudEvents id (a string or a number).
	// Required.
	ID string `json:"id"`
	// Type points, in an item, at its CloudEvents type. Exactly one of Type
	// and TypeValue is required.
	Type string `json:"type,omitempty"`
	// TypeValue is the CloudEvents type of every item.
	TypeValue string `json:"type_value,omitempty"`
	// TypePrefix is put before the type ("com.shop.").
	TypePrefix string `json:"type_prefix,omitempty"`
	// Time, when set, points, in an item, at when it happened.
	Time string `json:"time,omitempty"`
	// TimeFormat is how Time is written: rfc3339 (the default), unix
	// (seconds) or unix_ms.
	TimeFormat string `json:"time_format,omitempty"`
	// Data points, in an item, at the payload to store, kept byte for
	// byte. Empty: the whole item.
	Data string `json:"data,omitempty"`
	// Token is sent as "Authorization: Bearer <token>". It is never
	// printed.
	Token string `json:"token,omitempty"`
	// Headers are sent with every request (an API key header, a version
	// header). Their values are never printed.
	Headers map[string]string `json:"headers,omitempty"`
	// Rate bounds the requests, in pages per second. 0 means no limit.
	Rate float64 `json:"rate,omitempty"`
	// Timeout bounds one request, in seconds. Default 30.
	Timeout float64 `json:"timeout,omitempty"`
	// Retries is how many times a request that failed with a network
	// error, 429 or 5xx is sent again before the run fails, after
	// Retry-After or a doubling backoff from half a second. Default 3; -1
	// for none.
	Retries int `json:"retries,omitempty"`
}

// String hides the token and the header values.
func (c HTTPConfig) String() string {
	return fmt.Sprintf("backfill.HTTPConfig(url=%s cursor_param=%s items=%s next=%s id=%s)", redactURL(c.URL), c.CursorParam, c.Items, c.Next, c.ID)
}

// Validate reports every problem of the configuration of the backfill
// name at once.
func (c HTTPConfig) Validate(name string) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("backfill %q: %s", name, fmt.Sprintf(format, args...)))
	}
	if err := ValidateName(name); err != nil {
		errs = append(errs, err)
	}
	if c.URL == "" {
		bad("url is required")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q: want an http:// or https:// URL", redactURL(c.URL))
	}
	if c.CursorParam != "" && strings.ContainsAny(c.CursorParam, "&=?# ") {
		bad("cursor_param %q: want a query parameter name", c.CursorParam)
	}
	if c.Next == "" {
		bad("next is required: a JSON pointer to the next page's cursor")
	}
	if c.ID == "" {
		bad("id is required: a JSON pointer, in an item, to its id")
	}
	switch {
	case c.Type == "" && c.TypeValue == "":
		bad("type (a JSON pointer, in an item) or type_value (one type for every item) is required")
	case c.Type != "" && c.TypeValue != "":
		bad("type and type_value are exclusive")
	}
	for _, f := range [...]struct{ field, p string }{
		{"items", c.Items}, {"next", c.Next}, {"has_more", c.HasMore}, {"total", c.Total},
		{"id", c.ID}, {"type", c.Type}, {"time", c.Time}, {"data", c.Data},
	} {
		if f.p != "" && !strings.HasPrefix(f.p, "/") {
			bad("%s %q: want a JSON pointer such as /data/0/id (RFC 6901)", f.field, f.p)
		}
	}
	if c.TimeFormat != "" && c.TimeFormat != "rfc3339" && c.TimeFormat != "unix" && c.TimeFormat != "unix_ms" {
		bad("time_format %q: want rfc3339, unix or unix_ms", c.TimeFormat)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		if v := c.Headers[k]; k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			bad("header %q: want a header name and a one-line value", k)
		}
	}
	if strings.ContainsAny(c.Token, " \r\n") {
		bad("token contains a space or a line break") // a secret: not repeated
	}
	if c.Rate < 0 {
		bad("rate is negative")
	}
	if c.Timeout < 0 {
		bad("timeout is negative")
	}
	if c.Retries < -1 {
		bad("retries must be -1 (none), 0 (the default) or more")
	}
	return errors.Join(errs...)
}

// Backfill returns the backfill name described by c, pulling with
// client (nil: http.DefaultClient's transport, with c.Timeout per
// request). It validates c first.
func (c HTTPConfig) Backfill(name string, client *http.Client) (*Backfill, error) {
	src, err := NewHTTPSource(name, c, client)
	if err != nil {
		return nil, err
	}
	source := c.Source
	if source == "" {
		source = name
	}
	return &Backfill{Name: name, Source: src, EventSource: source, Rate: c.Rate}, nil
}

// HTTPSource is a Source that pages through a JSON API as an HTTPConfig
// says.
type HTTPSource struct {
	name    string
	config  HTTPConfig
	base    *url.URL
	client  *http.Client
	retries int
	backoff time.Duration
}

// maxPageBytes bounds the body of one page.
const maxPageBytes = 64 << 20

// NewHTTPSource returns the source of the backfill name described by c,
// pulling with client (nil: a client with c.Timeout per request).
func NewHTTPSource(name string, c HTTPConfig, client *http.Client) (*HTTPSource, error) {
	if err := c.Validate(name); err != nil {
		return nil, err
	}
	base, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	if client == nil {
		timeout := 30 * time.Second
		if c.Timeout > 0 {
			timeout = time.Duration(c.Timeout * float64(time.Second))
		}
		client = &http.Client{Timeout: timeout}
	}
	retries := c.Retries
	switch retries {
	case 0:
		retries = 3
	case -1:
		retries = 0
	}
	return &HTTPSource{name: name, config: c, base: base, client: client, retries: retries, backoff: 500 * time.Millisecond}, nil
}

// Fetch requests the page after cursor and reads its items.
func (s *HTTPSource) Fetch(ctx context.Context, cursor string) (*Page, error) {
	u, err := s.pageURL(cursor)
	if err != nil {
		return nil, err
	}
	body, err := s.get(ctx, u)
	if err != nil {
		return nil, err
	}
	return s.parse(body)
}

// pageURL is the address of the page after cursor.
func (s *HTTPSource) pageURL(cursor string) (*url.URL, error) {
	switch {
	case cursor == "":
		return s.base, nil
	case s.config.CursorParam == "":
		u, err := s.base.Parse(cursor)
		if err != nil {
			return nil, fmt.Errorf("next page URL %q: %w", cursor, err)
		}
		return u, nil
	}
	u := *s.base
	q := u.Query()
	q.Set(s.config.CursorParam, cursor)
	u.RawQuery = q.Encode()
	return &u, nil
}

// get requests u, sending it again after a network error, 429 or 5xx.
func (s *HTTPSource) get(ctx context.Context, u *url.URL) ([]byte, error) {
	backoff := s.backoff
	for attempt := 0; ; attempt++ {
		body, retry, err := s.getOnce(ctx, u)
		if err == nil || !retry.ok || attempt >= s.retries || ctx.Err() != nil {
			return body, err
		}
		wait := backoff
		backoff *= 2
		if retry.after >= 0 {
			wait = retry.after
		}
		t := time.NewTimer(min(wait, time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// retry says whether a failed request may succeed if sent again, and
// after how long the server asked for it (negative: it did not say).
type retry struct {
	ok    bool
	after time.Duration
}

// getOnce requests u once.
func (s *HTTPSource) getOnce(ctx context.Context, u *url.URL) ([]byte, retry, error) {
	never, again := retry{}, retry{ok: true, after: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, never, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rawevents-backfill")
	for k, v := range s.config.Headers {
		req.Header.Set(k, v)
	}
	if s.config.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.config.Token)
	}
	where := redactURL(u.String())
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, maybe with a key
		}
		return nil, again, fmt.Errorf("GET %s: %w", where, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read to the end or given up
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return nil, again, fmt.Errorf("GET %s: read the answer: %w", where, err)
	}
	if resp.StatusCode/100 != 2 {
		snippet := strings.Join(strings.Fields(string(body[:min(len(body), 200)])), " ")
		err := fmt.Errorf("GET %s: %s: %s", where, resp.Status, snippet)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
				again.after = time.Duration(secs) * time.Second
			}
			return nil, again, err
		}
		return nil, never, err
	}
	if len(body) > maxPageBytes {
		return nil, never, fmt.Errorf("GET %s: the page is larger than %d bytes", where, maxPageBytes)
	}
	return body, never, nil
}

// parse reads a page's body.
func (s *HTTPSource) parse(body []byte) (*Page, error) {
	c := s.config
	if !json.Valid(body) {
		return nil, errors.New("the page is not JSON")
	}
	itemsRaw, ok := lookup(body, c.Items)
	if !ok {
		return nil, fmt.Errorf("the page has nothing at %q (items)", c.Items)
	}
	var raws []json.RawMessage
	if isNull(itemsRaw) {
		raws = nil
	} else if err := json.Unmarshal(itemsRaw, &raws); err != nil {
		return nil, fmt.Errorf("items at %q are not an array", c.Items)
	}
	page := &Page{Items: make([]Item, 0, len(raws))}
	for i, raw := range raws {
		it, err := s.item(raw)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		page.Items = append(page.Items, it)
	}
	next, present, err := scalar(body, c.Next)
	if err != nil {
		return nil, fmt.Errorf("next cursor at %q: %w", c.Next, err)
	}
	page.Next = next
	page.Last = !present || next == "" || len(raws) == 0
	if raw, ok := lookup(body, c.HasMore); c.HasMore != "" && ok && !isNull(raw) {
		var more bool
		if json.Unmarshal(raw, &more) != nil {
			return nil, fmt.Errorf("has_more at %q is not a boolean", c.HasMore)
		}
		if !more {
			page.Last = true
		} else if page.Last && len(raws) > 0 {
			return nil, fmt.Errorf("has_more at %q is true, but there is no next cursor at %q", c.HasMore, c.Next)
		}
	}
	if c.Total != "" {
		if raw, ok := lookup(body, c.Total); ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &page.Total); err != nil {
				return nil, fmt.Errorf("total at %q is not a whole number", c.Total)
			}
		}
	}
	return page, nil
}

// item reads one item of a page.
func (s *HTTPSource) item(raw json.RawMessage) (Item, error) {
	c := s.config
	var it Item
	id, ok, err := scalar(raw, c.ID)
	switch {
	case err != nil:
		return it, fmt.Errorf("id at %q: %w", c.ID, err)
	case !ok || id == "":
		return it, fmt.Errorf("no id at %q", c.ID)
	}
	it.ID = id
	it.Type = c.TypeValue
	if c.Type != "" {
		typ, ok, err := scalar(raw, c.Type)
		switch {
		case err != nil:
			return it, fmt.Errorf("id %q: type at %q: %w", id, c.Type, err)
		case !ok || typ == "":
			return it, fmt.Errorf("id %q: no type at %q", id, c.Type)
		}
		it.Type = typ
	}
	it.Type = c.TypePrefix + it.Type
	if c.Time != "" {
		t, ok, err := scalar(raw, c.Time)
		if err != nil {
			return it, fmt.Errorf("id %q: time at %q: %w", id, c.Time, err)
		}
		if ok && t != "" {
			if it.Time, err = parseTime(t, c.TimeFormat); err != nil {
				return it, fmt.Errorf("id %q: time at %q: %w", id, c.Time, err)
			}
		}
	}
	data, ok := lookup(raw, c.Data)
	if !ok {
		return it, fmt.Errorf("id %q: no data at %q", id, c.Data)
	}
	it.Data = data
	it.ContentType = "application/json"
	return it, nil
}

func parseTime(s, format string) (time.Time, error) {
	switch format {
	case "unix", "unix_ms":
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a number of %s", s, map[string]string{"unix": "seconds", "unix_ms": "milliseconds"}[format])
		}
		if format == "unix_ms" {
			n /= 1000
		}
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (set time_format for Unix times)", s)
	}
	return t, nil
}

// lookup resolves an RFC 6901 pointer in a JSON document, returning the
// bytes of the value it points at as they are in doc. The empty pointer
// is the whole document.
func lookup(doc json.RawMessage, pointer string) (json.RawMessage, bool) {
	if pointer == "" {
		return doc, true
	}
	for _, token := range strings.Split(pointer, "/")[1:] {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		trimmed := bytes.TrimSpace(doc)
		if len(trimmed) == 0 {
			return nil, false
		}
		switch trimmed[0] {
		case '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(trimmed, &m) != nil {
				return nil, false
			}
			v, ok := m[token]
			if !ok {
				return nil, false
			}
			doc = v
		case '[':
			var a []json.RawMessage
			if json.Unmarshal(trimmed, &a) != nil {
				return nil, false
			}
			i, err := strconv.Atoi(token)
			if err != nil || i < 0 || i >= len(a) {
				return nil, false
			}
			doc = a[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// scalar reads a string, or a number as written, at pointer. A missing
// value or null is not present.
func scalar(doc json.RawMessage, pointer string) (string, bool, error) {
	raw, ok := lookup(doc, pointer)
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true, nil
	}
	// Numbers are kept as written: a float64 would turn two large ids into
	// one, and the second item into a duplicate of the first.
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		return n.String(), true, nil
	}
	return "", false, errors.New("not a string or a number")
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// redactURL hides a URL's password and query values, which may hold keys.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
