package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// KeyMigration is what TestKeyMigration needs of a driver whose schema
// version Version gave events their deduplication keys.
type KeyMigration[TTx any] struct {
	// Driver is a fresh driver of a database with nothing in it.
	Driver driver.Driver[TTx]
	// Version is the migration that adds the keys.
	Version int
	// MigrateTo migrates Driver up to a version only.
	MigrateTo func(ctx context.Context, version int) error
	// Insert writes events, complete with positions and versions, and
	// their streams' rows the way the schema before Version did.
	Insert func(ctx context.Context, events []event.Event) error
	// Update tries to change an event's type in place, bypassing the
	// store: the immutability trigger must refuse it.
	Update func(ctx context.Context) error
}

// TestKeyMigration stores raw events the way the schema before keys did,
// migrates, and redelivers them: each is stored once. The migration gives
// every raw event already stored its CloudEvents id as key, and no other
// event a key; events stay immutable.
func TestKeyMigration[TTx any](t *testing.T, m KeyMigration[TTx]) {
	t.Helper()
	ctx := context.Background()
	if err := m.MigrateTo(ctx, m.Version-1); err != nil {
		t.Fatal(err)
	}
	old := beforeKeys(t)
	if err := m.Insert(ctx, old); err != nil {
		t.Fatal(err)
	}
	res, err := m.Driver.Migrate(ctx)
	if err != nil || len(res.Applied) == 0 || res.Applied[0] != m.Version { // and the later ones
		t.Fatalf("migrate: %+v, %v", res, err)
	}
	store, err := rawevents.NewStore(ctx, m.Driver, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := store.ReadAll(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i, e := range all {
		if e.ID != old[i].ID {
			t.Fatalf("event %d is %s after the migration, was %s", i, e.ID, old[i].ID)
		}
		keys = append(keys, e.Key)
	}
	if got := fmt.Sprintf("%q", keys); got != `["1" "2" "1" "" ""]` {
		t.Fatalf("keys after the migration %s", got)
	}

	in := ingest.New(store, nil)
	defer in.Close()
	var raws []ingest.Raw
	for _, sid := range [][2]string{{"A", "1"}, {"A", "3"}, {"B", "1"}, {"A", "2"}} {
		e := ce.New()
		e.SetID(sid[1])
		e.SetSource(sid[0])
		e.SetType("com.example.thing.happened")
		raws = append(raws, ingest.Raw{Event: e})
	}
	results, err := in.Ingest(ctx, raws)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(results[0].Duplicate, results[0].Position, results[1].Duplicate, results[2].Duplicate, results[2].Position,
		results[3].Duplicate, results[3].Position)
	if got != "true 1 false true 3 true 2" {
		t.Fatalf("redelivery results %+v", results)
	}
	found, err := store.LookupKeys(ctx, ingest.Key("A", "3"))
	if err != nil || len(found) != 1 || found[0].Position != 6 || found[0].ID.Version() != 7 {
		t.Fatalf("new raw event A/3: %+v, err %v", found, err)
	}

	if err := m.Update(ctx); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("update after the migration: err = %v, want the immutability trigger's", err)
	}
}

// beforeKeys are the events of a store written before raw events had
// keys: raw events under their UUIDv5 ids, and, around them, events that
// look like raw events but are not, which must get no key.
func beforeKeys(t *testing.T) []event.Event {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	raw := func(source, id string) event.Event {
		e := ce.New()
		e.SetID(id)
		e.SetSource(source)
		e.SetType("com.example.thing.happened")
		if err := e.SetData("application/json", map[string]string{"n": id}); err != nil {
			t.Fatal(err)
		}
		se, err := (&ingest.Raw{Event: e, Transport: ingest.Transport{Mode: "structured"}}).StreamEvent(now)
		if err != nil {
			t.Fatal(err)
		}
		return event.Event{ID: ingest.EventID(source, id), StreamID: se.StreamID, Type: se.Event.Type, SchemaVersion: 1,
			Data: se.Event.Data, Metadata: se.Event.Metadata, OccurredAt: now, RecordedAt: now}
	}
	events := []event.Event{raw("A", "1"), raw("A", "2"), raw("B", "1")}
	// A domain event derived from raw event A/1, with its CloudEvent's
	// source and id in data and origin.
	derived := events[0]
	derived.ID, derived.StreamID, derived.Type = ingest.EventID("derived", "1"), "order-1", "order.placed"
	derived.Metadata = event.Metadata{Origin: &event.Origin{Source: "A", ID: "1", Position: 1}}
	// An event another writer put in A's stream, claiming raw event A/2's
	// identity: A/2, stored first, keeps the key.
	claim := events[1]
	claim.ID = ingest.EventID("claim", "2")
	events = append(events, derived, claim)
	versions := map[string]int64{}
	for i := range events {
		versions[events[i].StreamID]++
		events[i].Position, events[i].StreamVersion = int64(i+1), versions[events[i].StreamID]
	}
	return events
}
