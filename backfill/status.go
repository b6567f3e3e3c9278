package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/event"
)

// Status returns a backfill's progress as last saved: the data of the
// newest event of its progress stream. It fails with ErrNotFound when no
// backfill of that name has run.
func Status(ctx context.Context, store Reader, name string) (*Progress, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	events, err := store.ReadStream(ctx, Stream(name), &rawevents.ReadStreamOpts{Backwards: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("backfill %q: read progress: %w", name, err)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: %q has not run", ErrNotFound, name)
	}
	return decodeProgress(events[0])
}

func decodeProgress(e event.Event) (*Progress, error) {
	var p Progress
	if err := json.Unmarshal(e.Data, &p); err != nil {
		return nil, fmt.Errorf("backfill: progress event at position %d: %w", e.Position, err)
	}
	p.version = e.StreamVersion
	return &p, nil
}

// Names returns the names of the backfills that have run, in name order,
// from IndexStream.
func Names(ctx context.Context, store Reader) ([]string, error) {
	var names []string
	for from := int64(1); ; {
		events, err := store.ReadStream(ctx, IndexStream, &rawevents.ReadStreamOpts{From: from, Limit: rawevents.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("backfill: read %s: %w", IndexStream, err)
		}
		for _, e := range events {
			var r registered
			if err := json.Unmarshal(e.Data, &r); err != nil {
				return nil, fmt.Errorf("backfill: %s at position %d: %w", IndexStream, e.Position, err)
			}
			names = append(names, r.Name)
		}
		if len(events) < rawevents.MaxPageSize {
			break
		}
		from = events[len(events)-1].StreamVersion + 1
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// List returns the progress of the backfills that have run, in name order.
func List(ctx context.Context, store Reader) ([]Progress, error) {
	names, err := Names(ctx, store)
	if err != nil {
		return nil, err
	}
	out := make([]Progress, 0, len(names))
	for _, name := range names {
		p, err := Status(ctx, store, name)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// registered is the data of a TypeRegistered event.
type registered struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}
