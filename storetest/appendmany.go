package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// appendManyTx runs Store.AppendManyTx in a transaction of its own, which
// it commits, or rolls back after an error.
func appendManyTx[TTx any](t *testing.T, h *Harness[TTx], appends []rawevents.StreamAppend) ([]*event.AppendResult, error) {
	t.Helper()
	ctx := ctxT(t)
	tx, err := h.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	res, err := h.Store.AppendManyTx(ctx, tx, appends)
	if err != nil {
		if rbErr := h.Rollback(ctx, tx); rbErr != nil {
			t.Fatalf("rollback: %v", rbErr)
		}
		return nil, err
	}
	if err := h.Commit(ctx, tx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return res, nil
}

func requireNoStream[TTx any](t *testing.T, h *Harness[TTx], stream string) {
	t.Helper()
	if _, err := h.Store.StreamInfo(ctxT(t), stream); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("stream %q: err = %v, want ErrStreamNotFound", stream, err)
	}
}

// testAppendMany appends to several streams in one call: new and existing
// streams, a stream twice, a stream without events. Each append gets its
// own result, the log holds the events in the order of the appends, and a
// failure of any append stores nothing of the others.
func testAppendMany[TTx any](t *testing.T, h *Harness[TTx]) {
	mustAppend(t, h, "many-a", event.NoStream, numbered(2)...)
	res, err := appendManyTx(t, h, []rawevents.StreamAppend{
		{StreamID: "many-b", Expected: event.NoStream, Events: numbered(2)},
		{StreamID: "many-a", Expected: event.Exact(2), Events: numbered(1)},
		{StreamID: "many-c", Expected: event.Any},
		{StreamID: "many-a", Expected: event.Exact(3), Events: numbered(2)},
		{StreamID: "many-d", Expected: event.Any, Events: numbered(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantStreams := []string{"many-b", "many-a", "many-c", "many-a", "many-d"}
	wantVersions := [][]int64{{1, 2}, {3}, {}, {4, 5}, {1}}
	if len(res) != len(wantStreams) {
		t.Fatalf("%d results for %d appends", len(res), len(wantStreams))
	}
	var appended []event.Event
	for i, r := range res {
		versions := []int64{}
		for _, e := range r.Events {
			versions = append(versions, e.StreamVersion)
			if e.StreamID != wantStreams[i] || e.RecordedAt.IsZero() {
				t.Errorf("append %d: event of stream %q recorded at %v", i, e.StreamID, e.RecordedAt)
			}
		}
		wantVersion := int64(0)
		if v := wantVersions[i]; len(v) > 0 {
			wantVersion = v[len(v)-1]
		} else if wantStreams[i] != "many-c" {
			t.Fatal("bad test table")
		}
		if r.StreamID != wantStreams[i] || r.Duplicate || fmt.Sprint(versions) != fmt.Sprint(wantVersions[i]) || r.Version != wantVersion {
			t.Errorf("append %d: stream %q duplicate %v versions %v version %d, want %q false %v %d",
				i, r.StreamID, r.Duplicate, versions, r.Version, wantStreams[i], wantVersions[i], wantVersion)
		}
		appended = append(appended, r.Events...)
	}
	for i := 1; i < len(appended); i++ {
		if appended[i].Position <= appended[i-1].Position {
			t.Fatalf("positions %d then %d: not in the order of the appends", appended[i-1].Position, appended[i].Position)
		}
	}
	all := readAll(t, h)
	if len(all) != 2+len(appended) {
		t.Fatalf("the log holds %d events, want %d", len(all), 2+len(appended))
	}
	requireEqualEvents(t, all[2:], appended)
	for i, e := range readStream(t, h, "many-a") {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("stream many-a: event %d has version %d", i, e.StreamVersion)
		}
	}
	requireNoStream(t, h, "many-c")

	t.Run("WrongExpectedVersion", func(t *testing.T) {
		tests := []struct {
			name    string
			appends []rawevents.StreamAppend
			failing int // the index of the append that fails
			actual  int64
		}{
			{"OneOfSeveral", []rawevents.StreamAppend{
				{StreamID: "many-new-1", Expected: event.NoStream, Events: numbered(1)},
				{StreamID: "many-a", Expected: event.Exact(4), Events: numbered(1)},
				{StreamID: "many-b", Expected: event.Exact(2), Events: numbered(1)},
			}, 1, 5},
			{"SecondAppendToAStream", []rawevents.StreamAppend{
				{StreamID: "many-d", Expected: event.Exact(1), Events: numbered(2)},
				{StreamID: "many-new-2", Expected: event.Any, Events: numbered(1)},
				{StreamID: "many-d", Expected: event.Exact(1), Events: numbered(1)},
			}, 2, 3},
			{"WithoutEvents", []rawevents.StreamAppend{
				{StreamID: "many-new-3", Expected: event.Any, Events: numbered(1)},
				{StreamID: "many-c", Expected: event.StreamExists},
			}, 1, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := readAll(t, h)
				_, err := appendManyTx(t, h, tt.appends)
				var ce *event.ConcurrencyError
				if !errors.As(err, &ce) || !errors.Is(err, event.ErrConcurrency) {
					t.Fatalf("err = %v, want *event.ConcurrencyError", err)
				}
				want := tt.appends[tt.failing]
				if ce.StreamID != want.StreamID || ce.Expected != want.Expected || ce.Actual != tt.actual {
					t.Errorf("error says stream %q expected %v actual %d, want %q %v %d",
						ce.StreamID, ce.Expected, ce.Actual, want.StreamID, want.Expected, tt.actual)
				}
				requireEqualEvents(t, readAll(t, h), before)
				for _, a := range tt.appends {
					if a.StreamID != "many-a" && a.StreamID != "many-b" && a.StreamID != "many-d" {
						requireNoStream(t, h, a.StreamID)
					}
				}
			})
		}
	})

	t.Run("EventIDReused", func(t *testing.T) {
		before := readAll(t, h)
		reused := event.Proposed{ID: before[0].ID, Type: "again", Data: json.RawMessage(`{}`)}
		_, err := appendManyTx(t, h, []rawevents.StreamAppend{
			{StreamID: "many-new-4", Expected: event.NoStream, Events: numbered(2)},
			{StreamID: "many-new-5", Expected: event.NoStream, Events: []event.Proposed{reused}},
		})
		if !errors.Is(err, event.ErrEventIDReused) {
			t.Fatalf("err = %v, want ErrEventIDReused", err)
		}
		requireEqualEvents(t, readAll(t, h), before)
		requireNoStream(t, h, "many-new-4")
		requireNoStream(t, h, "many-new-5")
	})
}

// testAppendManyConcurrent races transactions that each append to three
// of eight shared streams, in orders that differ between writers, at the
// versions the streams had when the round began, and to a new stream of
// their own. Per stream and version exactly one writer wins; the others
// get a typed conflict and store nothing, not even their own stream; no
// two writers deadlock.
func testAppendManyConcurrent[TTx any](t *testing.T, h *Harness[TTx]) {
	const writers, rounds, shared = 8, 12, 8
	ctx := ctxT(t)
	versions := make([]int64, shared) // each shared stream's version when a round begins
	stream := func(i int) string { return fmt.Sprintf("shared-%d", i) }
	type win struct {
		round, writer int
		streams       []int
		results       []*event.AppendResult
	}
	var wins []win
	var conflicts int
	for round := range rounds {
		var mu sync.Mutex
		var roundWins []win
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				streams := []int{(w + round) % shared, (w + round + 1) % shared, (w + round + 4) % shared}
				if w%2 == 1 {
					slices.Reverse(streams)
				}
				var appends []rawevents.StreamAppend
				for _, i := range streams {
					appends = append(appends, rawevents.StreamAppend{StreamID: stream(i), Expected: event.Exact(versions[i]),
						Events: []event.Proposed{proposed("won", fmt.Sprintf(`{"round":%d,"writer":%d}`, round, w))}})
				}
				appends = append(appends, rawevents.StreamAppend{StreamID: fmt.Sprintf("own-%d-%d", round, w), Expected: event.NoStream, Events: numbered(1)})
				<-start
				tx, err := h.Begin(ctx)
				if err != nil {
					t.Errorf("begin: %v", err)
					return
				}
				res, err := h.Store.AppendManyTx(ctx, tx, appends)
				if err != nil {
					if rbErr := h.Rollback(ctx, tx); rbErr != nil {
						t.Errorf("rollback: %v", rbErr)
					}
					var ce *event.ConcurrencyError
					if !errors.As(err, &ce) {
						t.Errorf("writer %d: err = %v, want *event.ConcurrencyError", w, err)
						return
					}
					if k := slices.IndexFunc(appends, func(a rawevents.StreamAppend) bool { return a.StreamID == ce.StreamID }); k < 0 ||
						ce.Expected != appends[k].Expected || ce.Actual == int64(appends[k].Expected) {
						t.Errorf("writer %d: conflict on stream %q expected %v actual %d does not match its appends", w, ce.StreamID, ce.Expected, ce.Actual)
					}
					mu.Lock()
					conflicts++
					mu.Unlock()
					return
				}
				if err := h.Commit(ctx, tx); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				mu.Lock()
				roundWins = append(roundWins, win{round: round, writer: w, streams: streams, results: res})
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if len(roundWins) == 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		won := make([]int, shared)
		for _, w := range roundWins {
			for _, i := range w.streams {
				won[i]++
			}
		}
		for i, n := range won {
			if n > 1 {
				t.Fatalf("round %d: %d writers appended to %s at version %d", round, n, stream(i), versions[i])
			}
			versions[i] += int64(n)
		}
		wins = append(wins, roundWins...)
	}
	if len(wins)+conflicts != writers*rounds {
		t.Fatalf("%d wins and %d conflicts of %d transactions", len(wins), conflicts, writers*rounds)
	}

	var reported []event.Event
	for _, w := range wins {
		for _, r := range w.results {
			reported = append(reported, r.Events...)
		}
	}
	slices.SortFunc(reported, func(a, b event.Event) int { return int(a.Position - b.Position) })
	requireEqualEvents(t, readAll(t, h), reported)
	for i := range shared {
		events := readStream(t, h, stream(i))
		if int64(len(events)) != versions[i] {
			t.Fatalf("%s holds %d events, want %d", stream(i), len(events), versions[i])
		}
		for v, e := range events {
			if e.StreamVersion != int64(v+1) {
				t.Fatalf("%s: event %d has version %d", stream(i), v, e.StreamVersion)
			}
		}
	}
	t.Logf("%d transactions won and %d lost over %d rounds", len(wins), conflicts, rounds)
}
