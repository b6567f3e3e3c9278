package platform

import (
	"cmp"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/rawevents/rawevents/examples/royalties"
)

// TestExpectedByHand checks Expected on a handful of items whose earnings
// are worked out below.
func TestExpectedByHand(t *testing.T) {
	rate := func(id, platform, territory string, r int64) Item {
		return Item{Raw: royalties.RawRate{ID: id, Type: royalties.TypeRatePublished, Platform: platform, Territory: territory, Rate: r}}
	}
	track := func(isrc string) Item {
		return Item{Raw: royalties.RawTrack{ID: "trk-" + isrc, Type: royalties.TypeTrackRegistered, ISRC: isrc,
			Title: "Café " + isrc, Artists: []string{"Zoë"}, Released: "2024-12-01"}}
	}
	claim := func(id, isrc, territory, holder string, bp int64, from string) Item {
		return Item{Raw: royalties.RawClaim{ID: id, Type: royalties.TypeShareClaimed, ISRC: isrc, Holder: holder,
			Territory: territory, BP: bp, From: from}}
	}
	usage := func(id, platform, isrc, territory, period string, plays int64, corrects string) Item {
		return Item{Raw: royalties.RawUsage{ID: id, Type: royalties.TypeUsageReported, Platform: platform, ISRC: isrc,
			Territory: territory, Period: period, Plays: plays, Corrects: corrects}}
	}
	d := &Data{Items: []Item{
		rate("r1", "streamfy", "US", 4000),
		rate("r2", "streamfy", "GB", 3333),
		rate("r3", "tunewave", "GB", 5000),
		track("T1"),
		track("T2"),
		claim("c1", "T1", "US", "A", 6000, "2025-01"),
		claim("c2", "T1", "US", "B", 3000, "2025-02"), // only from February
		claim("c3", "T1", "US", "C", 2000, "2025-01"), // 11,000: disputed
		claim("c4", "T1", "US", "C", 1000, "2025-01"), // 10,000: accepted
		claim("c5", "T1", "GB", "A", 5000, "2025-01"),
		claim("c6", "T2", "GB", "A", 5000, "2025-01"),
		claim("c6", "T2", "GB", "A", 5000, "2025-01"), // a duplicate: not a second share
		usage("u1", "streamfy", "T1", "US", "2025-01", 1001, ""),
		usage("u1", "streamfy", "T1", "US", "2025-01", 1001, ""), // a duplicate
		usage("u2", "streamfy", "T1", "US", "2025-02", 500, ""),
		usage("u3", "streamfy", "T1", "US", "2025-02", 700, "u2"), // replaces u2
		usage("u4", "streamfy", "T1", "GB", "2025-01", 1, ""),
		usage("u5", "streamfy", "T2", "GB", "2025-01", 1, ""),
		usage("u6", "tunewave", "T1", "US", "2025-01", 999, ""), // its rate comes later
		usage("u7", "streamfy", "T3", "US", "2025-01", 50, ""),  // no track, no shares
		usage("u8", "streamfy", "T2", "US", "2025-01", 3, ""),   // its share comes later
		usage("u9", "streamfy", "T2", "US", "2025-02", 10, "u10"),
		usage("u10", "streamfy", "T2", "US", "2025-02", 99999, ""), // replaced by u9, before it
		usage("u11", "tunewave", "T1", "GB", "2025-01", 3, ""),
		usage("u12", "soundbox", "T1", "US", "2025-01", 5, ""), // no rate ever: nothing
		claim("c7", "T2", "US", "E", 10000, "2025-01"),
		rate("r4", "tunewave", "US", 2000),
	}}
	d.HistoryLen = len(d.Items)

	// January on streamfy:
	//   A: US 1001 plays * 6000 bp = 6,006,000 * 4000 / 10000 = 2,402,400;
	//      GB (T1 1 * 5000) + (T2 1 * 5000) = 10,000 * 3333 / 10000 = 3,333
	//      (per report it would be 1,666 + 1,666), so 2,405,733.
	//   B: nothing before February.
	//   C: 1001 * 1000 = 1,001,000 * 4000 / 10000 = 400,400.
	//   E: 3 * 10000 = 30,000 * 4000 / 10000 = 12,000.
	// January on tunewave:
	//   A: US 999 * 6000 = 5,994,000 * 2000 / 10000 = 1,198,800;
	//      GB 3 * 5000 = 15,000 * 5000 / 10000 = 7,500; so 1,206,300.
	//   C: 999 * 1000 = 999,000 * 2000 / 10000 = 199,800.
	// February on streamfy (u3's 700 plays, not u2's 500; u9's 10):
	//   A: 700 * 6000 = 4,200,000 * 4000 / 10000 = 1,680,000.
	//   B: 700 * 3000 = 2,100,000 * 4000 / 10000 = 840,000.
	//   C: 700 * 1000 = 700,000 * 4000 / 10000 = 280,000.
	//   E: 10 * 10000 = 100,000 * 4000 / 10000 = 40,000.
	want := map[EarningsKey]int64{
		{"A", "2025-01", "streamfy"}: 2_405_733,
		{"C", "2025-01", "streamfy"}: 400_400,
		{"E", "2025-01", "streamfy"}: 12_000,
		{"A", "2025-01", "tunewave"}: 1_206_300,
		{"C", "2025-01", "tunewave"}: 199_800,
		{"A", "2025-02", "streamfy"}: 1_680_000,
		{"B", "2025-02", "streamfy"}: 840_000,
		{"C", "2025-02", "streamfy"}: 280_000,
		{"E", "2025-02", "streamfy"}: 40_000,
	}
	if got := Expected(d); !reflect.DeepEqual(got, want) {
		for _, k := range slices.SortedFunc(maps.Keys(merge(got, want)), compareKeys) {
			if got[k] != want[k] {
				t.Errorf("%v: %d, want %d", k, got[k], want[k])
			}
		}
	}
}

