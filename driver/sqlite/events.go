package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

const eventColumns = `position, event_id, stream_id, dedup_key, stream_version, type, schema_version, data, metadata, occurred_at, recorded_at`

// Append implements driver.Driver. It skips the idempotency lookup: an
// append that repeats an earlier one fails on its expected version or on
// the unique event id, and only then runs again with the lookup, which
// answers with the original result.
func (d *Driver) Append(ctx context.Context, p *driver.AppendParams) (*event.AppendResult, error) {
	res, err := d.appendInTx(ctx, p, false)
	if errors.Is(err, event.ErrConcurrency) || errors.Is(err, event.ErrEventIDReused) {
		res, err = d.appendInTx(ctx, p, true)
	}
	if err != nil {
		return nil, err
	}
	if !res.Duplicate && len(res.Events) > 0 {
		d.changed.Broadcast()
	}
	return res, nil
}

func (d *Driver) appendInTx(ctx context.Context, p *driver.AppendParams, checkIDs bool) (*event.AppendResult, error) {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, translate(ctx, "append", err)
	}
	res, err := d.append(ctx, tx, p, checkIDs)
	if err != nil {
		tx.Rollback() //nolint:errcheck // the append error is the one to report
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, translate(ctx, "append", err)
	}
	return res, nil
}

// AppendTx implements driver.Driver. Begin tx on DB(). Readers waiting in
// this process see the events within PollInterval of the commit.
func (d *Driver) AppendTx(ctx context.Context, tx *sql.Tx, p *driver.AppendParams) (*event.AppendResult, error) {
	return d.append(ctx, tx, p, true)
}

// AppendManyTx implements driver.Driver with a constant number of
// statements whatever the number of streams: one to read the streams'
// versions, one for the last position, an INSERT per insertChunk events
// (of any streams) and one upsert of the streams. The ids are not looked
// up (the caller has, in tx; a stored one fails on the unique index).
// Params are applied in order, so two of the same stream append one after
// the other.
func (d *Driver) AppendManyTx(ctx context.Context, tx *sql.Tx, params []*driver.AppendParams) ([]*event.AppendResult, error) {
	versions, err := streamVersions(ctx, tx, params)
	if err != nil {
		return nil, err
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&last); err != nil {
		return nil, translate(ctx, "append", err)
	}
	out := make([]*event.AppendResult, len(params))
	total := 0
	for _, p := range params {
		total += len(p.Events)
	}
	all := make([]event.Event, 0, total)
	metas := make([][]byte, 0, total)
	changed := make(map[string]event.Event, len(params)) // stream: its last event in this call
	for i, p := range params {
		current := versions[p.StreamID]
		if !p.Expected.Allows(current) {
			return nil, &event.ConcurrencyError{StreamID: p.StreamID, Expected: p.Expected, Actual: current}
		}
		res := &event.AppendResult{StreamID: p.StreamID, Version: current, Events: make([]event.Event, len(p.Events))}
		for j, e := range p.Events {
			last++
			e.StreamVersion, e.Position = current+int64(j)+1, last
			res.Events[j] = e
			meta, err := p.EncodedMetadata(j)
			if err != nil {
				return nil, fmt.Errorf("sqlite: append: encode metadata: %w", err)
			}
			metas = append(metas, meta)
		}
		if n := len(res.Events); n > 0 {
			res.Version = res.Events[n-1].StreamVersion
			versions[p.StreamID] = res.Version
			changed[p.StreamID] = res.Events[n-1]
			all = append(all, res.Events...)
		}
		out[i] = res
	}
	if err := writeEvents(ctx, tx, all, metas, changed); err != nil {
		return nil, err
	}
	return out, nil
}

