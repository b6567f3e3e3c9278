package rawevents

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// SystemStreamPrefix starts the streams rawevents writes for itself (the
// audit trail of parked-event decisions, say). Subscriptions do not see
// them unless they ask to.
const SystemStreamPrefix = "rawevents:"

// Subscription describes a handler of the global log and how to run it.
// The engine reads the log from the subscription's checkpoints, hands the
// events it wants to Handle in batches, one transaction per batch, and
// moves the checkpoint in that same transaction: a batch's writes and its
// progress commit together, so a crash neither loses nor repeats an effect.
//
// Work is split into Partitions by Key: events with the same key are handled
// in log order, different keys may run in parallel, and each partition is
// held by one process at a time under a lease that other processes take
// over when it lapses.
type Subscription[TTx any] struct {
	// Name identifies the subscription; its checkpoints and parked events
	// are kept under it. Required.
	Name string
	// Handle applies one event inside tx. It must write only through tx:
	// when it fails, the batch is rolled back and tried again. What must
	// wait until the batch commits (updating a cache, say) registers with
	// OnCommit(ctx, ...). Required.
	Handle func(ctx context.Context, tx TTx, e event.Event) error
	// HandleBatch, when set, applies a whole batch inside tx at once, so
	// that a handler can read and write for many events in a few round
	// trips. When it fails, the batch is rolled back and its events are
	// applied one by one with Handle, which then decides what failed;
	// so HandleBatch must have the same effect as Handle on each event in
	// turn. Optional.
	HandleBatch func(ctx context.Context, tx TTx, events []event.Event) error
	// Filter picks the events to handle; nil handles every event outside
	// the system streams. Events filtered out still move the checkpoint.
	Filter func(e event.Event) bool
	// Key returns an event's partition key; nil uses the stream id.
	Key func(e event.Event) string
	// Partitions is the number of partitions; 0 means 1. It is fixed for
	// the life of the subscription's checkpoints.
	Partitions int
	// BatchSize is the most events handled in one transaction; 0 means 100.
	BatchSize int
	// PageSize is how many log events are read at a time; 0 means 1,000.
	PageSize int
	// MaxAttempts is how many times an event is tried before it is parked;
	// 0 means 5.
	MaxAttempts int
	// Backoff is the wait before attempt n+1 (n >= 1); nil doubles from
	// 100 ms up to 10 s.
	Backoff func(n int) time.Duration
	// Strict stops the subscription at an event that fails MaxAttempts
	// times, instead of parking it and going on.
	Strict bool
	// Lease is how long a partition stays held without a renewal; 0 means
	// 15 s. Leases are renewed every third of it.
	Lease time.Duration
	// Owner names this process in leases; empty means host, pid and a
	// random suffix.
	Owner string
	// Logger receives the subscription's notable events; nil means
	// slog.Default().
	Logger *slog.Logger
	// State is the store that keeps the subscription's checkpoints, leases
	// and parked events, and whose transactions Handle runs in; nil means
	// the store the log is read from. A projection whose read model lives
	// in another database sets it to a store on that database, so that
	// its rows and its checkpoint commit together there.
	State *Store[TTx]
}

