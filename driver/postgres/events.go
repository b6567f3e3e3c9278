package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

// Append implements driver.Driver. The append is one statement, a call of
// append_events in its own implicit transaction: one round trip. It skips
// the idempotency lookup; an append that repeats an earlier one fails on
// its expected version or on the unique event id, and only then is it
// asked again with the lookup, which answers with the original result.
func (d *Driver) Append(ctx context.Context, p *driver.AppendParams) (*event.AppendResult, error) {
	res, err := d.append(ctx, d.pool, p, appendFlags{})
	if errors.Is(err, event.ErrConcurrency) || errors.Is(err, event.ErrEventIDReused) {
		res, err = d.append(ctx, d.pool, p, appendFlags{checkIDs: true})
	}
	if err != nil {
		return nil, err
	}
	if !res.Duplicate && len(res.Events) > 0 {
		d.announce()
	}
	return res, nil
}

// appendFlags are the options of one call of append_events.
type appendFlags struct {
	// notify sends NOTIFY in the transaction (for transactions the driver
	// does not commit itself).
	notify bool
	// checkIDs looks the ids up first, so that a repeat of an earlier
	// append returns its result instead of failing.
	checkIDs bool
}

// AppendTx implements driver.Driver. Begin tx on Pool() (or any pool of the
// same database). The NOTIFY that wakes readers is sent in tx and
// delivered when it commits.
func (d *Driver) AppendTx(ctx context.Context, tx pgx.Tx, p *driver.AppendParams) (*event.AppendResult, error) {
	_, own := d.ownTx.Load(tx) // InTx notifies after its commit
	return d.append(ctx, tx, p, appendFlags{notify: !own, checkIDs: true})
}

// InTx implements driver.Driver.
func (d *Driver) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return translate(ctx, "begin", err)
	}
	d.ownTx.Store(tx, struct{}{})
	defer d.ownTx.Delete(tx)
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // fn's error is the one to report
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return translate(ctx, "commit", err)
	}
	d.announce()
	return nil
}

// LookupTx implements driver.Driver. The query is planned for each call
// (QueryExecModeExec): a plan cached while the log was small would scan it.
func (d *Driver) LookupTx(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) ([]event.Event, error) {
	return d.lookup(ctx, tx, ids)
}

// Lookup implements driver.Driver.
func (d *Driver) Lookup(ctx context.Context, ids []uuid.UUID) ([]event.Event, error) {
	return d.lookup(ctx, d.pool, ids)
}

// LookupKeysTx implements driver.Driver. Like LookupTx, the query is
// planned for each call.
func (d *Driver) LookupKeysTx(ctx context.Context, tx pgx.Tx, keys []event.StreamKey) ([]event.Event, error) {
	return d.lookupKeys(ctx, tx, keys)
}

// LookupKeys implements driver.Driver.
func (d *Driver) LookupKeys(ctx context.Context, keys []event.StreamKey) ([]event.Event, error) {
	return d.lookupKeys(ctx, d.pool, keys)
}

func (d *Driver) lookupKeys(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, keys []event.StreamKey) ([]event.Event, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	streams, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		streams[i], names[i] = k.StreamID, k.Key
	}
	rows, err := q.Query(ctx, d.sql.lookupKeys, pgx.QueryExecModeExec, streams, names)
	if err != nil {
		return nil, translate(ctx, "lookup", err)
	}
	return scanEvents(ctx, rows)
}

func (d *Driver) lookup(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, ids []uuid.UUID) ([]event.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
	}
	rows, err := q.Query(ctx, d.sql.lookup, pgx.QueryExecModeExec, texts)
	if err != nil {
		return nil, translate(ctx, "lookup", err)
	}
	return scanEvents(ctx, rows)
}

func (d *Driver) append(ctx context.Context, q querier, p *driver.AppendParams, flags appendFlags) (*event.AppendResult, error) {
	args, err := d.appendArgs(p, flags)
	if err != nil {
		return nil, err
	}
	return d.scanAppend(ctx, q.QueryRow(ctx, d.sql.appendEvents, args...), p)
}

