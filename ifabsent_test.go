package rawevents_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
)

// lookupCounter counts the key lookups of the driver it wraps.
type lookupCounter struct {
	driver.Driver[*sql.Tx]
	lookups atomic.Int32
}

func (d *lookupCounter) LookupKeysTx(ctx context.Context, tx *sql.Tx, keys []event.StreamKey) ([]event.Event, error) {
	d.lookups.Add(1)
	return d.Driver.LookupKeysTx(ctx, tx, keys)
}

// TestAppendIfAbsentLooksUpAfterRepeat checks when AppendIfAbsent looks
// keys up on a driver that undoes a failed append (SQLite): not while
// every key is new; after an append met a stored key, in that transaction
// and in the next 64.
func TestAppendIfAbsentLooksUpAfterRepeat(t *testing.T) {
	ctx := t.Context()
	d, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close() //nolint:errcheck // a test's temporary file
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	counter := &lookupCounter{Driver: d}
	store, err := rawevents.NewStore[*sql.Tx](ctx, counter, nil)
	if err != nil {
		t.Fatal(err)
	}
	appendKey := func(key string) rawevents.Outcome {
		t.Helper()
		out, err := store.AppendIfAbsent(ctx, []rawevents.StreamEvent{
			{StreamID: "raw:shop", Key: key, Event: event.Proposed{Type: "order.placed", Data: []byte(`{}`)}},
		})
		if err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
		return out[0]
	}
	requireLookups := func(when string, want int32) {
		t.Helper()
		if got := counter.lookups.Load(); got != want {
			t.Fatalf("%s: %d lookups, want %d", when, got, want)
		}
	}

	first := appendKey("a")
	appendKey("b")
	requireLookups("new keys", 0)
	if again := appendKey("a"); !again.Existing || again.Event.Position != first.Event.Position {
		t.Fatalf("repeat: %+v, want the stored event at %d", again, first.Event.Position)
	}
	requireLookups("a repeat", 1)
	for i := range 64 {
		appendKey("n" + strconv.Itoa(i))
	}
	requireLookups("the 64 transactions after a repeat", 65)
	appendKey("z")
	requireLookups("after them", 65)
}