// writeEvents inserts events, then moves their streams to their last
// events. A stored id or key fails it with nothing written (a failed
// statement undoes itself; more than one INSERT run inside a savepoint),
// and tx stays usable (driver.Driver.AppendManyTxUndone).
func writeEvents(ctx context.Context, tx *sql.Tx, events []event.Event, metas [][]byte, last map[string]event.Event) (err error) {
	if len(events) > insertChunk {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT append_many`); err != nil {
			return translate(ctx, "append", err)
		}
		defer func() {
			// Undone even when ctx has ended (unless it is tx's own).
			ctx := context.WithoutCancel(ctx)
			if err != nil {
				if _, undo := tx.ExecContext(ctx, `ROLLBACK TO append_many`); undo != nil {
					// Not undone: the error must not pass for a repeat
					// that a lookup could settle in tx.
					err = fmt.Errorf("sqlite: append: undoing it after %v: %w", err, undo)
				}
			}
			if _, release := tx.ExecContext(ctx, `RELEASE append_many`); release != nil {
				err = errors.Join(err, translate(ctx, "append", release))
			}
		}()
	}
	if err := insertEvents(ctx, tx, events, metas); err != nil {
		return err
	}
	return upsertStreams(ctx, tx, last)
}

// streamVersions reads the current version of every stream in params (0
// for a stream that has no row yet), in one statement.
func streamVersions(ctx context.Context, tx *sql.Tx, params []*driver.AppendParams) (map[string]int64, error) {
	versions := make(map[string]int64, len(params))
	ids := make([]string, 0, len(params))
	for _, p := range params {
		if _, ok := versions[p.StreamID]; !ok {
			versions[p.StreamID] = 0
			ids = append(ids, p.StreamID)
		}
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: append: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT stream_id, version FROM streams WHERE stream_id IN (SELECT value FROM json_each(?))`, string(idsJSON))
	if err != nil {
		return nil, translate(ctx, "append", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var version int64
		if err := rows.Scan(&id, &version); err != nil {
			return nil, translate(ctx, "append", err)
		}
		versions[id] = version
	}
	if err := rows.Err(); err != nil {
		return nil, translate(ctx, "append", err)
	}
	return versions, nil
}

// upsertChunk is how many streams one upsert statement writes.
const upsertChunk = 500

// upsertStreams sets each stream's version and last position to those of
// its last event, creating the streams that have no row yet.
func upsertStreams(ctx context.Context, tx *sql.Tx, last map[string]event.Event) error {
	const cols = 5
	args := make([]any, 0, cols*min(len(last), upsertChunk))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		query := `INSERT INTO streams (stream_id, version, last_position, created_at, updated_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", len(args)/cols), ",") +
			` ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at`
		_, err := tx.ExecContext(ctx, query, args...)
		args = args[:0]
		return translate(ctx, "append", err)
	}
	for stream, e := range last {
		recorded := e.RecordedAt.UnixMicro()
		args = append(args, stream, e.StreamVersion, e.Position, recorded, recorded)
		if len(args) == cols*upsertChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// append writes p in tx. With checkIDs it first looks the ids up, so that
// a repeat of an earlier append returns that append's result.
func (d *Driver) append(ctx context.Context, tx *sql.Tx, p *driver.AppendParams, checkIDs bool) (*event.AppendResult, error) {
	if checkIDs {
		if dup, err := findDuplicate(ctx, tx, p); err != nil || dup != nil {
			return dup, err
		}
	}
	var current int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM streams WHERE stream_id = ?`, p.StreamID).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, translate(ctx, "append", err)
	}
	if !p.Expected.Allows(current) {
		return nil, &event.ConcurrencyError{StreamID: p.StreamID, Expected: p.Expected, Actual: current}
	}
	res := &event.AppendResult{StreamID: p.StreamID, Version: current, Events: make([]event.Event, len(p.Events))}
	if len(p.Events) == 0 {
		return res, nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&last); err != nil {
		return nil, translate(ctx, "append", err)
	}
	metas := make([][]byte, len(p.Events))
	for i, e := range p.Events {
		e.StreamVersion = current + int64(i) + 1
		e.Position = last + int64(i) + 1
		res.Events[i] = e
		if metas[i], err = p.EncodedMetadata(i); err != nil {
			return nil, fmt.Errorf("sqlite: append: encode metadata: %w", err)
		}
	}
	if err := insertEvents(ctx, tx, res.Events, metas); err != nil {
		return nil, err
	}
	end := res.Events[len(res.Events)-1]
	res.Version = end.StreamVersion
	recorded := end.RecordedAt.UnixMicro()
	if _, err := tx.ExecContext(ctx, `INSERT INTO streams (stream_id, version, last_position, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position, updated_at = excluded.updated_at`,
		p.StreamID, end.StreamVersion, end.Position, recorded, recorded); err != nil {
		return nil, translate(ctx, "append", err)
	}
	return res, nil
}

