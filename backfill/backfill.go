package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

// Source is a source system's API, read a page at a time. Fetch returns
// the page that follows cursor; the empty cursor asks for the first page.
// The cursor is opaque to the runner: whatever the page's Next says, stored
// as it is and handed back to Fetch on the next call, in this process or
// in one that resumes after a crash. A Source must therefore answer the
// same cursor with the same items again (or a superset): a page whose
// cursor was not saved before a crash is fetched again.
type Source interface {
	Fetch(ctx context.Context, cursor string) (*Page, error)
}

// SourceFunc adapts a function to the Source interface.
type SourceFunc func(ctx context.Context, cursor string) (*Page, error)

// Fetch calls f.
func (f SourceFunc) Fetch(ctx context.Context, cursor string) (*Page, error) { return f(ctx, cursor) }

// Page is one answer of a Source.
type Page struct {
	// Items are the page's facts, stored in this order.
	Items []Item
	// Next is the cursor of the page after this one. It is saved once the
	// items are stored, so a run that stops resumes there.
	Next string
	// Last reports that no page follows: the backfill is complete once this
	// page is stored.
	Last bool
	// Total is how many items the source holds in all, when it says so
	// (for progress bars); 0 means unknown.
	Total int64
}

// Item is one fact pulled from a source, stored as a raw event: a
// CloudEvent with the backfill's source attribute and the item's id, type,
// time and data. The same (source, id) delivered by a webhook, or pulled
// again, is stored once.
type Item struct {
	// ID is the CloudEvents id: the source's identity of the fact, the same
	// one its webhooks use, so that a fact both pulled and delivered is
	// stored once. Required.
	ID string
	// Type is the CloudEvents type. Required.
	Type string
	// Time is when the fact happened; zero means unknown (the event's
	// occurred-at is then the time it was stored).
	Time time.Time
	// Subject is the optional CloudEvents subject.
	Subject string
	// Data is the payload, kept byte for byte.
	Data []byte
	// ContentType is the payload's media type. Default application/json.
	ContentType string
}

// Backfill describes one backfill: where its items come from, and the
// CloudEvents source they are stored under.
type Backfill struct {
	// Name identifies the backfill: its progress is kept under it, in the
	// stream Stream(Name), and "rawevents backfill NAME" runs it. Required;
	// no spaces, slashes, '?' or '#', at most MaxNameLength bytes.
	Name string
	// Source pulls the items. Required.
	Source Source
	// EventSource is the CloudEvents source attribute of the stored
	// events. Use the one the source's webhooks or CloudEvents arrive
	// with: deduplication is by (source, id). Required.
	EventSource string
	// Rate bounds the pace of Fetch calls, in pages per second, so that a
	// backfill stays within the source API's rate limit. 0 means no limit.
	Rate float64
}

// MaxNameLength is the longest backfill name, in bytes, so that its
// progress stream's id fits the store's limit.
const MaxNameLength = rawevents.MaxStreamIDLength - len(streamPrefix)

const (
	streamPrefix = rawevents.SystemStreamPrefix + "backfill:"
	// IndexStream lists every backfill that has run, with one
	// TypeRegistered event each, so that their progress can be listed
	// without knowing their names.
	IndexStream = rawevents.SystemStreamPrefix + "backfills"
)

// Stream is the system stream that records a backfill's progress: one
// event per run started and per page stored, each holding the whole
// Progress, so the newest is the current state and the stream is the
// audit trail.
func Stream(name string) string { return streamPrefix + name }

// Types of the events of a backfill's progress stream (each holds a
// Progress) and of the index stream.
const (
	TypeStarted    = "rawevents.backfill.started"
	TypePage       = "rawevents.backfill.page"
	TypeCompleted  = "rawevents.backfill.completed"
	TypeFailed     = "rawevents.backfill.failed"
	TypeRegistered = "rawevents.backfill.registered"
)

// States of a backfill, in Progress.State.
const (
	// StateInProgress means pages remain: a run is under way, or the last
	// one stopped (Ctrl-C, a crash, the end of a River task's time slice)
	// and the next resumes at Progress.Cursor. UpdatedAt tells which.
	StateInProgress = "in_progress"
	// StateCompleted means the source's last page is stored.
	StateCompleted = "completed"
	// StateFailed means the last run stopped on an error (Progress.Error);
	// the next resumes at Progress.Cursor.
	StateFailed = "failed"
)

