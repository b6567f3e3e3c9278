package platform

import (
	"encoding/json"
	"fmt"

	"github.com/rawevents/rawevents/examples/royalties"
)

// EarningsKey is what Expected sums earnings by.
type EarningsKey struct {
	Holder   string
	Month    string // the usage's period, YYYY-MM
	Platform string
}

// Expected computes, from d's items alone (d.JSON(), history and live, in
// order; nothing else of d is read, so a hand-made Data needs only
// Items), what each holder has earned in each month
// on each platform, in micro-units. It is the yardstick the royalties
// application is tested against, which implements the same rules on its
// own:
//
//  1. An item whose id was seen before, in an earlier item of any type,
//     is ignored: a duplicate delivery.
//  2. A claim is accepted if, in its territory, the bp of the claims on
//     the same track already accepted, plus its own, come to at most
//     10,000, taking claims in the order they appear; otherwise it is
//     disputed and counts for nothing. Accepting does not depend on where
//     the claim is among the usage reports: shares that come late apply
//     to the usage already reported.
//  3. A rate applies to its platform and territory whenever it is
//     published; if a pair has several, the last one counts (the
//     generator publishes one per pair). Without a rate, usage earns 0.
//  4. A usage report whose id another report's Corrects names is replaced
//     by it and counts zero, whichever comes first; the correcting report
//     counts as any other (and may be corrected in its turn).
//  5. For each report that counts, for each accepted share on its track in
//     its territory whose From <= the report's Period (YYYY-MM, compared as
//     strings): plays_bp += Plays * BP, summed per (holder, month = the
//     report's Period, platform, territory).
//  6. amount(holder, month, platform, territory) = plays_bp *
//     rate(platform, territory) / 10000, in integer division (rounding
//     down) on the total per key, not per report.
//  7. earnings(holder, month, platform) = the sum of those amounts over
//     territories. Keys whose earnings are 0 are left out.
//
// It panics if an item is not a JSON object of a known raw type.
func Expected(d *Data) map[EarningsKey]int64 {
	type place struct{ isrc, territory string }
	type accepted struct {
		holder, from string
		bp           int64
	}
	type rateKey struct{ platform, territory string }
	type amountKey struct {
		EarningsKey
		territory string
	}
	seen := make(map[string]bool)
	shares := make(map[place][]accepted)
	claimedBP := make(map[place]int64)
	rates := make(map[rateKey]int64)
	replaced := make(map[string]bool)
	var reports []royalties.RawUsage
	for _, raw := range d.JSON() {
		// One decoding serves every type: the fields of the raw types.
		var x struct {
			royalties.RawUsage
			Holder string `json:"holder"`
			BP     int64  `json:"bp"`
			From   string `json:"from"`
			Rate   int64  `json:"rate"`
		}
		if err := json.Unmarshal(raw, &x); err != nil {
			panic(fmt.Sprintf("platform: Expected: %s: %v", raw, err))
		}
		if seen[x.ID] {
			continue
		}
		seen[x.ID] = true
		switch x.Type {
		case royalties.TypeTrackRegistered:
		case royalties.TypeShareClaimed:
			p := place{x.ISRC, x.Territory}
			if claimedBP[p]+x.BP <= 10000 {
				claimedBP[p] += x.BP
				shares[p] = append(shares[p], accepted{x.Holder, x.From, x.BP})
			}
		case royalties.TypeRatePublished:
			rates[rateKey{x.Platform, x.Territory}] = x.Rate
		case royalties.TypeUsageReported:
			reports = append(reports, x.RawUsage)
			if x.Corrects != "" {
				replaced[x.Corrects] = true
			}
		default:
			panic(fmt.Sprintf("platform: Expected: %s: unknown type %q", raw, x.Type))
		}
	}
	playsBP := make(map[amountKey]int64)
	for _, u := range reports {
		if replaced[u.ID] {
			continue
		}
		for _, s := range shares[place{u.ISRC, u.Territory}] {
			if s.from <= u.Period {
				playsBP[amountKey{EarningsKey{s.holder, u.Period, u.Platform}, u.Territory}] += u.Plays * s.bp
			}
		}
	}
	out := make(map[EarningsKey]int64)
	for k, v := range playsBP {
		if amount := v * rates[rateKey{k.Platform, k.territory}] / 10000; amount != 0 {
			out[k.EarningsKey] += amount
		}
	}
	return out
}
