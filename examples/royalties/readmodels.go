package royalties

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
)

// Projections are the application's read models.
func Projections() []*projection.Projection {
	return []*projection.Projection{Catalog(), Earnings(), Unmatched(), Disputes()}
}

// decode reads a domain event's data.
func decode[E any](e event.Event) (E, error) {
	var v E
	err := json.Unmarshal(e.Data, &v)
	return v, err
}

// isrcOf is the ISRC of a track's stream.
func isrcOf(e event.Event) string {
	return strings.TrimPrefix(e.StreamID, TrackAggregate().StreamID(""))
}

// Catalog is the catalog: tracks searchable by title and artists, and by
// exact ISRC (/v1/read/catalog/track/{isrc}).
func Catalog() *projection.Projection {
	return &projection.Projection{
		Name: "catalog", Version: 1, Types: []string{"royalties.track_registered"},
		Tables: []projection.Table{{
			Name: "track",
			Columns: []projection.Column{
				{Name: "isrc", Type: projection.Text},
				{Name: "title", Type: projection.Text},
				{Name: "artists", Type: projection.Text},
				{Name: "released", Type: projection.Text, Index: true},
			},
			Key: []string{"isrc"}, Search: []string{"title", "artists"},
		}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			t, err := decode[TrackRegistered](e)
			if err != nil {
				return err
			}
			return tx.Upsert(ctx, "track", projection.Row{
				"isrc": isrcOf(e), "title": t.Title, "artists": strings.Join(t.Artists, ", "), "released": t.Released,
			})
		},
	}
}

// Earnings is what each holder earned per month and platform, in
// micro-units (/v1/read/earnings/earnings?holder=H&month=M). Amounts are
// computed per territory from the allocated plays and the territory's
// rate, so a rate that arrives or changes later recomputes them; one
// partition keeps rates and allocations in log order.
func Earnings() *projection.Projection {
	return &projection.Projection{
		Name: "earnings", Version: 1,
		Types: []string{"royalties.royalties_allocated", "royalties.rate_published"},
		Tables: []projection.Table{
			{
				Name: "earnings",
				Columns: []projection.Column{
					{Name: "holder", Type: projection.Text}, {Name: "month", Type: projection.Text, Index: true},
					{Name: "platform", Type: projection.Text, Index: true}, {Name: "amount", Type: projection.Integer, Index: true},
				},
				Key: []string{"holder", "month", "platform"},
			},
			{
				Name: "by_territory",
				Columns: []projection.Column{
					{Name: "holder", Type: projection.Text}, {Name: "month", Type: projection.Text},
					{Name: "platform", Type: projection.Text, Index: true}, {Name: "territory", Type: projection.Text, Index: true},
					{Name: "plays_bp", Type: projection.Integer}, {Name: "amount", Type: projection.Integer},
				},
				Key: []string{"holder", "month", "platform", "territory"},
			},
			{
				Name: "rate",
				Columns: []projection.Column{
					{Name: "platform", Type: projection.Text}, {Name: "territory", Type: projection.Text},
					{Name: "rate", Type: projection.Integer},
				},
				Key: []string{"platform", "territory"},
			},
		},
		Handle: projectEarnings,
	}
}

func projectEarnings(ctx context.Context, tx *projection.Tx, e event.Event) error {
	switch e.Type {
	case "royalties.rate_published":
		r, err := decode[RatePublished](e)
		if err != nil {
			return err
		}
		if err := tx.Upsert(ctx, "rate", projection.Row{"platform": r.Platform, "territory": r.Territory, "rate": r.Rate}); err != nil {
			return err
		}
		rows, err := tx.List(ctx, "by_territory", projection.Row{"platform": r.Platform, "territory": r.Territory})
		if err != nil {
			return err
		}
		for _, row := range rows {
			if err := reprice(ctx, tx, row, r.Rate); err != nil {
				return err
			}
		}
		return nil
	case "royalties.royalties_allocated":
		a, err := decode[RoyaltiesAllocated](e)
		if err != nil {
			return err
		}
		key := projection.Row{"holder": a.Holder, "month": a.Period, "platform": a.Platform, "territory": a.Territory}
		if err := tx.Add(ctx, "by_territory", with(key, projection.Row{"plays_bp": a.PlaysBP, "amount": 0})); err != nil {
			return err
		}
		if err := tx.Add(ctx, "earnings", projection.Row{"holder": a.Holder, "month": a.Period, "platform": a.Platform, "amount": 0}); err != nil {
			return err
		}
		rate, err := tx.Get(ctx, "rate", a.Platform, a.Territory)
		if err != nil || rate == nil {
			return err // priced when the rate comes
		}
		row, err := tx.Get(ctx, "by_territory", a.Holder, a.Period, a.Platform, a.Territory)
		if err != nil {
			return err
		}
		return reprice(ctx, tx, row, rate["rate"].(int64))
	}
	return nil
}