func (s *Subscription[TTx]) withDefaults() (*Subscription[TTx], error) {
	out := *s
	var errs []error
	if out.Name == "" || len(out.Name) > MaxStreamIDLength {
		errs = append(errs, fmt.Errorf("subscription: Name must be 1 to %d bytes", MaxStreamIDLength))
	}
	if out.Handle == nil {
		errs = append(errs, errors.New("subscription: Handle is required"))
	}
	if out.Partitions < 0 || out.BatchSize < 0 || out.PageSize < 0 || out.MaxAttempts < 0 || out.Lease < 0 {
		errs = append(errs, errors.New("subscription: Partitions, BatchSize, PageSize, MaxAttempts and Lease must not be negative"))
	}
	if out.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("subscription: PageSize must be at most %d", MaxPageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if out.Filter == nil {
		out.Filter = func(e event.Event) bool { return !strings.HasPrefix(e.StreamID, SystemStreamPrefix) }
	}
	if out.Key == nil {
		out.Key = func(e event.Event) string { return e.StreamID }
	}
	out.Partitions = max(out.Partitions, 1)
	if out.BatchSize == 0 {
		out.BatchSize = 100
	}
	if out.PageSize == 0 {
		out.PageSize = DefaultPageSize
	}
	if out.MaxAttempts == 0 {
		out.MaxAttempts = 5
	}
	if out.Backoff == nil {
		out.Backoff = func(n int) time.Duration { return min(100*time.Millisecond<<min(n-1, 20), 10*time.Second) }
	}
	if out.Lease == 0 {
		out.Lease = 15 * time.Second
	}
	if out.Owner == "" {
		out.Owner = NewOwnerID()
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	out.Logger = out.Logger.With("subscription", out.Name)
	return &out, nil
}

// NewOwnerID returns a name for this process in partition leases: host,
// pid and a random suffix, so a restarted process is a new owner.
func NewOwnerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return fmt.Sprintf("%s-%d-%s", cmp.Or(host, "host"), os.Getpid(), hex.EncodeToString(b[:]))
}

// PartitionOf returns the partition of key among n partitions.
func PartitionOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// ErrStrictStop is returned by Subscriber.Run when a strict subscription
// stopped at an event its handler kept failing on.
var ErrStrictStop = errors.New("strict subscription stopped at a failing event")

// Subscriber runs this process's share of a subscription's partitions.
type Subscriber[TTx any] struct {
	store *Store[TTx]        // the log
	state driver.Driver[TTx] // checkpoints, leases, parked events, transactions
	sub   *Subscription[TTx]

	mu      sync.Mutex
	running map[int]*partitionRun

	pagesMu sync.Mutex
	pages   map[int64][]pagedEvent // full pages of the log by aligned start
	reads   singleflight.Group     // page reads in flight, by aligned start
	ahead   sync.WaitGroup         // reads ahead in flight (see readAhead)
}

// pagedEvent is an event of the log with the partition it belongs to, or
// -1 when the subscription does not want it.
type pagedEvent struct {
	event.Event
	partition int
}

// readAndKey reads the page of the log after start, computes each event's
// partition, and keeps the page when it is full (a full page never
// changes).
func (s *Subscriber[TTx]) readAndKey(ctx context.Context, start int64) ([]pagedEvent, error) {
	events, err := s.store.ReadAll(ctx, &ReadAllOpts{After: start, Limit: s.sub.PageSize})
	if err != nil {
		return nil, err
	}
	page := make([]pagedEvent, len(events))
	for i, e := range events {
		page[i] = pagedEvent{Event: e, partition: -1}
		if s.sub.Filter(e) {
			page[i].partition = PartitionOf(s.sub.Key(e), s.sub.Partitions)
		}
	}
	if len(events) == s.sub.PageSize {
		s.pagesMu.Lock()
		if len(s.pages) >= 2*s.sub.Partitions+2 {
			oldest := start
			for k := range s.pages {
				oldest = min(oldest, k)
			}
			delete(s.pages, oldest)
		}
		s.pages[start] = page
		s.pagesMu.Unlock()
	}
	return page, nil
}

// readPage returns the events after position, with their partitions, and
// whether the page they are from was full (so that the log goes on after
// them). The partitions of one process read the same log, so reads start
// at a multiple of the page size and full pages are kept for the other
// partitions: the log is read and keyed once per process, not once per
// partition.
func (s *Subscriber[TTx]) readPage(ctx context.Context, after int64) ([]pagedEvent, bool, error) {
	size := int64(s.sub.PageSize)
	start := after - after%size
	s.pagesMu.Lock()
	page, ok := s.pages[start]
	s.pagesMu.Unlock()
	if !ok {
		// Partitions that ask for the same page while it is being read
		// share the read: at the tail of the log, every commit wakes every
		// partition. A page read a moment before a partition asked can
		// only lack the newest events, which its next read gets.
		// The read is shared, so one partition's end does not cancel it;
		// each waiting partition still leaves as soon as its own ends.
		read := s.read(start)
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case r := <-read:
			if r.Err != nil {
				return nil, false, r.Err
			}
			page = r.Val.([]pagedEvent)
		}
	}
	full := int64(len(page)) == size
	if full {
		s.readAhead(start + size)
	}
	for i, pe := range page {
		if pe.Position > after {
			return page[i:], full, nil
		}
	}
	return nil, full, nil
}