// insertChunk is how many events go in one INSERT statement: large enough
// to amortise the statement, small enough to stay far below SQLite's limit
// on bound parameters.
const insertChunk = 100

func insertEvents(ctx context.Context, tx *sql.Tx, events []event.Event, metas [][]byte) error {
	const cols = 13
	args := make([]any, 0, cols*min(len(events), insertChunk))
	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		args = args[:0]
		for i, e := range chunk {
			args = append(args, e.Position, e.ID.String(), e.StreamID, nullable(e.Key), e.StreamVersion, e.Type, e.SchemaVersion,
				string(e.Data), string(metas[start+i]), nullable(e.Metadata.CorrelationID), nullable(e.Metadata.CausationID),
				e.OccurredAt.UnixMicro(), e.RecordedAt.UnixMicro())
		}
		query := `INSERT INTO events (position, event_id, stream_id, dedup_key, stream_version, type, schema_version, data, metadata,
			correlation_id, causation_id, occurred_at, recorded_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?,?,?),", len(chunk)), ",")
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return translate(ctx, "append", err)
		}
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// findDuplicate looks the batch's ids up. None used: (nil, nil), append
// normally. All used, by this same batch: the original result. Anything
// else: an *event.EventIDReusedError.
func findDuplicate(ctx context.Context, tx *sql.Tx, p *driver.AppendParams) (*event.AppendResult, error) {
	if len(p.Events) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(p.Events))
	for i, e := range p.Events {
		ids[i] = e.ID
	}
	stored, err := lookup(ctx, tx, ids)
	if err != nil || len(stored) == 0 {
		return nil, err
	}
	byID := make(map[uuid.UUID]event.Event, len(stored))
	for _, e := range stored {
		byID[e.ID] = e
	}
	res := &event.AppendResult{StreamID: p.StreamID, Duplicate: true, Events: make([]event.Event, len(p.Events))}
	for i, want := range p.Events {
		got, ok := byID[want.ID]
		if !ok || !sameContent(got, want) || (i > 0 && got.StreamVersion != res.Events[i-1].StreamVersion+1) {
			return nil, &event.EventIDReusedError{ID: want.ID}
		}
		res.Events[i] = got
	}
	res.Version = res.Events[len(res.Events)-1].StreamVersion
	return res, nil
}

// InTx implements driver.Driver. The transaction holds the write
// connection (BEGIN IMMEDIATE) until fn returns.
func (d *Driver) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.write.BeginTx(ctx, nil)
	if err != nil {
		return translate(ctx, "begin", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck // fn's error is the one to report
		return err
	}
	if err := tx.Commit(); err != nil {
		return translate(ctx, "commit", err)
	}
	d.changed.Broadcast()
	return nil
}

// LookupTx implements driver.Driver.
func (d *Driver) LookupTx(ctx context.Context, tx *sql.Tx, ids []uuid.UUID) ([]event.Event, error) {
	return lookup(ctx, tx, ids)
}

// Lookup implements driver.Driver.
func (d *Driver) Lookup(ctx context.Context, ids []uuid.UUID) ([]event.Event, error) {
	return lookup(ctx, d.read, ids)
}

func lookup(ctx context.Context, q querier, ids []uuid.UUID) ([]event.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
	}
	idsJSON, err := json.Marshal(texts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE event_id IN (SELECT value FROM json_each(?))`, string(idsJSON))
	if err != nil {
		return nil, translate(ctx, "lookup", err)
	}
	return scanEvents(ctx, rows)
}

// LookupKeysTx implements driver.Driver.
func (d *Driver) LookupKeysTx(ctx context.Context, tx *sql.Tx, keys []event.StreamKey) ([]event.Event, error) {
	return lookupKeys(ctx, tx, keys)
}

// LookupKeys implements driver.Driver.
func (d *Driver) LookupKeys(ctx context.Context, keys []event.StreamKey) ([]event.Event, error) {
	return lookupKeys(ctx, d.read, keys)
}

