package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

func streamEvent(stream string, id uuid.UUID, data string) rawevents.StreamEvent {
	return rawevents.StreamEvent{StreamID: stream, Event: event.Proposed{ID: id, Type: "raw.received", Data: []byte(data)}}
}

func testAppendIfAbsent[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := ctxT(t)
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	first, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
		streamEvent("source-b", ids[0], `{"n":0}`),
		streamEvent("source-a", ids[1], `{"n":1}`),
		streamEvent("source-b", ids[2], `{"n":2}`),
		streamEvent("source-b", ids[0], `{"n":"same id again in the batch"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 4 || first[0].Existing || first[1].Existing || first[2].Existing || !first[3].Existing {
		t.Fatalf("outcomes %+v", first)
	}
	if first[3].Event.Position != first[0].Event.Position {
		t.Fatalf("a repeated id reports position %d, its first occurrence %d", first[3].Event.Position, first[0].Event.Position)
	}
	if v := []int64{first[0].Event.StreamVersion, first[2].Event.StreamVersion, first[1].Event.StreamVersion}; fmt.Sprint(v) != "[1 2 1]" {
		t.Fatalf("stream versions %v, want [1 2 1]", v)
	}
	requireCount(t, h, 3)

	// A second delivery, with other content, stores nothing and reports the
	// first one's events; a new id in the same call is stored.
	again, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
		streamEvent("source-b", ids[2], `{"n":"redelivered"}`),
		streamEvent("source-a", ids[3], `{"n":3}`),
		streamEvent("source-b", ids[0], `{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Existing || again[0].Event.Position != first[2].Event.Position || string(again[0].Event.Data) != `{"n":2}` {
		t.Fatalf("redelivery outcome %+v, want the stored first delivery", again[0])
	}
	if again[1].Existing || again[1].Event.StreamVersion != 2 || !again[2].Existing {
		t.Fatalf("outcomes %+v", again)
	}
	requireCount(t, h, 4)

	t.Run("AllOrNothing", func(t *testing.T) {
		_, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
			streamEvent("source-c", uuid.New(), `{}`),
			{StreamID: "source-c", Event: event.Proposed{Type: "no.id"}},
		})
		var ve *event.ValidationError
		if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "id" {
			t.Fatalf("err = %v, want a ValidationError for event 1's id", err)
		}
		_, err = h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{streamEvent("", uuid.New(), `{}`)})
		if !errors.Is(err, event.ErrInvalidEvent) {
			t.Fatalf("empty stream id: err = %v", err)
		}
		requireCount(t, h, 4)
	})

	t.Run("Tx", func(t *testing.T) {
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Store.AppendIfAbsentTx(ctx, tx, []rawevents.StreamEvent{streamEvent("source-d", uuid.New(), `{}`)}); err != nil {
			t.Fatal(err)
		}
		if err := h.Rollback(ctx, tx); err != nil {
			t.Fatal(err)
		}
		requireCount(t, h, 4)
	})
}

// testAppendIfAbsentConcurrent has 16 writers deliver overlapping batches
// of the same ids: every id is stored exactly once and every writer is
// told the same position for it.
func testAppendIfAbsentConcurrent[TTx any](t *testing.T, h *Harness[TTx]) {
	const writers, ids, batch = 16, 200, 25
	ctx := ctxT(t)
	pool := make([]uuid.UUID, ids)
	for i := range pool {
		pool[i] = uuid.New()
	}
	var mu sync.Mutex
	positions := map[uuid.UUID]map[int64]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for round := range 8 {
				events := make([]rawevents.StreamEvent, batch)
				for j := range events {
					k := (w*7 + round*batch + j*3) % ids
					events[j] = streamEvent(fmt.Sprintf("source-%d", k%5), pool[k], fmt.Sprintf(`{"k":%d,"w":%d}`, k, w))
				}
				out, err := h.Store.AppendIfAbsent(ctx, events)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				for j, o := range out {
					id := events[j].Event.ID
					if o.Event.ID != id {
						t.Errorf("outcome for %s is event %s", id, o.Event.ID)
					}
					if positions[id] == nil {
						positions[id] = map[int64]bool{}
					}
					positions[id][o.Event.Position] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id, seen := range positions {
		if len(seen) != 1 {
			t.Fatalf("id %s was reported at positions %v", id, seen)
		}
	}
	all := readAll(t, h)
	if len(all) != len(positions) {
		t.Fatalf("the log holds %d events for %d distinct ids", len(all), len(positions))
	}
	for _, e := range all {
		if !positions[e.ID][e.Position] {
			t.Fatalf("stored event %s at %d was reported elsewhere", e.ID, e.Position)
		}
	}
}

// completed returns n events ready for the driver, as the store completes
// them before an append.
func completed(stream string, n int) []event.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]event.Event, n)
	for i := range out {
		out[i] = event.Event{ID: uuid.New(), StreamID: stream, Type: "thing.happened", SchemaVersion: 1,
			Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), OccurredAt: now, RecordedAt: now}
	}
	return out
}

