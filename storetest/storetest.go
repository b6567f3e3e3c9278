// Package storetest is the conformance suite every event store driver
// passes. A behaviour of the store is specified here once; each driver's
// tests call Run with a factory that yields a fresh, migrated store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// Harness is what a driver hands the suite for one subtest.
type Harness[TTx any] struct {
	// Store is a fresh, migrated store that no other test uses.
	Store *rawevents.Store[TTx]
	// Begin, Commit and Rollback manage transactions for AppendTx.
	Begin    func(ctx context.Context) (TTx, error)
	Commit   func(ctx context.Context, tx TTx) error
	Rollback func(ctx context.Context, tx TTx) error
	// Exec runs raw SQL on the store's database, bypassing the store. The
	// text {events} in query is replaced by the events table's name. It is
	// not called when NoSQL is set.
	Exec func(ctx context.Context, query string) error
	// NoSQL reports that the store's database takes no SQL (the in-memory
	// driver): the checks that run raw SQL through Exec do not apply.
	NoSQL bool
	// ConcurrentTx reports that several AppendTx transactions can be open
	// at once (false on SQLite, whose writers queue for one connection).
	ConcurrentTx bool
}

// Factory returns a fresh Harness; it registers its own cleanup with t.
type Factory[TTx any] func(t *testing.T) *Harness[TTx]