// read reads the page at start, or joins its read in flight.
func (s *Subscriber[TTx]) read(start int64) <-chan singleflight.Result {
	return s.reads.DoChan(strconv.FormatInt(start, 10), func() (any, error) {
		return s.readAndKey(context.Background(), start)
	})
}

// readAhead starts reading the page at start, unless it is kept already,
// while the partitions handle the page before it: catching up, reading
// the log then overlaps with handling it instead of taking turns with it.
// Run waits for reads ahead before it returns.
func (s *Subscriber[TTx]) readAhead(start int64) {
	s.pagesMu.Lock()
	_, ok := s.pages[start]
	s.pagesMu.Unlock()
	if ok {
		return
	}
	s.ahead.Add(1)
	go func() {
		defer s.ahead.Done()
		<-s.read(start)
	}()
}

type partitionRun struct {
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	position atomic.Int64 // every event of the partition up to here is done
	reached  atomic.Bool  // a read found the head of the log (see ReachedHead)
}

// NewSubscriber checks sub and returns a Subscriber for it on store. Call
// Run to start it.
func NewSubscriber[TTx any](store *Store[TTx], sub *Subscription[TTx]) (*Subscriber[TTx], error) {
	s, err := sub.withDefaults()
	if err != nil {
		return nil, err
	}
	state := store
	if s.State != nil {
		state = s.State
	}
	return &Subscriber[TTx]{store: store, state: state.driver, sub: s, running: map[int]*partitionRun{}, pages: map[int64][]pagedEvent{}}, nil
}

// Position returns how far the subscription is: every event of the log up
// to it is done in every partition. It reads the stored checkpoints and,
// for the partitions this subscriber runs, the progress it has not saved
// yet (a caught-up partition saves progress over other partitions' events
// only now and then). It is 0 before the subscription first ran.
func (s *Subscriber[TTx]) Position(ctx context.Context) (int64, error) {
	st, err := s.state.SubscriptionStatus(ctx, s.sub.Name)
	if errors.Is(err, event.ErrSubscriptionNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	position := int64(-1)
	for _, p := range st.Partitions {
		at := p.Position
		if run, ok := s.running[p.Partition]; ok {
			at = max(at, run.position.Load())
		}
		if position < 0 || at < position {
			position = at
		}
	}
	return max(position, 0), nil
}

// ReachedHead reports whether every partition of the subscription runs
// here and each has read the log up to its head at least once since it
// started: the subscription has caught up, even if the log grew while it
// applied what it read. A lag measured at one moment says less on a log
// that never stops growing.
func (s *Subscriber[TTx]) ReachedHead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.running) < s.sub.Partitions {
		return false
	}
	for _, run := range s.running {
		select {
		case <-run.done:
			return false // ended (lease lost): taken over, or to start again
		default:
		}
		if !run.reached.Load() {
			return false
		}
	}
	return true
}

// Owner returns the name this subscriber holds leases under.
func (s *Subscriber[TTx]) Owner() string { return s.sub.Owner }

// Run claims partitions and works them until ctx ends, then releases
// them so that other processes take over at once. It returns nil when ctx
// ends, ErrStrictStop (wrapped) when a strict subscription stopped, and
// other errors when the store fails for longer than a lease.
func (s *Subscriber[TTx]) Run(ctx context.Context) error {
	defer func() {
		s.stopAll()
		s.ahead.Wait()
		release := context.WithoutCancel(ctx)
		release, cancel := context.WithTimeout(release, 5*time.Second)
		defer cancel()
		if err := s.state.Release(release, &driver.ReleaseParams{Subscription: s.sub.Name, Owner: s.sub.Owner}); err != nil {
			s.sub.Logger.Warn("release partitions", "err", err)
		}
	}()
	lastOK := time.Now()
	notifier, _ := s.state.(driver.MembersNotifier)
	for {
		// A process that joins or gives partitions up says so: claim again
		// at once, rather than at the next renewal, so that the work is
		// shared out within moments.
		var rebalance <-chan struct{}
		if notifier != nil {
			rebalance = notifier.MembersChanged(ctx, s.sub.Name)
		}
		claims, err := s.state.Claim(ctx, &driver.ClaimParams{
			Subscription: s.sub.Name, Partitions: s.sub.Partitions, Owner: s.sub.Owner, Lease: s.sub.Lease,
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, event.ErrPartitionsChanged):
			return err
		case err != nil:
			s.sub.Logger.Warn("claim partitions", "err", err)
			if time.Since(lastOK) > s.sub.Lease {
				return err
			}
		default:
			lastOK = time.Now()
			if err := s.reconcile(ctx, claims); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.sub.Lease / 3):
		case <-rebalance:
		}
	}
}

