package royalties

import (
	"slices"
	"strings"

	"github.com/rawevents/rawevents/domain"
)

// FullShare is a whole track's rights in a territory, in basis points.
const FullShare = 10_000

// Domain events of a track: what the company decided. Their JSON is
// stored: the tags keep it stable.
type (
	// TrackRegistered puts a track in the catalog.
	TrackRegistered struct {
		Title    string   `json:"title"`
		Artists  []string `json:"artists"`
		Released string   `json:"released"`
	}
	// ShareAccepted records a holder's share in a territory from a month
	// on.
	ShareAccepted struct {
		Claim     string `json:"claim"`
		Holder    string `json:"holder"`
		Territory string `json:"territory"`
		BP        int64  `json:"bp"`
		From      string `json:"from"`
	}
	// ClaimDisputed records a claim that would have taken the territory's
	// shares over 100%: kept for a person to settle, not accepted.
	ClaimDisputed struct {
		Claim     string `json:"claim"`
		Holder    string `json:"holder"`
		Territory string `json:"territory"`
		BP        int64  `json:"bp"`
		From      string `json:"from"`
		// Accepted is what the territory's accepted shares add up to.
		Accepted int64 `json:"accepted"`
	}
	// UsageRecorded records a usage report. Matched says whether a share
	// of the track applied to it; if not, it waits for one (UsageMatched).
	// Supersedes names the report it corrects, whose allocations were
	// taken back if it came first. Void marks a report whose correction
	// came before it: recorded, never counted.
	UsageRecorded struct {
		Report     string `json:"report"`
		Platform   string `json:"platform"`
		Territory  string `json:"territory"`
		Period     string `json:"period"`
		Plays      int64  `json:"plays"`
		Supersedes string `json:"supersedes,omitempty"`
		Matched    bool   `json:"matched"`
		Void       bool   `json:"void,omitempty"`
	}
	// UsageMatched says that a share now applies to a report that waited
	// unmatched.
	UsageMatched struct {
		Report string `json:"report"`
	}
	// RoyaltiesAllocated gives a holder plays times basis points of a
	// report; negative when a correction takes them back.
	RoyaltiesAllocated struct {
		Report    string `json:"report"`
		Holder    string `json:"holder"`
		Platform  string `json:"platform"`
		Territory string `json:"territory"`
		Period    string `json:"period"`
		PlaysBP   int64  `json:"plays_bp"`
	}
)

// Track is a track's state: its shares and the usage reported for it.
type Track struct {
	Registered bool
	Claims     map[string]bool          // claim ids decided
	Shares     []ShareAccepted          // accepted, in order
	Usage      map[string]UsageRecorded // reports by id, superseded ones included
	Superseded map[string]bool
}

// TrackAggregate describes tracks: streams "track-<ISRC>", a snapshot every
// 100 events.
func TrackAggregate() *domain.Aggregate[Track] {
	types := domain.NewTypes()
	domain.MustRegister[TrackRegistered](types, "royalties.track_registered", 1)
	domain.MustRegister[ShareAccepted](types, "royalties.share_accepted", 1)
	domain.MustRegister[ClaimDisputed](types, "royalties.claim_disputed", 1)
	domain.MustRegister[UsageRecorded](types, "royalties.usage_recorded", 1)
	domain.MustRegister[UsageMatched](types, "royalties.usage_matched", 1)
	domain.MustRegister[RoyaltiesAllocated](types, "royalties.royalties_allocated", 1)
	return &domain.Aggregate[Track]{
		Name: "track", Types: types, Apply: applyTrack,
		SnapshotEvery: 100, SnapshotVersion: 1,
	}
}

func applyTrack(t Track, e any) Track {
	// Earlier states share the maps and the slice: copy before writing.
	switch e := e.(type) {
	case TrackRegistered:
		t.Registered = true
	case ShareAccepted:
		t.Claims = withKey(t.Claims, e.Claim, true)
		t.Shares = append(slices.Clip(t.Shares), e)
	case ClaimDisputed:
		t.Claims = withKey(t.Claims, e.Claim, true)
	case UsageRecorded:
		t.Usage = withKey(t.Usage, e.Report, e)
		if e.Supersedes != "" {
			t.Superseded = withKey(t.Superseded, e.Supersedes, true)
		}
	case UsageMatched:
		u := t.Usage[e.Report]
		u.Matched = true
		t.Usage = withKey(t.Usage, e.Report, u)
	}
	return t
}