// Run runs the whole suite against a driver.
func Run[TTx any](t *testing.T, newHarness Factory[TTx]) {
	tests := []struct {
		name string
		run  func(t *testing.T, h *Harness[TTx])
	}{
		{"AppendAndReadBack", testAppendAndReadBack[TTx]},
		{"ExpectedVersion", testExpectedVersion[TTx]},
		{"Idempotency", testIdempotency[TTx]},
		{"Ordering", testOrdering[TTx]},
		{"Paging", testPaging[TTx]},
		{"ReadStreamBackwards", testReadStreamBackwards[TTx]},
		{"LargePayload", testLargePayload[TTx]},
		{"Unicode", testUnicode[TTx]},
		{"EmptyBatch", testEmptyBatch[TTx]},
		{"HugeBatch", testHugeBatch[TTx]},
		{"StreamInfo", testStreamInfo[TTx]},
		{"TimestampsRoundTrip", testTimestamps[TTx]},
		{"BadInput", testBadInput[TTx]},
		{"ClosedStore", testClosedStore[TTx]},
		{"CancelledContext", testCancelledContext[TTx]},
		{"AppendTx", testAppendTx[TTx]},
		{"AppendManyTx", testAppendManyTx[TTx]},
		{"Immutability", testImmutability[TTx]},
		{"ConcurrentWritersOneStream", testConcurrentWriters[TTx]},
		{"AppendMany", testAppendMany[TTx]},
		{"AppendManyConcurrent", testAppendManyConcurrent[TTx]},
		{"GapFreeTail", testGapFreeTail[TTx]},
		{"GapFreeTailAppendMany", testGapFreeTailAppendMany[TTx]},
		{"WaitForPosition", testWaitForPosition[TTx]},
		{"Follow", testFollow[TTx]},
		{"AppendIfAbsent", testAppendIfAbsent[TTx]},
		{"AppendIfAbsentConcurrent", testAppendIfAbsentConcurrent[TTx]},
		{"AppendIfAbsentKeys", testAppendIfAbsentKeys[TTx]},
		{"AppendIfAbsentKeysConcurrent", testAppendIfAbsentKeysConcurrent[TTx]},
		{"ReadStreamTx", testReadStreamTx[TTx]},
		{"ClaimFairShare", testClaimFairShare[TTx]},
		{"ClaimExpiredLease", testClaimExpiredLease[TTx]},
		{"ClaimPartitionsChanged", testClaimPartitionsChanged[TTx]},
		{"CheckpointFencing", testCheckpointFencing[TTx]},
		{"Parking", testParking[TTx]},
		{"Snapshots", testSnapshots[TTx]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newHarness(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func proposed(typ string, data string) event.Proposed {
	return event.Proposed{Type: typ, Data: json.RawMessage(data)}
}

func numbered(n int) []event.Proposed {
	out := make([]event.Proposed, n)
	for i := range out {
		out[i] = proposed("thing.happened", fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

func mustAppend[TTx any](t *testing.T, h *Harness[TTx], stream string, expected event.ExpectedVersion, events ...event.Proposed) *event.AppendResult {
	t.Helper()
	res, err := h.Store.Append(ctxT(t), stream, expected, events...)
	if err != nil {
		t.Fatalf("append to %q: %v", stream, err)
	}
	return res
}

func readAll[TTx any](t *testing.T, h *Harness[TTx]) []event.Event {
	t.Helper()
	var all []event.Event
	var after int64
	for {
		page, err := h.Store.ReadAll(ctxT(t), &rawevents.ReadAllOpts{After: after, Limit: 500})
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

func readStream[TTx any](t *testing.T, h *Harness[TTx], stream string) []event.Event {
	t.Helper()
	events, err := h.Store.ReadStream(ctxT(t), stream, &rawevents.ReadStreamOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatalf("read stream %q: %v", stream, err)
	}
	return events
}

func requireCount[TTx any](t *testing.T, h *Harness[TTx], want int) {
	t.Helper()
	if got := len(readAll(t, h)); got != want {
		t.Fatalf("the log holds %d events, want %d", got, want)
	}
}

func requireEqualEvents(t *testing.T, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Fatalf("event %d differs:\n got %s\nwant %s", i, g, w)
		}
	}
}

func testAppendAndReadBack[TTx any](t *testing.T, h *Harness[TTx]) {
	meta := event.Metadata{
		CorrelationID: "corr-1", CausationID: "cause-1", Actor: "user:ana",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "vendor=1",
		Origin: &event.Origin{Source: "github", ID: "delivery-9", Position: 7},
		Extra:  map[string]string{"tenant": "acme"},
	}
	res := mustAppend(t, h, "order-1", event.NoStream,
		event.Proposed{Type: "order.placed", SchemaVersion: 2, Data: json.RawMessage(`{ "b":1,  "a": [1, 2.50] }`), Metadata: meta},
		proposed("order.paid", `{"amount":12}`),
	)
	if res.Version != 2 || len(res.Events) != 2 || res.Duplicate {
		t.Fatalf("result: version %d, %d events, duplicate %v", res.Version, len(res.Events), res.Duplicate)
	}
	first, second := res.Events[0], res.Events[1]
	if first.ID.Version() != 7 {
		t.Errorf("default id is UUID version %d, want 7", first.ID.Version())
	}
	if first.StreamVersion != 1 || second.StreamVersion != 2 || first.Position < 1 || second.Position <= first.Position {
		t.Errorf("versions %d,%d positions %d,%d", first.StreamVersion, second.StreamVersion, first.Position, second.Position)
	}
	if first.SchemaVersion != 2 || second.SchemaVersion != 1 {
		t.Errorf("schema versions %d,%d, want 2,1", first.SchemaVersion, second.SchemaVersion)
	}
	if first.RecordedAt.IsZero() || !first.OccurredAt.Equal(first.RecordedAt) {
		t.Errorf("occurred %v recorded %v: occurred-at defaults to recorded-at", first.OccurredAt, first.RecordedAt)
	}
	requireEqualEvents(t, readStream(t, h, "order-1"), res.Events)
	requireEqualEvents(t, readAll(t, h), res.Events)
	if string(readStream(t, h, "order-1")[0].Data) != `{ "b":1,  "a": [1, 2.50] }` {
		t.Error("data bytes were not kept exactly")
	}
	if got := readStream(t, h, "no-such-stream"); len(got) != 0 {
		t.Errorf("a missing stream reads %d events, want none", len(got))
	}
}

func testExpectedVersion[TTx any](t *testing.T, h *Harness[TTx]) {
	mustAppend(t, h, "existing", event.NoStream, numbered(3)...) // at version 3
	tests := []struct {
		name     string
		stream   string
		expected event.ExpectedVersion
		actual   int64 // -1: the append succeeds
	}{
		{"AnyOnNewStream", "new-any", event.Any, -1},
		{"AnyOnExisting", "existing", event.Any, -1},
		{"NoStreamOnNewStream", "new-none", event.NoStream, -1},
		{"NoStreamOnExisting", "existing", event.NoStream, 3},
		{"ExistsOnNewStream", "new-exists", event.StreamExists, 0},
		{"ExistsOnExisting", "existing", event.StreamExists, -1},
		{"ExactRight", "existing", event.Exact(3), -1},
		{"ExactBehind", "existing", event.Exact(2), 3},
		{"ExactAhead", "existing", event.Exact(4), 3},
		{"ExactOnNewStream", "new-exact", event.Exact(1), 0},
		{"ExactZeroOnNewStream", "new-zero", event.Exact(0), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := tt.stream
			if stream == "existing" && tt.actual == -1 {
				stream = "existing-" + tt.name // successful appends get their own copy
				mustAppend(t, h, stream, event.NoStream, numbered(3)...)
			}
			before := len(readAll(t, h))
			_, err := h.Store.Append(ctxT(t), stream, tt.expected, proposed("x", `{}`))
			if tt.actual == -1 {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				return
			}
			var ce *event.ConcurrencyError
			if !errors.As(err, &ce) || !errors.Is(err, event.ErrConcurrency) {
				t.Fatalf("err = %v, want *event.ConcurrencyError", err)
			}
			if ce.StreamID != stream || ce.Expected != tt.expected || ce.Actual != tt.actual {
				t.Errorf("error says stream %q expected %v actual %d, want %q %v %d", ce.StreamID, ce.Expected, ce.Actual, stream, tt.expected, tt.actual)
			}
			if after := len(readAll(t, h)); after != before {
				t.Errorf("a refused append changed the log from %d to %d events", before, after)
			}
		})
	}
}

func testIdempotency[TTx any](t *testing.T, h *Harness[TTx]) {
	batch := []event.Proposed{
		{ID: uuid.New(), Type: "a", Data: json.RawMessage(`{"x":1}`), Metadata: event.Metadata{Actor: "me"}},
		{ID: uuid.New(), Type: "b", Data: json.RawMessage(`{"x":2}`)},
	}
	original := mustAppend(t, h, "idem", event.NoStream, batch...)
	mustAppend(t, h, "other", event.NoStream, proposed("c", `{}`))

	again := mustAppend(t, h, "idem", event.NoStream, batch...) // same expected version, now stale: still idempotent
	if !again.Duplicate || again.Version != original.Version {
		t.Fatalf("repeat: duplicate %v version %d, want true %d", again.Duplicate, again.Version, original.Version)
	}
	requireEqualEvents(t, again.Events, original.Events)
	requireCount(t, h, 3)

	changed := append([]event.Proposed(nil), batch...)
	changed[1].Data = json.RawMessage(`{"x":3}`)
	changedMeta := append([]event.Proposed(nil), batch...)
	changedMeta[0].Metadata.Actor = "someone else"
	partial := []event.Proposed{batch[0], {ID: uuid.New(), Type: "b"}}
	reordered := []event.Proposed{batch[1], batch[0]}
	for name, events := range map[string][]event.Proposed{
		"DifferentData": changed, "DifferentMetadata": changedMeta, "PartlyUsed": partial, "Reordered": reordered,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.Store.Append(ctxT(t), "idem", event.Any, events...)
			var reused *event.EventIDReusedError
			if !errors.As(err, &reused) || !errors.Is(err, event.ErrEventIDReused) {
				t.Fatalf("err = %v, want *event.EventIDReusedError", err)
			}
		})
	}
	t.Run("SameIDOtherStream", func(t *testing.T) {
		_, err := h.Store.Append(ctxT(t), "elsewhere", event.Any, batch[0])
		if !errors.Is(err, event.ErrEventIDReused) {
			t.Fatalf("err = %v, want ErrEventIDReused", err)
		}
	})
	t.Run("SameIDTwiceInBatch", func(t *testing.T) {
		id := uuid.New()
		_, err := h.Store.Append(ctxT(t), "twice", event.Any, event.Proposed{ID: id, Type: "a"}, event.Proposed{ID: id, Type: "a"})
		if !errors.Is(err, event.ErrInvalidEvent) {
			t.Fatalf("err = %v, want ErrInvalidEvent", err)
		}
	})
	requireCount(t, h, 3)
}

func testOrdering[TTx any](t *testing.T, h *Harness[TTx]) {
	streams := []string{"s-a", "s-b", "s-c"}
	for round := range 5 {
		for _, s := range streams {
			mustAppend(t, h, s, event.Exact(int64(round)), proposed("tick", fmt.Sprintf(`{"round":%d}`, round)))
		}
	}
	all := readAll(t, h)
	if len(all) != 15 {
		t.Fatalf("%d events, want 15", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, all[i].Position)
		}
		if all[i].StreamID != streams[i%3] {
			t.Fatalf("event %d is from %q, want %q: the log is not in append order", i, all[i].StreamID, streams[i%3])
		}
	}
	for _, s := range streams {
		for i, e := range readStream(t, h, s) {
			if e.StreamVersion != int64(i+1) {
				t.Fatalf("stream %s: event %d has version %d", s, i, e.StreamVersion)
			}
		}
	}
}

func testPaging[TTx any](t *testing.T, h *Harness[TTx]) {
	mustAppend(t, h, "paged", event.NoStream, numbered(25)...)
	var sizes []int
	var after int64
	seen := map[int64]bool{}
	for {
		page, err := h.Store.ReadAll(ctxT(t), &rawevents.ReadAllOpts{After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if seen[e.Position] || e.Position <= after {
				t.Fatalf("position %d returned twice or out of order", e.Position)
			}
			seen[e.Position] = true
		}
		after = page[len(page)-1].Position
	}
	if !reflect.DeepEqual(sizes, []int{10, 10, 5, 0}) {
		t.Fatalf("page sizes %v, want [10 10 5 0]", sizes)
	}
	page, err := h.Store.ReadStream(ctxT(t), "paged", &rawevents.ReadStreamOpts{From: 11, Limit: 10})
	if err != nil || len(page) != 10 || page[0].StreamVersion != 11 || page[9].StreamVersion != 20 {
		t.Fatalf("stream page from 11: %d events, err %v", len(page), err)
	}
}

func testReadStreamBackwards[TTx any](t *testing.T, h *Harness[TTx]) {
	mustAppend(t, h, "back", event.NoStream, numbered(10)...)
	versions := func(events []event.Event) []int64 {
		out := []int64{}
		for _, e := range events {
			out = append(out, e.StreamVersion)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		opts rawevents.ReadStreamOpts
		want []int64
	}{
		{"FromEnd", rawevents.ReadStreamOpts{Backwards: true, Limit: 3}, []int64{10, 9, 8}},
		{"FromVersion", rawevents.ReadStreamOpts{Backwards: true, From: 4, Limit: 10}, []int64{4, 3, 2, 1}},
		{"PastEnd", rawevents.ReadStreamOpts{Backwards: true, From: 99, Limit: 2}, []int64{10, 9}},
		{"ForwardPastEnd", rawevents.ReadStreamOpts{From: 11}, []int64{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := h.Store.ReadStream(ctxT(t), "back", &tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(events); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
		})
	}
}

func testLargePayload[TTx any](t *testing.T, h *Harness[TTx]) {
	var b strings.Builder
	b.WriteString(`{"blob":"`)
	for b.Len() < 1<<20 {
		b.WriteString("0123456789abcdef")
	}
	b.WriteString(`"}`)
	data := b.String()
	mustAppend(t, h, "big", event.NoStream, proposed("big", data))
	if got := readStream(t, h, "big"); len(got) != 1 || string(got[0].Data) != data {
		t.Fatal("1 MiB payload did not read back byte for byte")
	}
}

func testUnicode[TTx any](t *testing.T, h *Harness[TTx]) {
	stream := "commande-Ω-日本-👩🏽‍💻"
	data := `{"name":"Zoë 🎵 ñ 中文","combining":"é","escaped":"\u00e9\n","nul":"\u0000","rtl":"שלום"}`
	res := mustAppend(t, h, stream, event.NoStream, event.Proposed{
		Type: "commande.passée", Data: json.RawMessage(data),
		Metadata: event.Metadata{Actor: "ügnë", Extra: map[string]string{"clé": "välue ✓"}},
	})
	got := readStream(t, h, stream)
	requireEqualEvents(t, got, res.Events)
	if string(got[0].Data) != data {
		t.Fatalf("data %s, want %s", got[0].Data, data)
	}
}

func testEmptyBatch[TTx any](t *testing.T, h *Harness[TTx]) {
	res := mustAppend(t, h, "empty", event.NoStream)
	if res.Version != 0 || len(res.Events) != 0 {
		t.Fatalf("empty append: version %d, %d events", res.Version, len(res.Events))
	}
	mustAppend(t, h, "empty", event.NoStream, numbered(2)...)
	res = mustAppend(t, h, "empty", event.Exact(2))
	if res.Version != 2 {
		t.Fatalf("empty append reports version %d, want 2", res.Version)
	}
	if _, err := h.Store.Append(ctxT(t), "empty", event.NoStream); !errors.Is(err, event.ErrConcurrency) {
		t.Fatalf("an empty append still checks the expected version: err = %v", err)
	}
	requireCount(t, h, 2)
}

func testHugeBatch[TTx any](t *testing.T, h *Harness[TTx]) {
	const n = 10_000
	res := mustAppend(t, h, "huge", event.NoStream, numbered(n)...)
	if res.Version != n || len(res.Events) != n {
		t.Fatalf("version %d, %d events", res.Version, len(res.Events))
	}
	all := readAll(t, h)
	if len(all) != n {
		t.Fatalf("read %d events, want %d", len(all), n)
	}
	for i, e := range all {
		if e.StreamVersion != int64(i+1) || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("event %d: version %d data %s", i, e.StreamVersion, e.Data)
		}
	}
}

func testStreamInfo[TTx any](t *testing.T, h *Harness[TTx]) {
	if _, err := h.Store.StreamInfo(ctxT(t), "nothing"); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("err = %v, want ErrStreamNotFound", err)
	}
	if head, err := h.Store.Head(ctxT(t)); err != nil || head != 0 {
		t.Fatalf("Head of an empty log = %d, %v; want 0", head, err)
	}
	first := mustAppend(t, h, "info", event.NoStream, numbered(2)...)
	mustAppend(t, h, "unrelated", event.NoStream, numbered(1)...)
	last := mustAppend(t, h, "info", event.Exact(2), numbered(3)...)
	info, err := h.Store.StreamInfo(ctxT(t), "info")
	if err != nil {
		t.Fatal(err)
	}
	if info.StreamID != "info" || info.Version != 5 || info.LastPosition != last.LastPosition() {
		t.Fatalf("info %+v, want version 5 last position %d", info, last.LastPosition())
	}
	if head, err := h.Store.Head(ctxT(t)); err != nil || head != last.LastPosition() {
		t.Fatalf("Head = %d, %v; want %d", head, err, last.LastPosition())
	}
	if !info.CreatedAt.Equal(first.Events[0].RecordedAt) || !info.UpdatedAt.Equal(last.Events[0].RecordedAt) {
		t.Fatalf("created %v updated %v, want %v and %v", info.CreatedAt, info.UpdatedAt, first.Events[0].RecordedAt, last.Events[0].RecordedAt)
	}
}

func testTimestamps[TTx any](t *testing.T, h *Harness[TTx]) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	occurred := time.Date(1999, 12, 31, 23, 59, 58, 123456789, zone)
	res := mustAppend(t, h, "time", event.NoStream, event.Proposed{Type: "t", OccurredAt: occurred})
	got := readStream(t, h, "time")[0]
	want := occurred.UTC().Truncate(time.Microsecond)
	if !got.OccurredAt.Equal(want) || got.OccurredAt.Location() != time.UTC || !reflect.DeepEqual(got, res.Events[0]) {
		t.Fatalf("occurred-at %v (result %v), want %v in UTC", got.OccurredAt, res.Events[0].OccurredAt, want)
	}
	if string(got.Data) != "null" {
		t.Fatalf("empty data reads back as %q, want null", got.Data)
	}
}

func testBadInput[TTx any](t *testing.T, h *Harness[TTx]) {
	long := strings.Repeat("s", rawevents.MaxStreamIDLength+1)
	for _, tt := range []struct {
		name     string
		stream   string
		expected event.ExpectedVersion
		event    event.Proposed
	}{
		{"InvalidJSON", "s", event.Any, proposed("t", `{"a":`)},
		{"NotJSONAtAll", "s", event.Any, proposed("t", `hello`)},
		{"InvalidUTF8Data", "s", event.Any, proposed("t", "\"\xff\"")},
		{"MissingType", "s", event.Any, proposed("", `{}`)},
		{"TypeTooLong", "s", event.Any, proposed(strings.Repeat("t", rawevents.MaxTypeLength+1), `{}`)},
		{"EmptyStreamID", "", event.Any, proposed("t", `{}`)},
		{"StreamIDTooLong", long, event.Any, proposed("t", `{}`)},
		{"StreamIDNotUTF8", "s\xff", event.Any, proposed("t", `{}`)},
		{"NegativeSchemaVersion", "s", event.Any, event.Proposed{Type: "t", SchemaVersion: -1}},
		{"UnknownExpectedVersion", "s", event.ExpectedVersion(-7), proposed("t", `{}`)},
		{"NULInStreamID", "s\x00", event.Any, proposed("t", `{}`)},
		{"NULInType", "s", event.Any, proposed("t\x00", `{}`)},
		{"NULInMetadata", "s", event.Any, event.Proposed{Type: "t", Metadata: event.Metadata{Actor: "a\x00"}}},
		{"InvalidUTF8InMetadata", "s", event.Any, event.Proposed{Type: "t", Metadata: event.Metadata{Extra: map[string]string{"k": "\xff"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			good := proposed("fine", `{}`)
			_, err := h.Store.Append(ctxT(t), tt.stream, tt.expected, good, tt.event)
			var ve *event.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, event.ErrInvalidEvent) {
				t.Fatalf("err = %v, want *event.ValidationError", err)
			}
		})
	}
	if _, err := h.Store.ReadAll(ctxT(t), &rawevents.ReadAllOpts{Limit: -1}); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("negative limit: err = %v", err)
	}
	if _, err := h.Store.ReadStream(ctxT(t), "", nil); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("empty stream id: err = %v", err)
	}
	requireCount(t, h, 0)
}

func testClosedStore[TTx any](t *testing.T, h *Harness[TTx]) {
	mustAppend(t, h, "c", event.NoStream, numbered(1)...)
	if err := h.Store.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := h.Store.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx := ctxT(t)
	_, appendErr := h.Store.Append(ctx, "c", event.Any, proposed("t", `{}`))
	_, readErr := h.Store.ReadAll(ctx, nil)
	_, streamErr := h.Store.ReadStream(ctx, "c", nil)
	_, waitErr := h.Store.WaitForPosition(ctx, 1)
	for name, err := range map[string]error{"append": appendErr, "read all": readErr, "read stream": streamErr, "wait": waitErr} {
		if !errors.Is(err, event.ErrClosed) {
			t.Errorf("%s after close: err = %v, want ErrClosed", name, err)
		}
	}
}

func testCancelledContext[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Store.Append(ctx, "cancelled", event.Any, numbered(3)...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("append: err = %v, want context.Canceled", err)
	}
	if _, err := h.Store.ReadAll(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("read all: err = %v, want context.Canceled", err)
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelDeadline()
	if _, err := h.Store.WaitForPosition(deadline, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on an empty log: err = %v, want DeadlineExceeded", err)
	}
	requireCount(t, h, 0)
}

func testAppendTx[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := ctxT(t)
	tx, err := h.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.AppendTx(ctx, tx, "tx", event.NoStream, numbered(2)...); err != nil {
		t.Fatal(err)
	}
	if err := h.Rollback(ctx, tx); err != nil {
		t.Fatal(err)
	}
	requireCount(t, h, 0)

	tx, err = h.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Store.AppendTx(ctx, tx, "tx", event.NoStream, numbered(2)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.AppendTx(ctx, tx, "tx", event.Exact(2), numbered(1)...); err != nil {
		t.Fatalf("a second append in the same transaction sees the first: %v", err)
	}
	if err := h.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	got := readStream(t, h, "tx")
	if len(got) != 3 {
		t.Fatalf("%d events after commit, want 3", len(got))
	}
	requireEqualEvents(t, got[:2], res.Events)
}

func testImmutability[TTx any](t *testing.T, h *Harness[TTx]) {
	res := mustAppend(t, h, "carved-in-stone", event.NoStream, numbered(3)...)
	// What a read returns is the caller's: changing it changes nothing
	// stored.
	got := readStream(t, h, "carved-in-stone")
	got[0].Data[0] = ' '
	got[0].Metadata.Extra = map[string]string{"forged": "yes"}
	requireEqualEvents(t, readStream(t, h, "carved-in-stone"), res.Events)
	if h.NoSQL {
		return // no raw UPDATE or DELETE to refuse
	}
	for _, query := range []string{
		`UPDATE {events} SET type = 'forged'`,
		`UPDATE {events} SET data = '{"n":42}' WHERE stream_version = 2`,
		`DELETE FROM {events}`,
		`DELETE FROM {events} WHERE stream_version = 1`,
	} {
		if err := h.Exec(ctxT(t), query); err == nil {
			t.Errorf("%s: succeeded; the database must refuse it", query)
		} else if !strings.Contains(err.Error(), "immutable") {
			t.Errorf("%s: failed with %v, want the immutability trigger's error", query, err)
		}
	}
	requireEqualEvents(t, readStream(t, h, "carved-in-stone"), res.Events)
}

// testConcurrentWriters races 16 writers on one stream, each appending at
// the version it last read. Exactly one append wins each version; every
// loser gets the typed conflict; no version is lost or doubled.
func testConcurrentWriters[TTx any](t *testing.T, h *Harness[TTx]) {
	const writers, rounds = 16, 20
	ctx := ctxT(t)
	var mu sync.Mutex
	wins := map[int64]int{}
	var conflicts, totalWins int
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				<-start
				version := int64(round)
				_, err := h.Store.Append(ctx, "contended", event.Exact(version), proposed("won", fmt.Sprintf(`{"writer":%d}`, w)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins[version+1]++
					totalWins++
				case errors.Is(err, event.ErrConcurrency):
					var ce *event.ConcurrencyError
					if errors.As(err, &ce) && ce.Actual >= 0 && ce.Actual == version {
						t.Errorf("conflict reported actual version %d equal to the expected one", ce.Actual)
					}
					conflicts++
				default:
					t.Errorf("writer %d: unexpected error %v", w, err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if totalWins != rounds || conflicts != rounds*(writers-1) {
		t.Fatalf("%d wins and %d conflicts, want %d and %d", totalWins, conflicts, rounds, rounds*(writers-1))
	}
	for v := int64(1); v <= rounds; v++ {
		if wins[v] != 1 {
			t.Fatalf("version %d won %d times", v, wins[v])
		}
	}
	events := readStream(t, h, "contended")
	if len(events) != rounds {
		t.Fatalf("stream holds %d events, want %d", len(events), rounds)
	}
	for i, e := range events {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
	}
}

// testGapFreeTail has writers whose transactions stay open for random
// times, so they commit out of the order in which they were given
// positions, and some roll back, while a reader follows the log. The
// reader must see every committed event exactly once, in position order.
func testGapFreeTail[TTx any](t *testing.T, h *Harness[TTx]) {
	gapFreeTail(t, h, func(ctx context.Context, tx TTx, rng *rand.Rand, w, i int) ([]event.Event, error) {
		res, err := h.Store.AppendTx(ctx, tx, fmt.Sprintf("w%d-%d", w, i), event.NoStream, numbered(1+rng.IntN(3))...)
		if err != nil {
			return nil, err
		}
		return res.Events, nil
	})
}

// testGapFreeTailAppendMany is testGapFreeTail with transactions that
// append to several streams at once with AppendManyTx.
func testGapFreeTailAppendMany[TTx any](t *testing.T, h *Harness[TTx]) {
	gapFreeTail(t, h, func(ctx context.Context, tx TTx, rng *rand.Rand, w, i int) ([]event.Event, error) {
		appends := make([]rawevents.StreamAppend, 1+rng.IntN(4))
		for k := range appends {
			appends[k] = rawevents.StreamAppend{StreamID: fmt.Sprintf("w%d-%d-%d", w, i, k), Expected: event.NoStream, Events: numbered(1 + rng.IntN(2))}
		}
		results, err := h.Store.AppendManyTx(ctx, tx, appends)
		if err != nil {
			return nil, err
		}
		var events []event.Event
		for _, r := range results {
			events = append(events, r.Events...)
		}
		return events, nil
	})
}

// gapFreeTail runs the writers of testGapFreeTail; write appends one
// transaction's events.
func gapFreeTail[TTx any](t *testing.T, h *Harness[TTx], write func(ctx context.Context, tx TTx, rng *rand.Rand, w, i int) ([]event.Event, error)) {
	writers, perWriter := 12, 80
	if !h.ConcurrentTx {
		writers, perWriter = 4, 25
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()

	var mu sync.Mutex
	committed := map[uuid.UUID]bool{}
	seen := make(chan event.Event, 1024)
	readerDone := make(chan error, 1)
	go func() {
		for e, err := range h.Store.Follow(ctx, &rawevents.FollowOpts{PageSize: 7}) {
			if err != nil {
				readerDone <- err
				return
			}
			seen <- e
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range perWriter {
				tx, err := h.Begin(ctx)
				if err != nil {
					t.Errorf("begin: %v", err)
					return
				}
				events, err := write(ctx, tx, rng, w, i)
				if err != nil {
					t.Errorf("append: %v", err)
					h.Rollback(ctx, tx) //nolint:errcheck
					return
				}
				time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
				if rng.IntN(10) == 0 {
					if err := h.Rollback(ctx, tx); err != nil {
						t.Errorf("rollback: %v", err)
					}
					continue
				}
				if err := h.Commit(ctx, tx); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				mu.Lock()
				for _, e := range events {
					committed[e.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	var maxCommitted int64
	for _, e := range readAll(t, h) {
		maxCommitted = e.Position
	}
	got := map[uuid.UUID]bool{}
	var last int64
	deadline := time.After(15 * time.Second)
	for last < maxCommitted {
		select {
		case e := <-seen:
			if e.Position <= last {
				t.Fatalf("reader saw position %d after %d", e.Position, last)
			}
			if !committed[e.ID] || got[e.ID] {
				t.Fatalf("reader saw event %s (position %d) that was not committed or was seen twice", e.ID, e.Position)
			}
			got[e.ID], last = true, e.Position
		case err := <-readerDone:
			t.Fatalf("reader stopped: %v", err)
		case <-deadline:
			t.Fatalf("reader stuck at position %d, the log ends at %d", last, maxCommitted)
		}
	}
	if len(got) != len(committed) {
		t.Fatalf("reader saw %d of %d committed events: it skipped %d", len(got), len(committed), len(committed)-len(got))
	}
	select {
	case e := <-seen:
		t.Fatalf("reader saw an extra event at position %d", e.Position)
	case <-time.After(50 * time.Millisecond):
	}
	t.Logf("reader followed %d committed events of %d writers in order", len(got), writers)
}

func testWaitForPosition[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := ctxT(t)
	first := mustAppend(t, h, "wait", event.NoStream, numbered(1)...)
	if pos, err := h.Store.WaitForPosition(ctx, 0); err != nil || pos != first.LastPosition() {
		t.Fatalf("wait for existing: %d, %v", pos, err)
	}
	woke := make(chan int64, 1)
	go func() {
		pos, err := h.Store.WaitForPosition(ctx, first.LastPosition())
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		woke <- pos
	}()
	select {
	case pos := <-woke:
		t.Fatalf("woke at %d before anything was appended", pos)
	case <-time.After(20 * time.Millisecond):
	}
	second := mustAppend(t, h, "wait", event.Exact(1), numbered(1)...)
	select {
	case pos := <-woke:
		if pos != second.LastPosition() {
			t.Fatalf("woke at %d, want %d", pos, second.LastPosition())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter was not woken by the append")
	}
}

func testFollow[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	mustAppend(t, h, "f", event.NoStream, numbered(5)...)
	var got []int64
	done := make(chan error, 1)
	go func() {
		for e, err := range h.Store.Follow(ctx, &rawevents.FollowOpts{After: 2, PageSize: 2}) {
			if err != nil {
				done <- err
				return
			}
			got = append(got, e.StreamVersion)
			if len(got) == 6 {
				done <- nil
				return
			}
		}
	}()
	mustAppend(t, h, "f", event.Exact(5), numbered(3)...)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not deliver the live events")
	}
	if !reflect.DeepEqual(got, []int64{3, 4, 5, 6, 7, 8}) {
		t.Fatalf("followed versions %v", got)
	}
	cancel()
	for _, err := range h.Store.Follow(ctx, nil) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow with a cancelled context yields %v", err)
		}
	}
}
