// Package platform simulates the streaming platforms the royalties
// application gets its raw events from: a catalog, the rights holders'
// share claims, the platforms' rates, and monthly usage reports, with the
// untidiness of real feeds on purpose (disputed claims, shares that come
// late, late, corrected and duplicated reports, a rate published late).
//
// Generate makes the data, deterministically from a seed. Handler serves
// its history as a paged API, for a backfill; Send delivers its live part
// as signed webhooks. Expected computes, from the raw items alone, what
// each holder has earned, for tests to compare with the application.
package platform

import (
	"encoding/json"
	"fmt"

	"github.com/rawevents/rawevents/examples/royalties"
)

// Data is a generated history and its live continuation.
type Data struct {
	// Config is the configuration it was generated from, defaults filled
	// in.
	Config Config
	// Months are the months of history, YYYY-MM, oldest first.
	Months []string
	// Current is the month after the history: its usage is live.
	Current string
	// Platforms, Territories and Holders are the names in use.
	Platforms   []string
	Territories []string
	Holders     []string
	// Items are every raw event in the order they happened: each month's
	// in turn, the current month's last.
	Items []Item
	// HistoryLen is how many of Items are history (served by Handler);
	// the rest are live (sent by Send).
	HistoryLen int
	// Outbox lists, as indexes into Items, what Send posts, in order:
	// every live item, with the history items named in
	// Anomalies.Resends posted again among them.
	Outbox []int
	// Anomalies names the items made untidy on purpose.
	Anomalies Anomalies
}

// Item is one raw event.
type Item struct {
	// Month is the month it was delivered in, YYYY-MM.
	Month string
	// Raw is a royalties.RawTrack, RawClaim, RawRate or RawUsage value,
	// with its ID and Type set.
	Raw any
}

// Anomalies names the untidy parts of a Data, so tests know what to look
// for. Ids are the items' ids.
type Anomalies struct {
	// Disputed are the claims that would push their track's share in
	// their territory over 10,000 bp.
	Disputed []string
	// LateShares are the ISRCs of tracks whose claims were delivered
	// after some of their usage.
	LateShares []string
	// Joined are claims by a further holder, from a month after the
	// track's first claims (so earlier usage is not theirs).
	Joined []string
	// Unclaimed are the tracks and territories no one ever claims, as
	// "ISRC/territory".
	Unclaimed []string
	// LateRate is the rate published after usage on its platform in its
	// territory had been reported; "" if there is none (one month of
	// history).
	LateRate string
	// LateReports are usage reports delivered in a month after their
	// period.
	LateReports []string
	// Corrections are reports that correct (replace) an earlier one;
	// one of them corrects a correction, given three months.
	Corrections []string
	// Duplicates are reports delivered twice, byte for byte.
	Duplicates []string
	// Resends are history items Send posts again among the live ones.
	Resends []string
}

// ID returns the item's id.
func (it Item) ID() string {
	switch r := it.Raw.(type) {
	case royalties.RawTrack:
		return r.ID
	case royalties.RawClaim:
		return r.ID
	case royalties.RawRate:
		return r.ID
	case royalties.RawUsage:
		return r.ID
	}
	return ""
}

// Type returns the item's type.
func (it Item) Type() string {
	switch r := it.Raw.(type) {
	case royalties.RawTrack:
		return r.Type
	case royalties.RawClaim:
		return r.Type
	case royalties.RawRate:
		return r.Type
	case royalties.RawUsage:
		return r.Type
	}
	return ""
}

// JSON returns the item as the platform delivers it: a flat JSON object.
// It panics if Raw cannot be encoded, which the raw types always can.
func (it Item) JSON() json.RawMessage {
	b, err := json.Marshal(it.Raw)
	if err != nil {
		panic(fmt.Sprintf("platform: item %T: %v", it.Raw, err))
	}
	return b
}

// JSON returns every item as JSON, in order.
func (d *Data) JSON() []json.RawMessage {
	out := make([]json.RawMessage, len(d.Items))
	for i, it := range d.Items {
		out[i] = it.JSON()
	}
	return out
}

// History returns the items up to the last full month: what Handler
// serves.
func (d *Data) History() []Item { return d.Items[:d.HistoryLen:d.HistoryLen] }

// Live returns the current month's items: what Send delivers.
func (d *Data) Live() []Item { return d.Items[d.HistoryLen:] }

// Counts returns how many items there are of each type in items.
func Counts(items []Item) map[string]int {
	counts := make(map[string]int)
	for _, it := range items {
		counts[it.Type()]++
	}
	return counts
}