func merge(a, b map[EarningsKey]int64) map[EarningsKey]int64 {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func compareKeys(a, b EarningsKey) int {
	return cmp.Or(cmp.Compare(a.Holder, b.Holder), cmp.Compare(a.Month, b.Month), cmp.Compare(a.Platform, b.Platform))
}

// TestExpectedOfGenerated checks what Expected must make of any Data:
// deliveries twice over, or in the order Send adds resends, change
// nothing; every key is a known holder, month and platform.
func TestExpectedOfGenerated(t *testing.T) {
	d := Generate(Config{Seed: 1, Months: 6, Tracks: 120})
	want := Expected(d)
	if len(want) == 0 {
		t.Fatal("no earnings")
	}
	months := append(slices.Clone(d.Months), d.Current)
	live := false
	for k, v := range want {
		if v <= 0 || !slices.Contains(d.Holders, k.Holder) || !slices.Contains(months, k.Month) || !slices.Contains(d.Platforms, k.Platform) {
			t.Errorf("%v: %d", k, v)
		}
		live = live || k.Month == d.Current
	}
	if !live {
		t.Error("no earnings in the current month")
	}

	twice := &Data{}
	for _, it := range d.Items {
		twice.Items = append(twice.Items, it, it)
	}
	if !reflect.DeepEqual(Expected(twice), want) {
		t.Error("every item delivered twice: other earnings")
	}
	delivered := &Data{Items: slices.Clone(d.History())}
	for _, i := range d.Outbox {
		delivered.Items = append(delivered.Items, d.Items[i])
	}
	if !reflect.DeepEqual(Expected(delivered), want) {
		t.Error("the history, then the outbox: other earnings")
	}
	if history := Expected(&Data{Items: d.History()}); reflect.DeepEqual(history, want) {
		t.Error("the history alone: the same earnings")
	}
}