// AppendManyTx implements driver.Driver: all the appends are one call of
// append_many, which appends them with a few set-based statements, so the
// call is one round trip and its cost grows with the events more than
// with the streams. The ids are not looked up first (the caller has); one
// already stored fails the call with event.ErrEventIDReused.
func (d *Driver) AppendManyTx(ctx context.Context, tx pgx.Tx, params []*driver.AppendParams) ([]*event.AppendResult, error) {
	if len(params) == 0 {
		return []*event.AppendResult{}, nil
	}
	_, own := d.ownTx.Load(tx)
	args, err := d.appendManyArgs(params, appendFlags{notify: !own})
	if err != nil {
		return nil, err
	}
	var (
		versions, positions []int64
		occurred, recorded  []time.Time
	)
	err = tx.QueryRow(ctx, d.sql.appendMany, args...).Scan(&versions, &positions, &occurred, &recorded)
	if err != nil {
		return nil, d.appendManyError(ctx, params, err)
	}
	out := make([]*event.AppendResult, len(params))
	k := 0 // the index of an event among all the call's events
	for i, p := range params {
		res := &event.AppendResult{StreamID: p.StreamID, Version: versions[i], Events: make([]event.Event, len(p.Events))}
		first := versions[i] - int64(len(p.Events)) + 1
		for j, e := range p.Events {
			e.Position, e.StreamVersion = positions[k], first+int64(j)
			e.OccurredAt, e.RecordedAt = occurred[k].UTC(), recorded[i].UTC()
			res.Events[j] = e
			k++
		}
		out[i] = res
	}
	return out, nil
}

// appendArgs are the arguments of append_events for p.
func (d *Driver) appendArgs(p *driver.AppendParams, flags appendFlags) ([]any, error) {
	cols := newEventColumns(len(p.Events))
	if err := cols.add(p); err != nil {
		return nil, err
	}
	return []any{p.StreamID, int64(p.Expected), cols.ids, cols.types, cols.schemaVersions, cols.data, cols.metadata,
		cols.correlation, cols.causation, cols.occurred, recordedAt(p), flags.notify, d.config.AsyncCommit, flags.checkIDs}, nil
}

// appendManyArgs are the arguments of append_many for params.
func (d *Driver) appendManyArgs(params []*driver.AppendParams, flags appendFlags) ([]any, error) {
	var (
		streams  = make([]string, len(params))
		expected = make([]int64, len(params))
		counts   = make([]int32, len(params))
		recorded = make([]time.Time, len(params))
		n        int
	)
	for _, p := range params {
		n += len(p.Events)
	}
	cols := newEventColumns(n)
	for i, p := range params {
		if len(p.Events) > math.MaxInt32 {
			return nil, fmt.Errorf("postgres: append: %d events to stream %q in one call", len(p.Events), p.StreamID)
		}
		streams[i], expected[i], counts[i], recorded[i] = p.StreamID, int64(p.Expected), int32(len(p.Events)), recordedAt(p)
		if err := cols.add(p); err != nil {
			return nil, err
		}
	}
	return []any{streams, expected, counts, recorded, cols.ids, cols.types, cols.schemaVersions, cols.data, cols.metadata,
		cols.correlation, cols.causation, cols.occurred, cols.keys, flags.notify, d.config.AsyncCommit}, nil
}

// eventColumns are events as the per-event array arguments of
// append_events and append_many.
type eventColumns struct {
	ids                    []uuid.UUID
	types                  []string
	schemaVersions         []int32
	data, metadata         []string
	correlation, causation []*string
	occurred               []time.Time
	keys                   []*string // append_many's only
}

func newEventColumns(n int) *eventColumns {
	return &eventColumns{
		ids: make([]uuid.UUID, 0, n), types: make([]string, 0, n), schemaVersions: make([]int32, 0, n),
		data: make([]string, 0, n), metadata: make([]string, 0, n),
		correlation: make([]*string, 0, n), causation: make([]*string, 0, n), occurred: make([]time.Time, 0, n),
		keys: make([]*string, 0, n),
	}
}

