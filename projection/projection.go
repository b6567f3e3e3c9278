package projection

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/rawevents/rawevents/event"
)

// Projection is a read model kept up to date from the log: the tables it
// owns and the handler that changes them for each event it wants.
//
// Handle writes only through the Tx it is handed; the Projector commits a
// batch's changes and the projection's checkpoint together, so a crash
// neither loses nor doubles an effect. Handle must be deterministic (the
// same events give the same rows): a rebuild from position 0 has to end
// where the live read model is.
type Projection struct {
	// Name identifies the projection in the API and the CLI: lower-case
	// letters, digits and underscores, starting with a letter, at most 20
	// bytes. Required.
	Name string
	// Version is the version of the handler and tables; it starts at 1.
	// A read model built by another version must be rebuilt before it
	// is updated again (see Options.AutoRebuild).
	Version int
	// Tables are the read model's tables. At least one.
	Tables []Table
	// Types are the event types Handle wants; empty wants every event
	// outside the system streams.
	Types []string
	// Handle applies one event. Required.
	Handle func(ctx context.Context, tx *Tx, e event.Event) error
	// Key returns an event's partition key; nil uses the stream id.
	Key func(e event.Event) string
	// Partitions splits the work by Key; 0 means 1.
	Partitions int
	// BatchSize is the most events handled per transaction; 0 means 500.
	BatchSize int
	// MaxAttempts is how many times an event is tried before it is parked;
	// 0 means 5.
	MaxAttempts int
	// Backoff is the wait before attempt n+1; nil doubles from 100 ms.
	Backoff func(n int) time.Duration
	// Strict stops the projection at an event that keeps failing instead
	// of parking it.
	Strict bool
}

// Table is a read-model table. Its primary key, indexed columns and
// search columns are what the query API filters, sorts and searches on.
type Table struct {
	// Name is the table's name within the projection (same rules as
	// Projection.Name).
	Name string
	// Columns are the table's columns, key columns included.
	Columns []Column
	// Key names the primary-key columns: a row per key.
	Key []string
	// Search names text columns indexed for full-text search (FTS5 on
	// SQLite, tsvector with a GIN index on PostgreSQL), with stemming.
	Search []string
	// Indexes are indexes over several key or indexed columns, each
	// followed by the key. Declare one for a filter combined with a sort
	// on another column: {"category", "amount"} serves category=… sorted
	// by amount a page at a time, where the one-column indexes would read
	// and sort every row of the category. Like the columns, they are
	// part of the projection's Version.
	Indexes [][]string
}

// Column is a column of a Table.
type Column struct {
	// Name is the column's name (as Projection.Name, up to 40 bytes).
	Name string
	// Type is its type.
	Type Type
	// Index makes the column filterable and sortable in the query API,
	// with an index. Indexed and key columns are NOT NULL.
	Index bool
}

// Type is a column type. Values come back from reads as the Go type named
// in each constant's comment.
type Type string

// Column types.
const (
	Text    Type = "text"    // string
	Integer Type = "integer" // int64
	Real    Type = "real"    // float64
	Bool    Type = "bool"    // bool
	Time    Type = "time"    // time.Time, UTC, microseconds
	JSON    Type = "json"    // json.RawMessage
)

// Row is a table row by column name.
type Row map[string]any

// ErrInvalid is wrapped by the errors of a projection definition that
// cannot work and of queries that ask for what a table does not have.
var ErrInvalid = errors.New("invalid")

// Names of projections and tables are short: they make up the names of
// the tables in the database, which PostgreSQL caps at 63 bytes.
var (
	namePattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)
	columnPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

func (p *Projection) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("projection %q: %w: "+format, append([]any{p.Name, ErrInvalid}, args...)...))
	}
	if !namePattern.MatchString(p.Name) {
		bad("name must match %s", namePattern)
	}
	if p.Version < 1 {
		bad("version must be at least 1")
	}
	if p.Handle == nil {
		bad("Handle is required")
	}
	if len(p.Tables) == 0 {
		bad("declare at least one table")
	}
	if p.Partitions < 0 || p.BatchSize < 0 || p.MaxAttempts < 0 {
		bad("Partitions, BatchSize and MaxAttempts must not be negative")
	}
	seen := map[string]bool{}
	for i := range p.Tables {
		t := &p.Tables[i]
		if !namePattern.MatchString(t.Name) || seen[t.Name] {
			bad("table %q: names must match %s and be unique", t.Name, namePattern)
		}
		seen[t.Name] = true
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if !columnPattern.MatchString(c.Name) || cols[c.Name] {
				bad("table %s: column %q: names must match %s and be unique", t.Name, c.Name, columnPattern)
			}
			if !slices.Contains([]Type{Text, Integer, Real, Bool, Time, JSON}, c.Type) {
				bad("table %s: column %s: unknown type %q", t.Name, c.Name, c.Type)
			}
			cols[c.Name] = true
		}
		if len(t.Key) == 0 {
			bad("table %s: declare its key", t.Name)
		}
		for _, k := range t.Key {
			if !cols[k] {
				bad("table %s: key column %q is not a column", t.Name, k)
			}
		}
		for _, s := range t.Search {
			c := t.column(s)
			if c == nil || c.Type != Text {
				bad("table %s: search column %q must be a text column", t.Name, s)
			}
		}
		for _, idx := range t.Indexes {
			if len(idx) < 2 {
				bad("table %s: index %q: name two columns or more (one column takes Column.Index)", t.Name, idx)
			}
			for i, c := range idx {
				if !t.queryable(c) || slices.Contains(idx[:i], c) {
					bad("table %s: index %q: %q must be a key or indexed column, named once", t.Name, idx, c)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (t *Table) column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// queryable reports whether the query API may filter and sort on a
// column: a key or an indexed column.
func (t *Table) queryable(name string) bool {
	c := t.column(name)
	return c != nil && (c.Index || slices.Contains(t.Key, name))
}

func (p *Projection) table(name string) (*Table, error) {
	for i := range p.Tables {
		if p.Tables[i].Name == name {
			return &p.Tables[i], nil
		}
	}
	return nil, fmt.Errorf("projection %s has no table %q: %w", p.Name, name, ErrInvalid)
}

func (p *Projection) wants(e event.Event) bool {
	return len(p.Types) == 0 || slices.Contains(p.Types, e.Type)
}

// hasIndexes reports whether any of p's tables has an index besides its
// key, or a full-text index.
func (p *Projection) hasIndexes() bool {
	for _, t := range p.Tables {
		if len(t.Search) > 0 || len(t.Indexes) > 0 || slices.ContainsFunc(t.Columns, func(c Column) bool { return c.Index }) {
			return true
		}
	}
	return false
}
