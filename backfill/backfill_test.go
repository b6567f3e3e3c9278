package backfill_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/rawtest"
)

type testBundle struct {
	store *rawevents.Store[*sql.Tx]
	in    *ingest.Ingester
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	store := rawtest.SQLite(t)
	in := ingest.New(store, nil)
	t.Cleanup(in.Close)
	return &testBundle{store: store, in: in}
}

// runner returns a runner of bs on the bundle's store.
func (b *testBundle) runner(t *testing.T, bs ...*backfill.Backfill) *backfill.Runner {
	t.Helper()
	r, err := backfill.NewRunner(&backfill.Config{Store: b.store, Ingester: b.in, Backfills: bs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawIDs returns the CloudEvents ids stored under source, in log order,
// failing the test on any id stored twice.
func rawIDs(t *testing.T, store backfill.Reader, source string) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for from := int64(1); ; {
		events, err := store.ReadStream(context.Background(), ingest.StreamID(source), &rawevents.ReadStreamOpts{From: from, Limit: rawevents.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			id := e.Metadata.Origin.ID
			if seen[id] {
				t.Fatalf("raw event %q of %s is stored twice", id, source)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if len(events) < rawevents.MaxPageSize {
			return ids
		}
		from = events[len(events)-1].StreamVersion + 1
	}
}

// progressTypes returns the types of a backfill's progress events.
func progressTypes(t *testing.T, store backfill.Reader, name string) []string {
	t.Helper()
	events, err := store.ReadStream(context.Background(), backfill.Stream(name), &rawevents.ReadStreamOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, strings.TrimPrefix(e.Type, "rawevents.backfill."))
	}
	return types
}

func itemID(i int) string { return fmt.Sprintf("item-%04d", i) }

// items makes n items, item-0000 onwards.
func items(n int) []backfill.Item {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]backfill.Item, n)
	for i := range out {
		out[i] = backfill.Item{ID: itemID(i), Type: "thing.created", Time: base.Add(time.Duration(i) * time.Minute), Data: fmt.Appendf(nil, `{"n": %d}`, i)}
	}
	return out
}

// pager is a source that serves items in pages of size, with the offset
// of the next page as its cursor, and records the cursors it was asked for.
type pager struct {
	items []backfill.Item
	size  int
	total bool // says the total

	mu      sync.Mutex
	cursors []string
	fail    func(cursor string) error // fails a fetch when it returns an error
}

func (p *pager) Fetch(ctx context.Context, cursor string) (*backfill.Page, error) {
	p.mu.Lock()
	p.cursors = append(p.cursors, cursor)
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		if err := fail(cursor); err != nil {
			return nil, err
		}
	}
	from := 0
	if cursor != "" {
		var err error
		if from, err = strconv.Atoi(cursor); err != nil {
			return nil, fmt.Errorf("bad cursor %q", cursor)
		}
	}
	to := min(from+p.size, len(p.items))
	page := &backfill.Page{Items: p.items[from:to], Next: strconv.Itoa(to), Last: to == len(p.items)}
	if p.total {
		page.Total = int64(len(p.items))
	}
	return page, nil
}

func (p *pager) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.cursors...)
}

