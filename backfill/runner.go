package backfill

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// Store is what a Runner needs of the event store; *rawevents.Store
// satisfies it whatever its driver.
type Store interface {
	Reader
	Append(ctx context.Context, streamID string, expected event.ExpectedVersion, events ...event.Proposed) (*event.AppendResult, error)
	AppendIfAbsent(ctx context.Context, events []rawevents.StreamEvent) ([]rawevents.Outcome, error)
}

// Ingester stores raw events; *ingest.Ingester is the one to use, the same
// that stores the HTTP API's CloudEvents and webhooks, so a backfilled
// item and a delivery of the same (source, id) are stored once whichever
// comes first.
type Ingester interface {
	Ingest(ctx context.Context, raws []ingest.Raw) ([]ingest.Result, error)
}

var _ Ingester = (*ingest.Ingester)(nil)

// Config configures a Runner.
type Config struct {
	// Store keeps the backfills' progress. Required.
	Store Store
	// Ingester stores the items; it must write to Store. Required.
	Ingester Ingester
	// Backfills are the backfills the runner knows, by name. Names must
	// be unique.
	Backfills []*Backfill
	// Now is the clock of the progress timestamps. Default time.Now.
	Now func() time.Time
}

// Runner runs backfills: it pulls a backfill's pages from its stored
// cursor, stores their items as raw events through the Ingester, and saves
// the cursor after each page. It is safe for concurrent use, but two runs
// of one backfill must not overlap: the second to save its progress stops
// with ErrConcurrentRun.
type Runner struct {
	config    Config
	backfills map[string]*Backfill
}