// withKey returns a copy of m with k set to v.
func withKey[V any](m map[string]V, k string, v V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// applies returns the accepted shares that apply to usage in territory
// during period.
func (t Track) applies(territory, period string) []ShareAccepted {
	var out []ShareAccepted
	for _, s := range t.Shares {
		if s.Territory == territory && s.From <= period {
			out = append(out, s)
		}
	}
	return out
}

// accepted is what the accepted shares of a territory add up to.
func (t Track) accepted(territory string) int64 {
	var n int64
	for _, s := range t.Shares {
		if s.Territory == territory {
			n += s.BP
		}
	}
	return n
}

// Commands on a track.
type (
	// Register puts a track in the catalog; registering it again changes
	// nothing.
	Register struct {
		ISRC     string
		Title    string
		Artists  []string
		Released string
	}
	// Claim asks for a share of a track in a territory.
	Claim struct {
		ISRC, ID, Holder, Territory, From string
		BP                                int64
	}
	// RecordUsage records a usage report.
	RecordUsage struct {
		ISRC, Report, Platform, Territory, Period, Corrects string
		Plays                                               int64
	}
)

// AggregateID is the track the command goes to.
func (c Register) AggregateID() string { return c.ISRC }

// AggregateID is the track the command goes to.
func (c Claim) AggregateID() string { return c.ISRC }

// AggregateID is the track the command goes to.
func (c RecordUsage) AggregateID() string { return c.ISRC }

// Decide registers the track once.
func (c Register) Decide(t Track) ([]any, error) {
	if t.Registered {
		return nil, nil
	}
	return []any{TrackRegistered{Title: c.Title, Artists: c.Artists, Released: c.Released}}, nil
}

// Decide accepts the claim if the territory's shares stay within 100%,
// records a dispute otherwise, and gives the new share its part of the
// usage already recorded. A claim decided before changes nothing.
func (c Claim) Decide(t Track) ([]any, error) {
	if t.Claims[c.ID] {
		return nil, nil
	}
	total := t.accepted(c.Territory)
	if total+c.BP > FullShare {
		return []any{ClaimDisputed{Claim: c.ID, Holder: c.Holder, Territory: c.Territory, BP: c.BP, From: c.From, Accepted: total}}, nil
	}
	share := ShareAccepted{Claim: c.ID, Holder: c.Holder, Territory: c.Territory, BP: c.BP, From: c.From}
	out := []any{share}
	for _, u := range t.effectiveUsage() {
		if u.Territory != c.Territory || u.Period < c.From {
			continue
		}
		if !u.Matched {
			out = append(out, UsageMatched{Report: u.Report})
		}
		out = append(out, allocation(u, share, 1))
	}
	return out, nil
}

// effectiveUsage returns the reports that count (not superseded), in
// report order so that decisions are deterministic.
func (t Track) effectiveUsage() []UsageRecorded {
	var out []UsageRecorded
	for id, u := range t.Usage {
		if !t.Superseded[id] && !u.Void {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b UsageRecorded) int { return strings.Compare(a.Report, b.Report) })
	return out
}

func allocation(u UsageRecorded, s ShareAccepted, sign int64) RoyaltiesAllocated {
	return RoyaltiesAllocated{Report: u.Report, Holder: s.Holder, Platform: u.Platform, Territory: u.Territory,
		Period: u.Period, PlaysBP: sign * u.Plays * s.BP}
}

// Decide records the report and allocates its plays to the shares that
// apply; a correction first takes back what the corrected report was
// given, and a report whose correction came first is recorded void. A
// report recorded before changes nothing.
func (c RecordUsage) Decide(t Track) ([]any, error) {
	if _, seen := t.Usage[c.Report]; seen {
		return nil, nil
	}
	shares := t.applies(c.Territory, c.Period)
	u := UsageRecorded{Report: c.Report, Platform: c.Platform, Territory: c.Territory, Period: c.Period, Plays: c.Plays,
		Supersedes: c.Corrects, Matched: len(shares) > 0}
	if t.Superseded[c.Report] {
		u.Void = true
		return []any{u}, nil
	}
	out := []any{u}
	if old, ok := t.Usage[c.Corrects]; ok && !t.Superseded[c.Corrects] && !old.Void {
		for _, s := range t.applies(old.Territory, old.Period) {
			out = append(out, allocation(old, s, -1))
		}
	}
	for _, s := range shares {
		out = append(out, allocation(u, s, 1))
	}
	return out, nil
}