// reconcile starts the partitions just claimed and stops the ones given
// up; it returns the error of a partition that stopped by itself.
func (s *Subscriber[TTx]) reconcile(ctx context.Context, claims []driver.Claim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[int]bool{}
	for _, c := range claims {
		held[c.Partition] = true
		run, ok := s.running[c.Partition]
		if ok {
			select {
			case <-run.done:
				if errors.Is(run.err, ErrStrictStop) {
					return run.err
				}
				delete(s.running, c.Partition) // ended (lease lost): start again
			default:
				continue
			}
		}
		pctx, cancel := context.WithCancel(ctx)
		run = &partitionRun{cancel: cancel, done: make(chan struct{})}
		s.running[c.Partition] = run
		run.position.Store(c.Position)
		w := &partitionWorker[TTx]{s: s, progress: run, partition: c.Partition, position: c.Position, saved: c.Position}
		go func() {
			defer close(run.done)
			run.err = w.run(pctx)
			switch {
			case pctx.Err() != nil:
			case errors.Is(run.err, event.ErrLeaseLost):
				s.sub.Logger.Info("partition taken over by another process", "partition", c.Partition)
			case run.err != nil:
				s.sub.Logger.Warn("partition stopped", "partition", c.Partition, "err", run.err)
			}
		}()
	}
	for p, run := range s.running {
		if !held[p] {
			run.cancel()
			<-run.done
			delete(s.running, p)
		}
	}
	return nil
}

func (s *Subscriber[TTx]) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, run := range s.running {
		run.cancel()
		<-run.done
		delete(s.running, p)
	}
}

// partitionWorker works one partition while its lease holds.
type partitionWorker[TTx any] struct {
	s         *Subscriber[TTx]
	progress  *partitionRun
	partition int
	position  int64 // every event up to here is done
	saved     int64 // the checkpoint as stored
	savedAt   time.Time
	lastRetry time.Time
}

func (w *partitionWorker[TTx]) run(ctx context.Context) error {
	store, sub := w.s.store, w.s.sub
	// Catching up, the partition's events of a page that do not fill a
	// batch wait for the next page's (with several partitions, each has a
	// share of every page): batches stay whole, and so do transactions.
	// The position stays before the first of them; read is where the
	// next page starts.
	var carried []event.Event
	read := w.position
	for {
		changed := store.driver.Changed(ctx)
		if len(carried) == 0 {
			if err := w.retryRequested(ctx); err != nil {
				return err
			}
			read = w.position
		}
		page, full, err := w.s.readPage(ctx, read)
		if err != nil {
			return err
		}
		if !full {
			w.progress.reached.Store(true)
		}
		if len(page) == 0 && len(carried) > 0 {
			if err := w.handle(ctx, carried, read); err != nil {
				return err
			}
			carried = nil
			w.advance(read)
			continue
		}
		if len(page) == 0 {
			// Caught up. Progress over events of other partitions is
			// saved at most once a second: reading them again after a
			// crash costs little, a write per wake-up would not.
			if w.saved != w.position && time.Since(w.savedAt) >= idleCheckpointEvery {
				if err := w.commit(ctx, w.position); err != nil {
					return err
				}
			}
			if err := store.sleep(ctx, changed); err != nil {
				return err
			}
			continue
		}
		n := 0
		for _, pe := range page {
			if pe.partition == w.partition {
				n++
			}
		}
		mine := slices.Grow(carried, n)
		for _, pe := range page {
			if pe.partition == w.partition {
				mine = append(mine, pe.Event)
			}
		}
		end := page[len(page)-1].Position
		read = end
		for len(mine) >= sub.BatchSize || (len(mine) > 0 && !full) {
			n := min(len(mine), sub.BatchSize)
			upTo := mine[n-1].Position
			if n == len(mine) {
				upTo = end
			}
			if err := w.handle(ctx, mine[:n], upTo); err != nil {
				return err
			}
			mine = mine[n:]
		}
		carried = mine
		if len(carried) > 0 {
			continue
		}
		w.advance(end)
		if end-w.saved >= 10*int64(sub.PageSize) {
			if err := w.commit(ctx, end); err != nil {
				return err
			}
		}
	}
}

