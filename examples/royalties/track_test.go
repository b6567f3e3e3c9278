package royalties_test

import (
	"testing"

	"github.com/rawevents/rawevents/domain/domaintest"
	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/projection"
	"github.com/rawevents/rawevents/projection/projectiontest"
)

func TestTrack(t *testing.T) {
	t.Parallel()
	track := royalties.TrackAggregate()
	ana := royalties.ShareAccepted{Claim: "c1", Holder: "ana", Territory: "US", BP: 6_000, From: "2025-01"}
	usage := royalties.UsageRecorded{Report: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 100, Matched: true}

	t.Run("AClaimOver100PercentIsADispute", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(track, ana).
			When(t, royalties.Claim{ISRC: "X", ID: "c2", Holder: "bo", Territory: "US", BP: 5_000, From: "2025-01"}.Decide).
			Then(t, royalties.ClaimDisputed{Claim: "c2", Holder: "bo", Territory: "US", BP: 5_000, From: "2025-01", Accepted: 6_000})
	})
	t.Run("AClaimUpTo100PercentIsAccepted", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(track, ana).
			When(t, royalties.Claim{ISRC: "X", ID: "c2", Holder: "bo", Territory: "US", BP: 4_000, From: "2025-03"}.Decide).
			Then(t, royalties.ShareAccepted{Claim: "c2", Holder: "bo", Territory: "US", BP: 4_000, From: "2025-03"})
	})
	t.Run("UsageIsAllocatedToTheSharesThatApply", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(track, ana).
			When(t, royalties.RecordUsage{ISRC: "X", Report: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 100}.Decide).
			Then(t, usage, royalties.RoyaltiesAllocated{Report: "r1", Holder: "ana", Platform: "streamfy", Territory: "US", Period: "2025-02", PlaysBP: 600_000})
	})
	t.Run("UsageWithoutSharesWaitsAndIsMatchedWhenOneArrives", func(t *testing.T) {
		t.Parallel()
		waiting := usage
		waiting.Matched = false
		domaintest.Given(track).
			When(t, royalties.RecordUsage{ISRC: "X", Report: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 100}.Decide).
			Then(t, waiting)
		domaintest.Given(track, waiting).
			When(t, royalties.Claim{ISRC: "X", ID: "c1", Holder: "ana", Territory: "US", BP: 6_000, From: "2025-01"}.Decide).
			Then(t, ana, royalties.UsageMatched{Report: "r1"},
				royalties.RoyaltiesAllocated{Report: "r1", Holder: "ana", Platform: "streamfy", Territory: "US", Period: "2025-02", PlaysBP: 600_000})
	})
	t.Run("AShareFromALaterMonthDoesNotApply", func(t *testing.T) {
		t.Parallel()
		waiting := usage
		waiting.Matched = false
		domaintest.Given(track, waiting).
			When(t, royalties.Claim{ISRC: "X", ID: "c1", Holder: "ana", Territory: "US", BP: 6_000, From: "2025-03"}.Decide).
			Then(t, royalties.ShareAccepted{Claim: "c1", Holder: "ana", Territory: "US", BP: 6_000, From: "2025-03"})
	})
	t.Run("ACorrectionSupersedesTheReport", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(track, ana, usage).
			When(t, royalties.RecordUsage{ISRC: "X", Report: "r2", Corrects: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 90}.Decide).
			Then(t,
				royalties.UsageRecorded{Report: "r2", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 90, Supersedes: "r1", Matched: true},
				royalties.RoyaltiesAllocated{Report: "r1", Holder: "ana", Platform: "streamfy", Territory: "US", Period: "2025-02", PlaysBP: -600_000},
				royalties.RoyaltiesAllocated{Report: "r2", Holder: "ana", Platform: "streamfy", Territory: "US", Period: "2025-02", PlaysBP: 540_000})
	})
	t.Run("AReportAfterItsCorrectionIsVoid", func(t *testing.T) {
		t.Parallel()
		correction := royalties.UsageRecorded{Report: "r2", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 90, Supersedes: "r1", Matched: true}
		void := usage
		void.Void = true
		domaintest.Given(track, ana, correction).
			When(t, royalties.RecordUsage{ISRC: "X", Report: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 100}.Decide).
			Then(t, void)
	})
	t.Run("AReportTwiceIsRecordedOnce", func(t *testing.T) {
		t.Parallel()
		domaintest.Given(track, ana, usage).
			When(t, royalties.RecordUsage{ISRC: "X", Report: "r1", Platform: "streamfy", Territory: "US", Period: "2025-02", Plays: 100}.Decide).
			Then(t)
	})
}

// TestEarnings: amounts follow the plays and the rate, whichever comes
// first, and a correction moves them.
func TestEarnings(t *testing.T) {
	t.Parallel()
	alloc := func(report string, playsBP int64) projectiontest.Event {
		return projectiontest.Event{Stream: "track-X", Type: "royalties.royalties_allocated", Data: royalties.RoyaltiesAllocated{
			Report: report, Holder: "ana", Platform: "streamfy", Territory: "US", Period: "2025-02", PlaysBP: playsBP}}
	}
	rate := func(r int64) projectiontest.Event {
		return projectiontest.Event{Stream: "rate-streamfy:US", Type: "royalties.rate_published",
			Data: royalties.RatePublished{Platform: "streamfy", Territory: "US", Rate: r}}
	}
	projectiontest.Given(t, royalties.Earnings(),
		alloc("r1", 600_000),                        // 100 plays at 60%, before the rate is known
		rate(3_500),                                 // 0.0035 a play: 100 * 0.6 * 0.0035 = 0.21
		alloc("r1", -600_000), alloc("r2", 540_000), // corrected to 90 plays
	).
		Then(t, "earnings", projection.Row{"holder": "ana", "month": "2025-02", "platform": "streamfy", "amount": 189_000}).
		Then(t, "by_territory", projection.Row{"holder": "ana", "month": "2025-02", "platform": "streamfy", "territory": "US", "plays_bp": 540_000, "amount": 189_000})
}
