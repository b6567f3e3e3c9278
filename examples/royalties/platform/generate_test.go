package platform

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rawevents/rawevents/examples/royalties"
)

func TestGenerateIsDeterministic(t *testing.T) {
	for _, cfg := range []Config{{Seed: 1}, {Seed: 7, Months: 3, Tracks: 30, Holders: 6, Platforms: 2, Territories: 5}} {
		a, b := Generate(cfg), Generate(cfg)
		ja, jb := a.JSON(), b.JSON()
		if len(ja) != len(jb) {
			t.Fatalf("%+v: %d items, then %d", cfg, len(ja), len(jb))
		}
		for i := range ja {
			if !bytes.Equal(ja[i], jb[i]) {
				t.Fatalf("%+v: item %d differs:\n%s\n%s", cfg, i, ja[i], jb[i])
			}
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%+v: the same JSON but not the same Data", cfg)
		}
		other := cfg
		other.Seed++
		if reflect.DeepEqual(Generate(other).JSON(), ja) {
			t.Errorf("%+v: seed %d makes the same items", cfg, other.Seed)
		}
	}
}

func TestGenerateDefaults(t *testing.T) {
	d := Generate(Config{Seed: 1})
	want := Config{Seed: 1, Months: 12, Start: "2025-01", Tracks: 200, Holders: 40, Platforms: 3, Territories: 4}
	if d.Config != want {
		t.Errorf("Config = %+v, want %+v", d.Config, want)
	}
	if len(d.Months) != 12 || d.Months[0] != "2025-01" || d.Months[11] != "2025-12" || d.Current != "2026-01" {
		t.Errorf("Months = %v, Current = %s", d.Months, d.Current)
	}
	if !slices.Equal(d.Platforms, []string{"streamfy", "tunewave", "soundbox"}) ||
		!slices.Equal(d.Territories, []string{"US", "GB", "DE", "BR"}) || len(d.Holders) != 40 {
		t.Errorf("Platforms %v, Territories %v, %d holders", d.Platforms, d.Territories, len(d.Holders))
	}
	h, l := Counts(d.History()), Counts(d.Live())
	if h[royalties.TypeTrackRegistered] != 200 || h[royalties.TypeRatePublished] != 12 ||
		h[royalties.TypeShareClaimed] < 800 || h[royalties.TypeUsageReported] < 12*300 {
		t.Errorf("history counts %v", h)
	}
	if len(l) != 1 || l[royalties.TypeUsageReported] < 300 {
		t.Errorf("live counts %v: want usage reports only", l)
	}
	t.Logf("seed 1: history %v, live %v, outbox %d", h, l, len(d.Outbox))
}

// TestItems checks what holds of every item, for a few seeds and sizes.
func TestItems(t *testing.T) {
	for _, cfg := range []Config{{Seed: 1}, {Seed: 2}, {Seed: 3, Months: 4, Tracks: 40, Start: "2019-11"}} {
		d := Generate(cfg)
		checkItems(t, d)
	}
}

