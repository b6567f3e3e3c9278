package platform_test

import (
	"fmt"

	"github.com/rawevents/rawevents/examples/royalties"
	"github.com/rawevents/rawevents/examples/royalties/platform"
)

// Generate the default data for seed 1: what is in it, and how untidy.
func Example() {
	d := platform.Generate(platform.Config{Seed: 1})
	h := platform.Counts(d.History())
	fmt.Printf("history %s..%s: %d tracks, %d claims, %d rates, %d usage reports\n", d.Months[0], d.Months[len(d.Months)-1],
		h[royalties.TypeTrackRegistered], h[royalties.TypeShareClaimed], h[royalties.TypeRatePublished], h[royalties.TypeUsageReported])
	fmt.Printf("live in %s: %d usage reports; Send posts %d\n", d.Current, len(d.Live()), len(d.Outbox))
	a := d.Anomalies
	fmt.Printf("%d disputed claims, %d tracks with late shares, %d unclaimed, late rate %s\n",
		len(a.Disputed), len(a.LateShares), len(a.Unclaimed), a.LateRate)
	fmt.Printf("%d late reports, %d corrections, %d duplicates, %d resends\n",
		len(a.LateReports), len(a.Corrections), len(a.Duplicates), len(a.Resends))
	for _, it := range d.Items[:20] {
		if it.Type() == royalties.TypeTrackRegistered {
			fmt.Println(string(it.JSON()))
			break
		}
	}
	fmt.Println(string(d.Items[d.HistoryLen].JSON()))
	// Output:
	// history 2025-01..2025-12: 200 tracks, 1414 claims, 12 rates, 8315 usage reports
	// live in 2026-01: 875 usage reports; Send posts 879
	// 15 disputed claims, 6 tracks with late shares, 32 unclaimed, late rate rate-0012
	// 82 late reports, 50 corrections, 46 duplicates, 4 resends
	// {"id":"trk-000002","type":"track.registered","isrc":"FRRAW1400002","title":"Naïve Überall (Acoustic)","artists":["Mila Ferreira"],"released":"2014-11-12"}
	// {"id":"rpt-0008752","type":"usage.reported","platform":"tunewave","isrc":"BRRAW1100164","territory":"GB","period":"2026-01","plays":399}
}
