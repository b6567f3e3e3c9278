package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
)

// Small limits, so that the fuzzer reaches the 413 answers too.
const (
	fuzzMaxEventBytes = 64 << 10
	fuzzMaxBatchBytes = 256 << 10
)

// FuzzIngestCloudEvents sends arbitrary requests to POST /v1/events, in
// every CloudEvents mode, through one real server on SQLite. An input is a
// Content-Type, lines "name: value" sent as ce-<name> headers (binary
// mode), and the body. Whatever the input:
//
//   - the server never answers 5xx, and never panics (a panic in a handler
//     drops the connection, which fails the request);
//   - a 200 answer has one result per event sent, in order, and the log
//     grows by exactly its new events, each stored where the answer says
//     with the id, source, type and data bytes that were sent;
//   - any other answer is a problem detail, and the log does not grow.
func FuzzIngestCloudEvents(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed.contentType, seed.ceHeaders, []byte(seed.body))
	}
	b := fuzzBundle(f, server.Config{MaxEventBytes: fuzzMaxEventBytes, MaxBatchBytes: fuzzMaxBatchBytes})
	var head int64 // the last position in the log; inputs run one at a time
	f.Fuzz(func(t *testing.T, contentType, ceHeaders string, body []byte) {
		header := fuzzHeader(contentType, ceHeaders)
		if added := b.eventsAfter(t, head); len(added) != 0 {
			t.Fatalf("%d events appeared between requests", len(added))
		}
		ex := b.exchange(t, http.MethodPost, "/v1/events", header, body)
		added := b.eventsAfter(t, head)
		if len(added) > 0 {
			head = added[len(added)-1].Position
		}
		switch {
		case ex.status >= 500:
			t.Fatalf("status %d: %s", ex.status, ex.body)
		case ex.status == http.StatusOK:
			requireStoredAsSent(t, b, header, body, ingestResults(t, ex), added)
		case ex.status < 300:
			t.Fatalf("status %d, want 200 or a problem: %s", ex.status, ex.body)
		default:
			requireProblemDetail(t, ex, ex.status)
			if len(added) != 0 {
				t.Fatalf("a %d answer stored %d events", ex.status, len(added))
			}
		}
	})
}

type fuzzSeed struct{ contentType, ceHeaders, body string }

