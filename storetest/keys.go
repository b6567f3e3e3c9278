package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// keyed is an event of stream that AppendIfAbsent deduplicates by key,
// with no id of its own.
func keyed(stream, key, data string) rawevents.StreamEvent {
	return rawevents.StreamEvent{StreamID: stream, Key: key, Event: event.Proposed{Type: "raw.received", Data: []byte(data)}}
}

// testAppendIfAbsentKeys specifies deduplication by key: an event with a
// key is stored only if its stream has no event with that key, gets an id
// from the store, and keeps its key; events without a key are still
// deduplicated by id, in the same call.
func testAppendIfAbsentKeys[TTx any](t *testing.T, h *Harness[TTx]) {
	ctx := ctxT(t)
	plainID := uuid.New()
	first, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
		keyed("source-a", "1", `{"n":1}`),
		keyed("source-b", "1", `{"n":"the same key in another stream"}`),
		keyed("source-a", "2", `{"n":2}`),
		keyed("source-a", "1", `{"n":"the same key again in the batch"}`),
		streamEvent("source-a", plainID, `{"n":"no key"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 5 || first[0].Existing || first[1].Existing || first[2].Existing || !first[3].Existing || first[4].Existing {
		t.Fatalf("outcomes %+v", first)
	}
	if first[3].Event.Position != first[0].Event.Position || first[3].Event.ID != first[0].Event.ID {
		t.Fatalf("a repeated key reports event %s at %d, its first occurrence %s at %d",
			first[3].Event.ID, first[3].Event.Position, first[0].Event.ID, first[0].Event.Position)
	}
	for i, o := range first[:3] {
		if o.Event.ID == uuid.Nil || o.Event.ID.Version() != 7 {
			t.Fatalf("event %d got id %s, want a UUIDv7 from the store", i, o.Event.ID)
		}
	}
	if first[0].Event.Key != "1" || first[4].Event.Key != "" || first[4].Event.ID != plainID {
		t.Fatalf("outcomes %+v", first)
	}
	stored := readStream(t, h, "source-a")
	if len(stored) != 3 || stored[0].Key != "1" || stored[1].Key != "2" || stored[2].Key != "" || stored[0].ID != first[0].Event.ID {
		t.Fatalf("stream source-a holds %+v", stored)
	}
	// Streams are appended to in the order of their ids.
	requireEqualEvents(t, readAll(t, h), []event.Event{first[0].Event, first[2].Event, first[4].Event, first[1].Event})

	// A second delivery, with other content and no id, stores nothing and
	// reports the first one's event; a new key in the same call is
	// stored; an event without a key is still found by its id.
	again, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
		keyed("source-a", "2", `{"n":"redelivered"}`),
		keyed("source-a", "3", `{"n":3}`),
		streamEvent("source-a", plainID, `{}`),
		streamEvent("source-c", first[0].Event.ID, `{"n":"the id of a keyed event, without a key"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Existing || again[0].Event.Position != first[2].Event.Position || string(again[0].Event.Data) != `{"n":2}` {
		t.Fatalf("redelivery outcome %+v, want the stored first delivery", again[0])
	}
	if again[1].Existing || again[1].Event.StreamVersion != 4 || again[1].Event.Key != "3" {
		t.Fatalf("new key: outcome %+v", again[1])
	}
	if !again[2].Existing || again[2].Event.ID != plainID || !again[3].Existing || again[3].Event.Position != first[0].Event.Position {
		t.Fatalf("outcomes %+v", again)
	}
	requireCount(t, h, 5)

	t.Run("OwnID", func(t *testing.T) {
		// A keyed event may bring its id: a repeat of it is found by key;
		// an id that belongs to another event fails the call.
		id := uuid.New()
		own := keyed("source-d", "1", `{}`)
		own.Event.ID = id
		out, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{own})
		if err != nil || out[0].Existing || out[0].Event.ID != id || out[0].Event.Key != "1" {
			t.Fatalf("outcome %+v, err %v", out, err)
		}
		out, err = h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{own})
		if err != nil || !out[0].Existing || out[0].Event.ID != id || out[0].Event.Position != 6 {
			t.Fatalf("repeat: outcome %+v, err %v", out, err)
		}
		taken := keyed("source-d", "2", `{}`)
		taken.Event.ID = id
		_, err = h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{keyed("source-d", "3", `{}`), taken})
		var reused *event.EventIDReusedError
		if !errors.As(err, &reused) || reused.ID != id {
			t.Fatalf("err = %v, want an EventIDReusedError for %s", err, id)
		}
		requireCount(t, h, 6)
	})

	t.Run("Prepared", func(t *testing.T) {
		// Two callers' batches in one transaction: a key in both is stored
		// once; a bad event fails its PrepareIfAbsent alone.
		a, err := h.Store.PrepareIfAbsent([]rawevents.StreamEvent{keyed("prep", "x", `{"n":1}`), keyed("prep", "y", `{"n":2}`)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := h.Store.PrepareIfAbsent([]rawevents.StreamEvent{keyed("prep", "y", `{"n":"y again"}`)})
		if err != nil {
			t.Fatal(err)
		}
		var ve *event.ValidationError
		if _, err := h.Store.PrepareIfAbsent([]rawevents.StreamEvent{keyed("prep", "z", `{not json`)}); !errors.As(err, &ve) {
			t.Fatalf("bad data: err = %v, want a ValidationError", err)
		}
		out, err := h.Store.AppendPrepared(ctx, a, b)
		if err != nil {
			t.Fatal(err)
		}
		if a.Len() != 2 || len(out) != 3 || out[0].Existing || out[1].Existing || !out[2].Existing || out[2].Event.Position != out[1].Event.Position {
			t.Fatalf("outcomes %+v", out)
		}
		if n := len(readStream(t, h, "prep")); n != 2 {
			t.Fatalf("stream prep holds %d events, want 2", n)
		}
		// One id given to two different events (two keys) by two batches.
		id := uuid.New()
		withID := func(key string) rawevents.StreamEvent {
			se := keyed("prep", key, `{"n":3}`)
			se.Event.ID = id
			return se
		}
		c, err := h.Store.PrepareIfAbsent([]rawevents.StreamEvent{withID("k1")})
		if err != nil {
			t.Fatal(err)
		}
		d, err := h.Store.PrepareIfAbsent([]rawevents.StreamEvent{withID("k2")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Store.AppendPrepared(ctx, c, d); !errors.Is(err, event.ErrEventIDReused) {
			t.Fatalf("one id, two events: err = %v, want ErrEventIDReused", err)
		}
		if n := len(readStream(t, h, "prep")); n != 2 {
			t.Fatalf("stream prep holds %d events after a failed call, want 2", n)
		}
		if out, err := h.Store.AppendPrepared(ctx); err != nil || len(out) != 0 {
			t.Fatalf("no batches: %v, %v", out, err)
		}
	})
	t.Run("LookupKeys", func(t *testing.T) {
		found, err := h.Store.LookupKeys(ctx,
			event.StreamKey{StreamID: "source-a", Key: "1"},
			event.StreamKey{StreamID: "source-a", Key: "1"},
			event.StreamKey{StreamID: "source-b", Key: "1"},
			event.StreamKey{StreamID: "source-b", Key: "2"},
			event.StreamKey{StreamID: "source-c", Key: "1"},
			event.StreamKey{StreamID: "source-a", Key: ""},
		)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 2 {
			t.Fatalf("found %+v, want the events of source-a/1 and source-b/1", found)
		}
		byStream := map[string]event.Event{found[0].StreamID: found[0], found[1].StreamID: found[1]}
		requireEqualEvents(t, []event.Event{byStream["source-a"], byStream["source-b"]}, []event.Event{first[0].Event, first[1].Event})
		if found, err := h.Store.LookupKeys(ctx); err != nil || len(found) != 0 {
			t.Fatalf("no keys: found %v, err %v", found, err)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		own := keyed("source-e", "1", `{}`)
		own.Event.ID = uuid.New()
		other := keyed("source-e", "2", `{}`)
		other.Event.ID = own.Event.ID
		for _, tt := range []struct {
			name   string
			events []rawevents.StreamEvent
			index  int
			field  string
		}{
			{"NoKeyNoID", []rawevents.StreamEvent{keyed("source-e", "1", `{}`), {StreamID: "source-e", Event: event.Proposed{Type: "t"}}}, 1, "id"},
			{"LongKey", []rawevents.StreamEvent{keyed("source-e", strings.Repeat("k", rawevents.MaxKeyLength+1), `{}`)}, 0, "key"},
			{"NUL", []rawevents.StreamEvent{keyed("source-e", "a\x00b", `{}`)}, 0, "key"},
			{"BadUTF8", []rawevents.StreamEvent{keyed("source-e", "\xff", `{}`)}, 0, "key"},
			{"OneIDTwoKeys", []rawevents.StreamEvent{own, other}, 1, "id"},
		} {
			_, err := h.Store.AppendIfAbsent(ctx, tt.events)
			var ve *event.ValidationError
			if !errors.As(err, &ve) || ve.Index != tt.index || ve.Field != tt.field {
				t.Errorf("%s: err = %v, want a ValidationError for event %d's %s", tt.name, err, tt.index, tt.field)
			}
		}
		if _, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{keyed("source-e", strings.Repeat("k", rawevents.MaxKeyLength), `{}`)}); err != nil {
			t.Fatalf("a key of MaxKeyLength bytes: %v", err)
		}
	})

	t.Run("RepeatAmongMany", func(t *testing.T) {
		// One stored key among many new ones, in a call of a few events
		// and in one of several hundred (more than one INSERT on SQLite):
		// the repeat reports the stored event, and the others are stored
		// as if it had not been there, without a gap in the stream or in
		// the log.
		before := readAll(t, h)
		stored, err := h.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{keyed("source-m", "150", `{"n":"first"}`), keyed("source-n", "b", `{}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			n, repeat int
			key       func(i int) string
			stored    event.Event
		}{
			{n: 3, repeat: 2, key: func(i int) string { return fmt.Sprint(i) }, stored: stored[1].Event},
			{n: 250, repeat: 150, key: func(i int) string { return fmt.Sprint(1000 + i) }, stored: stored[0].Event},
		} {
			events := make([]rawevents.StreamEvent, tt.n)
			for i := range events {
				events[i] = keyed("source-m", tt.key(i), fmt.Sprintf(`{"n":%d}`, i))
			}
			events[tt.repeat] = keyed(tt.stored.StreamID, tt.stored.Key, `{"n":"again"}`)
			// A store of its own for each call: a store that met a repeat
			// looks the keys of its next calls up first.
			store, err := rawevents.NewStore(ctx, h.Store.Driver(), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := store.AppendIfAbsent(ctx, events)
			if err != nil {
				t.Fatalf("%d events: %v", tt.n, err)
			}
			for i, o := range out {
				if o.Existing != (i == tt.repeat) {
					t.Fatalf("%d events: event %d: Existing %v", tt.n, i, o.Existing)
				}
			}
			if got := out[tt.repeat].Event; got.ID != tt.stored.ID || got.Position != tt.stored.Position {
				t.Fatalf("%d events: the repeat reports %+v, want %+v", tt.n, got, tt.stored)
			}
		}
		// source-m: "150", then "0" and "1" of the short call, then the
		// long call's 249 new events.
		stream := readStream(t, h, "source-m")
		if len(stream) != 1+2+249 {
			t.Fatalf("source-m holds %d events, want 252", len(stream))
		}
		for i, e := range stream {
			if e.StreamVersion != int64(i+1) {
				t.Fatalf("source-m: event %d has version %d", i, e.StreamVersion)
			}
		}
		all := readAll(t, h)
		if len(all) != len(before)+len(stream)+1 {
			t.Fatalf("the log grew by %d events, want %d", len(all)-len(before), len(stream)+1)
		}
		for i := len(before); i < len(all); i++ {
			if all[i].Position != all[i-1].Position+1 {
				t.Fatalf("the log skips from %d to %d", all[i-1].Position, all[i].Position)
			}
		}
	})

	t.Run("Tx", func(t *testing.T) {
		tx, err := h.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Store.AppendIfAbsentTx(ctx, tx, []rawevents.StreamEvent{keyed("source-f", "1", `{}`), keyed("source-a", "1", `{}`)})
		if err != nil || out[0].Existing || !out[1].Existing {
			t.Fatalf("outcomes %+v, err %v", out, err)
		}
		if err := h.Rollback(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if found, err := h.Store.LookupKeys(ctx, event.StreamKey{StreamID: "source-f", Key: "1"}); err != nil || len(found) != 0 {
			t.Fatalf("a rolled-back key is found: %v, err %v", found, err)
		}
	})
}

// testAppendIfAbsentKeysConcurrent has 16 writers deliver overlapping
// batches of the same keys, with no ids: every key is stored exactly once
// and every writer is told the same event for it.
func testAppendIfAbsentKeysConcurrent[TTx any](t *testing.T, h *Harness[TTx]) {
	const writers, keys, batch = 16, 200, 25
	ctx := ctxT(t)
	var mu sync.Mutex
	told := map[event.StreamKey]map[uuid.UUID]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for round := range 8 {
				events := make([]rawevents.StreamEvent, batch)
				for j := range events {
					k := (w*7 + round*batch + j*3) % keys
					events[j] = keyed(fmt.Sprintf("source-%d", k%5), fmt.Sprint(k), fmt.Sprintf(`{"k":%d,"w":%d}`, k, w))
				}
				out, err := h.Store.AppendIfAbsent(ctx, events)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				for j, o := range out {
					key := event.StreamKey{StreamID: events[j].StreamID, Key: events[j].Key}
					if o.Event.StreamID != key.StreamID || o.Event.Key != key.Key {
						t.Errorf("outcome for %v is event %s/%s", key, o.Event.StreamID, o.Event.Key)
					}
					if told[key] == nil {
						told[key] = map[uuid.UUID]bool{}
					}
					told[key][o.Event.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for key, ids := range told {
		if len(ids) != 1 {
			t.Fatalf("key %v was reported as events %v", key, ids)
		}
	}
	all := readAll(t, h)
	if len(all) != len(told) {
		t.Fatalf("the log holds %d events for %d distinct keys", len(all), len(told))
	}
	for _, e := range all {
		if !told[event.StreamKey{StreamID: e.StreamID, Key: e.Key}][e.ID] {
			t.Fatalf("stored event %s (%s/%s) was reported as another", e.ID, e.StreamID, e.Key)
		}
	}
}