// handle applies a batch and moves the checkpoint to upTo. When an event
// fails, the events before it are committed, the event is tried again
// with backoff, and after MaxAttempts it is parked (or, for a strict
// subscription, the partition stops).
func (w *partitionWorker[TTx]) handle(ctx context.Context, batch []event.Event, upTo int64) error {
	sub := w.s.sub
	if sub.HandleBatch != nil && len(batch) > 1 {
		err := w.applyBatch(ctx, batch, upTo)
		if err == nil || ctx.Err() != nil || errors.Is(err, event.ErrLeaseLost) {
			return err
		}
		sub.Logger.Debug("batch failed, applying its events one by one", "from", batch[0].Position, "err", err)
	}
	for len(batch) > 0 {
		failed, err := w.apply(ctx, batch, upTo)
		if err == nil {
			return nil
		}
		if failed < 0 {
			return err // the store failed, or the lease is lost
		}
		if failed > 0 {
			if _, err := w.apply(ctx, batch[:failed], batch[failed-1].Position); err != nil {
				return err
			}
		}
		bad := batch[failed]
		attempts := 1
		for ; attempts < sub.MaxAttempts && err != nil; attempts++ {
			sub.Logger.Debug("event failed, retrying", "position", bad.Position, "attempt", attempts, "err", err)
			if err := sleepCtx(ctx, sub.Backoff(attempts)); err != nil {
				return err
			}
			var f int
			if f, err = w.apply(ctx, batch[failed:failed+1], bad.Position); err != nil && f < 0 {
				return err
			}
		}
		if err != nil {
			if sub.Strict {
				return fmt.Errorf("%w: %s at position %d (%s): %v", ErrStrictStop, sub.Name, bad.Position, bad.Type, err)
			}
			sub.Logger.Warn("event parked", "position", bad.Position, "type", bad.Type, "attempts", attempts, "err", err)
			if err := w.park(ctx, bad, attempts, err); err != nil {
				return err
			}
		}
		batch = batch[failed+1:]
		if len(batch) == 0 && upTo > bad.Position {
			return w.commit(ctx, upTo)
		}
	}
	return nil
}

// apply runs Handle on each event in one transaction that also moves the
// checkpoint to upTo. It returns the index of the event that failed, or -1
// when the failure was not the handler's.
func (w *partitionWorker[TTx]) apply(ctx context.Context, batch []event.Event, upTo int64) (int, error) {
	failed := -1
	hctx, committed := WithCommitHooks(ctx)
	err := w.s.state.InTx(ctx, func(tx TTx) error {
		for i, e := range batch {
			if err := w.s.sub.Handle(hctx, tx, e); err != nil {
				if ctx.Err() == nil {
					failed = i
				}
				return err
			}
		}
		return w.checkpointTx(ctx, tx, upTo)
	})
	if err == nil {
		w.markSaved(upTo)
		committed()
	}
	return failed, err
}

// applyBatch runs HandleBatch on the batch in one transaction that also
// moves the checkpoint to upTo.
func (w *partitionWorker[TTx]) applyBatch(ctx context.Context, batch []event.Event, upTo int64) error {
	hctx, committed := WithCommitHooks(ctx)
	err := w.s.state.InTx(ctx, func(tx TTx) error {
		if err := w.s.sub.HandleBatch(hctx, tx, batch); err != nil {
			return err
		}
		return w.checkpointTx(ctx, tx, upTo)
	})
	if err == nil {
		w.markSaved(upTo)
		committed()
	}
	return err
}