func checkItems(t *testing.T, d *Data) {
	t.Helper()
	seen := make(map[string]json.RawMessage)
	registered := make(map[string]bool)
	rates := make(map[string]int)
	unicode := false
	isMonth := func(s string) bool { _, err := parseMonth(s); return err == nil }
	for i, it := range d.Items {
		raw := it.JSON()
		var flat map[string]any
		if err := json.Unmarshal(raw, &flat); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		for k, v := range flat {
			if _, nested := v.(map[string]any); nested {
				t.Errorf("item %d: %s is an object: %s", i, k, raw)
			}
		}
		if flat["id"] != it.ID() || flat["type"] != it.Type() || it.ID() == "" || it.Type() == "" {
			t.Fatalf("item %d: id %q type %q in %s", i, it.ID(), it.Type(), raw)
		}
		if prev, ok := seen[it.ID()]; ok {
			if !bytes.Equal(prev, raw) || !slices.Contains(d.Anomalies.Duplicates, it.ID()) {
				t.Errorf("item %d: id %s again, not as a listed duplicate: %s", i, it.ID(), raw)
			}
		}
		seen[it.ID()] = raw
		if i < d.HistoryLen {
			if it.Month > d.Months[len(d.Months)-1] || !slices.Contains(d.Months, it.Month) {
				t.Errorf("history item %d in month %q", i, it.Month)
			}
		} else if it.Month != d.Current || it.Type() != royalties.TypeUsageReported {
			t.Errorf("live item %d: %s in %s", i, it.Type(), it.Month)
		}
		if i > 0 && it.Month < d.Items[i-1].Month {
			t.Errorf("item %d in %s after one in %s", i, it.Month, d.Items[i-1].Month)
		}
		switch r := it.Raw.(type) {
		case royalties.RawTrack:
			if registered[r.ISRC] || len(r.ISRC) != 12 || r.Title == "" || len(r.Artists) == 0 || r.Released[:7] > it.Month {
				t.Errorf("item %d: track %+v in %s", i, r, it.Month)
			}
			registered[r.ISRC] = true
			unicode = unicode || !isASCII(r.Title) || !isASCII(strings.Join(r.Artists, ""))
		case royalties.RawClaim:
			if !registered[r.ISRC] || r.BP <= 0 || r.BP > 10000 || !isMonth(r.From) || r.From > it.Month ||
				!slices.Contains(d.Holders, r.Holder) || !slices.Contains(d.Territories, r.Territory) {
				t.Errorf("item %d: claim %+v in %s", i, r, it.Month)
			}
		case royalties.RawRate:
			rates[r.Platform+"/"+r.Territory]++
			if r.Rate <= 0 {
				t.Errorf("item %d: rate %+v", i, r)
			}
		case royalties.RawUsage:
			if !registered[r.ISRC] || r.Plays <= 0 || !isMonth(r.Period) || r.Period > it.Month ||
				!slices.Contains(d.Platforms, r.Platform) || !slices.Contains(d.Territories, r.Territory) {
				t.Errorf("item %d: usage %+v in %s", i, r, it.Month)
			}
		default:
			t.Fatalf("item %d: %T", i, it.Raw)
		}
	}
	if len(rates) != len(d.Platforms)*len(d.Territories) {
		t.Errorf("rates for %d pairs, want %d", len(rates), len(d.Platforms)*len(d.Territories))
	}
	for pair, n := range rates {
		if n != 1 {
			t.Errorf("%d rates for %s", n, pair)
		}
	}
	if !unicode {
		t.Error("no title or artist beyond ASCII")
	}
}

func isASCII(s string) bool { return utf8.RuneCountInString(s) == len(s) }

