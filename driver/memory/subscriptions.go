package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
)

// subscription is a subscription's partitions, each with its checkpoint
// and lease, and its live members.
type subscription struct {
	// partitions are in partition order: partition i is partitions[i].
	partitions []driver.PartitionStatus
	// members maps each live member to the end of its membership.
	members map[string]time.Time
}

func (s *subscription) clone() *subscription {
	return &subscription{partitions: slices.Clone(s.partitions), members: maps.Clone(s.members)}
}

// now is the time of leases, parked events and snapshots, as the SQL
// drivers keep it: UTC, to the microsecond.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Claim implements driver.Subscriptions. Claims take the write lock, so
// they are serialised with each other and with every transaction: a
// transaction's checkpoint cannot be overtaken by a claim before it
// commits.
func (d *Driver) Claim(ctx context.Context, p *driver.ClaimParams) ([]driver.Claim, error) {
	var claims []driver.Claim
	err := d.exclusive(ctx, "claim", func(s *state) error {
		sub := s.subs[p.Subscription]
		have := 0
		if sub != nil {
			have = len(sub.partitions)
		}
		if p.Partitions < 1 || (sub != nil && have != p.Partitions) {
			return fmt.Errorf("memory: subscription %q has %d partitions, asked for %d: %w", p.Subscription, have, p.Partitions, event.ErrPartitionsChanged)
		}
		now := now()
		until := now.Add(p.Lease).Truncate(time.Microsecond)
		if sub == nil {
			sub = &subscription{members: map[string]time.Time{}}
			for i := range p.Partitions {
				sub.partitions = append(sub.partitions, driver.PartitionStatus{Partition: i, UpdatedAt: now})
			}
			s.subs[p.Subscription] = sub
		}
		sub.members[p.Owner] = until
		maps.DeleteFunc(sub.members, func(_ string, seenUntil time.Time) bool { return seenUntil.Before(now) })
		keep, drop := driver.Share(sub.partitions, p.Owner, len(sub.members), now)
		for _, part := range drop {
			sub.partitions[part].Owner, sub.partitions[part].LeaseUntil, sub.partitions[part].UpdatedAt = "", time.Time{}, now
		}
		for _, part := range keep {
			sub.partitions[part].Owner, sub.partitions[part].LeaseUntil, sub.partitions[part].UpdatedAt = p.Owner, until, now
			claims = append(claims, driver.Claim{Partition: part, Position: sub.partitions[part].Position})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// Release implements driver.Subscriptions.
func (d *Driver) Release(ctx context.Context, p *driver.ReleaseParams) error {
	return d.exclusive(ctx, "release", func(s *state) error {
		sub := s.subs[p.Subscription]
		if sub == nil {
			return nil
		}
		if len(p.Partitions) == 0 {
			delete(sub.members, p.Owner)
		}
		now := now()
		for i := range sub.partitions {
			part := &sub.partitions[i]
			if part.Owner != "" && part.Owner == p.Owner && (len(p.Partitions) == 0 || slices.Contains(p.Partitions, i)) {
				part.Owner, part.LeaseUntil, part.UpdatedAt = "", time.Time{}, now
			}
		}
		return nil
	})
}

// CheckpointTx implements driver.Subscriptions.
func (d *Driver) CheckpointTx(ctx context.Context, tx *Tx, p *driver.CheckpointParams) error {
	return d.withTx(ctx, "checkpoint", tx, func(v view) error {
		sub := v.subscription(p.Subscription)
		if sub == nil || p.Partition < 0 || p.Partition >= len(sub.partitions) ||
			p.Owner == "" || sub.partitions[p.Partition].Owner != p.Owner {
			return fmt.Errorf("memory: checkpoint %s/%d: %w", p.Subscription, p.Partition, event.ErrLeaseLost)
		}
		now := now()
		part := &v.writableSubscription(p.Subscription).partitions[p.Partition]
		part.Position, part.LeaseUntil, part.UpdatedAt = p.Position, now.Add(p.Lease).Truncate(time.Microsecond), now
		return nil
	})
}

// ParkTx implements driver.Subscriptions.
func (d *Driver) ParkTx(ctx context.Context, tx *Tx, p *driver.ParkParams) error {
	return d.withTx(ctx, "park", tx, func(v view) error {
		now := now()
		row, ok := v.parked(p.Subscription, p.Position)
		if ok {
			row.Attempts += p.Attempts
			row.Error, row.State, row.UpdatedAt = p.Error, driver.ParkedWaiting, now
		} else {
			row = driver.Parked{Subscription: p.Subscription, Partition: p.Partition, Position: p.Position, EventID: p.EventID,
				StreamID: p.StreamID, Type: p.Type, Attempts: p.Attempts, Error: p.Error, State: driver.ParkedWaiting,
				ParkedAt: now, UpdatedAt: now}
		}
		v.w.parked.put(p.Subscription, p.Position, row)
		return nil
	})
}

// Parked implements driver.Subscriptions.
func (d *Driver) Parked(ctx context.Context, p *driver.ParkedParams) ([]driver.Parked, error) {
	var out []driver.Parked
	err := d.read(ctx, "parked", func(s *state) error {
		for _, row := range s.parked[p.Subscription] {
			if row.Position > p.After && (p.Partition < 0 || row.Partition == p.Partition) &&
				(len(p.States) == 0 || slices.Contains(p.States, row.State)) {
				out = append(out, row)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b driver.Parked) int { return cmp.Compare(a.Position, b.Position) })
	if p.Limit >= 0 && len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}

// SetParkedStateTx implements driver.Subscriptions.
func (d *Driver) SetParkedStateTx(ctx context.Context, tx *Tx, p *driver.SetParkedStateParams) error {
	return d.withTx(ctx, "set parked state", tx, func(v view) error {
		row, ok := v.parked(p.Subscription, p.Position)
		if !ok || !slices.Contains(p.From, row.State) {
			return fmt.Errorf("memory: %s at %d in state %s: %w", p.Subscription, p.Position, strings.Join(p.From, "|"), event.ErrParkedNotFound)
		}
		row.State, row.Attempts, row.UpdatedAt = p.To, row.Attempts+p.AddAttempts, now()
		if p.Error != "" {
			row.Error = p.Error
		}
		v.w.parked.put(p.Subscription, p.Position, row)
		return nil
	})
}

// SubscriptionStatus implements driver.Subscriptions.
func (d *Driver) SubscriptionStatus(ctx context.Context, subscription string) (*driver.SubscriptionStatus, error) {
	var st *driver.SubscriptionStatus
	err := d.read(ctx, "subscription status", func(s *state) error {
		sub := s.subs[subscription]
		if sub == nil {
			return fmt.Errorf("memory: subscription %q: %w", subscription, event.ErrSubscriptionNotFound)
		}
		st = &driver.SubscriptionStatus{Subscription: subscription, Partitions: slices.Clone(sub.partitions), Head: int64(len(s.log))}
		for _, row := range s.parked[subscription] {
			if row.State == driver.ParkedWaiting || row.State == driver.ParkedRetrying {
				st.Parked++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// Subscriptions implements driver.Subscriptions. Names are in byte order.
func (d *Driver) Subscriptions(ctx context.Context) ([]string, error) {
	var names []string
	err := d.read(ctx, "subscriptions", func(s *state) error {
		names = slices.Sorted(maps.Keys(s.subs))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return names, nil
}