// idleCheckpointEvery is how often a caught-up partition saves its
// progress over events that were not its own.
const idleCheckpointEvery = time.Second

func (w *partitionWorker[TTx]) markSaved(position int64) {
	w.saved, w.savedAt = position, time.Now()
	w.advance(position)
}

// advance records that every event of the partition up to position is
// done.
func (w *partitionWorker[TTx]) advance(position int64) {
	w.position = position
	w.progress.position.Store(position)
}

// commit moves the checkpoint over events the partition had nothing to do
// for.
func (w *partitionWorker[TTx]) commit(ctx context.Context, upTo int64) error {
	_, err := w.apply(ctx, nil, upTo)
	return err
}

func (w *partitionWorker[TTx]) checkpointTx(ctx context.Context, tx TTx, upTo int64) error {
	return w.s.state.CheckpointTx(ctx, tx, &driver.CheckpointParams{
		Subscription: w.s.sub.Name, Partition: w.partition, Owner: w.s.sub.Owner, Position: upTo, Lease: w.s.sub.Lease,
	})
}

func (w *partitionWorker[TTx]) park(ctx context.Context, e event.Event, attempts int, cause error) error {
	err := w.s.state.InTx(ctx, func(tx TTx) error {
		if err := w.s.state.ParkTx(ctx, tx, &driver.ParkParams{
			Subscription: w.s.sub.Name, Partition: w.partition, Position: e.Position, EventID: e.ID,
			StreamID: e.StreamID, Type: e.Type, Attempts: attempts, Error: cause.Error(),
		}); err != nil {
			return err
		}
		return w.checkpointTx(ctx, tx, e.Position)
	})
	if err == nil {
		w.markSaved(e.Position)
	}
	return err
}

// retryRequested handles the parked events of this partition that an
// operator asked to retry; it looks for them at most once a second.
func (w *partitionWorker[TTx]) retryRequested(ctx context.Context) error {
	if time.Since(w.lastRetry) < time.Second {
		return nil
	}
	w.lastRetry = time.Now()
	store, state, sub := w.s.store, w.s.state, w.s.sub
	parked, err := state.Parked(ctx, &driver.ParkedParams{
		Subscription: sub.Name, Partition: w.partition, States: []string{driver.ParkedRetrying}, Limit: 100,
	})
	if err != nil {
		return err
	}
	for _, p := range parked {
		found, err := store.driver.Lookup(ctx, []uuid.UUID{p.EventID})
		if err != nil {
			return err
		}
		if len(found) != 1 {
			return fmt.Errorf("parked event %s at %d is not in the log", p.EventID, p.Position)
		}
		hctx, committed := WithCommitHooks(ctx)
		err = state.InTx(ctx, func(tx TTx) error {
			if err := sub.Handle(hctx, tx, found[0]); err != nil {
				return err
			}
			if err := state.SetParkedStateTx(ctx, tx, &driver.SetParkedStateParams{
				Subscription: sub.Name, Position: p.Position, From: []string{driver.ParkedRetrying}, To: driver.ParkedResolved, AddAttempts: 1,
			}); err != nil {
				return err
			}
			return w.checkpointTx(ctx, tx, w.saved)
		})
		if err == nil {
			committed()
			sub.Logger.Info("parked event resolved", "position", p.Position)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, event.ErrLeaseLost) {
			return err
		}
		sub.Logger.Warn("retry of a parked event failed", "position", p.Position, "err", err)
		cause := err
		if err := state.InTx(ctx, func(tx TTx) error {
			return state.SetParkedStateTx(ctx, tx, &driver.SetParkedStateParams{
				Subscription: sub.Name, Position: p.Position, From: []string{driver.ParkedRetrying}, To: driver.ParkedWaiting,
				Error: cause.Error(), AddAttempts: 1,
			})
		}); err != nil && !errors.Is(err, event.ErrParkedNotFound) {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
