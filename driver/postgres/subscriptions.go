package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// Claim implements driver.Subscriptions. A claim locks the subscription's
// partition rows, so claims of one subscription are serialised; a
// checkpoint holds its partition's row until its transaction ends, so a
// takeover waits for it and then sees the renewed lease.
func (d *Driver) Claim(ctx context.Context, p *driver.ClaimParams) ([]driver.Claim, error) {
	if p.Partitions < 1 {
		return nil, fmt.Errorf("postgres: claim %q: %d partitions: %w", p.Subscription, p.Partitions, event.ErrPartitionsChanged)
	}
	var claims []driver.Claim
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			return translate(ctx, "claim", err)
		}
		until := now.Add(p.Lease)
		if _, err := tx.Exec(ctx, d.query(`INSERT INTO {schema}.subscription_partitions (subscription, partition, partitions, updated_at)
			SELECT $1, i, $2, $3 FROM generate_series(0, $2 - 1) AS i
			WHERE NOT EXISTS (SELECT FROM {schema}.subscription_partitions WHERE subscription = $1)
			ON CONFLICT DO NOTHING`), p.Subscription, p.Partitions, now); err != nil {
			return translate(ctx, "claim", err)
		}
		rows, err := d.partitionRows(ctx, tx, p.Subscription, true)
		if err != nil {
			return err
		}
		if len(rows) == 0 || rows[0].partitions != p.Partitions {
			have := 0
			if len(rows) > 0 {
				have = rows[0].partitions
			}
			return fmt.Errorf("postgres: subscription %q has %d partitions, asked for %d: %w", p.Subscription, have, p.Partitions, event.ErrPartitionsChanged)
		}
		// The listener's session vouches for this process's members (see
		// listen); nil while it is not connected, or where this role
		// cannot read pg_stat_activity.
		own := d.session.Load()
		// xmax is 0 in a row version this statement inserted, not updated.
		var joined, vouched bool
		upsert, args := d.memberUpsert(p, until, own)
		if err := tx.QueryRow(ctx, upsert, args...).Scan(&joined, &vouched); err != nil {
			return translate(ctx, "claim", err)
		}
		if own != nil && !vouched {
			// The listener's backend has gone while its connection looks
			// open (half-open, after a failover): connect it again; the
			// next claim is vouched for.
			d.relisten()
		}
		// A member whose session has ended belongs to a process that ended
		// (or lost its listener: it claims again once it has reconnected).
		// Its partitions are free now. The server's view of the backends
		// is taken at its first use in tx, after the partitions were
		// locked.
		seen, err := d.seesSessions(ctx, tx)
		if err != nil {
			return err
		}
		ended := false
		if seen {
			var freed []int
			if freed, ended, err = d.dropEnded(ctx, tx, p.Subscription, p.Owner, now); err != nil {
				return err
			}
			for _, part := range freed {
				rows[part].Owner, rows[part].LeaseUntil = "", time.Time{}
			}
		}
		gone, err := tx.Exec(ctx, d.query(`DELETE FROM {schema}.subscription_members WHERE subscription = $1 AND seen_until < $2`), p.Subscription, now)
		if err != nil {
			return translate(ctx, "claim", err)
		}
		var live int
		if err := tx.QueryRow(ctx, d.query(`SELECT count(*) FROM {schema}.subscription_members WHERE subscription = $1`), p.Subscription).Scan(&live); err != nil {
			return translate(ctx, "claim", err)
		}
		keep, drop := driver.Share(rowsStatus(rows), p.Owner, live, now)
		if _, err := tx.Exec(ctx, d.query(`UPDATE {schema}.subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = $3
			WHERE subscription = $1 AND partition = ANY($2)`), p.Subscription, drop, now); err != nil {
			return translate(ctx, "claim", err)
		}
		if _, err := tx.Exec(ctx, d.query(`UPDATE {schema}.subscription_partitions SET owner = $3, lease_until = $4, updated_at = $5
			WHERE subscription = $1 AND partition = ANY($2)`), p.Subscription, keep, p.Owner, until, now); err != nil {
			return translate(ctx, "claim", err)
		}
		for _, part := range keep {
			claims = append(claims, driver.Claim{Partition: part, Position: rows[part].Position})
		}
		// Others must share again when a member joined or lapsed, or this
		// one gave partitions up.
		if joined || gone.RowsAffected() > 0 || ended || len(drop) > 0 {
			return d.notifyMembers(ctx, tx, p.Subscription)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// seesSessions reports whether this role may read pg_stat_activity, where
// members' sessions are looked up; asked once. Without it, members keep
// the lease rule.
func (d *Driver) seesSessions(ctx context.Context, tx pgx.Tx) (bool, error) {
	switch d.sessionsVisible.Load() {
	case 1:
		return true, nil
	case 2:
		return false, nil
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_stat_activity', 'SELECT')`).Scan(&ok); err != nil {
		return false, translate(ctx, "claim", err)
	}
	if ok {
		d.sessionsVisible.Store(1)
	} else {
		d.sessionsVisible.Store(2)
	}
	return ok, nil
}

// memberUpsert is the statement that records owner as a member until
// until, with the session that vouches for it: session if its backend is
// there, else none. It returns whether the member joined, and whether a
// session vouches for it.
func (d *Driver) memberUpsert(p *driver.ClaimParams, until time.Time, s *session) (string, []any) {
	if s == nil {
		return d.query(`INSERT INTO {schema}.subscription_members (subscription, owner, seen_until) VALUES ($1, $2, $3)
			ON CONFLICT (subscription, owner) DO UPDATE SET seen_until = excluded.seen_until, session_pid = NULL, session_start = NULL
			RETURNING xmax = 0, false`), []any{p.Subscription, p.Owner, until}
	}
	return d.query(`INSERT INTO {schema}.subscription_members (subscription, owner, seen_until, session_pid, session_start)
			SELECT $1, $2, $3, a.pid, a.backend_start
			FROM (VALUES (1)) AS one LEFT JOIN pg_stat_activity a ON a.pid = $4 AND a.backend_start = $5
			ON CONFLICT (subscription, owner) DO UPDATE
			SET seen_until = excluded.seen_until, session_pid = excluded.session_pid, session_start = excluded.session_start
			RETURNING xmax = 0, session_pid IS NOT NULL`), []any{p.Subscription, p.Owner, until, s.pid, s.start}
}

// dropEnded ends, in tx, the membership of the subscription's other
// members whose sessions have ended, and frees their partitions. It
// returns the partitions freed, and whether a member ended. backend_start
// is NULL for another role's backends where this role may not see it: the
// pid alone says then.
func (d *Driver) dropEnded(ctx context.Context, tx pgx.Tx, subscription, self string, now time.Time) ([]int, bool, error) {
	rows, err := tx.Query(ctx, d.query(`DELETE FROM {schema}.subscription_members m
		WHERE m.subscription = $1 AND m.owner <> $2 AND m.session_pid IS NOT NULL
		AND NOT EXISTS (SELECT FROM pg_stat_activity a
			WHERE a.pid = m.session_pid AND coalesce(a.backend_start = m.session_start, true))
		RETURNING m.owner`), subscription, self)
	if err != nil {
		return nil, false, translate(ctx, "claim", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(owners) == 0 {
		return nil, false, translate(ctx, "claim", err)
	}
	rows, err = tx.Query(ctx, d.query(`UPDATE {schema}.subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = $3
		WHERE subscription = $1 AND owner = ANY($2) RETURNING partition`), subscription, owners, now)
	if err != nil {
		return nil, false, translate(ctx, "claim", err)
	}
	freed, err := pgx.CollectRows(rows, pgx.RowTo[int])
	return freed, true, translate(ctx, "claim", err)
}

type partitionRow struct {
	driver.PartitionStatus
	partitions int
}

func rowsStatus(rows []partitionRow) []driver.PartitionStatus {
	out := make([]driver.PartitionStatus, len(rows))
	for i, r := range rows {
		out[i] = r.PartitionStatus
	}
	return out
}

func (d *Driver) partitionRows(ctx context.Context, q querier, subscription string, lock bool) ([]partitionRow, error) {
	query := `SELECT partition, partitions, position, coalesce(owner, ''), lease_until, updated_at
		FROM {schema}.subscription_partitions WHERE subscription = $1 ORDER BY partition`
	if lock {
		query += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, d.query(query), subscription)
	if err != nil {
		return nil, translate(ctx, "read partitions", err)
	}
	defer rows.Close()
	var out []partitionRow
	for rows.Next() {
		var r partitionRow
		var until *time.Time
		if err := rows.Scan(&r.Partition, &r.partitions, &r.Position, &r.Owner, &until, &r.UpdatedAt); err != nil {
			return nil, translate(ctx, "read partitions", err)
		}
		if until != nil {
			r.LeaseUntil = until.UTC()
		}
		r.UpdatedAt = r.UpdatedAt.UTC()
		out = append(out, r)
	}
	return out, translate(ctx, "read partitions", rows.Err())
}

// Release implements driver.Subscriptions.
func (d *Driver) Release(ctx context.Context, p *driver.ReleaseParams) error {
	partitions := p.Partitions
	if partitions == nil {
		partitions = []int{} // NULL would match nothing
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// Partitions first, then members: the order Claim locks them in.
		tag, err := tx.Exec(ctx, d.query(`UPDATE {schema}.subscription_partitions SET owner = NULL, lease_until = NULL, updated_at = clock_timestamp()
			WHERE subscription = $1 AND owner = $2 AND (cardinality($3::int[]) = 0 OR partition = ANY($3))`), p.Subscription, p.Owner, partitions)
		if err != nil {
			return translate(ctx, "release", err)
		}
		if len(partitions) == 0 {
			if _, err := tx.Exec(ctx, d.query(`DELETE FROM {schema}.subscription_members WHERE subscription = $1 AND owner = $2`), p.Subscription, p.Owner); err != nil {
				return translate(ctx, "release", err)
			}
		}
		if tag.RowsAffected() > 0 {
			return d.notifyMembers(ctx, tx, p.Subscription)
		}
		return nil
	})
}

// notifyMembers tells the subscription's subscribers in every process,
// once tx commits, that its partitions are to be shared out again (see
// MembersChanged).
func (d *Driver) notifyMembers(ctx context.Context, tx pgx.Tx, subscription string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, d.sql.channel, membersPrefix+subscription)
	return translate(ctx, "notify members", err)
}

// CheckpointTx implements driver.Subscriptions.
func (d *Driver) CheckpointTx(ctx context.Context, tx pgx.Tx, p *driver.CheckpointParams) error {
	tag, err := tx.Exec(ctx, d.query(`UPDATE {schema}.subscription_partitions
		SET position = $4, lease_until = clock_timestamp() + $5 * interval '1 microsecond', updated_at = clock_timestamp()
		WHERE subscription = $1 AND partition = $2 AND owner = $3`),
		p.Subscription, p.Partition, p.Owner, p.Position, p.Lease.Microseconds())
	if err != nil {
		return translate(ctx, "checkpoint", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: checkpoint %s/%d: %w", p.Subscription, p.Partition, event.ErrLeaseLost)
	}
	return nil
}

// ParkTx implements driver.Subscriptions.
func (d *Driver) ParkTx(ctx context.Context, tx pgx.Tx, p *driver.ParkParams) error {
	_, err := tx.Exec(ctx, d.query(`INSERT INTO {schema}.parked_events
		(subscription, position, partition, event_id, stream_id, type, attempts, error, state, parked_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp(), clock_timestamp())
		ON CONFLICT (subscription, position) DO UPDATE SET
			attempts = parked_events.attempts + excluded.attempts, error = excluded.error,
			state = excluded.state, updated_at = excluded.updated_at`),
		p.Subscription, p.Position, p.Partition, p.EventID, p.StreamID, p.Type, p.Attempts, p.Error, driver.ParkedWaiting)
	return translate(ctx, "park", err)
}

// Parked implements driver.Subscriptions.
func (d *Driver) Parked(ctx context.Context, p *driver.ParkedParams) ([]driver.Parked, error) {
	states := p.States
	if states == nil {
		states = []string{}
	}
	rows, err := d.pool.Query(ctx, d.query(`SELECT subscription, partition, position, event_id, stream_id, type, attempts, error, state, parked_at, updated_at
		FROM {schema}.parked_events
		WHERE subscription = $1 AND position > $2 AND ($3 < 0 OR partition = $3)
		  AND (cardinality($4::text[]) = 0 OR state = ANY($4))
		ORDER BY position LIMIT $5`), p.Subscription, p.After, p.Partition, states, p.Limit)
	if err != nil {
		return nil, translate(ctx, "parked", err)
	}
	defer rows.Close()
	var out []driver.Parked
	for rows.Next() {
		var r driver.Parked
		if err := rows.Scan(&r.Subscription, &r.Partition, &r.Position, &r.EventID, &r.StreamID, &r.Type, &r.Attempts, &r.Error, &r.State, &r.ParkedAt, &r.UpdatedAt); err != nil {
			return nil, translate(ctx, "parked", err)
		}
		r.ParkedAt, r.UpdatedAt = r.ParkedAt.UTC(), r.UpdatedAt.UTC()
		out = append(out, r)
	}
	return out, translate(ctx, "parked", rows.Err())
}

// SetParkedStateTx implements driver.Subscriptions.
func (d *Driver) SetParkedStateTx(ctx context.Context, tx pgx.Tx, p *driver.SetParkedStateParams) error {
	tag, err := tx.Exec(ctx, d.query(`UPDATE {schema}.parked_events
		SET state = $4, error = CASE WHEN $5 = '' THEN error ELSE $5 END, attempts = attempts + $6, updated_at = clock_timestamp()
		WHERE subscription = $1 AND position = $2 AND state = ANY($3)`),
		p.Subscription, p.Position, p.From, p.To, p.Error, p.AddAttempts)
	if err != nil {
		return translate(ctx, "set parked state", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s at %d in state %s: %w", p.Subscription, p.Position, strings.Join(p.From, "|"), event.ErrParkedNotFound)
	}
	return nil
}

// SubscriptionStatus implements driver.Subscriptions.
func (d *Driver) SubscriptionStatus(ctx context.Context, subscription string) (*driver.SubscriptionStatus, error) {
	rows, err := d.partitionRows(ctx, d.pool, subscription, false)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("postgres: subscription %q: %w", subscription, event.ErrSubscriptionNotFound)
	}
	st := &driver.SubscriptionStatus{Subscription: subscription, Partitions: rowsStatus(rows)}
	err = d.pool.QueryRow(ctx, d.query(`SELECT
			(SELECT count(*) FROM {schema}.parked_events WHERE subscription = $1 AND state = ANY($2)),
			(SELECT coalesce(max(position), 0) FROM {schema}.events)`),
		subscription, []string{driver.ParkedWaiting, driver.ParkedRetrying}).Scan(&st.Parked, &st.Head)
	return st, translate(ctx, "subscription status", err)
}

// Subscriptions implements driver.Subscriptions.
func (d *Driver) Subscriptions(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, d.query(`SELECT DISTINCT subscription FROM {schema}.subscription_partitions ORDER BY subscription`))
	if err != nil {
		return nil, translate(ctx, "subscriptions", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, translate(ctx, "subscriptions", err)
}