// TestAnomalies checks that the untidy parts are there, and are what
// Anomalies says.
func TestAnomalies(t *testing.T) {
	for seed := range uint64(5) {
		d := Generate(Config{Seed: seed})
		a := d.Anomalies
		index := make(map[string]int) // id -> first index
		for i, it := range d.Items {
			if _, ok := index[it.ID()]; !ok {
				index[it.ID()] = i
			}
		}
		claims, usage := itemsOf[royalties.RawClaim](d), itemsOf[royalties.RawUsage](d)

		// Disputes: exactly the claims the rule turns down.
		var disputed []string
		sums := make(map[string]int64)
		for _, c := range claims {
			k := c.v.ISRC + "/" + c.v.Territory
			if sums[k]+c.v.BP > 10000 {
				disputed = append(disputed, c.v.ID)
			} else {
				sums[k] += c.v.BP
			}
		}
		if len(a.Disputed) == 0 || !slices.Equal(disputed, a.Disputed) {
			t.Errorf("seed %d: disputed claims %v, Anomalies says %v", seed, disputed, a.Disputed)
		}

		// Late shares: some usage of the track before any claim on it.
		if len(a.LateShares) == 0 {
			t.Errorf("seed %d: no late shares", seed)
		}
		for _, isrc := range a.LateShares {
			firstUse, firstClaim := -1, -1
			for _, u := range usage {
				if u.v.ISRC == isrc {
					firstUse = u.i
					break
				}
			}
			for _, c := range claims {
				if c.v.ISRC == isrc {
					firstClaim = c.i
					break
				}
			}
			if firstUse < 0 || firstClaim < 0 || firstUse > firstClaim || d.Items[firstUse].Month == d.Items[firstClaim].Month {
				t.Errorf("seed %d: late share %s: first usage at %d, first claim at %d", seed, isrc, firstUse, firstClaim)
			}
		}

		// Joined: a later From than the track's earlier claims there.
		if len(a.Joined) == 0 {
			t.Errorf("seed %d: no holder joins", seed)
		}
		for _, id := range a.Joined {
			j := d.Items[index[id]].Raw.(royalties.RawClaim)
			for _, c := range claims {
				if c.i < index[id] && c.v.ISRC == j.ISRC && c.v.Territory == j.Territory && c.v.From >= j.From {
					t.Errorf("seed %d: joined %+v after %+v", seed, j, c.v)
				}
			}
			if slices.Contains(a.Disputed, id) {
				t.Errorf("seed %d: joined claim %s is disputed", seed, id)
			}
		}

		// Unclaimed: never claimed.
		if len(a.Unclaimed) == 0 {
			t.Errorf("seed %d: every track is claimed everywhere", seed)
		}
		for _, c := range claims {
			if slices.Contains(a.Unclaimed, c.v.ISRC+"/"+c.v.Territory) {
				t.Errorf("seed %d: %s/%s is claimed by %s", seed, c.v.ISRC, c.v.Territory, c.v.ID)
			}
		}

		// The late rate: after usage on its platform in its territory.
		i, ok := index[a.LateRate]
		if !ok {
			t.Fatalf("seed %d: no late rate", seed)
		}
		r := d.Items[i].Raw.(royalties.RawRate)
		if d.Items[i].Month == d.Months[0] || !slices.ContainsFunc(usage, func(u indexed[royalties.RawUsage]) bool {
			return u.i < i && u.v.Platform == r.Platform && u.v.Territory == r.Territory
		}) {
			t.Errorf("seed %d: rate %+v in %s is not late", seed, r, d.Items[i].Month)
		}

		// Late reports: delivered after their period, some within the
		// history.
		inHistory := false
		for _, id := range a.LateReports {
			i := index[id]
			if u := d.Items[i].Raw.(royalties.RawUsage); u.Period >= d.Items[i].Month {
				t.Errorf("seed %d: late report %+v in %s", seed, u, d.Items[i].Month)
			}
			inHistory = inHistory || i < d.HistoryLen
		}
		if !inHistory {
			t.Errorf("seed %d: no late report in the history", seed)
		}
		for _, u := range usage {
			if index[u.v.ID] != u.i || u.v.Corrects != "" {
				continue // a duplicate, or a correction: late on purpose
			}
			if late := u.v.Period < d.Items[u.i].Month; late != slices.Contains(a.LateReports, u.v.ID) {
				t.Errorf("seed %d: report %s late %v, Anomalies says otherwise", seed, u.v.ID, late)
			}
		}

		// Corrections: of an earlier report, same place and period,
		// other plays; in the history and live.
		var histCorr, liveCorr, chain bool
		for _, id := range a.Corrections {
			i := index[id]
			c := d.Items[i].Raw.(royalties.RawUsage)
			j, ok := index[c.Corrects]
			if !ok || j >= i {
				t.Fatalf("seed %d: %s corrects %s, not delivered before", seed, id, c.Corrects)
			}
			o := d.Items[j].Raw.(royalties.RawUsage)
			if o.Platform != c.Platform || o.ISRC != c.ISRC || o.Territory != c.Territory || o.Period != c.Period || o.Plays == c.Plays {
				t.Errorf("seed %d: %+v corrects %+v", seed, c, o)
			}
			histCorr = histCorr || i < d.HistoryLen
			liveCorr = liveCorr || i >= d.HistoryLen
			chain = chain || o.Corrects != ""
		}
		if !histCorr || !liveCorr {
			t.Errorf("seed %d: corrections in the history %v, live %v", seed, histCorr, liveCorr)
		}
		if !chain {
			t.Errorf("seed %d: no correction is corrected", seed)
		}

		// Duplicates: in the history and live (checkItems checks they are
		// byte for byte).
		var histDup, liveDup bool
		counts := make(map[string]int)
		for i, it := range d.Items {
			if counts[it.ID()]++; counts[it.ID()] == 2 {
				histDup = histDup || i < d.HistoryLen
				liveDup = liveDup || i >= d.HistoryLen
			}
		}
		if !histDup || !liveDup {
			t.Errorf("seed %d: duplicates in the history %v, live %v", seed, histDup, liveDup)
		}
		for _, id := range a.Duplicates {
			if counts[id] < 2 {
				t.Errorf("seed %d: duplicate %s delivered %d times", seed, id, counts[id])
			}
		}

		// Outbox: the live items in order, and the resends among them.
		var live, resent []int
		for _, i := range d.Outbox {
			if i >= d.HistoryLen {
				live = append(live, i)
			} else {
				resent = append(resent, i)
			}
		}
		if len(live) != len(d.Live()) || !slices.IsSorted(live) || len(resent) != resendCount {
			t.Errorf("seed %d: outbox of %d live and %d resent items", seed, len(live), len(resent))
		}
		for k, i := range resent {
			if d.Items[i].ID() != a.Resends[k] || d.Items[i].Type() != royalties.TypeUsageReported {
				t.Errorf("seed %d: resend %d is %s, Anomalies says %s", seed, k, d.Items[i].ID(), a.Resends[k])
			}
		}
	}
}

