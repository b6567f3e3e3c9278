package driver

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Subscriptions is what the subscription engine needs from a database:
// the partitions of each subscription, each with its checkpoint and the
// lease of the process that works it, and the events a subscription
// parked. Checkpoints and parked events are written inside the handler's
// transaction, so a batch's effects and its progress commit together.
type Subscriptions[TTx any] interface {
	// Claim records owner as a live member of the subscription and returns
	// the partitions it holds after the call: the ones it already held,
	// renewed, plus free or expired ones, up to its fair share of the
	// partitions among the live members; beyond its share it releases the
	// highest-numbered ones so that a newcomer gets work. It fails with
	// event.ErrPartitionsChanged when the subscription was set up with a
	// different number of partitions.
	Claim(ctx context.Context, params *ClaimParams) ([]Claim, error)
	// Release gives up owner's partitions (all of them when Partitions is
	// empty) and its membership, so that others take them at once.
	Release(ctx context.Context, params *ReleaseParams) error
	// CheckpointTx moves a partition's checkpoint inside tx and renews the
	// lease. It fails with event.ErrLeaseLost, writing nothing, when the
	// partition is no longer owner's: the caller must roll tx back, which
	// is what keeps a process that lost its lease from committing a batch
	// that another process is doing again.
	CheckpointTx(ctx context.Context, tx TTx, params *CheckpointParams) error
	// ParkTx records, inside tx, an event that the handler failed on.
	// Parking an event twice updates the record.
	ParkTx(ctx context.Context, tx TTx, params *ParkParams) error
	// Parked lists a subscription's parked events in position order.
	Parked(ctx context.Context, params *ParkedParams) ([]Parked, error)
	// SetParkedStateTx changes a parked event's state inside tx, only if
	// it is in one of params.From; it returns event.ErrParkedNotFound
	// otherwise.
	SetParkedStateTx(ctx context.Context, tx TTx, params *SetParkedStateParams) error
	// SubscriptionStatus returns the state of a subscription's partitions
	// and how many of its events are parked, or event.ErrSubscriptionNotFound.
	SubscriptionStatus(ctx context.Context, subscription string) (*SubscriptionStatus, error)
	// Subscriptions lists the names of the subscriptions that have state.
	Subscriptions(ctx context.Context) ([]string, error)
}

// MembersNotifier is implemented by a driver that can tell every process
// at once that a subscription's membership changed: a process joined it,
// or gave partitions up (because it held more than its share, or
// stopped). Subscribers then claim again at once instead of at their next
// lease renewal, so that partitions are shared out within moments of a
// process starting or stopping, not a lease later.
type MembersNotifier interface {
	// MembersChanged returns a channel that is closed at the next change
	// of the subscription's members after the call (or when the driver
	// may have missed one).
	MembersChanged(ctx context.Context, subscription string) <-chan struct{}
}

// ClaimParams are the arguments of Claim.
type ClaimParams struct {
	Subscription string
	// Partitions is the subscription's partition count, > 0.
	Partitions int
	// Owner identifies the claiming process; unique per process run.
	Owner string
	// Lease is how long the claim (and the membership) lasts without a
	// renewal.
	Lease time.Duration
}

// Claim is a partition held under a lease.
type Claim struct {
	Partition int
	// Position is the partition's checkpoint: every event up to it is
	// done.
	Position int64
}

// ReleaseParams are the arguments of Release.
type ReleaseParams struct {
	Subscription string
	Owner        string
	// Partitions to release; empty releases all and ends the membership.
	Partitions []int
}

// CheckpointParams are the arguments of CheckpointTx.
type CheckpointParams struct {
	Subscription string
	Partition    int
	Owner        string
	// Position is the new checkpoint.
	Position int64
	// Lease renews the owner's lease for this long.
	Lease time.Duration
}

// Parked states.
const (
	// ParkedWaiting is a parked event nobody has acted on yet.
	ParkedWaiting = "parked"
	// ParkedRetrying is a parked event an operator asked to try again.
	ParkedRetrying = "retrying"
	// ParkedSkipped is a parked event an operator chose to leave undone.
	ParkedSkipped = "skipped"
	// ParkedResolved is a parked event that a retry handled.
	ParkedResolved = "resolved"
)

// ParkParams are the arguments of ParkTx.
type ParkParams struct {
	Subscription string
	Partition    int
	Position     int64
	EventID      uuid.UUID
	StreamID     string
	Type         string
	Attempts     int
	Error        string
}

// ParkedParams select parked events.
type ParkedParams struct {
	Subscription string
	// States keeps events in one of these states; empty keeps all.
	States []string
	// Partition keeps one partition's events when >= 0; -1 keeps all.
	Partition int
	// After is the position to list after.
	After int64
	// Limit is the page size, > 0.
	Limit int
}

// Parked is a parked event.
type Parked struct {
	Subscription string    `json:"subscription"`
	Partition    int       `json:"partition"`
	Position     int64     `json:"position"`
	EventID      uuid.UUID `json:"event_id"`
	StreamID     string    `json:"stream_id"`
	Type         string    `json:"type"`
	Attempts     int       `json:"attempts"`
	Error        string    `json:"error"`
	State        string    `json:"state"`
	ParkedAt     time.Time `json:"parked_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// SetParkedStateParams are the arguments of SetParkedStateTx.
type SetParkedStateParams struct {
	Subscription string
	Position     int64
	// From are the states the event may be in.
	From []string
	// To is the new state.
	To string
	// Error, when not empty, replaces the recorded error (a failed retry).
	Error string
	// AddAttempts is added to the attempt count.
	AddAttempts int
}

// SubscriptionStatus is the state of a subscription's partitions.
type SubscriptionStatus struct {
	Subscription string            `json:"subscription"`
	Partitions   []PartitionStatus `json:"partitions"`
	// Parked counts the events waiting in ParkedWaiting or
	// ParkedRetrying.
	Parked int `json:"parked"`
	// Head is the position of the last event in the log.
	Head int64 `json:"head"`
}

// PartitionStatus is one partition's checkpoint and lease.
type PartitionStatus struct {
	Partition int    `json:"partition"`
	Position  int64  `json:"position"`
	Owner     string `json:"owner,omitempty"`
	// LeaseUntil is when the owner's lease ends; zero when free.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Share decides a claim, for drivers: given a subscription's partitions,
// the claiming owner and the number of live members, it returns the
// partitions owner keeps or takes (its own first, then free or expired
// ones, in partition order, up to its fair share) and the ones it gives
// up because it holds more than its share.
func Share(partitions []PartitionStatus, owner string, live int, now time.Time) (keep, drop []int) {
	share := (len(partitions) + max(live, 1) - 1) / max(live, 1)
	var free []int
	for _, p := range partitions {
		switch {
		case p.Owner == owner:
			if len(keep) < share {
				keep = append(keep, p.Partition)
			} else {
				drop = append(drop, p.Partition)
			}
		case p.Owner == "" || p.LeaseUntil.Before(now):
			free = append(free, p.Partition)
		}
	}
	for _, p := range free {
		if len(keep) >= share {
			break
		}
		keep = append(keep, p)
	}
	return keep, drop
}
