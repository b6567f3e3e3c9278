package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// Claim implements driver.Subscriptions. Claims go through the single
// write connection, so they are serialised with each other and with every
// checkpoint. A member whose process has ended (see ownerLocks) loses its
// partitions and its membership at once, without waiting for its lease.
func (d *Driver) Claim(ctx context.Context, p *driver.ClaimParams) ([]driver.Claim, error) {
	if p.Partitions < 1 {
		return nil, fmt.Errorf("sqlite: claim %q: %d partitions: %w", p.Subscription, p.Partitions, event.ErrPartitionsChanged)
	}
	var lock *string
	name, first := d.owners.hold(p.Owner, p.Subscription)
	if name != "" {
		lock = &name
	}
	var claims []driver.Claim
	var forget []string // lock files of ended members that no membership names any more
	err := d.InTx(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		until := now.Add(p.Lease).UnixMicro()
		// An owner whose name outlives its process (Subscription.Owner
		// set) may come back before anyone found its last run ended: that
		// run's file is this row's until the upsert below. Only a lock
		// this driver holds for the subscription for the first time can
		// replace another.
		var before sql.NullString
		if first {
			if err := tx.QueryRowContext(ctx, `SELECT lock FROM subscription_members WHERE subscription = ? AND owner = ?`, p.Subscription, p.Owner).Scan(&before); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return translate(ctx, "claim", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_members (subscription, owner, seen_until, lock) VALUES (?, ?, ?, ?)
			ON CONFLICT (subscription, owner) DO UPDATE SET seen_until = excluded.seen_until, lock = excluded.lock`, p.Subscription, p.Owner, until, lock); err != nil {
			return translate(ctx, "claim", err)
		}
		var err error
		if forget, err = d.dropEnded(ctx, tx, p.Subscription, p.Owner, now); err != nil {
			return err
		}
		if before.Valid && before.String != name && d.owners.ended(before.String) {
			if forget, err = forgettable(ctx, tx, forget, before.String); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM subscription_members WHERE subscription = ? AND seen_until < ?`, p.Subscription, now.UnixMicro()); err != nil {
			return translate(ctx, "claim", err)
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subscription_members WHERE subscription = ?`, p.Subscription).Scan(&live); err != nil {
			return translate(ctx, "claim", err)
		}
		rows, err := partitionRows(ctx, tx, p.Subscription)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			for i := range p.Partitions {
				if _, err := tx.ExecContext(ctx, `INSERT INTO subscription_partitions (subscription, partition, partitions, updated_at) VALUES (?, ?, ?, ?)`,
					p.Subscription, i, p.Partitions, now.UnixMicro()); err != nil {
					return translate(ctx, "claim", err)
				}
				rows = append(rows, partitionRow{PartitionStatus: driver.PartitionStatus{Partition: i}, partitions: p.Partitions})
			}
		}
		if rows[0].partitions != p.Partitions {
			return fmt.Errorf("sqlite: subscription %q has %d partitions, asked for %d: %w", p.Subscription, rows[0].partitions, p.Partitions, event.ErrPartitionsChanged)
		}
		keep, drop := driver.Share(rows2status(rows), p.Owner, live, now)
		for _, part := range drop {
			if _, err := tx.ExecContext(ctx, `UPDATE subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = ? WHERE subscription = ? AND partition = ?`,
				now.UnixMicro(), p.Subscription, part); err != nil {
				return translate(ctx, "claim", err)
			}
		}
		for _, part := range keep {
			if _, err := tx.ExecContext(ctx, `UPDATE subscription_partitions SET owner = ?, lease_until = ?, updated_at = ? WHERE subscription = ? AND partition = ?`,
				p.Owner, until, now.UnixMicro(), p.Subscription, part); err != nil {
				return translate(ctx, "claim", err)
			}
			claims = append(claims, driver.Claim{Partition: part, Position: rows[part].Position})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range forget {
		d.owners.forget(name)
	}
	return claims, nil
}

// dropEnded ends, in tx, the membership of the subscription's other
// members whose processes have ended (see ownerLocks), and frees their
// partitions. It returns the lock files that no membership names any
// more, to remove once tx has committed.
func (d *Driver) dropEnded(ctx context.Context, tx *sql.Tx, subscription, self string, now time.Time) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT owner, lock FROM subscription_members WHERE subscription = ? AND owner <> ? AND lock IS NOT NULL`, subscription, self)
	if err != nil {
		return nil, translate(ctx, "claim", err)
	}
	type member struct{ owner, lock string }
	var ended []member
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.owner, &m.lock); err != nil {
			rows.Close() //nolint:errcheck // the scan error is the one to report
			return nil, translate(ctx, "claim", err)
		}
		if d.owners.ended(m.lock) {
			ended = append(ended, m)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, translate(ctx, "claim", err)
	}
	var forget []string
	for _, m := range ended {
		if err := endMembership(ctx, tx, "claim", subscription, m.owner, now.UnixMicro()); err != nil {
			return nil, err
		}
		if forget, err = forgettable(ctx, tx, forget, m.lock); err != nil {
			return nil, err
		}
	}
	return forget, nil
}

// endMembership ends owner's membership of subscription in tx and frees
// its partitions.
func endMembership(ctx context.Context, tx *sql.Tx, op, subscription, owner string, now int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscription_members WHERE subscription = ? AND owner = ?`, subscription, owner); err != nil {
		return translate(ctx, op, err)
	}
	_, err := tx.ExecContext(ctx, `UPDATE subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = ? WHERE subscription = ? AND owner = ?`,
		now, subscription, owner)
	return translate(ctx, op, err)
}

// forgettable appends lock to forget if no membership names it in tx.
func forgettable(ctx context.Context, tx *sql.Tx, forget []string, lock string) ([]string, error) {
	var named int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM subscription_members WHERE lock = ?`, lock).Scan(&named); err != nil {
		return nil, translate(ctx, "claim", err)
	}
	if named == 0 {
		forget = append(forget, lock)
	}
	return forget, nil
}