func (c *eventColumns) add(p *driver.AppendParams) error {
	for i, e := range p.Events {
		meta, err := p.EncodedMetadata(i)
		if err != nil {
			return fmt.Errorf("postgres: append: encode metadata: %w", err)
		}
		c.ids = append(c.ids, e.ID)
		c.types = append(c.types, e.Type)
		c.schemaVersions = append(c.schemaVersions, int32(e.SchemaVersion))
		c.data = append(c.data, string(e.Data))
		c.metadata = append(c.metadata, string(meta))
		c.correlation = append(c.correlation, nullable(e.Metadata.CorrelationID))
		c.causation = append(c.causation, nullable(e.Metadata.CausationID))
		c.occurred = append(c.occurred, e.OccurredAt)
		c.keys = append(c.keys, nullable(e.Key))
	}
	return nil
}

// recordedAt is the time p's events are recorded at: the one the store
// gave them, or now for an append without events.
func recordedAt(p *driver.AppendParams) time.Time {
	if len(p.Events) > 0 {
		return p.Events[0].RecordedAt
	}
	return time.Now().UTC()
}

// scanAppend reads append_events' answer for p.
func (d *Driver) scanAppend(ctx context.Context, row pgx.Row, p *driver.AppendParams) (*event.AppendResult, error) {
	var (
		duplicate                bool
		version                  int64
		positions, versions      []int64
		occurredOut, recordedOut []time.Time
	)
	if err := row.Scan(&duplicate, &version, &positions, &versions, &occurredOut, &recordedOut); err != nil {
		return nil, d.appendError(ctx, p, err)
	}
	res := &event.AppendResult{StreamID: p.StreamID, Version: version, Duplicate: duplicate, Events: make([]event.Event, len(p.Events))}
	for i, e := range p.Events {
		e.Position, e.StreamVersion = positions[i], versions[i]
		e.OccurredAt, e.RecordedAt = occurredOut[i].UTC(), recordedOut[i].UTC()
		res.Events[i] = e
	}
	return res, nil
}

func (d *Driver) appendError(ctx context.Context, p *driver.AppendParams, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeWrongVersion:
			actual, _ := strconv.ParseInt(pgErr.Detail, 10, 64)
			return &event.ConcurrencyError{StreamID: p.StreamID, Expected: p.Expected, Actual: actual}
		case codeEventIDReused:
			id, _ := uuid.Parse(pgErr.Detail)
			return &event.EventIDReusedError{ID: id}
		case codeUniqueViolated:
			switch pgErr.ConstraintName {
			case "events_stream_version_key":
				return &event.ConcurrencyError{StreamID: p.StreamID, Expected: p.Expected, Actual: -1}
			case "events_event_id_key":
				return errIDRace
			}
		}
	}
	return translate(ctx, "append", err)
}

// appendManyError translates append_many's errors. A wrong expected
// version names the append it failed on (see append_many).
func (d *Driver) appendManyError(ctx context.Context, params []*driver.AppendParams, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeWrongVersion {
		var i int
		var actual int64
		if _, scanErr := fmt.Sscanf(pgErr.Detail, "%d %d", &i, &actual); scanErr == nil && i >= 0 && i < len(params) {
			return &event.ConcurrencyError{StreamID: params[i].StreamID, Expected: params[i].Expected, Actual: actual}
		}
	}
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolated {
		switch pgErr.ConstraintName {
		case "events_event_id_key":
			return errIDRace
		case "events_stream_dedup_key_idx":
			return errKeyRace
		}
	}
	return translate(ctx, "append", err)
}

// errIDRace is a concurrent append of the same event id winning the race
// to the unique index: either an idempotent repeat or a real reuse.
var errIDRace = fmt.Errorf("postgres: append: a concurrent append used the same event id: %w", event.ErrEventIDReused)

