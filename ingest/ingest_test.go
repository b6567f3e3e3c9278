package ingest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/rawtest"
)

func newStore(t *testing.T) *rawevents.Store[*sql.Tx] { return rawtest.SQLite(t) }

func cloudEvent(t *testing.T, source, id, contentType string, data []byte) ce.Event {
	t.Helper()
	e := ce.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("com.example.thing.happened")
	e.SetExtension("tenant", "acme")
	if data != nil {
		e.SetDataContentType(contentType)
		e.DataEncoded = data
	}
	return e
}

func TestIngestKeepsDataBytes(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	in := ingest.New(store, nil)
	defer in.Close()
	for _, tt := range []struct {
		name, contentType string
		data              []byte
	}{
		{"JSONWithSpacesAndHTML", "application/json", []byte("{ \"html\": \"<b>&amp;</b>\",\n  \"n\": 1.50 }")},
		{"CloudEventsJSON", "application/vnd.example+json; charset=utf-8", []byte(`[1, 2,3]`)},
		{"Binary", "application/octet-stream", []byte{0, 1, 2, 0xff, 0xfe, '\n'}},
		{"XML", "application/xml", []byte(`<a b="c"/>`)},
		{"NoData", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := ingest.Raw{Event: cloudEvent(t, "https://example.com/"+tt.name, "1", tt.contentType, tt.data), Transport: ingest.Transport{Mode: "structured", Token: "ci"}}
			res, err := in.Ingest(context.Background(), []ingest.Raw{raw})
			if err != nil {
				t.Fatal(err)
			}
			events, err := store.ReadAll(context.Background(), &rawevents.ReadAllOpts{After: res[0].Position - 1, Limit: 1})
			if err != nil || len(events) != 1 {
				t.Fatalf("read back: %v", err)
			}
			stored := events[0]
			if stored.StreamID != ingest.StreamID(raw.Event.Source()) || stored.Key != "1" || stored.ID.Version() != 7 || stored.Metadata.Extra["token"] != "ci" {
				t.Fatalf("stored as %+v", stored)
			}
			back, err := ingest.Decode(stored.Data)
			if err != nil {
				t.Fatal(err)
			}
			if string(back.Data()) != string(tt.data) {
				t.Fatalf("data %q, want %q", back.Data(), tt.data)
			}
			if back.Extensions()["tenant"] != "acme" || back.Type() != raw.Event.Type() {
				t.Fatalf("attributes not kept: %+v", back)
			}
		})
	}
}

func TestIngestDuplicatesAndInvalid(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	in := ingest.New(store, nil)
	defer in.Close()
	ctx := context.Background()
	first, err := in.Ingest(ctx, []ingest.Raw{{Event: cloudEvent(t, "s", "a", "application/json", []byte(`{"v":1}`))}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := in.Ingest(ctx, []ingest.Raw{
		{Event: cloudEvent(t, "s", "a", "application/json", []byte(`{"v":"changed"}`))},
		{Event: cloudEvent(t, "s", "b", "application/json", []byte(`{}`))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate || again[0].Position != first[0].Position || again[1].Duplicate {
		t.Fatalf("results %+v after %+v", again, first)
	}

	noID := cloudEvent(t, "s", "c", "", nil)
	noID.SetID("")
	badJSON := cloudEvent(t, "s", "d", "application/json", []byte(`{"unterminated":`))
	oldSpec := cloudEvent(t, "s", "e", "", nil)
	oldSpec.SetSpecVersion(ce.CloudEventsVersionV03)
	for name, bad := range map[string]ce.Event{"MissingID": noID, "InvalidJSONData": badJSON, "SpecVersion03": oldSpec} {
		_, err := in.Ingest(ctx, []ingest.Raw{{Event: cloudEvent(t, "s", "ok-"+name, "", nil)}, {Event: bad}})
		var invalid *ingest.InvalidError
		if !errors.As(err, &invalid) || invalid.Index != 1 {
			t.Errorf("%s: err = %v, want an InvalidError for event 1", name, err)
		}
	}
	all, err := store.ReadAll(ctx, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("the log holds %d events (err %v), want 2", len(all), err)
	}
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	in := ingest.New(store, &ingest.Config{MaxBatch: 64})
	const clients, perClient = 32, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	positions := map[string]int64{}
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				id := fmt.Sprint((c*perClient + i) % 300) // ids shared between clients
				res, err := in.Ingest(context.Background(), []ingest.Raw{{Event: cloudEvent(t, "load", id, "", nil)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if p, ok := positions[id]; ok && p != res[0].Position {
					t.Errorf("id %s stored at %d and %d", id, p, res[0].Position)
				}
				positions[id] = res[0].Position
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	in.Close()
	if _, err := in.Ingest(context.Background(), []ingest.Raw{{Event: cloudEvent(t, "load", "late", "", nil)}}); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("ingest after close: %v", err)
	}
	all, err := store.ReadAll(context.Background(), &rawevents.ReadAllOpts{Limit: 1000})
	if err != nil || len(all) != len(positions) {
		t.Fatalf("the log holds %d events for %d ids (err %v)", len(all), len(positions), err)
	}
}

// TestCheckNamesTheFirstNUL: an event with U+0000 in several attributes is
// refused naming the first of id, source, type, subject (here id, type
// and subject have one), every time.
func TestCheckNamesTheFirstNUL(t *testing.T) {
	t.Parallel()
	e := cloudEvent(t, "https://example.com/s", "a\x00b", "", nil)
	e.SetType("t\x00")
	e.SetSubject("s\x00")
	for range 20 {
		err := ingest.Check(0, &e)
		var invalid *ingest.InvalidError
		if !errors.As(err, &invalid) || invalid.Reason != "id contains U+0000, which the store cannot keep" {
			t.Fatalf("Check = %v", err)
		}
	}
}