// reprice sets a territory row's amount from its plays and rate, and
// moves the holder's monthly earnings by the difference.
func reprice(ctx context.Context, tx *projection.Tx, row projection.Row, rate int64) error {
	amount := row["plays_bp"].(int64) * rate / FullShare
	delta := amount - row["amount"].(int64)
	if delta == 0 {
		return nil
	}
	if _, err := tx.Update(ctx, "by_territory", with(row, projection.Row{"amount": amount})); err != nil {
		return err
	}
	return tx.Add(ctx, "earnings", projection.Row{"holder": row["holder"], "month": row["month"], "platform": row["platform"], "amount": delta})
}

// with returns a copy of a with b's columns set.
func with(a, b projection.Row) projection.Row {
	out := make(projection.Row, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Unmatched is the usage waiting for a share of its track
// (/v1/read/unmatched/usage).
func Unmatched() *projection.Projection {
	return &projection.Projection{
		Name: "unmatched", Version: 1, Types: []string{"royalties.usage_recorded", "royalties.usage_matched"},
		Tables: []projection.Table{{
			Name: "usage",
			Columns: []projection.Column{
				{Name: "report", Type: projection.Text}, {Name: "isrc", Type: projection.Text, Index: true},
				{Name: "platform", Type: projection.Text, Index: true}, {Name: "territory", Type: projection.Text, Index: true},
				{Name: "period", Type: projection.Text, Index: true}, {Name: "plays", Type: projection.Integer},
			},
			Key: []string{"report"},
		}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			switch e.Type {
			case "royalties.usage_recorded":
				u, err := decode[UsageRecorded](e)
				if err != nil {
					return err
				}
				if u.Supersedes != "" {
					if _, err := tx.Delete(ctx, "usage", u.Supersedes); err != nil {
						return err
					}
				}
				if u.Matched || u.Void {
					return nil
				}
				return tx.Upsert(ctx, "usage", projection.Row{"report": u.Report, "isrc": isrcOf(e), "platform": u.Platform,
					"territory": u.Territory, "period": u.Period, "plays": u.Plays})
			case "royalties.usage_matched":
				m, err := decode[UsageMatched](e)
				if err != nil {
					return err
				}
				_, err = tx.Delete(ctx, "usage", m.Report)
				return err
			}
			return nil
		},
	}
}

// Disputes are the claims that would have taken a territory over 100%
// (/v1/read/disputes/dispute).
func Disputes() *projection.Projection {
	return &projection.Projection{
		Name: "disputes", Version: 1, Types: []string{"royalties.claim_disputed"},
		Tables: []projection.Table{{
			Name: "dispute",
			Columns: []projection.Column{
				{Name: "claim", Type: projection.Text}, {Name: "isrc", Type: projection.Text, Index: true},
				{Name: "holder", Type: projection.Text, Index: true}, {Name: "territory", Type: projection.Text},
				{Name: "bp", Type: projection.Integer}, {Name: "accepted", Type: projection.Integer},
				{Name: "from", Type: projection.Text},
			},
			Key: []string{"claim"},
		}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			d, err := decode[ClaimDisputed](e)
			if err != nil {
				return err
			}
			return tx.Upsert(ctx, "dispute", projection.Row{"claim": d.Claim, "isrc": isrcOf(e), "holder": d.Holder,
				"territory": d.Territory, "bp": d.BP, "accepted": d.Accepted, "from": d.From})
		},
	}
}