// lookupKeys finds events by stream and key, one probe of the partial
// index on (stream_id, dedup_key) per key.
func lookupKeys(ctx context.Context, q querier, keys []event.StreamKey) ([]event.Event, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.StreamID, k.Key}
	}
	keysJSON, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE dedup_key IS NOT NULL AND (stream_id, dedup_key) IN (SELECT k.value ->> 0, k.value ->> 1 FROM json_each(?) AS k)`,
		string(keysJSON))
	if err != nil {
		return nil, translate(ctx, "lookup", err)
	}
	return scanEvents(ctx, rows)
}

// sameContent reports whether a stored event is the one proposed again:
// same stream, type, schema version, data bytes and metadata.
func sameContent(stored, proposed event.Event) bool {
	if stored.StreamID != proposed.StreamID || stored.Type != proposed.Type ||
		stored.SchemaVersion != proposed.SchemaVersion || !bytes.Equal(stored.Data, proposed.Data) {
		return false
	}
	a, errA := json.Marshal(stored.Metadata)
	b, errB := json.Marshal(proposed.Metadata)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// ReadStream implements driver.Driver.
func (d *Driver) ReadStream(ctx context.Context, p *driver.ReadStreamParams) ([]event.Event, error) {
	return readStream(ctx, d.read, p)
}

// ReadStreamTx implements driver.Driver.
func (d *Driver) ReadStreamTx(ctx context.Context, tx *sql.Tx, p *driver.ReadStreamParams) ([]event.Event, error) {
	return readStream(ctx, tx, p)
}

func readStream(ctx context.Context, q querier, p *driver.ReadStreamParams) ([]event.Event, error) {
	query := `SELECT ` + eventColumns + ` FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?`
	from := p.From
	if p.Backwards {
		query = `SELECT ` + eventColumns + ` FROM events WHERE stream_id = ? AND stream_version <= ? ORDER BY stream_version DESC LIMIT ?`
		if from == 0 {
			from = math.MaxInt64
		}
	}
	rows, err := q.QueryContext(ctx, query, p.StreamID, from, p.Limit)
	if err != nil {
		return nil, translate(ctx, "read stream", err)
	}
	return scanEvents(ctx, rows)
}

// ReadAll implements driver.Driver. Writes are serialised and positions are
// assigned under the write lock, so the committed log never has a hole
// that could still fill: a plain range read is gap-free.
func (d *Driver) ReadAll(ctx context.Context, p *driver.ReadAllParams) ([]event.Event, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE position > ? ORDER BY position LIMIT ?`, p.After, p.Limit)
	if err != nil {
		return nil, translate(ctx, "read all", err)
	}
	return scanEvents(ctx, rows)
}

// Head implements driver.Driver.
func (d *Driver) Head(ctx context.Context) (int64, error) {
	var head int64
	err := d.read.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&head)
	return head, translate(ctx, "head", err)
}

// StreamInfo implements driver.Driver.
func (d *Driver) StreamInfo(ctx context.Context, streamID string) (*event.StreamInfo, error) {
	info := &event.StreamInfo{StreamID: streamID}
	var created, updated int64
	err := d.read.QueryRowContext(ctx, `SELECT version, last_position, created_at, updated_at FROM streams WHERE stream_id = ?`, streamID).
		Scan(&info.Version, &info.LastPosition, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stream %q: %w", streamID, event.ErrStreamNotFound)
	}
	if err != nil {
		return nil, translate(ctx, "stream info", err)
	}
	info.CreatedAt, info.UpdatedAt = fromMicros(created), fromMicros(updated)
	return info, nil
}

func scanEvents(ctx context.Context, rows *sql.Rows) ([]event.Event, error) {
	defer rows.Close()
	var events []event.Event
	for rows.Next() {
		var (
			e                  event.Event
			id                 string
			key                sql.NullString
			data, meta         []byte
			occurred, recorded int64
		)
		if err := rows.Scan(&e.Position, &id, &e.StreamID, &key, &e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &meta, &occurred, &recorded); err != nil {
			return nil, translate(ctx, "read", err)
		}
		var err error
		if e.ID, err = uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("sqlite: read: event id %q: %w", id, err)
		}
		if err := eventjson.Metadata(meta, &e.Metadata); err != nil {
			return nil, fmt.Errorf("sqlite: read: metadata of event %s: %w", id, err)
		}
		e.Key, e.Data = key.String, data
		e.OccurredAt, e.RecordedAt = fromMicros(occurred), fromMicros(recorded)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(ctx, "read", err)
	}
	return events, nil
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