// errKeyRace is a concurrent append of an event with the same key to the
// same stream winning the race to the unique index.
var errKeyRace = fmt.Errorf("postgres: append: a concurrent append stored the same key in the stream: %w", event.ErrEventIDReused)

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ReadStream implements driver.Driver.
func (d *Driver) ReadStream(ctx context.Context, p *driver.ReadStreamParams) ([]event.Event, error) {
	return d.readStream(ctx, d.pool, p)
}

// ReadStreamTx implements driver.Driver.
func (d *Driver) ReadStreamTx(ctx context.Context, tx pgx.Tx, p *driver.ReadStreamParams) ([]event.Event, error) {
	return d.readStream(ctx, tx, p)
}

func (d *Driver) readStream(ctx context.Context, q querier, p *driver.ReadStreamParams) ([]event.Event, error) {
	query, from := d.sql.readStream, p.From
	if p.Backwards {
		query = d.sql.readStreamBack
		if from == 0 {
			from = math.MaxInt64
		}
	}
	rows, err := q.Query(ctx, query, p.StreamID, from, p.Limit)
	if err != nil {
		return nil, translate(ctx, "read stream", err)
	}
	return scanEvents(ctx, rows)
}

// ReadAll implements driver.Driver; see the package documentation for why
// it never skips a position that may still commit.
func (d *Driver) ReadAll(ctx context.Context, p *driver.ReadAllParams) ([]event.Event, error) {
	rows, err := d.pool.Query(ctx, d.sql.readAll, p.After, p.Limit)
	if err != nil {
		return nil, translate(ctx, "read all", err)
	}
	events, err := scanEvents(ctx, rows)
	if err != nil || contiguous(p.After, events) {
		return events, err
	}
	// A hole: a transaction may still commit into it. Read again up to the
	// stable position, in statements that start after it was computed.
	var stable int64
	if err := d.pool.QueryRow(ctx, d.sql.stablePosition).Scan(&stable); err != nil {
		return nil, translate(ctx, "read all", err)
	}
	if stable <= p.After {
		return nil, nil
	}
	rows, err = d.pool.Query(ctx, d.sql.readAllBounded, p.After, p.Limit, stable)
	if err != nil {
		return nil, translate(ctx, "read all", err)
	}
	return scanEvents(ctx, rows)
}

// contiguous reports whether events hold exactly the positions after+1,
// after+2, ...: committed, with no hole a writer could still fill.
func contiguous(after int64, events []event.Event) bool {
	for i, e := range events {
		if e.Position != after+int64(i)+1 {
			return false
		}
	}
	return true
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context) (int64, error) {
	var head int64
	err := d.pool.QueryRow(ctx, d.query(`SELECT coalesce(max(position), 0) FROM {schema}.events`)).Scan(&head)
	return head, translate(ctx, "head", err)
}

// StreamInfo implements driver.Driver.
func (d *Driver) StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error) {
	info := &event.StreamInfo{StreamID: streamID}
	err := d.pool.QueryRow(ctx, d.sql.streamInfo, streamID).Scan(&info.Version, &info.LastPosition, &info.CreatedAt, &info.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("stream %q: %w", streamID, event.ErrStreamNotFound)
	}
	if err != nil {
		return nil, translate(ctx, "stream info", err)
	}
	info.CreatedAt, info.UpdatedAt = info.CreatedAt.UTC(), info.UpdatedAt.UTC()
	return info, nil
}

func scanEvents(ctx context.Context, rows pgx.Rows) ([]event.Event, error) {
	defer rows.Close()
	var events []event.Event
	for rows.Next() {
		var e event.Event
		var key *string
		var data, meta []byte
		if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &key, &e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &meta, &e.OccurredAt, &e.RecordedAt); err != nil {
			return nil, translate(ctx, "read", err)
		}
		if err := eventjson.Metadata(meta, &e.Metadata); err != nil {
			return nil, fmt.Errorf("postgres: read: metadata of event %s: %w", e.ID, err)
		}
		if key != nil {
			e.Key = *key
		}
		e.Data = data
		e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(ctx, "read", err)
	}
	return events, nil
}
