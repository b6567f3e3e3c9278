// Package projectiontest tests projections: given events, then the read
// model holds these rows.
//
//	projectiontest.Given(t, bank.Accounts(),
//		projectiontest.Event{Stream: "account-a1", Type: "bank.opened", Data: bank.Opened{Owner: "Ana", Deposit: 100}},
//	).Then(t, "account", projection.Row{"id": "a1", "owner": "Ana", "balance": 100})
//
// The events are appended to a fresh embedded store and projected by the
// real Projector into a second file, as in production; Then also rebuilds
// the read model from scratch and checks that it comes out the same
// (deterministic replay).
package projectiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/rawtest"
)

// Event is an event to project: its Data is encoded as JSON unless it is
// already json.RawMessage.
type Event struct {
	Stream     string
	Type       string
	Data       any
	OccurredAt time.Time
}

// Fixture is a read model built from given events.
type Fixture struct {
	p    *projection.Projection
	proj interface {
		List(ctx context.Context, name, table string, q *projection.Query) (*projection.Page, error)
		Checksum(ctx context.Context, name string, generation int) (string, error)
		StartRebuild(ctx context.Context, name string, swap bool) (int, error)
		Status(ctx context.Context, name string) (*projection.Status, error)
	}
	rebuilt bool
}

// Given appends events to a fresh store and projects them with p until
// the read model has applied them all. A handler error fails the test.
func Given(t testing.TB, p *projection.Projection, events ...Event) *Fixture {
	t.Helper()
	ctx := context.Background()
	log := rawtest.SQLite(t)
	read := rawtest.SQLiteFile(t, filepath.Join(t.TempDir(), "read.db"))
	var head int64
	for i, e := range events {
		data, ok := e.Data.(json.RawMessage)
		if !ok {
			var err error
			if data, err = json.Marshal(e.Data); err != nil {
				t.Fatalf("projectiontest: event %d: %v", i, err)
			}
		}
		res, err := log.Append(ctx, e.Stream, event.Any, event.Proposed{Type: e.Type, Data: data, OccurredAt: e.OccurredAt})
		if err != nil {
			t.Fatalf("projectiontest: event %d: %v", i, err)
		}
		head = res.LastPosition()
	}
	strict := *p
	strict.Strict, strict.MaxAttempts = true, 1
	proj, err := projection.New(log, read, nil, &strict)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- proj.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := proj.Status(ctx, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == projection.StateFailed {
			t.Fatalf("projectiontest: %s failed: %s", p.Name, st.Error)
		}
		if st.Position >= head && (st.Rebuild == nil || st.Rebuild.Position >= head) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projectiontest: %s did not catch up: %+v", p.Name, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &Fixture{p: p, proj: proj}
}

// Rows returns every row of a table of the read model, in key order.
func (f *Fixture) Rows(t testing.TB, table string) []projection.Row {
	t.Helper()
	var rows []projection.Row
	cursor := ""
	for {
		page, err := f.proj.List(context.Background(), f.p.Name, table, &projection.Query{Limit: projection.MaxLimit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, page.Rows...)
		if cursor = page.Next; cursor == "" {
			return rows
		}
	}
}

// Then checks that a table holds exactly the rows want, matched by key
// (every wanted row gives its key columns); another column a wanted row
// leaves out is not compared. Numbers may be given
// as any Go integer or float, times in any zone. The first Then also
// checks that a rebuild from scratch gives the same read model.
func (f *Fixture) Then(t testing.TB, table string, want ...projection.Row) *Fixture {
	t.Helper()
	var spec *projection.Table
	for i := range f.p.Tables {
		if f.p.Tables[i].Name == table {
			spec = &f.p.Tables[i]
		}
	}
	if spec == nil {
		t.Fatalf("projectiontest: %s has no table %q", f.p.Name, table)
	}
	got := map[string]projection.Row{}
	for _, r := range f.Rows(t, table) {
		got[keyString(spec, r)] = r
	}
	var problems []string
	seen := map[string]bool{}
	for _, w := range want {
		for _, k := range spec.Key {
			if _, ok := w[k]; !ok {
				t.Fatalf("projectiontest: %s.%s: a wanted row must give its key; %v lacks %s", f.p.Name, table, w, k)
			}
		}
		k := keyString(spec, w)
		seen[k] = true
		g, ok := got[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing row %s: want %v", k, w))
			continue
		}
		for col, v := range w {
			if !same(v, g[col]) {
				problems = append(problems, fmt.Sprintf("row %s column %s = %v (%T), want %v (%T)", k, col, g[col], g[col], v, v))
			}
		}
	}
	for k, r := range got {
		if !seen[k] {
			problems = append(problems, fmt.Sprintf("unexpected row %s: %v", k, r))
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		t.Fatalf("projectiontest: %s.%s:\n  %s", f.p.Name, table, strings.Join(problems, "\n  "))
	}
	if !f.rebuilt {
		f.rebuilt = true
		f.checkRebuild(t)
	}
	return f
}

// checkRebuild rebuilds the read model and compares checksums.
func (f *Fixture) checkRebuild(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	live, err := f.proj.Checksum(ctx, f.p.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := f.proj.StartRebuild(ctx, f.p.Name, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := f.proj.Status(ctx, f.p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rebuild != nil && st.Rebuild.Position >= st.Head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projectiontest: the rebuild of %s did not catch up: %+v", f.p.Name, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rebuilt, err := f.proj.Checksum(ctx, f.p.Name, gen)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt != live {
		t.Fatalf("projectiontest: %s is not deterministic: a rebuild from the same events gives another read model", f.p.Name)
	}
}

func keyString(t *projection.Table, r projection.Row) string {
	parts := make([]string, len(t.Key))
	for i, k := range t.Key {
		parts[i] = fmt.Sprint(r[k])
	}
	return strings.Join(parts, "/")
}

// same compares a wanted value with a read one, across Go number types
// and time zones.
func same(want, got any) bool {
	switch w := want.(type) {
	case int:
		return got == int64(w)
	case int32:
		return got == int64(w)
	case float32:
		return got == float64(w)
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w.Truncate(time.Microsecond))
	case json.RawMessage:
		g, ok := got.(json.RawMessage)
		return ok && jsonEqual(w, g)
	}
	if g, ok := got.(json.RawMessage); ok {
		b, err := json.Marshal(want)
		return err == nil && jsonEqual(b, g)
	}
	return reflect.DeepEqual(want, got)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
