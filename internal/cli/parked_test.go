package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/rawtest"
)

// openSQLite opens the test's store as the library does, migrated, and
// closes it when the test ends (or earlier, by the caller).
func (b *testBundle) openSQLite(t *testing.T) *rawevents.Store[*sql.Tx] {
	t.Helper()
	d, err := sqlite.Open(b.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	store, err := rawevents.NewStore(t.Context(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// seedParked appends order.placed events to streams ok-1, bad-1, ok-2 and
// bad-2 (positions 1 to 4) and runs subscription "orders", whose handler
// fails on the bad-* streams, until it has parked their events (positions
// 2 and 4) and handled the rest. The subscriber is stopped and the store
// closed before it returns.
func (b *testBundle) seedParked(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	store := b.openSQLite(t)
	defer store.Close()
	for _, stream := range []string{"ok-1", "bad-1", "ok-2", "bad-2"} {
		if _, err := store.Append(ctx, stream, event.NoStream, event.Proposed{Type: "order.placed", Data: []byte(`{"total":12}`)}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := rawevents.NewSubscriber(store, &rawevents.Subscription[*sql.Tx]{
		Name: "orders", Partitions: 2, MaxAttempts: 2, Lease: time.Second,
		Backoff: func(int) time.Duration { return time.Millisecond },
		Handle: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if strings.HasPrefix(e.StreamID, "bad-") {
				return errors.New("no price list for " + e.StreamID)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sub.Run(runCtx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := store.SubscriptionStatus(ctx, "orders")
		if err == nil && st.Lag == 0 && st.Parked == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscription did not park two events: %+v, %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// storeState is what bad input must leave unchanged: the log and every
// parked record.
type storeState struct {
	events []event.Event
	parked []driver.Parked
}

func (b *testBundle) state(t *testing.T) storeState {
	t.Helper()
	store, err := openStoreForRead(t.Context(), b.store)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	events, err := store.ReadAll(t.Context(), &rawevents.ReadAllOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	parked, err := store.Parked(t.Context(), "orders", &rawevents.ParkedOpts{States: parkedStates})
	if err != nil {
		t.Fatal(err)
	}
	return storeState{events: events, parked: parked}
}

// executeEnv is execute with an environment (for $USER).
func (b *testBundle) executeEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand(func(name string) string { return env[name] })
	cmd.SetArgs(append(args, "--store", b.store))
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(t.Context())
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func parseParked(t *testing.T, out string) []driver.Parked {
	t.Helper()
	var parked []driver.Parked
	for line := range strings.Lines(out) {
		var p driver.Parked
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		parked = append(parked, p)
	}
	return parked
}

func positions(parked []driver.Parked) []int64 {
	out := []int64{}
	for _, p := range parked {
		out = append(out, p.Position)
	}
	return out
}

func TestParked(t *testing.T) {
	t.Parallel()

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)

		got := lines(b.run(t, "parked", "list", "orders"))
		if len(got) != 3 || !strings.HasPrefix(got[0], "POSITION  PARTITION  STATE ") {
			t.Fatalf("parked list printed %q, want a header and 2 rows", got)
		}
		for i, stream := range []string{"bad-1", "bad-2"} {
			f := strings.Fields(got[i+1])
			if f[0] != []string{"2", "4"}[i] || f[2] != "parked" || f[3] != "2" || f[4] != stream || f[5] != "order.placed" ||
				!strings.HasSuffix(got[i+1], "  no price list for "+stream) {
				t.Errorf("row %d = %q", i+1, got[i+1])
			}
		}

		parked := parseParked(t, b.run(t, "parked", "list", "--json", "orders"))
		if len(parked) != 2 || parked[0].StreamID != "bad-1" || parked[0].Attempts != 2 || parked[0].State != driver.ParkedWaiting ||
			parked[0].Error != "no price list for bad-1" || parked[0].Subscription != "orders" || parked[0].ParkedAt.IsZero() {
			t.Errorf("parked list --json = %+v", parked)
		}
		for _, tt := range []struct {
			args []string
			want []int64
		}{
			{[]string{"--after", "2"}, []int64{4}},
			{[]string{"--limit", "1"}, []int64{2}},
			{[]string{"--state", "skipped"}, []int64{}},
			{[]string{"--state", "skipped,parked"}, []int64{2, 4}},
			{[]string{"--state", "resolved", "--state", "parked", "--after", "3"}, []int64{4}},
		} {
			got := positions(parseParked(t, b.run(t, append([]string{"parked", "list", "--json", "orders"}, tt.args...)...)))
			if !equal(got, tt.want) {
				t.Errorf("parked list %v: positions %v, want %v", tt.args, got, tt.want)
			}
		}
		if out := b.run(t, "parked", "list", "orders", "--state", "resolved"); out != "" {
			t.Errorf("an empty list printed %q", out)
		}
	})

	t.Run("Show", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)

		out := b.run(t, "parked", "show", "orders", "2")
		for _, want := range []string{"subscription  orders\n", "position      2\n", "state         parked\n", "attempts      2\n",
			"error         no price list for bad-1\n", "\nbad-1  v1  #2  "} {
			if !strings.Contains(out, want) {
				t.Errorf("parked show printed %q, want it to contain %q", out, want)
			}
		}
		if !strings.HasSuffix(out, `  order.placed  {"total":12}`+"\n") {
			t.Errorf("parked show does not end with the event: %q", out)
		}

		var shown ParkedEvent
		if err := json.Unmarshal([]byte(b.run(t, "parked", "show", "--json", "orders", "2")), &shown); err != nil {
			t.Fatal(err)
		}
		if shown.Parked.Position != 2 || shown.Parked.EventID != shown.Event.ID || shown.Event.StreamID != "bad-1" ||
			string(shown.Event.Data) != `{"total":12}` {
			t.Errorf("parked show --json = %+v", shown)
		}
	})

	t.Run("RetryAndSkip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)

		out := b.run(t, "parked", "retry", "orders", "2", "--actor", "ana", "--reason", "price list loaded")
		if want := "retry of orders position 2 requested by ana; the subscription tries it again shortly\n"; out != want {
			t.Errorf("retry printed %q, want %q", out, want)
		}
		res := b.executeEnv(t, map[string]string{"USER": "ops"}, "parked", "skip", "--json", "orders", "4")
		if res.err != nil {
			t.Fatal(res.err)
		}
		var decided DecisionOutput
		if err := json.Unmarshal([]byte(res.stdout), &decided); err != nil {
			t.Fatal(err)
		}
		if want := (DecisionOutput{Subscription: "orders", Position: 4, State: "skipped", Actor: "ops"}); decided != want {
			t.Errorf("skip --json = %+v, want %+v", decided, want)
		}

		st := b.state(t)
		if got := []string{st.parked[0].State, st.parked[1].State}; got[0] != driver.ParkedRetrying || got[1] != driver.ParkedSkipped {
			t.Errorf("states after retry and skip: %v", got)
		}
		var audit []event.Event
		for _, e := range st.events {
			if e.StreamID == rawevents.ParkedStream("orders") {
				audit = append(audit, e)
			}
		}
		if len(audit) != 2 || audit[0].Type != rawevents.ParkedRetryRequested || audit[0].Metadata.Actor != "ana" ||
			!strings.Contains(string(audit[0].Data), `"reason":"price list loaded"`) ||
			audit[1].Type != rawevents.ParkedSkippedType || audit[1].Metadata.Actor != "ops" {
			t.Errorf("audit trail: %+v", audit)
		}
		if got := positions(parseParked(t, b.run(t, "parked", "list", "--json", "orders"))); !equal(got, []int64{2}) {
			t.Errorf("the default list shows %v, want the retrying event only", got)
		}
		if got := positions(parseParked(t, b.run(t, "parked", "list", "--json", "--state", "skipped", "orders"))); !equal(got, []int64{4}) {
			t.Errorf("--state skipped shows %v", got)
		}
	})

	t.Run("BadInputChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.seedParked(t)
		b.run(t, "parked", "skip", "orders", "4", "--actor", "ops")
		before := b.state(t)

		for _, tt := range []struct {
			name    string
			args    []string
			wantErr string
		}{
			{"UnknownSubscription", []string{"parked", "retry", "nope", "2", "--actor", "ops"}, `subscription "nope" not found`},
			{"UnknownSubscriptionList", []string{"parked", "list", "nope"}, `subscription "nope" not found`},
			{"UnknownSubscriptionShow", []string{"parked", "show", "nope", "2"}, `subscription "nope" not found`},
			{"NotAPosition", []string{"parked", "retry", "orders", "two", "--actor", "ops"}, `position "two" is not a positive integer`},
			{"ZeroPosition", []string{"parked", "skip", "orders", "0", "--actor", "ops"}, `position "0" is not a positive integer`},
			{"MissingActor", []string{"parked", "retry", "orders", "2"}, "--actor is required"},
			{"BlankActor", []string{"parked", "skip", "orders", "2", "--actor", " "}, "--actor is required"},
			{"NeverParked", []string{"parked", "retry", "orders", "1", "--actor", "ops"}, `subscription "orders" parked no event at position 1`},
			{"ShowNeverParked", []string{"parked", "show", "orders", "3"}, `subscription "orders" parked no event at position 3`},
			{"AlreadySkipped", []string{"parked", "retry", "orders", "4", "--actor", "ops"}, `the event at position 4 is skipped; only parked events can be retried`},
			{"BeyondTheLog", []string{"parked", "skip", "orders", "999", "--actor", "ops"}, "parked no event at position 999"},
			{"UnknownState", []string{"parked", "list", "orders", "--state", "stuck"}, `--state "stuck" is not one of parked, retrying, skipped, resolved`},
			{"NegativeAfter", []string{"parked", "list", "orders", "--after", "-1"}, "--after must not be negative"},
			{"NegativeLimit", []string{"parked", "list", "orders", "--limit", "-1"}, "--limit must not be negative"},
			{"MissingPosition", []string{"parked", "retry", "orders", "--actor", "ops"}, "accepts 2 arg(s), received 1"},
			{"UnknownSubcommand", []string{"parked", "replay", "orders"}, `unknown command "replay" for "rawevents parked"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := b.execute(t.Context(), "", tt.args...)
				if res.err == nil {
					t.Fatalf("no error; printed %q", res.stdout)
				}
				if !strings.Contains(res.err.Error(), tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", res.err, tt.wantErr)
				}
				if strings.Contains(res.err.Error(), "\n") || strings.Contains(res.err.Error(), "sqlite") {
					t.Errorf("error = %q, want one line in the CLI's words", res.err)
				}
				if res.stdout != "" || res.stderr != "" {
					t.Errorf("printed stdout %q, stderr %q", res.stdout, res.stderr)
				}
				if after := b.state(t); !reflect.DeepEqual(after, before) {
					t.Errorf("the store changed:\n before %+v\n after  %+v", before, after)
				}
			})
		}
	})

	t.Run("MissingStore", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.execute(t.Context(), "", "parked", "list", "orders")
		if res.err == nil || !strings.Contains(res.err.Error(), "no store at") {
			t.Errorf("err = %v, want no store", res.err)
		}
	})
}

// TestParkedOfProjection: on SQLite a projection keeps its subscription's
// state in the read-model store beside the event store; "parked" finds it
// there: list, show (the record from one store, the event from the other)
// and skip, recorded in the read-model store.
func TestParkedOfProjection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	log := b.openSQLite(t)
	read := rawtest.SQLiteFile(t, strings.TrimSuffix(b.store, ".db")+".read.db")
	for _, text := range []string{"fine", "poison", "also fine"} {
		if _, err := log.Append(ctx, "note-"+strings.ReplaceAll(text, " ", "-"), event.NoStream,
			event.Proposed{Type: "note.saved", Data: []byte(`{"text":"` + text + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := projection.New(log, read, nil, &projection.Projection{
		Name: "notes", Version: 1, Types: []string{"note.saved"}, MaxAttempts: 2,
		Backoff: func(int) time.Duration { return time.Millisecond },
		Tables:  []projection.Table{{Name: "note", Columns: []projection.Column{{Name: "id", Type: projection.Text}}, Key: []string{"id"}}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			if strings.Contains(string(e.Data), "poison") {
				return errors.New("cannot read a poisoned note")
			}
			return tx.Upsert(ctx, "note", projection.Row{"id": e.StreamID})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := p.WaitFor(ctx, "notes", 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log.Close()
	read.Close()

	const sub = "projection:notes:g1"
	listed := parseParked(t, b.run(t, "parked", "list", sub, "--json"))
	if len(listed) != 1 || listed[0].Position != 2 || !strings.Contains(listed[0].Error, "poisoned") {
		t.Fatalf("list: %+v", listed)
	}
	if out := b.run(t, "parked", "show", sub, "2"); !strings.Contains(out, "poisoned") || !strings.Contains(out, "note-poison") {
		t.Errorf("show:\n%s", out)
	}
	if out := b.run(t, "parked", "skip", sub, "2", "--actor", "ana", "--reason", "bad data"); !strings.Contains(out, "skipped") {
		t.Errorf("skip: %s", out)
	}
	if got := parseParked(t, b.run(t, "parked", "list", sub, "--state", "skipped", "--json")); len(got) != 1 || got[0].Position != 2 {
		t.Errorf("after skip: %+v", got)
	}
	if r := b.execute(ctx, "", "parked", "list", "projection:nope:g1"); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Errorf("unknown subscription: %v", r.err)
	}
}