type indexed[T any] struct {
	i int
	v T
}

func itemsOf[T any](d *Data) []indexed[T] {
	var out []indexed[T]
	for i, it := range d.Items {
		if v, ok := it.Raw.(T); ok {
			out = append(out, indexed[T]{i, v})
		}
	}
	return out
}

// TestSmallConfigs generates at the edges of the sizes, where a forced
// anomaly has no room.
func TestSmallConfigs(t *testing.T) {
	for seed := range uint64(30) {
		for _, cfg := range []Config{
			{Months: 1, Tracks: 1, Holders: 1, Platforms: 1, Territories: 1},
			{Months: 2, Tracks: 2, Holders: 2, Platforms: 1, Territories: 1},
			{Months: 3, Tracks: 5, Holders: 1, Platforms: 2, Territories: 2},
			{Months: 1, Tracks: 50, Holders: 3},
			{Months: 13, Tracks: 6, Holders: MaxHolders, Platforms: len(PlatformNames), Territories: len(TerritoryNames)},
		} {
			if cfg.Months == 13 && seed >= 3 {
				continue // big enough to be slow
			}
			cfg.Seed = seed
			d := Generate(cfg)
			if len(d.Items) == 0 || d.HistoryLen == 0 || len(d.Months) != cfg.Months {
				t.Errorf("%+v: %d items, %d history", cfg, len(d.Items), d.HistoryLen)
			}
			Expected(d)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if n := len(holderWords) * len(holderSuffixes); n != MaxHolders {
		t.Errorf("names for %d holders, MaxHolders is %d", n, MaxHolders)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{Months: -1}, "months is -1, want 1 to 600"},
		{Config{Start: "2025-13"}, `start: "2025-13" is not a month YYYY-MM`},
		{Config{Start: "2025-1"}, `start: "2025-1" is not a month YYYY-MM`},
		{Config{Platforms: 7}, "platforms is 7, want 1 to 6"},
		{Config{Territories: -2}, "territories is -2, want 1 to 8"},
		{Config{Holders: MaxHolders + 1}, "holders is 161, want 1 to 160"},
		{Config{Tracks: MaxTracks + 1}, "tracks is 100000, want 1 to 99999"},
	} {
		err := c.cfg.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("%+v: %q, want %q", c.cfg, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%+v: valid, want %q", c.cfg, c.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Generate of an invalid Config does not panic")
		}
	}()
	Generate(Config{Months: -1})
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(Config{Seed: 1})
	}
}