// Progress is where a backfill stands: stored as the data of each event
// of its progress stream, reported to RunOpts.OnProgress after each page,
// and served by GET /v1/backfills.
type Progress struct {
	// Name is the backfill's name.
	Name string `json:"name"`
	// Source is the CloudEvents source its items are stored under.
	Source string `json:"source"`
	// State is in_progress, completed or failed.
	State string `json:"state" enum:"in_progress,completed,failed"`
	// Cursor is where the next page starts: the last stored page's Next.
	// Empty before the first page.
	Cursor string `json:"cursor"`
	// Pages counts the pages stored.
	Pages int64 `json:"pages"`
	// Items counts the items pulled: Stored plus Duplicates.
	Items int64 `json:"items"`
	// Stored counts the items stored as new raw events.
	Stored int64 `json:"stored"`
	// Duplicates counts items already in the log: delivered by a webhook
	// or ingestion first, or pulled again after a crash between storing a
	// page and saving its cursor (so the stored count of that page shows
	// here instead).
	Duplicates int64 `json:"duplicates"`
	// Total is how many items the source says it holds; 0 when unknown.
	Total int64 `json:"total,omitempty"`
	// Position is the highest log position among the items, for
	// read-your-writes waits.
	Position int64 `json:"position"`
	// Runs counts the runs started, resumptions included.
	Runs int `json:"runs"`
	// RestartKey identifies the restart request that began this pass, so
	// that a retried request does not restart it again.
	RestartKey string `json:"restart_key,omitempty"`
	// StartedAt is when this pass began (the first run, or the restart).
	StartedAt time.Time `json:"started_at"`
	// UpdatedAt is when the progress was last saved.
	UpdatedAt time.Time `json:"updated_at"`
	// CompletedAt is when the last page was stored.
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// Error is why the last run failed, when State is failed.
	Error string `json:"error,omitempty"`

	version int64 // the progress stream's version this was read at
}

// Errors of backfills.
var (
	// ErrNotFound means no backfill of that name has run.
	ErrNotFound = errors.New("backfill not found")
	// ErrUnknown means the runner has no backfill of that name.
	ErrUnknown = errors.New("no such backfill")
	// ErrCompleted means the backfill is complete, so Run pulled nothing;
	// RunOpts.Restart pulls everything again.
	ErrCompleted = errors.New("backfill already completed")
	// ErrConcurrentRun means another run of the same backfill saved its
	// progress meanwhile: two runs of one backfill must not overlap, and
	// this one stopped. What it stored is kept and counted by the other.
	ErrConcurrentRun = errors.New("another run of this backfill saved progress meanwhile")
	// ErrSourceChanged means a backfill's EventSource is not the one its
	// stored progress was made under: resuming would store the rest under
	// another source, out of reach of deduplication. Restart it instead.
	ErrSourceChanged = errors.New("backfill's event source changed")
)

// ItemError is an item the log refuses (no id, no type, data that is not
// the JSON its content type says...). Retrying cannot help: the source or
// the backfill's configuration must change.
type ItemError struct {
	// Backfill is the backfill's name.
	Backfill string
	// Cursor is the cursor the page was fetched with.
	Cursor string
	// Index is the item's index in the page.
	Index int
	// ID is the item's id, if it has one.
	ID string
	// Reason says what is wrong.
	Reason string
}

// Error says which item is refused and why, in one line.
func (e *ItemError) Error() string {
	return fmt.Sprintf("backfill %q: item %d (id %q) of the page after cursor %q: %s", e.Backfill, e.Index, e.ID, e.Cursor, e.Reason)
}

// validate reports every problem of b at once.
func (b *Backfill) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("backfill %q: %s", b.Name, fmt.Sprintf(format, args...)))
	}
	if err := ValidateName(b.Name); err != nil {
		errs = append(errs, err)
	}
	if b.Source == nil {
		bad("Source is required")
	}
	switch {
	case b.EventSource == "":
		bad("EventSource (the CloudEvents source of its events) is required")
	case len(b.EventSource) > ingest.MaxSourceLength:
		bad("EventSource is longer than %d bytes", ingest.MaxSourceLength)
	case !utf8.ValidString(b.EventSource) || strings.ContainsRune(b.EventSource, 0):
		bad("EventSource must be valid UTF-8 without U+0000")
	}
	if b.Rate < 0 {
		bad("Rate is negative")
	}
	return errors.Join(errs...)
}

// ValidateName checks a backfill's name: non-empty, at most MaxNameLength
// bytes, printable, without spaces, '/', '?' or '#' (it appears in URLs).
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("backfill: the name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("backfill %.40q...: the name is longer than %d bytes", name, MaxNameLength)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune("/?#", r)
	}):
		return fmt.Errorf("backfill %q: the name must be printable, without spaces, '/', '?' or '#'", name)
	}
	return nil
}

// Reader is what reading progress needs of a store; *rawevents.Store
// satisfies it whatever its driver.
type Reader interface {
	ReadStream(ctx context.Context, streamID string, opts *rawevents.ReadStreamOpts) ([]event.Event, error)
}