func (p *pager) setFail(fail func(cursor string) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

func TestRun(t *testing.T) {
	t.Parallel()

	t.Run("PagesToTheEnd", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(250), size: 40, total: true}
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "https://things.example"})
		var seen []backfill.Progress
		p, err := r.Run(t.Context(), "things", &backfill.RunOpts{Actor: "ana", OnProgress: func(p backfill.Progress) { seen = append(seen, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if p.State != backfill.StateCompleted || p.Pages != 7 || p.Items != 250 || p.Stored != 250 || p.Duplicates != 0 || p.Total != 250 || p.Cursor != "250" || p.Runs != 1 || p.CompletedAt == nil {
			t.Errorf("progress = %+v", p)
		}
		if len(seen) != 8 || seen[0].Items != 0 || seen[1].Items != 40 || seen[7].State != backfill.StateCompleted {
			t.Errorf("OnProgress saw %d reports: %+v", len(seen), seen)
		}
		ids := rawIDs(t, b.store, "https://things.example")
		if len(ids) != 250 || ids[0] != itemID(0) || ids[249] != itemID(249) {
			t.Fatalf("stored %d raw events, %q..., want 250 in order", len(ids), ids[:min(3, len(ids))])
		}
		if got, want := strings.Join(progressTypes(t, b.store, "things"), ","), "started,page,page,page,page,page,page,completed"; got != want {
			t.Errorf("progress events %s, want %s", got, want)
		}

		// A stored item is a raw event like any other: a CloudEvent with
		// the backfill's source, its data byte for byte, its time, and the
		// backfill in its transport facts.
		stored, err := b.store.LookupKeys(t.Context(), ingest.Key("https://things.example", itemID(7)))
		if err != nil || len(stored) != 1 {
			t.Fatalf("lookup: %v %v", stored, err)
		}
		e := stored[0]
		if want := `{"datacontenttype":"application/json","id":"item-0007","source":"https://things.example","specversion":"1.0","time":"2026-01-02T03:11:05Z","type":"thing.created","data":{"n": 7}}`; string(e.Data) != want {
			t.Errorf("stored %s, want %s", e.Data, want)
		}
		if e.Type != "thing.created" || !e.OccurredAt.Equal(time.Date(2026, 1, 2, 3, 11, 5, 0, time.UTC)) ||
			e.Metadata.Extra["received_via"] != "backfill" || e.Metadata.Extra["backfill"] != "things" {
			t.Errorf("stored %+v", e)
		}
		progress, err := b.store.ReadStream(t.Context(), backfill.Stream("things"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if progress[0].Metadata.Actor != "ana" {
			t.Errorf("progress actor %q, want ana", progress[0].Metadata.Actor)
		}
		if got, err := backfill.Status(t.Context(), b.store, "things"); err != nil || got.Items != 250 || got.State != backfill.StateCompleted || !got.UpdatedAt.Equal(p.UpdatedAt) {
			t.Errorf("Status = %+v, %v; want what Run returned", got, err)
		}
	})

	t.Run("ResumesAfterAFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(100), size: 10}
		src.setFail(func(cursor string) error {
			if cursor == "30" {
				return errors.New("502 Bad Gateway")
			}
			return nil
		})
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
		p, err := r.Run(t.Context(), "things", nil)
		if err == nil || !strings.Contains(err.Error(), `fetch the page after cursor "30": 502 Bad Gateway`) {
			t.Fatalf("err = %v, want the source's error with its cursor", err)
		}
		if p.State != backfill.StateFailed || p.Cursor != "30" || p.Items != 30 || !strings.Contains(p.Error, "502") {
			t.Errorf("progress after the failure = %+v", p)
		}
		if st, _ := backfill.Status(t.Context(), b.store, "things"); st.State != backfill.StateFailed || st.Error != p.Error {
			t.Errorf("stored progress = %+v, want the failure recorded", st)
		}

		src.setFail(nil)
		p, err = r.Run(t.Context(), "things", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.State != backfill.StateCompleted || p.Items != 100 || p.Stored != 100 || p.Runs != 2 || p.Error != "" {
			t.Errorf("progress = %+v", p)
		}
		if got, want := strings.Join(src.asked(), ","), ",10,20,30,30,40,50,60,70,80,90"; got != want {
			t.Errorf("cursors asked %s, want %s: the second run resumes at the failed page", got, want)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 100 {
			t.Errorf("%d raw events, want 100", n)
		}
	})

	t.Run("CancelledKeepsTheStoredPage", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(50), size: 10}
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
		ctx, cancel := context.WithCancel(t.Context())
		p, err := r.Run(ctx, "things", &backfill.RunOpts{OnProgress: func(p backfill.Progress) {
			if p.Pages == 2 {
				cancel() // Ctrl-C while page 2 is being saved
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		st, err := backfill.Status(t.Context(), b.store, "things")
		if err != nil {
			t.Fatal(err)
		}
		if st.State != backfill.StateInProgress || st.Cursor != "20" || st.Items != 20 || p.Cursor != "20" {
			t.Errorf("stored progress = %+v, want in progress at cursor 20: a cancellation is not a failure", st)
		}
		if _, err := r.Run(t.Context(), "things", nil); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(src.asked(), ","), ",10,20,30,40"; got != want {
			t.Errorf("cursors asked %s, want %s", got, want)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 50 {
			t.Errorf("%d raw events, want 50", n)
		}
	})

	t.Run("CrashBeforeTheCursorIsSavedRefetchesOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(30), size: 10}
		// The store fails the save of the second page's cursor, after its
		// items were stored: what a crash at that moment leaves behind.
		crashing := &failingStore{Store: b.store, failAppend: 3}
		r, err := backfill.NewRunner(&backfill.Config{Store: crashing, Ingester: b.in,
			Backfills: []*backfill.Backfill{{Name: "things", Source: src, EventSource: "things"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(t.Context(), "things", nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("err = %v, want the failed save", err)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 20 {
			t.Fatalf("%d raw events after the crash, want 20 (two pages stored, one cursor saved)", n)
		}
		p, err := r.Run(t.Context(), "things", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Items != 30 || p.Stored != 20 || p.Duplicates != 10 {
			t.Errorf("progress = %+v, want the refetched page counted as 10 duplicates", p)
		}
		if got, want := strings.Join(src.asked(), ","), ",10,10,20"; got != want {
			t.Errorf("cursors asked %s, want %s", got, want)
		}
		if ids := rawIDs(t, b.store, "things"); len(ids) != 30 {
			t.Errorf("%d raw events, want 30, each once", len(ids))
		}
	})

	t.Run("CompletedRunsOnlyOnRestart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(20), size: 10}
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
		if _, err := r.Run(t.Context(), "things", nil); err != nil {
			t.Fatal(err)
		}
		p, err := r.Run(t.Context(), "things", nil)
		if !errors.Is(err, backfill.ErrCompleted) || p.State != backfill.StateCompleted {
			t.Fatalf("second run: %+v, %v; want ErrCompleted", p, err)
		}
		src.items = items(25) // the source has grown since
		p, err = r.Run(t.Context(), "things", &backfill.RunOpts{Restart: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Items != 25 || p.Stored != 5 || p.Duplicates != 20 || p.Pages != 3 || p.Runs != 2 {
			t.Errorf("restart progress = %+v, want 5 stored and 20 duplicates", p)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 25 {
			t.Errorf("%d raw events, want 25", n)
		}
	})

	t.Run("RestartKeyRestartsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(30), size: 10}
		src.setFail(func(cursor string) error {
			if cursor == "20" {
				return errors.New("timeout")
			}
			return nil
		})
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
		opts := &backfill.RunOpts{Restart: true, RestartKey: "job-7"}
		if _, err := r.Run(t.Context(), "things", opts); err == nil {
			t.Fatal("the first attempt did not fail")
		}
		src.setFail(nil)
		p, err := r.Run(t.Context(), "things", opts) // the retry of the same request
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(src.asked(), ","), ",10,20,20"; got != want || p.Items != 30 {
			t.Errorf("cursors asked %s, want %s: a retry resumes the restarted pass (progress %+v)", got, want, p)
		}
	})

	t.Run("OverlappingRunsStopTheSecondToSave", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(40), size: 10}
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "things"})
		var inner error
		_, err := r.Run(t.Context(), "things", &backfill.RunOpts{OnProgress: func(p backfill.Progress) {
			if p.Pages == 1 && inner == nil {
				_, inner = r.Run(t.Context(), "things", nil) // another process runs it to the end meanwhile
				if inner == nil {
					inner = errors.New("ok")
				}
			}
		}})
		if inner.Error() != "ok" {
			t.Fatalf("inner run: %v", inner)
		}
		if !errors.Is(err, backfill.ErrConcurrentRun) {
			t.Fatalf("err = %v, want ErrConcurrentRun", err)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 40 {
			t.Errorf("%d raw events, want 40", n)
		}
	})

	t.Run("InvalidItemStoresNothingOfItsPage", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		its := items(30)
		its[13].Type = ""
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: &pager{items: its, size: 10}, EventSource: "things"})
		p, err := r.Run(t.Context(), "things", nil)
		var ie *backfill.ItemError
		if !errors.As(err, &ie) || ie.Index != 3 || ie.ID != "item-0013" || ie.Cursor != "10" || !strings.Contains(ie.Reason, "type") {
			t.Fatalf("err = %v, want an *ItemError for item 3 of the page after 10", err)
		}
		if p.State != backfill.StateFailed || p.Cursor != "10" {
			t.Errorf("progress = %+v", p)
		}
		if n := len(rawIDs(t, b.store, "things")); n != 10 {
			t.Errorf("%d raw events, want the first page's 10", n)
		}
	})

	t.Run("EventSourceChanged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		src := &pager{items: items(20), size: 10}
		src.setFail(func(cursor string) error {
			if cursor == "10" {
				return errors.New("later")
			}
			return nil
		})
		if _, err := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "old"}).Run(t.Context(), "things", nil); err == nil {
			t.Fatal("no failure")
		}
		src.setFail(nil)
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: src, EventSource: "new"})
		if _, err := r.Run(t.Context(), "things", nil); !errors.Is(err, backfill.ErrSourceChanged) {
			t.Fatalf("err = %v, want ErrSourceChanged", err)
		}
		if p, err := r.Run(t.Context(), "things", &backfill.RunOpts{Restart: true}); err != nil || p.Source != "new" || p.Stored != 20 {
			t.Fatalf("restart: %+v, %v", p, err)
		}
	})

	t.Run("SourceThatDoesNotMove", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		stuck := backfill.SourceFunc(func(context.Context, string) (*backfill.Page, error) {
			return &backfill.Page{Items: items(1), Next: ""}, nil
		})
		r := b.runner(t, &backfill.Backfill{Name: "stuck", Source: stuck, EventSource: "things"})
		if _, err := r.Run(t.Context(), "stuck", nil); err == nil || !strings.Contains(err.Error(), "it would loop") {
			t.Fatalf("err = %v, want a refusal to loop", err)
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: &pager{}, EventSource: "things"})
		if _, err := r.Run(t.Context(), "thing", nil); !errors.Is(err, backfill.ErrUnknown) || !strings.Contains(err.Error(), "known: things") {
			t.Fatalf("err = %v, want ErrUnknown naming the known ones", err)
		}
	})

	t.Run("RateLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.runner(t, &backfill.Backfill{Name: "things", Source: &pager{items: items(60), size: 10}, EventSource: "things", Rate: 1000})
		start := time.Now()
		if _, err := r.Run(t.Context(), "things", &backfill.RunOpts{Rate: 20}); err != nil {
			t.Fatal(err)
		}
		// Six pages at 20 a second: the first at once, five 50 ms apart.
		if elapsed := time.Since(start); elapsed < 240*time.Millisecond {
			t.Errorf("6 pages at 20/s took %v, want at least 250ms", elapsed)
		}
	})

	t.Run("MaxDurationEndsASlice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var mu sync.Mutex
		now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { // each look at the clock is a second later
			mu.Lock()
			defer mu.Unlock()
			now = now.Add(time.Second)
			return now
		}
		r, err := backfill.NewRunner(&backfill.Config{Store: b.store, Ingester: b.in, Now: clock,
			Backfills: []*backfill.Backfill{{Name: "things", Source: &pager{items: items(100), size: 10}, EventSource: "things"}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.Run(t.Context(), "things", &backfill.RunOpts{MaxDuration: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if p.State != backfill.StateInProgress || p.Pages == 0 || p.Pages == 10 {
			t.Fatalf("progress = %+v, want in progress after a few pages", p)
		}
		for p.State != backfill.StateCompleted {
			if p, err = r.Run(t.Context(), "things", &backfill.RunOpts{MaxDuration: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
		}
		if p.Items != 100 || p.Duplicates != 0 || p.Runs < 2 {
			t.Errorf("progress = %+v", p)
		}
	})
}

func TestRunSliceEndsBeforeASlowRateWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// One page every 100 s: the second would start long after the slice.
	r := b.runner(t, &backfill.Backfill{Name: "slow", Source: &pager{items: items(30), size: 10}, EventSource: "slow", Rate: 0.01})
	start := time.Now()
	p, err := r.Run(t.Context(), "slow", &backfill.RunOpts{MaxDuration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.State != backfill.StateInProgress || p.Pages != 1 || time.Since(start) > 4*time.Second {
		t.Errorf("progress %+v after %v, want one page and a prompt end of the slice", p, time.Since(start))
	}
}

func TestNewRunnerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := backfill.NewRunner(&backfill.Config{Backfills: []*backfill.Backfill{
		{Name: "a b", Source: &pager{}, EventSource: "x"},
		{Name: "ok", EventSource: "", Rate: -1},
		{Name: "ok", Source: &pager{}, EventSource: "x"},
		nil,
	}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"Config.Store is required", "Config.Ingester is required",
		`backfill "a b": the name must be printable, without spaces`,
		`backfill "ok": Source is required`, `backfill "ok": EventSource (the CloudEvents source of its events) is required`,
		`backfill "ok": Rate is negative`, `backfill "ok": the name is used twice`, "Config.Backfills[3] is nil",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
	if _, err := backfill.NewRunner(&backfill.Config{Store: b.store, Ingester: b.in}); err != nil {
		t.Errorf("a runner without backfills: %v", err)
	}
}

func TestStatusAndList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := backfill.Status(t.Context(), b.store, "none"); !errors.Is(err, backfill.ErrNotFound) {
		t.Fatalf("Status of a backfill that never ran: %v, want ErrNotFound", err)
	}
	if list, err := backfill.List(t.Context(), b.store); err != nil || len(list) != 0 {
		t.Fatalf("List of none = %v, %v", list, err)
	}
	r := b.runner(t,
		&backfill.Backfill{Name: "zeta", Source: &pager{items: items(5), size: 10}, EventSource: "z"},
		&backfill.Backfill{Name: "alpha", Source: &pager{items: items(15), size: 10}, EventSource: "a"},
		&backfill.Backfill{Name: "never", Source: &pager{}, EventSource: "n"},
	)
	for _, name := range []string{"zeta", "alpha", "alpha"} {
		r.Run(t.Context(), name, nil) //nolint:errcheck // the second alpha is ErrCompleted
	}
	list, err := backfill.List(t.Context(), b.store)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alpha" || list[0].Items != 15 || list[1].Name != "zeta" || list[1].Source != "z" {
		t.Errorf("List = %+v, want alpha and zeta", list)
	}
	if got := r.Names(); strings.Join(got, ",") != "alpha,never,zeta" {
		t.Errorf("Names = %v", got)
	}
}

// failingStore is the real store, but its failAppend-th Append (counting
// from 1) fails after doing nothing, as if the process had died then.
type failingStore struct {
	*rawevents.Store[*sql.Tx]
	mu         sync.Mutex
	appends    int
	failAppend int
}

func (s *failingStore) Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events ...event.Proposed) (*event.AppendResult, error) {
	s.mu.Lock()
	s.appends++
	fail := s.appends == s.failAppend
	s.mu.Unlock()
	if fail {
		return nil, errors.New("disk on fire")
	}
	return s.Store.Append(ctx, streamID, expected, events...)
}
