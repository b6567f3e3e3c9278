package royalties

import (
	"context"
	"errors"
	"fmt"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
)

// RatePublished records what a platform pays per play in a territory, in
// micro-units.
type RatePublished struct {
	Platform  string `json:"platform"`
	Territory string `json:"territory"`
	Rate      int64  `json:"rate"`
}

// Rate is a platform's rate in a territory.
type Rate struct {
	Rate int64
}

// RateAggregate describes rates: streams "rate-<platform>:<territory>".
func RateAggregate() *domain.Aggregate[Rate] {
	types := domain.NewTypes()
	domain.MustRegister[RatePublished](types, "royalties.rate_published", 1)
	return &domain.Aggregate[Rate]{
		Name: "rate", Types: types,
		Apply: func(r Rate, e any) Rate { return Rate{Rate: e.(RatePublished).Rate} },
	}
}

// PublishRate sets a platform's rate in a territory.
type PublishRate struct {
	Platform, Territory string
	Rate                int64
}

// AggregateID is the rate the command sets: a platform's in a territory.
func (c PublishRate) AggregateID() string { return c.Platform + ":" + c.Territory }

// Decide records the rate when it changes.
func (c PublishRate) Decide(r Rate) ([]any, error) {
	if r.Rate == c.Rate {
		return nil, nil
	}
	return []any{RatePublished{Platform: c.Platform, Territory: c.Territory, Rate: c.Rate}}, nil
}

// ErrIncomplete is a raw event that lacks what its type needs: an error,
// so it is retried and then parked for a person to look at.
var ErrIncomplete = errors.New("raw event is incomplete")

// Process turns a raw event into the command it asks for.
func Process(_ context.Context, raw event.Event) ([]domain.Command, error) {
	switch raw.Type {
	case TypeTrackRegistered:
		var r RawTrack
		if err := domain.RawData(raw, &r); err != nil {
			return nil, err
		}
		if r.ISRC == "" {
			return nil, fmt.Errorf("%s %s: no isrc: %w", raw.Type, r.ID, ErrIncomplete)
		}
		return []domain.Command{Register{ISRC: r.ISRC, Title: r.Title, Artists: r.Artists, Released: r.Released}}, nil
	case TypeShareClaimed:
		var r RawClaim
		if err := domain.RawData(raw, &r); err != nil {
			return nil, err
		}
		if r.ISRC == "" || r.Holder == "" || r.Territory == "" || r.From == "" || r.BP <= 0 || r.BP > FullShare {
			return nil, fmt.Errorf("%s %s: %w", raw.Type, r.ID, ErrIncomplete)
		}
		return []domain.Command{Claim{ISRC: r.ISRC, ID: r.ID, Holder: r.Holder, Territory: r.Territory, From: r.From, BP: r.BP}}, nil
	case TypeUsageReported:
		var r RawUsage
		if err := domain.RawData(raw, &r); err != nil {
			return nil, err
		}
		if r.ISRC == "" || r.Platform == "" || r.Territory == "" || r.Period == "" || r.Plays < 0 {
			return nil, fmt.Errorf("%s %s: %w", raw.Type, r.ID, ErrIncomplete)
		}
		return []domain.Command{RecordUsage{ISRC: r.ISRC, Report: r.ID, Platform: r.Platform, Territory: r.Territory,
			Period: r.Period, Corrects: r.Corrects, Plays: r.Plays}}, nil
	case TypeRatePublished:
		var r RawRate
		if err := domain.RawData(raw, &r); err != nil {
			return nil, err
		}
		if r.Platform == "" || r.Territory == "" || r.Rate < 0 {
			return nil, fmt.Errorf("%s %s: %w", raw.Type, r.ID, ErrIncomplete)
		}
		return []domain.Command{PublishRate{Platform: r.Platform, Territory: r.Territory, Rate: r.Rate}}, nil
	}
	return nil, nil
}

// keyOf keys raw events by the aggregate they go to, so that each track's
// (and each rate's) raw events are processed in log order.
func keyOf(raw event.Event) string {
	var r struct {
		ISRC      string `json:"isrc"`
		Platform  string `json:"platform"`
		Territory string `json:"territory"`
	}
	_ = domain.RawData(raw, &r) // Process reports a malformed one
	if raw.Type == TypeRatePublished {
		return "rate:" + r.Platform + ":" + r.Territory
	}
	return "track:" + r.ISRC
}

// Setup returns the royalties processor and the track repository on
// store, whatever its backend.
func Setup[TTx any](store *rawevents.Store[TTx]) (*domain.Processor[TTx], *domain.Repository[TTx, Track], error) {
	tracks, err := domain.NewRepository(store, TrackAggregate())
	if err != nil {
		return nil, nil, err
	}
	rates, err := domain.NewRepository(store, RateAggregate())
	if err != nil {
		return nil, nil, err
	}
	router := domain.NewRouter[TTx]()
	if err := errors.Join(
		domain.RouteDecide(router, tracks, Register.Decide),
		domain.RouteDecide(router, tracks, Claim.Decide),
		domain.RouteDecide(router, tracks, RecordUsage.Decide),
		domain.RouteDecide(router, rates, PublishRate.Decide),
	); err != nil {
		return nil, nil, err
	}
	return &domain.Processor[TTx]{
		Name:    "royalties",
		Version: 1,
		Types:   []string{TypeTrackRegistered, TypeShareClaimed, TypeUsageReported, TypeRatePublished},
		Key:     keyOf,
		Process: Process,
		Router:  router,
	}, tracks, nil
}