type partitionRow struct {
	driver.PartitionStatus
	partitions int
}

func rows2status(rows []partitionRow) []driver.PartitionStatus {
	out := make([]driver.PartitionStatus, len(rows))
	for i, r := range rows {
		out[i] = r.PartitionStatus
	}
	return out
}

func partitionRows(ctx context.Context, q querier, subscription string) ([]partitionRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT partition, partitions, position, coalesce(owner, ''), coalesce(lease_until, 0), updated_at
		FROM subscription_partitions WHERE subscription = ? ORDER BY partition`, subscription)
	if err != nil {
		return nil, translate(ctx, "read partitions", err)
	}
	defer rows.Close()
	var out []partitionRow
	for rows.Next() {
		var r partitionRow
		var until, updated int64
		if err := rows.Scan(&r.Partition, &r.partitions, &r.Position, &r.Owner, &until, &updated); err != nil {
			return nil, translate(ctx, "read partitions", err)
		}
		if until != 0 {
			r.LeaseUntil = fromMicros(until)
		}
		r.UpdatedAt = fromMicros(updated)
		out = append(out, r)
	}
	return out, translate(ctx, "read partitions", rows.Err())
}

// Release implements driver.Subscriptions.
func (d *Driver) Release(ctx context.Context, p *driver.ReleaseParams) error {
	err := d.InTx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UnixMicro()
		if len(p.Partitions) == 0 {
			return endMembership(ctx, tx, "release", p.Subscription, p.Owner, now)
		}
		for _, part := range p.Partitions {
			if _, err := tx.ExecContext(ctx, `UPDATE subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = ? WHERE subscription = ? AND partition = ? AND owner = ?`,
				now, p.Subscription, part, p.Owner); err != nil {
				return translate(ctx, "release", err)
			}
		}
		return nil
	})
	if err == nil && len(p.Partitions) == 0 {
		d.owners.letGo(p.Owner, p.Subscription)
	}
	return err
}

// CheckpointTx implements driver.Subscriptions.
func (d *Driver) CheckpointTx(ctx context.Context, tx *sql.Tx, p *driver.CheckpointParams) error {
	now := time.Now()
	res, err := tx.ExecContext(ctx, `UPDATE subscription_partitions SET position = ?, lease_until = ?, updated_at = ?
		WHERE subscription = ? AND partition = ? AND owner = ?`,
		p.Position, now.Add(p.Lease).UnixMicro(), now.UnixMicro(), p.Subscription, p.Partition, p.Owner)
	if err != nil {
		return translate(ctx, "checkpoint", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: checkpoint %s/%d: %w", p.Subscription, p.Partition, event.ErrLeaseLost)
	}
	return nil
}

// ParkTx implements driver.Subscriptions.
func (d *Driver) ParkTx(ctx context.Context, tx *sql.Tx, p *driver.ParkParams) error {
	now := time.Now().UnixMicro()
	_, err := tx.ExecContext(ctx, `INSERT INTO parked_events
		(subscription, position, partition, event_id, stream_id, type, attempts, error, state, parked_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (subscription, position) DO UPDATE SET
			attempts = parked_events.attempts + excluded.attempts, error = excluded.error,
			state = excluded.state, updated_at = excluded.updated_at`,
		p.Subscription, p.Position, p.Partition, p.EventID.String(), p.StreamID, p.Type, p.Attempts, p.Error, driver.ParkedWaiting, now, now)
	return translate(ctx, "park", err)
}

// Parked implements driver.Subscriptions.
func (d *Driver) Parked(ctx context.Context, p *driver.ParkedParams) ([]driver.Parked, error) {
	states, err := json.Marshal(p.States)
	if err != nil {
		return nil, fmt.Errorf("sqlite: parked: %w", err)
	}
	rows, err := d.read.QueryContext(ctx, `SELECT subscription, partition, position, event_id, stream_id, type, attempts, error, state, parked_at, updated_at
		FROM parked_events
		WHERE subscription = ? AND position > ? AND (? < 0 OR partition = ?)
		  AND (json_array_length(?) = 0 OR state IN (SELECT value FROM json_each(?)))
		ORDER BY position LIMIT ?`,
		p.Subscription, p.After, p.Partition, p.Partition, string(states), string(states), p.Limit)
	if err != nil {
		return nil, translate(ctx, "parked", err)
	}
	defer rows.Close()
	var out []driver.Parked
	for rows.Next() {
		var r driver.Parked
		var id string
		var parked, updated int64
		if err := rows.Scan(&r.Subscription, &r.Partition, &r.Position, &id, &r.StreamID, &r.Type, &r.Attempts, &r.Error, &r.State, &parked, &updated); err != nil {
			return nil, translate(ctx, "parked", err)
		}
		if r.EventID, err = uuid.Parse(id); err != nil {
			return nil, fmt.Errorf("sqlite: parked: event id %q: %w", id, err)
		}
		r.ParkedAt, r.UpdatedAt = fromMicros(parked), fromMicros(updated)
		out = append(out, r)
	}
	return out, translate(ctx, "parked", rows.Err())
}

// SetParkedStateTx implements driver.Subscriptions.
func (d *Driver) SetParkedStateTx(ctx context.Context, tx *sql.Tx, p *driver.SetParkedStateParams) error {
	from, err := json.Marshal(p.From)
	if err != nil {
		return fmt.Errorf("sqlite: set parked state: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE parked_events SET state = ?, error = CASE WHEN ? = '' THEN error ELSE ? END,
			attempts = attempts + ?, updated_at = ?
		WHERE subscription = ? AND position = ? AND state IN (SELECT value FROM json_each(?))`,
		p.To, p.Error, p.Error, p.AddAttempts, time.Now().UnixMicro(), p.Subscription, p.Position, string(from))
	if err != nil {
		return translate(ctx, "set parked state", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: %s at %d in state %s: %w", p.Subscription, p.Position, strings.Join(p.From, "|"), event.ErrParkedNotFound)
	}
	return nil
}

// SubscriptionStatus implements driver.Subscriptions.
func (d *Driver) SubscriptionStatus(ctx context.Context, subscription string) (*driver.SubscriptionStatus, error) {
	rows, err := partitionRows(ctx, d.read, subscription)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("sqlite: subscription %q: %w", subscription, event.ErrSubscriptionNotFound)
	}
	st := &driver.SubscriptionStatus{Subscription: subscription, Partitions: rows2status(rows)}
	err = d.read.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM parked_events WHERE subscription = ? AND state IN (?, ?)),
			(SELECT coalesce(max(position), 0) FROM events)`,
		subscription, driver.ParkedWaiting, driver.ParkedRetrying).Scan(&st.Parked, &st.Head)
	return st, translate(ctx, "subscription status", err)
}

// Subscriptions implements driver.Subscriptions.
func (d *Driver) Subscriptions(ctx context.Context) ([]string, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT DISTINCT subscription FROM subscription_partitions ORDER BY subscription`)
	if err != nil {
		return nil, translate(ctx, "subscriptions", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, translate(ctx, "subscriptions", err)
		}
		out = append(out, name)
	}
	return out, translate(ctx, "subscriptions", rows.Err())
}