// fuzzSeeds are the interesting inputs the fuzzer starts from; testdata
// holds a few more.
func fuzzSeeds() []fuzzSeed {
	const (
		structured = "application/cloudevents+json"
		batch      = "application/cloudevents-batch+json"
	)
	binary := func(id string) string {
		return "specversion: 1.0\nid: " + id + "\nsource: /sensors/7\ntype: com.example.reading\n"
	}
	item := func(id, extra string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"https://example.com/orders","type":"com.example.order.placed"` + extra + `}`
	}
	return []fuzzSeed{
		{structured + "; charset=utf-8", "", item("s-1", `,"subject":"o-1","time":"2024-05-01T10:00:00.123456789+02:00","tenant":"acme",`+
			`"datacontenttype":"application/json","data":{"total": 12.50, "note":"<b>&amp;</b> \u00e9"}`)},
		{structured, "", item("s-2", `,"datacontenttype":"text/plain","data_base64":"aGVsbG8sIHdvcmxk"`)},
		{batch, "", "[" + item("b-1", `,"data":[1,2,3]`) + "," + item("b-2", `,"datacontenttype":"application/xml","data":"<a/>"`) + "," + item("b-1", "") + "]"},
		{batch, "", "[]"},
		{"application/json", binary("bin-json") + "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\ntenant: acme\n", `{"celsius": 21.5}`},
		{"application/octet-stream", binary("bin-octets") + "subject: \xff\xfe raw bytes\n", "\x00\x01\x02\xff\xfe"},
		{"", binary("no-body"), ""},
		{structured, "", ""},
		{structured, "", `{"specversion":"1.0","id":"x","source":`},
		{structured, "", `{"specversion":"0.3","id":"old","source":"s","type":"t"}`},
		{"text/plain", "specversion: 2.0\nid: new\nsource: s\ntype: t\n", "hello"},
		{structured, "", `{"specversion":"1.0","source":"s","type":"t"}`},
		{structured, "", item("huge", `,"big":"`+strings.Repeat("x", fuzzMaxEventBytes)+`"`)},
		{"text/plain", binary("bin-big") + "big: " + strings.Repeat("y", 16<<10) + "\n", "a big extension in a header"},
		{structured, "", item("\xff\xfe", ",\"subject\":\"\xc3\x28\"")},
		{structured, "", item("b64", `,"datacontenttype":"image/png","data_base64":"not base64!"`)},
		{batch, "", "[" + item("ok-1", "") + `,{"specversion":"1.0","id":"bad","source":"s"}]`},
		{structured, "", "[" + item("a-1", "") + "]"},
		{batch, "", item("not-an-array", "")},
		{"text/plain", "", "not a cloudevent"},
	}
}

// fuzzHeader makes the request's headers from an input, keeping only what
// an HTTP client can send and the server receives unchanged.
func fuzzHeader(contentType, ceHeaders string) http.Header {
	h := http.Header{}
	if v := headerValue(contentType); v != "" {
		h.Set("Content-Type", v)
	}
	for line := range strings.SplitSeq(ceHeaders, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if name = strings.TrimSpace(name); !ok || !isToken(name) {
			continue
		}
		h.Add("Ce-"+name, headerValue(value))
	}
	return h
}

// headerValue drops the bytes a header value cannot hold (controls but
// tab) and the white space the server trims.
func headerValue(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c >= 0x20 || c == '\t') && c != 0x7f {
			b = append(b, c)
		}
	}
	return strings.Trim(string(b), " \t")
}

// isToken reports whether s is an HTTP token (RFC 9110), as a header name
// must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// sentEvents decodes a request the way a CloudEvents receiver does: a
// batch by its media type, otherwise one event, structured or binary.
func sentEvents(t *testing.T, header http.Header, body []byte) (events []ce.Event, binaryMode bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mediaType == "application/cloudevents-batch+json" {
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			t.Fatalf("a batch that is not a JSON array was accepted: %v", err)
		}
		events, err := cehttp.NewEventsFromHTTPRequest(req)
		if err != nil {
			t.Fatalf("an accepted batch does not decode: %v", err)
		}
		if len(events) != len(items) {
			t.Fatalf("a batch of %d items decodes to %d events", len(items), len(events))
		}
		return events, false
	}
	e, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatalf("an accepted event does not decode: %v", err)
	}
	return []ce.Event{*e}, mediaType != "application/cloudevents+json"
}

// requireStoredAsSent checks a 200 answer against the request and the
// events it added to the log.
func requireStoredAsSent(t *testing.T, b *testBundle, header http.Header, body []byte, res server.IngestResponse, added []event.Event) {
	t.Helper()
	sent, binaryMode := sentEvents(t, header, body)
	if len(res.Results) != len(sent) {
		t.Fatalf("%d results for %d events", len(res.Results), len(sent))
	}
	positions := map[int64]bool{}
	var highest int64
	for i, r := range res.Results {
		e := sent[i]
		highest = max(highest, r.Position)
		if r.Source != e.Source() || r.ID != e.ID() {
			t.Fatalf("result %d is (%q, %q), want (%q, %q)", i, r.Source, r.ID, e.Source(), e.ID())
		}
		stored := b.storedRaw(t, r.Source, r.ID)
		if stored.Position != r.Position || stored.StreamID != ingest.StreamID(r.Source) {
			t.Fatalf("result %d at %d: stored in %q at %d", i, r.Position, stored.StreamID, stored.Position)
		}
		envelope := []byte(stored.Data)
		if r.Duplicate {
			// Stored earlier, maybe from other bytes: check what this
			// request would have stored instead.
			var err error
			if envelope, err = ingest.Envelope(&e); err != nil {
				t.Fatalf("result %d: an accepted event does not encode: %v", i, err)
			}
		} else {
			positions[r.Position] = true
			if stored.Type != e.Type() {
				t.Fatalf("result %d: stored as %q, sent %q", i, stored.Type, e.Type())
			}
		}
		requireWellFormed(t, envelope)
		back, err := ingest.Decode(envelope)
		if err != nil {
			t.Fatalf("result %d: the stored CloudEvent does not decode: %v\n%s", i, err, envelope)
		}
		if back.ID() != e.ID() || back.Source() != e.Source() || back.Type() != e.Type() {
			t.Fatalf("result %d: stored as (%q, %q, %q), sent (%q, %q, %q)", i, back.ID(), back.Source(), back.Type(), e.ID(), e.Source(), e.Type())
		}
		want := e.Data()
		if binaryMode {
			want = body // binary mode: the body is the data, byte for byte
		}
		if !bytes.Equal(back.Data(), want) {
			t.Fatalf("result %d: data read back %q, sent %q\nstored: %s", i, back.Data(), want, envelope)
		}
	}
	if res.Position != highest {
		t.Fatalf("position %d, want the highest result's, %d", res.Position, highest)
	}
	if len(added) != len(positions) {
		t.Fatalf("the log grew by %d events for %d new results", len(added), len(positions))
	}
	for _, e := range added {
		if !positions[e.Position] {
			t.Fatalf("position %d was added but is in no result", e.Position)
		}
	}
}

// requireWellFormed checks that a stored CloudEvent is one the JSON format
// allows: no member twice, and the payload in data or data_base64, not
// both. Readers disagree on which of two members wins.
func requireWellFormed(t *testing.T, envelope []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(envelope))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("the stored CloudEvent is not a JSON object: %s", envelope)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("stored CloudEvent %s: %v", envelope, err)
		}
		name, _ := tok.(string)
		if seen[name] {
			t.Fatalf("the stored CloudEvent has %q twice: %s", name, envelope)
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatalf("stored CloudEvent %s: %v", envelope, err)
		}
	}
	if seen["data"] && seen["data_base64"] {
		t.Fatalf("the stored CloudEvent has both data and data_base64: %s", envelope)
	}
}

// fuzzBundle starts the one server of a fuzz run, on SQLite.
func fuzzBundle(f *testing.F, config server.Config) *testBundle {
	f.Helper()
	return setup(f, backends[0].open, config)
}

// eventsAfter reads the log after a position, to its end.
func (b *testBundle) eventsAfter(t *testing.T, after int64) []event.Event {
	t.Helper()
	var out []event.Event
	for {
		page, err := b.store.ReadAll(context.Background(), &rawevents.ReadAllOpts{After: after, Limit: rawevents.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

// TestIngestNULCharacters: U+0000 is valid JSON and valid UTF-8, but
// PostgreSQL's text and jsonb cannot hold it. An event carrying one in its
// id, type or trace context must be stored faithfully or refused with a
// 400, on every backend, and must not fail the requests that share its
// group commit.
func TestIngestNULCharacters(t *testing.T) {
	t.Parallel()
	nulEvent := func(id, extra string) []byte {
		return []byte(`{"specversion":"1.0","id":"` + id + `","source":"https://example.com/nul","type":"com.example.nul"` + extra + `}`)
	}
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{})
		structured := headers("Content-Type", "application/cloudevents+json")
		for _, tt := range []struct {
			name string
			body []byte
		}{
			{"InID", nulEvent(`a\u0000b`, "")},
			{"InType", []byte(`{"specversion":"1.0","id":"type","source":"https://example.com/nul","type":"com.example\u0000nul"}`)},
			{"InTraceparent", nulEvent("traceparent", `,"traceparent":"00-\u0000"`)},
			{"InSubject", nulEvent("subject", `,"subject":"\u0000"`)},
			{"InData", nulEvent("data", `,"data":{"s":"\u0000"}`)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := len(b.log(t))
				ex := b.exchange(t, http.MethodPost, "/v1/events", structured, tt.body)
				if ex.status != http.StatusOK {
					requireProblemDetail(t, ex, http.StatusBadRequest)
					if after := len(b.log(t)); after != before {
						t.Fatalf("a refused event changed the log from %d to %d events", before, after)
					}
					return
				}
				requireStoredAsSent(t, b, structured, tt.body, ingestResults(t, ex), b.log(t)[before:])
			})
		}

		t.Run("DoesNotFailOthers", func(t *testing.T) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			failed := map[string]int{}
			for i := range 40 {
				wg.Go(func() {
					if i%8 == 0 {
						b.tryExchange(http.MethodPost, "/v1/events", structured, nulEvent(fmt.Sprintf(`nul-%d\u0000`, i), "")) //nolint:errcheck // any answer will do
						return
					}
					ex, err := b.tryExchange(http.MethodPost, "/v1/events", structured, nulEvent(fmt.Sprintf("ok-%d", i), ""))
					if err != nil || ex.status != http.StatusOK {
						mu.Lock()
						failed[fmt.Sprintf("%d %v %s", ex.status, err, ex.body)]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for answer, n := range failed {
				t.Errorf("%d of 35 valid events sent alongside ones with U+0000 failed: %s", n, answer)
			}
		})
	})
}

// TestIngestBinaryDataExtension: in binary mode a ce-data header is an
// extension attribute named "data" to the CloudEvents SDK, but "data" (and
// "data_base64") is where the JSON format keeps the payload. The event
// must be refused, or stored so that it reads back with the body as its
// data.
func TestIngestBinaryDataExtension(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{})
		for _, tt := range []struct{ name, contentType, body string }{
			{"JSONData", "application/json", `{"celsius":21.5}`},
			{"TextData", "text/plain", "21.5 degrees"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				header := fuzzHeader(tt.contentType, "specversion: 1.0\nid: "+tt.name+"\nsource: /sensors/7\ntype: com.example.reading\ndata: \"from a header\"")
				before := len(b.log(t))
				ex := b.exchange(t, http.MethodPost, "/v1/events", header, []byte(tt.body))
				if ex.status != http.StatusOK {
					requireProblemDetail(t, ex, http.StatusBadRequest)
					return
				}
				requireStoredAsSent(t, b, header, []byte(tt.body), ingestResults(t, ex), b.log(t)[before:])
			})
		}
	})
}
