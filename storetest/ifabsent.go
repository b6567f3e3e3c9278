package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
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
