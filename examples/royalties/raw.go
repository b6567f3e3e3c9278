package royalties

// The raw events the royalties application receives. Every one is a flat
// JSON object with its own "id" and "type", the same whether it comes by
// webhook (signed, the body as it is) or from a platform's history API
// (an item of a page): ingestion keeps it byte for byte as the event's
// data, and (source, id) makes a delivery by both ways one raw event.

// Raw event types.
const (
	TypeTrackRegistered = "track.registered"
	TypeShareClaimed    = "share.claimed"
	TypeUsageReported   = "usage.reported"
	TypeRatePublished   = "rate.published"
)

// RawTrack registers a track in the catalog.
type RawTrack struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	ISRC     string   `json:"isrc"`
	Title    string   `json:"title"`
	Artists  []string `json:"artists"`
	Released string   `json:"released"` // YYYY-MM-DD
}

// RawClaim claims a share of a track's rights in a territory from a month
// on. Shares are in basis points: 10,000 is the whole.
type RawClaim struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	ISRC      string `json:"isrc"`
	Holder    string `json:"holder"`
	Territory string `json:"territory"`
	BP        int64  `json:"bp"`
	From      string `json:"from"` // YYYY-MM
}

// RawUsage reports the plays of a track on a platform in a territory
// during a month. A report that corrects another names it in Corrects
// and replaces it.
type RawUsage struct {
	ID        string `json:"id"` // the report's id
	Type      string `json:"type"`
	Platform  string `json:"platform"`
	ISRC      string `json:"isrc"`
	Territory string `json:"territory"`
	Period    string `json:"period"` // YYYY-MM
	Plays     int64  `json:"plays"`
	Corrects  string `json:"corrects,omitempty"`
}

// RawRate publishes what a platform pays per play in a territory, in
// micro-units of the currency (3,500 is 0.0035).
type RawRate struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Platform  string `json:"platform"`
	Territory string `json:"territory"`
	Rate      int64  `json:"rate"`
}