// testAppendManyTx specifies the driver's many-stream append, which
// AppendIfAbsent uses: appends apply in order (two to one stream follow
// each other), positions are consecutive in that order, each append's
// expected version is checked, and a stored id fails the call.
func testAppendManyTx[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := ctxT(t)
	before := mustAppend(t, h, "many-a", event.NoStream, numbered(1)...)
	appendMany := func(params ...*driver.AppendParams) ([]*event.AppendResult, error) {
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.Store.Driver().AppendManyTx(ctx, tx, params)
		if err != nil {
			if rbErr := h.Rollback(ctx, tx); rbErr != nil {
				t.Fatal(rbErr)
			}
			return nil, err
		}
		return res, h.Commit(ctx, tx)
	}

	res, err := appendMany(
		&driver.AppendParams{StreamID: "many-b", Expected: event.NoStream, Events: completed("many-b", 2)},
		&driver.AppendParams{StreamID: "many-a", Expected: event.Exact(1), Events: completed("many-a", 1)},
		&driver.AppendParams{StreamID: "many-b", Expected: event.Exact(2), Events: completed("many-b", 1)},
		&driver.AppendParams{StreamID: "many-c", Expected: event.Any},
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res[0].Version, res[1].Version, res[2].Version, res[3].Version); got != "2 2 3 0" {
		t.Fatalf("versions %s, want 2 2 3 0", got)
	}
	var stored []event.Event
	for _, r := range res {
		stored = append(stored, r.Events...)
	}
	for i, e := range stored {
		if want := before.Events[0].Position + int64(i) + 1; e.Position != want {
			t.Fatalf("event %d at position %d, want %d", i, e.Position, want)
		}
	}
	requireEqualEvents(t, readAll(t, h)[1:], stored)
	for stream, want := range map[string]int64{"many-a": 2, "many-b": 3} {
		info, err := h.Store.StreamInfo(ctx, stream)
		if err != nil || info.Version != want || info.LastPosition != readStream(t, h, stream)[want-1].Position {
			t.Fatalf("stream %s: info %+v, err %v; want version %d", stream, info, err, want)
		}
	}
	if _, err := h.Store.StreamInfo(ctx, "many-c"); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("an append of no events created the stream: err = %v", err)
	}

	t.Run("ExpectedVersion", func(t *testing.T) {
		_, err := appendMany(
			&driver.AppendParams{StreamID: "many-d", Expected: event.NoStream, Events: completed("many-d", 1)},
			&driver.AppendParams{StreamID: "many-a", Expected: event.Exact(1), Events: completed("many-a", 1)},
		)
		if !errors.Is(err, event.ErrConcurrency) {
			t.Fatalf("err = %v, want ErrConcurrency", err)
		}
		requireCount(t, h, 5)
	})

	t.Run("StoredID", func(t *testing.T) {
		again := completed("many-e", 2)
		again[1].ID = stored[0].ID
		_, err := appendMany(&driver.AppendParams{StreamID: "many-e", Expected: event.Any, Events: again})
		if !errors.Is(err, event.ErrEventIDReused) {
			t.Fatalf("err = %v, want ErrEventIDReused", err)
		}
		requireCount(t, h, 5)
	})

	t.Run("StoredKey", func(t *testing.T) {
		// What AppendIfAbsent's retry relies on when a concurrent writer
		// stored the same key first: the unique key fails the call.
		keys := completed("many-f", 2)
		keys[0].Key, keys[1].Key = "k1", "k2"
		if _, err := appendMany(&driver.AppendParams{StreamID: "many-f", Expected: event.NoStream, Events: keys}); err != nil {
			t.Fatal(err)
		}
		again := completed("many-f", 1)
		again[0].Key = "k2"
		_, err := appendMany(&driver.AppendParams{StreamID: "many-f", Expected: event.Any, Events: again})
		if !errors.Is(err, event.ErrEventIDReused) || errors.Is(err, event.ErrConcurrency) {
			t.Fatalf("err = %v, want ErrEventIDReused", err)
		}
		elsewhere := completed("many-g", 1)
		elsewhere[0].Key = "k2"
		if _, err := appendMany(&driver.AppendParams{StreamID: "many-g", Expected: event.Any, Events: elsewhere}); err != nil {
			t.Fatalf("the same key in another stream: %v", err)
		}
		requireCount(t, h, 8)
	})
}
