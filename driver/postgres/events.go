package postgres

import (
	"context"
	"encoding/json"
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

// AppendManyTx implements driver.Driver: every append is queued in one
// pipelined batch, so the whole call is one round trip. The ids are not
// looked up first (the caller has); one already stored fails the call
// with event.ErrEventIDReused.
func (d *Driver) AppendManyTx(ctx context.Context, tx pgx.Tx, params []*driver.AppendParams) ([]*event.AppendResult, error) {
	_, own := d.ownTx.Load(tx)
	flags := appendFlags{notify: !own}
	batch := &pgx.Batch{}
	for _, p := range params {
		args, err := d.appendArgs(p, flags)
		if err != nil {
			return nil, err
		}
		batch.Queue(d.sql.appendEvents, args...)
	}
	results := tx.SendBatch(ctx, batch)
	defer results.Close()
	out := make([]*event.AppendResult, len(params))
	for i, p := range params {
		res, err := d.scanAppend(ctx, results.QueryRow(), p)
		if err != nil {
			return nil, err
		}
		out[i] = res
	}
	if err := results.Close(); err != nil {
		return nil, translate(ctx, "append", err)
	}
	return out, nil
}

// appendArgs are the arguments of append_events for p.
func (d *Driver) appendArgs(p *driver.AppendParams, flags appendFlags) ([]any, error) {
	n := len(p.Events)
	var (
		ids           = make([]uuid.UUID, n)
		types         = make([]string, n)
		schemaVersion = make([]int32, n)
		data          = make([]string, n)
		metadata      = make([]string, n)
		correlation   = make([]*string, n)
		causation     = make([]*string, n)
		occurred      = make([]time.Time, n)
	)
	for i, e := range p.Events {
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("postgres: append: encode metadata: %w", err)
		}
		ids[i], types[i], schemaVersion[i] = e.ID, e.Type, int32(e.SchemaVersion)
		data[i], metadata[i], occurred[i] = string(e.Data), string(meta), e.OccurredAt
		correlation[i], causation[i] = nullable(e.Metadata.CorrelationID), nullable(e.Metadata.CausationID)
	}
	recordedAt := time.Now().UTC()
	if n > 0 {
		recordedAt = p.Events[0].RecordedAt
	}
	return []any{p.StreamID, int64(p.Expected), ids, types, schemaVersion, data, metadata,
		correlation, causation, occurred, recordedAt, flags.notify, d.config.AsyncCommit, flags.checkIDs}, nil
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

// errIDRace is a concurrent append of the same event id winning the race
// to the unique index: either an idempotent repeat or a real reuse.
var errIDRace = fmt.Errorf("postgres: append: a concurrent append used the same event id: %w", event.ErrEventIDReused)

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
		var data, meta []byte
		if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &meta, &e.OccurredAt, &e.RecordedAt); err != nil {
			return nil, translate(ctx, "read", err)
		}
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			return nil, fmt.Errorf("postgres: read: metadata of event %s: %w", e.ID, err)
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