// NewRunner checks config, reporting every problem at once, and returns a
// Runner.
func NewRunner(config *Config) (*Runner, error) {
	if config == nil {
		return nil, errors.New("backfill: a Config is required")
	}
	c := *config
	if c.Now == nil {
		c.Now = time.Now
	}
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("backfill: Config.Store is required"))
	}
	if c.Ingester == nil {
		errs = append(errs, errors.New("backfill: Config.Ingester is required"))
	}
	r := &Runner{config: c, backfills: map[string]*Backfill{}}
	for i, b := range c.Backfills {
		if b == nil {
			errs = append(errs, fmt.Errorf("backfill: Config.Backfills[%d] is nil", i))
			continue
		}
		if err := b.validate(); err != nil {
			errs = append(errs, err)
		}
		if _, dup := r.backfills[b.Name]; dup {
			errs = append(errs, fmt.Errorf("backfill %q: the name is used twice", b.Name))
		}
		r.backfills[b.Name] = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Names returns the names of the runner's backfills, sorted.
func (r *Runner) Names() []string {
	names := make([]string, 0, len(r.backfills))
	for name := range r.backfills {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// RunOpts are the options of one run. Nil means the defaults.
type RunOpts struct {
	// Restart pulls everything again from the first page, even when the
	// backfill is complete or under way. Items already stored come back as
	// duplicates and store nothing.
	Restart bool
	// RestartKey, when set, makes Restart happen once per key: a retry of
	// the same request (a River task's next attempt) resumes the pass the
	// first attempt began instead of restarting it again.
	RestartKey string
	// Rate, when positive, replaces the backfill's own Rate (pages per
	// second) for this run.
	Rate float64
	// MaxDuration, when positive, ends the run after the first page stored
	// past that much time, with the backfill still in progress and a nil
	// error: River tasks work in slices so that none runs for hours.
	MaxDuration time.Duration
	// Actor is recorded as the actor of the progress events: who ran it.
	Actor string
	// OnProgress is told the progress when the run starts and after each
	// stored page. It runs on the runner's goroutine: keep it short.
	OnProgress func(Progress)
}

// Run runs the backfill name until its source's last page is stored, ctx
// ends, MaxDuration passes, or something fails, and returns its progress.
//
// It resumes at the stored cursor. Each page's items are stored through
// the Ingester (one all-or-nothing batch per page), and then the page's
// Next cursor is saved as an event of the backfill's progress stream. A
// crash between the two only makes the next run fetch that page again,
// and since a raw event is stored once per (source, id), the log still
// holds each item once. On cancellation, a page whose items were stored
// still has its cursor saved.
//
// A completed backfill is not pulled again: Run returns its progress and
// ErrCompleted, unless opts.Restart. A failure is recorded in the progress
// (state failed, with the error) before it is returned, except for the
// cancellation of ctx; an item the log refuses is an *ItemError.
func (r *Runner) Run(ctx context.Context, name string, opts *RunOpts) (*Progress, error) {
	b, ok := r.backfills[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(r.Names(), ", "))
	}
	o := RunOpts{}
	if opts != nil {
		o = *opts
	}
	started := r.config.Now()

	p, err := Status(ctx, r.config.Store, name)
	fresh := errors.Is(err, ErrNotFound)
	if err != nil && !fresh {
		return nil, err
	}
	if fresh {
		if err := r.register(ctx, b); err != nil {
			return nil, err
		}
		p = &Progress{}
	}
	restart := fresh || (o.Restart && (o.RestartKey == "" || o.RestartKey != p.RestartKey))
	switch {
	case restart:
	case p.Source != b.EventSource:
		return p, fmt.Errorf("backfill %q: %w: its items so far are stored under source %q, its configuration now says %q; restart it to pull everything under the new source",
			name, ErrSourceChanged, p.Source, b.EventSource)
	case p.State == StateCompleted:
		return p, fmt.Errorf("backfill %q: %w (%d items); restart it to pull everything again", name, ErrCompleted, p.Items)
	}
	if restart {
		*p = Progress{Name: name, Source: b.EventSource, Runs: p.Runs, StartedAt: started.UTC(), RestartKey: o.RestartKey, version: p.version}
	}
	p.Runs++
	p.State, p.Error = StateInProgress, ""
	if err := r.save(ctx, p, TypeStarted, o.Actor); err != nil {
		return p, err
	}
	report := func() {
		if o.OnProgress != nil {
			o.OnProgress(*p)
		}
	}
	report()

	limit := cmp.Or(o.Rate, b.Rate)
	limiter := rate.NewLimiter(rate.Inf, 1)
	if limit > 0 {
		limiter = rate.NewLimiter(rate.Limit(limit), 1)
	}
	for pages := 0; ; pages++ {
		wait := limiter.Reserve().Delay()
		if pages > 0 && o.MaxDuration > 0 && r.config.Now().Add(wait).Sub(started) >= o.MaxDuration {
			return p, nil // the slice would end while waiting for the rate limit
		}
		if err := sleep(ctx, wait); err != nil {
			return p, r.stop(ctx, p, o.Actor, err)
		}
		cursor := p.Cursor
		page, err := b.Source.Fetch(ctx, cursor)
		switch {
		case err != nil:
			return p, r.stop(ctx, p, o.Actor, fmt.Errorf("backfill %q: fetch the page after cursor %q: %w", name, cursor, err))
		case page == nil:
			return p, r.stop(ctx, p, o.Actor, fmt.Errorf("backfill %q: the source returned no page after cursor %q", name, cursor))
		case !page.Last && page.Next == cursor:
			return p, r.stop(ctx, p, o.Actor, fmt.Errorf("backfill %q: the source returned cursor %q again without saying the page is the last: it would loop", name, cursor))
		}
		results, err := r.store(ctx, b, cursor, page.Items)
		if err != nil {
			return p, r.stop(ctx, p, o.Actor, err)
		}
		for _, res := range results {
			if res.Duplicate {
				p.Duplicates++
			} else {
				p.Stored++
			}
			p.Position = max(p.Position, res.Position)
		}
		p.Items += int64(len(results))
		p.Pages++
		p.Cursor = page.Next
		if page.Total > 0 {
			p.Total = page.Total
		}
		typ := TypePage
		if page.Last {
			typ = TypeCompleted
			p.State = StateCompleted
			now := r.config.Now().UTC()
			p.CompletedAt = &now
		}
		// The items are stored: their cursor is saved even when ctx has
		// just ended, or the next run fetches them again for nothing.
		if err := r.save(context.WithoutCancel(ctx), p, typ, o.Actor); err != nil {
			return p, err
		}
		report()
		switch {
		case page.Last:
			return p, nil
		case ctx.Err() != nil:
			return p, fmt.Errorf("backfill %q: stopped after %d items; the next run resumes there: %w", name, p.Items, context.Cause(ctx))
		case o.MaxDuration > 0 && r.config.Now().Sub(started) >= o.MaxDuration:
			return p, nil
		}
	}
}

// sleep waits for d or for the end of ctx.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// store ingests a page's items as raw events.
func (r *Runner) store(ctx context.Context, b *Backfill, cursor string, items []Item) ([]ingest.Result, error) {
	if len(items) == 0 {
		return nil, nil
	}
	raws := make([]ingest.Raw, len(items))
	for i, it := range items {
		e := ce.New()
		e.SetID(it.ID)
		e.SetSource(b.EventSource)
		e.SetType(it.Type)
		if !it.Time.IsZero() {
			e.SetTime(it.Time)
		}
		if it.Subject != "" {
			e.SetSubject(it.Subject)
		}
		e.SetDataContentType(cmp.Or(it.ContentType, "application/json"))
		e.DataEncoded = it.Data
		raws[i] = ingest.Raw{Event: e, Transport: ingest.Transport{Mode: "backfill", Backfill: b.Name}}
	}
	results, err := r.config.Ingester.Ingest(ctx, raws)
	var invalid *ingest.InvalidError
	if errors.As(err, &invalid) {
		ie := &ItemError{Backfill: b.Name, Cursor: cursor, Index: invalid.Index, Reason: invalid.Reason}
		if invalid.Index >= 0 && invalid.Index < len(items) {
			ie.ID = items[invalid.Index].ID
		}
		return nil, ie
	}
	if err != nil {
		return nil, fmt.Errorf("backfill %q: store the page after cursor %q: %w", b.Name, cursor, err)
	}
	return results, nil
}

// save appends p to the backfill's progress stream, at the version it was
// read or last saved at.
func (r *Runner) save(ctx context.Context, p *Progress, typ, actor string) error {
	p.UpdatedAt = r.config.Now().UTC()
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("backfill %q: encode progress: %w", p.Name, err)
	}
	res, err := r.config.Store.Append(ctx, Stream(p.Name), event.Exact(p.version),
		event.Proposed{Type: typ, Data: data, Metadata: event.Metadata{Actor: actor}})
	if errors.Is(err, event.ErrConcurrency) {
		return fmt.Errorf("backfill %q: %w (is it running elsewhere?): %w", p.Name, ErrConcurrentRun, err)
	}
	if err != nil {
		return fmt.Errorf("backfill %q: save progress: %w", p.Name, err)
	}
	p.version = res.Version
	return nil
}

// stop ends a run on err: a failure is recorded in the progress, the end
// of ctx is not.
func (r *Runner) stop(ctx context.Context, p *Progress, actor string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("backfill %q: stopped after %d items; the next run resumes there: %w", p.Name, p.Items, context.Cause(ctx))
	}
	p.State, p.Error = StateFailed, err.Error()
	if saveErr := r.save(ctx, p, TypeFailed, actor); saveErr != nil {
		return errors.Join(err, saveErr)
	}
	return err
}

// namespace is the UUID namespace of the ids of TypeRegistered events. It
// never changes: stored ids depend on it.
var namespace = uuid.MustParse("30df8e21-e70b-4239-9770-df5e25bd5823")

// register records the backfill in IndexStream, once.
func (r *Runner) register(ctx context.Context, b *Backfill) error {
	data, err := json.Marshal(registered{Name: b.Name, Source: b.EventSource})
	if err != nil {
		return err
	}
	_, err = r.config.Store.AppendIfAbsent(ctx, []rawevents.StreamEvent{{
		StreamID: IndexStream,
		Event:    event.Proposed{ID: uuid.NewSHA1(namespace, []byte(b.Name)), Type: TypeRegistered, Data: data},
	}})
	if err != nil {
		return fmt.Errorf("backfill %q: register: %w", b.Name, err)
	}
	return nil
}
