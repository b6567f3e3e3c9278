package platform

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/rawevents/rawevents/examples/royalties"
)

// How untidy the data is, in per mille of the tracks, territories or
// reports each anomaly touches. Each anomaly that the size allows happens
// at least once.
//
// Generation uses integers only: floating point may be computed
// differently from one CPU to another (fused multiply-add), and the same
// seed must give the same data everywhere.
const (
	lateShareRate  = 30 // tracks whose claims come late
	unclaimedRate  = 40 // (track, territory) never claimed
	disputeRate    = 20 // claimed (track, territory) with a disputed claim
	joinRate       = 80 // (track, territory) under 10,000 bp a holder joins later
	lateReportRate = 10 // reports delivered one to three months late
	correctionRate = 6  // reports corrected the month after
	duplicateRate  = 6  // reports delivered again the month after
	resendCount    = 4  // history reports Send posts again
)

// perMille returns n * pm / 1000, rounded.
func perMille(n, pm int) int { return (n*pm + 500) / 1000 }

// chance is true pm times in 1000.
func (g *gen) chance(pm int) bool { return g.rng.IntN(1000) < pm }

// Generate makes a history of Config.Months months and the current
// month's live usage, deterministically from Config.Seed: the same Config
// gives the same Data, byte for byte. It panics if cfg is invalid; check
// it first with Config.Validate.
//
// Every month, in this order: the rates (all of them in the first month;
// one, named in Anomalies.LateRate, in a later month), the tracks released
// that month (the back catalog in the first month), each followed by its
// claims, the claims that come later (late shares, joining holders,
// disputes), then that month's usage reports, shuffled, with the late,
// corrected and duplicated ones among them. The current month has usage
// only.
func Generate(cfg Config) *Data {
	if err := cfg.Validate(); err != nil {
		panic("platform: " + strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	cfg = cfg.WithDefaults()
	g := &gen{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x7261776576656e74)),
		d: &Data{
			Config:      cfg,
			Platforms:   slices.Clone(PlatformNames[:cfg.Platforms]),
			Territories: slices.Clone(TerritoryNames[:cfg.Territories]),
		},
	}
	g.months()
	g.holders()
	g.tracks()
	g.rates()
	g.usage()
	g.claims()
	g.lateRate()
	g.untidyUsage()
	g.assemble()
	return g.d
}

type gen struct {
	cfg Config
	rng *rand.Rand
	d   *Data

	holderW     []int
	artists     []string
	tracksList  []*track
	byISRC      map[string]*track     // for look-ups only, never ranged over
	rateItems   [][]royalties.RawRate // [platform][territory]
	lateRateP   int                   // the late rate's platform, or -1
	lateRateT   int
	lateMonth   int
	regs        [][]Item // per month: registrations, each with its claims
	laterClaims [][]Item // per month: claims that come after registration
	usageBy     [][]*report
	reportSeq   int
	claimSeq    int
}

type track struct {
	raw       royalties.RawTrack
	release   int // month index of release; -1 for the back catalog
	reg       int // month index of registration
	from      string
	rank      int      // by popularity, from 0
	avail     [][]bool // [platform][territory]
	split     []share
	lateShare bool
	first     int // first month with usage delivered, or -1
}

type share struct {
	holder string
	bp     int64
}

type report struct {
	raw       royalties.RawUsage
	listed    int  // month delivered
	dup       bool // a second delivery
	corrected bool
}

func (g *gen) months() {
	t, _ := parseMonth(g.cfg.Start)
	for m := range g.cfg.Months {
		g.d.Months = append(g.d.Months, addMonths(t, m))
	}
	g.d.Current = addMonths(t, g.cfg.Months)
	n := g.cfg.Months + 1
	g.regs = make([][]Item, n)
	g.laterClaims = make([][]Item, n)
	g.usageBy = make([][]*report, n)
}

// month returns the month at index m: history, then the current one.
func (g *gen) month(m int) string {
	if m == g.cfg.Months {
		return g.d.Current
	}
	return g.d.Months[m]
}

func (g *gen) holders() {
	var all []string
	for _, w := range holderWords {
		for _, s := range holderSuffixes {
			all = append(all, w+"-"+s)
		}
	}
	g.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	g.d.Holders = all[:g.cfg.Holders]
	// A few big publishers hold much of the catalog.
	for i := range g.d.Holders {
		g.holderW = append(g.holderW, 1_000_000/(i+3))
	}
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// weighted picks an index with probability proportional to its weight.
func (g *gen) weighted(w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	r := g.rng.IntN(total)
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

func (g *gen) artistPool() {
	n := max(8, g.cfg.Tracks/3)
	seen := make(map[string]bool)
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			g.artists = append(g.artists, name)
		}
	}
	for _, name := range otherScriptArtists {
		add(name)
	}
	for tries := 0; len(g.artists) < n && tries < 100*n; tries++ {
		switch r := g.rng.IntN(100); {
		case r < 65:
			add(g.pick(firstNames) + " " + g.pick(lastNames))
		case r < 80:
			add("The " + g.pick(titleAdjectives) + " " + g.pick(titleNouns))
		case r < 90:
			add(g.pick(lastNames) + " " + g.pick(bandNouns))
		default:
			add("DJ " + g.pick(firstNames))
		}
	}
}

func (g *gen) title() string {
	switch r := g.rng.IntN(100); {
	case r < 35:
		return g.pick(titleAdjectives) + " " + g.pick(titleNouns)
	case r < 50:
		return g.pick(titleNouns)
	case r < 62:
		return "The " + g.pick(titleAdjectives) + " " + g.pick(titleNouns)
	case r < 74:
		return g.pick(titleNouns) + " in " + g.pick(titlePlaces)
	case r < 86:
		return g.pick(titleNouns) + " of " + g.pick(titleNouns)
	default:
		return g.pick(titleAdjectives) + " " + g.pick(titleNouns) + " (" + g.pick(titleMixes) + ")"
	}
}

func (g *gen) tracks() {
	g.artistPool()
	n := g.cfg.Tracks
	g.byISRC = make(map[string]*track, n)
	ranks := g.rng.Perm(n)
	startT, _ := parseMonth(g.cfg.Start)
	for i := range n {
		t := &track{first: -1}
		var year, month, day int
		if g.chance(600) {
			t.release = -1
			year = startT.Year() - 1 - g.rng.IntN(25)
			month = 1 + g.rng.IntN(12)
		} else {
			t.release = g.rng.IntN(g.cfg.Months)
			rt := startT.AddDate(0, t.release, 0)
			year, month = rt.Year(), int(rt.Month())
		}
		day = 1 + g.rng.IntN(28)
		t.reg = max(t.release, 0)
		t.from = fmt.Sprintf("%04d-%02d", year, month)
		t.rank = ranks[i]
		nArtists := 1
		if r := g.rng.IntN(100); r >= 95 {
			nArtists = 3
		} else if r >= 75 {
			nArtists = 2
		}
		var artists []string
		for len(artists) < min(nArtists, len(g.artists)) {
			if a := g.pick(g.artists); !slices.Contains(artists, a) {
				artists = append(artists, a)
			}
		}
		t.raw = royalties.RawTrack{
			ID:   fmt.Sprintf("trk-%06d", i+1),
			Type: royalties.TypeTrackRegistered,
			ISRC: fmt.Sprintf("%s%s%02d%05d", g.pick(TerritoryNames), g.pick(isrcRegistrants),
				year%100, i+1),
			Title:    g.title(),
			Artists:  artists,
			Released: fmt.Sprintf("%04d-%02d-%02d", year, month, day),
		}
		t.avail = make([][]bool, g.cfg.Platforms)
		for p := range t.avail {
			t.avail[p] = make([]bool, g.cfg.Territories)
			for ter := range t.avail[p] {
				t.avail[p][ter] = ranks[i] < 10 || g.chance(330)
			}
		}
		t.split = g.split()
		g.tracksList = append(g.tracksList, t)
		g.byISRC[t.raw.ISRC] = t
	}
}

// split makes the shares of a track in a territory: one to three holders,
// usually 10,000 bp between them, sometimes less.
func (g *gen) split() []share {
	n := 1
	if r := g.rng.IntN(100); r >= 80 {
		n = 3
	} else if r >= 40 {
		n = 2
	}
	total := int64(10000)
	if g.chance(200) {
		total = 5000 + 250*int64(g.rng.IntN(19))
	}
	var holders []string
	for tries := 0; len(holders) < n && tries < 50; tries++ {
		h := g.d.Holders[g.weighted(g.holderW)]
		if !slices.Contains(holders, h) {
			holders = append(holders, h)
		}
	}
	if len(holders) == 0 {
		holders = []string{g.d.Holders[0]}
	}
	n = len(holders)
	// n parts of at least 500 bp, in steps of 50.
	units := int(total / 50)
	cuts := []int{0, units - 10*n}
	for range n - 1 {
		cuts = append(cuts, g.rng.IntN(units-10*n+1))
	}
	slices.Sort(cuts)
	out := make([]share, n)
	for i := range n {
		out[i] = share{holders[i], int64(50 * (cuts[i+1] - cuts[i] + 10))}
	}
	if n == 3 && total == 10000 && g.chance(150) {
		out[0].bp, out[1].bp, out[2].bp = 3334, 3333, 3333
	}
	return out
}

func (g *gen) rates() {
	g.rateItems = make([][]royalties.RawRate, g.cfg.Platforms)
	seq := 0
	for p := range g.cfg.Platforms {
		for t := range g.cfg.Territories {
			seq++
			jitter := int64(950 + g.rng.IntN(101)) // per mille
			g.rateItems[p] = append(g.rateItems[p], royalties.RawRate{
				ID:        fmt.Sprintf("rate-%04d", seq),
				Type:      royalties.TypeRatePublished,
				Platform:  g.d.Platforms[p],
				Territory: g.d.Territories[t],
				Rate:      (platformRates[p]*territoryRateFactors[t]*jitter + 500_000) / 1_000_000,
			})
		}
	}
	g.lateRateP = -1
}

func (g *gen) newReport(p, t int, tr *track, period int, plays int64) *report {
	g.reportSeq++
	return &report{raw: royalties.RawUsage{
		ID:        fmt.Sprintf("rpt-%07d", g.reportSeq),
		Type:      royalties.TypeUsageReported,
		Platform:  g.d.Platforms[p],
		ISRC:      tr.raw.ISRC,
		Territory: g.d.Territories[t],
		Period:    g.month(period),
		Plays:     plays,
	}}
}

// usage makes every month's reports, the current one's included, and
// picks the ones that come late.
func (g *gen) usage() {
	const base = 250_000
	last := g.cfg.Months // the current month
	var late []*report
	for m := 0; m <= last; m++ {
		for p := range g.cfg.Platforms {
			for _, tr := range g.tracksList {
				if tr.reg > m {
					continue
				}
				boost := int64(100) // percent: new releases are played more
				if age := m - tr.release; tr.release >= 0 && age < len(newReleaseBoost) {
					boost = newReleaseBoost[age]
				}
				for t := range g.cfg.Territories {
					if !tr.avail[p][t] {
						continue
					}
					// The plays to expect: Zipf's law by rank, times the
					// shares in percent.
					lam := base * boost * platformShares[p] * territoryShares[t] / 1_000_000 / int64(tr.rank+1)
					if int64(g.rng.IntN(400)) >= 140+lam {
						continue // a quiet month: no report
					}
					plays := max(1, lam*int64(700+g.rng.IntN(601))/1000)
					r := g.newReport(p, t, tr, m, plays)
					r.listed = m
					if m < last && g.chance(lateReportRate) {
						r.listed = min(last, m+1+g.rng.IntN(3))
						late = append(late, r)
					}
					g.usageBy[m] = append(g.usageBy[m], r)
				}
			}
		}
	}
	// At least one report late within the history, when there is room.
	if g.cfg.Months >= 2 && !slices.ContainsFunc(late, func(r *report) bool { return r.listed < last }) {
		var onTime []*report
		for _, r := range g.usageBy[0] {
			if r.listed == 0 {
				onTime = append(onTime, r)
			}
		}
		if len(onTime) > 0 {
			r := onTime[g.rng.IntN(len(onTime))]
			r.listed = 1
			late = append(late, r)
		}
	}
	// Move the late ones to the month they are delivered in.
	for m := range g.usageBy {
		g.usageBy[m] = slices.DeleteFunc(g.usageBy[m], func(r *report) bool { return r.listed != m })
	}
	for _, r := range late {
		g.usageBy[r.listed] = append(g.usageBy[r.listed], r)
		g.d.Anomalies.LateReports = append(g.d.Anomalies.LateReports, r.raw.ID)
	}
	for m, reports := range g.usageBy {
		for _, r := range reports {
			if tr := g.byISRC[r.raw.ISRC]; tr.first < 0 || m < tr.first {
				tr.first = m
			}
		}
	}
}

func (g *gen) claim(tr *track, t int, s share, from string) royalties.RawClaim {
	g.claimSeq++
	return royalties.RawClaim{
		ID:        fmt.Sprintf("clm-%06d", g.claimSeq),
		Type:      royalties.TypeShareClaimed,
		ISRC:      tr.raw.ISRC,
		Holder:    s.holder,
		Territory: g.d.Territories[t],
		BP:        s.bp,
		From:      from,
	}
}

// claims registers the tracks and makes their claims: most when the
// track is registered, some late, a few disputed or joined later.
func (g *gen) claims() {
	last := g.cfg.Months - 1 // the last month of history
	// Late shares: tracks with usage delivered in their registration month
	// and room for their claims to come one to three months later.
	var candidates []*track
	for _, tr := range g.tracksList {
		if tr.first == tr.reg && tr.reg < last {
			candidates = append(candidates, tr)
		}
	}
	g.rng.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, tr := range candidates[:min(len(candidates), max(1, perMille(len(g.tracksList), lateShareRate)))] {
		tr.lateShare = true
	}

	type territory struct {
		tr     *track
		t      int
		month  int // when its first claims are delivered
		shares []share
	}
	// Which (track, territory) no one claims: a few, never on a track
	// whose shares come late; at least one when there are a few.
	none := make([][]bool, len(g.tracksList))
	var open [][2]int
	anyNone := false
	for i, tr := range g.tracksList {
		none[i] = make([]bool, g.cfg.Territories)
		for t := range none[i] {
			if tr.lateShare {
				continue
			}
			open = append(open, [2]int{i, t})
			none[i][t] = g.chance(unclaimedRate)
			anyNone = anyNone || none[i][t]
		}
	}
	if !anyNone && len(open) >= 4 {
		o := open[g.rng.IntN(len(open))]
		none[o[0]][o[1]] = true
	}
	var claimed []*territory
	for i, tr := range g.tracksList {
		month := tr.reg
		if tr.lateShare {
			month = min(last, tr.reg+1+g.rng.IntN(3))
			g.d.Anomalies.LateShares = append(g.d.Anomalies.LateShares, tr.raw.ISRC)
		}
		g.regs[tr.reg] = append(g.regs[tr.reg], Item{Raw: tr.raw})
		for t := range g.cfg.Territories {
			if none[i][t] {
				g.d.Anomalies.Unclaimed = append(g.d.Anomalies.Unclaimed, tr.raw.ISRC+"/"+g.d.Territories[t])
				continue
			}
			shares := tr.split
			if g.chance(150) {
				shares = g.split() // a sub-publisher of its own there
			}
			claimed = append(claimed, &territory{tr, t, month, shares})
			for _, s := range shares {
				c := Item{Raw: g.claim(tr, t, s, tr.from)}
				if month == tr.reg {
					g.regs[month] = append(g.regs[month], c)
				} else {
					g.laterClaims[month] = append(g.laterClaims[month], c)
				}
			}
		}
	}

	// Disputes and joining holders, on distinct territories.
	order := g.rng.Perm(len(claimed))
	nDisputes := max(1, perMille(len(claimed), disputeRate))
	var disputed, joined []*territory
	for _, i := range order {
		c := claimed[i]
		var sum int64
		for _, s := range c.shares {
			sum += s.bp
		}
		switch {
		case len(disputed) < nDisputes:
			disputed = append(disputed, c)
		case sum < 10000 && c.month < last && (len(joined) == 0 || g.chance(joinRate)):
			joined = append(joined, c)
		}
	}
	// In (track, territory) order, so the claims read as they were made.
	byPlace := func(a, b *territory) int {
		if a.tr != b.tr {
			return strings.Compare(a.tr.raw.ID, b.tr.raw.ID)
		}
		return a.t - b.t
	}
	slices.SortFunc(disputed, byPlace)
	slices.SortFunc(joined, byPlace)
	type later struct {
		month int
		claim royalties.RawClaim
	}
	var extra []later
	for _, c := range disputed {
		var sum int64
		for _, s := range c.shares {
			sum += s.bp
		}
		// More than what is left: 10,000 - sum + extra > 10,000 - sum.
		bp := 10000 - sum + 50*int64(1+g.rng.IntN(int(min(sum, 3000)/50)))
		holder := g.d.Holders[g.weighted(g.holderW)]
		month := min(last, c.month+g.rng.IntN(3))
		cl := g.claim(c.tr, c.t, share{holder, bp}, c.tr.from)
		extra = append(extra, later{month, cl})
		g.d.Anomalies.Disputed = append(g.d.Anomalies.Disputed, cl.ID)
	}
	for _, c := range joined {
		var sum int64
		var holders []string
		for _, s := range c.shares {
			sum += s.bp
			holders = append(holders, s.holder)
		}
		var holder string
		for range 20 {
			if h := g.d.Holders[g.weighted(g.holderW)]; !slices.Contains(holders, h) {
				holder = h
				break
			}
		}
		if holder == "" {
			continue
		}
		bp := 50 * int64(1+g.rng.IntN(int((10000-sum)/50)))
		month := c.month + 1 + g.rng.IntN(last-c.month)
		cl := g.claim(c.tr, c.t, share{holder, bp}, g.month(month))
		extra = append(extra, later{month, cl})
		g.d.Anomalies.Joined = append(g.d.Anomalies.Joined, cl.ID)
	}
	for _, e := range extra {
		g.laterClaims[e.month] = append(g.laterClaims[e.month], Item{Raw: e.claim})
	}
}

// lateRate picks a platform and territory with usage delivered before a
// month a third of the way in, and publishes its rate only then.
func (g *gen) lateRate() {
	if g.cfg.Months < 2 {
		return
	}
	g.lateMonth = max(1, g.cfg.Months/3)
	type pair struct{ p, t int }
	var pairs []pair
	seen := make(map[pair]bool)
	for m := range g.lateMonth {
		for _, r := range g.usageBy[m] {
			p := pair{slices.Index(g.d.Platforms, r.raw.Platform), slices.Index(g.d.Territories, r.raw.Territory)}
			if !seen[p] {
				seen[p] = true
				pairs = append(pairs, p)
			}
		}
	}
	if len(pairs) == 0 {
		return
	}
	p := pairs[g.rng.IntN(len(pairs))]
	g.lateRateP, g.lateRateT = p.p, p.t
	g.d.Anomalies.LateRate = g.rateItems[p.p][p.t].ID
}

// untidyUsage adds, month by month, corrections and duplicates of the
// previous month's reports, shuffles each month's reports, and, in the
// current month, delivers one report twice.
func (g *gen) untidyUsage() {
	chained := false
	for m := 1; m <= g.cfg.Months; m++ {
		var prev []*report
		for _, r := range g.usageBy[m-1] {
			if !r.dup {
				prev = append(prev, r)
			}
		}
		nCorrect := perMille(len(prev), correctionRate)
		if m == 1 || m == g.cfg.Months {
			nCorrect = max(nCorrect, 2) // some in the history, some live
		}
		nDup := perMille(len(prev), duplicateRate)
		if m == 1 {
			nDup = max(nDup, 1)
		}
		var added []*report
		order := g.rng.Perm(len(prev))
		if !chained {
			// Correct a correction first, once, when there is one.
			if k := slices.IndexFunc(order, func(i int) bool { return prev[i].raw.Corrects != "" && !prev[i].corrected }); k > 0 {
				order[0], order[k] = order[k], order[0]
			}
		}
		for _, i := range order {
			if nCorrect == 0 {
				break
			}
			r := prev[i]
			// Each report is corrected once; a correction may be corrected
			// in its turn, once in all.
			if r.corrected || (r.raw.Corrects != "" && chained) {
				continue
			}
			if r.raw.Corrects != "" {
				chained = true
			}
			r.corrected = true
			plays := r.raw.Plays
			for plays == r.raw.Plays {
				plays = max(1, r.raw.Plays*int64(500+g.rng.IntN(1001))/1000)
				if r.raw.Plays == 1 {
					plays = 2
				}
			}
			c := &report{raw: r.raw, listed: m}
			g.reportSeq++
			c.raw.ID = fmt.Sprintf("rpt-%07d", g.reportSeq)
			c.raw.Plays = plays
			c.raw.Corrects = r.raw.ID
			added = append(added, c)
			g.d.Anomalies.Corrections = append(g.d.Anomalies.Corrections, c.raw.ID)
			nCorrect--
		}
		if m < g.cfg.Months {
			for _, i := range g.rng.Perm(len(prev))[:min(nDup, len(prev))] {
				added = append(added, &report{raw: prev[i].raw, listed: m, dup: true})
				g.d.Anomalies.Duplicates = append(g.d.Anomalies.Duplicates, prev[i].raw.ID)
			}
		}
		g.usageBy[m] = append(g.usageBy[m], added...)
	}
	for m, reports := range g.usageBy {
		g.rng.Shuffle(len(reports), func(i, j int) { reports[i], reports[j] = reports[j], reports[i] })
		if m == g.cfg.Months && len(reports) >= 2 {
			// One live report delivered twice, the second time later on.
			i := g.rng.IntN(len(reports) - 1)
			at := i + 1 + g.rng.IntN(len(reports)-i)
			r := &report{raw: reports[i].raw, listed: m, dup: true}
			g.usageBy[m] = slices.Insert(reports, at, r)
			g.d.Anomalies.Duplicates = append(g.d.Anomalies.Duplicates, r.raw.ID)
		}
	}
}

// assemble lays the items out month by month and picks what Send posts
// again.
func (g *gen) assemble() {
	d := g.d
	for m := 0; m <= g.cfg.Months; m++ {
		if m == g.cfg.Months {
			d.HistoryLen = len(d.Items)
		}
		month := g.month(m)
		add := func(raw any) { d.Items = append(d.Items, Item{Month: month, Raw: raw}) }
		if m == 0 {
			for p := range g.rateItems {
				for t, r := range g.rateItems[p] {
					if p != g.lateRateP || t != g.lateRateT {
						add(r)
					}
				}
			}
		}
		if g.lateRateP >= 0 && m == g.lateMonth {
			add(g.rateItems[g.lateRateP][g.lateRateT])
		}
		for _, it := range g.regs[m] {
			add(it.Raw)
		}
		for _, it := range g.laterClaims[m] {
			add(it.Raw)
		}
		for _, r := range g.usageBy[m] {
			add(r.raw)
		}
	}
	// Anomalies in the order their items come.
	first := make(map[string]int, len(d.Items))
	for i := len(d.Items) - 1; i >= 0; i-- {
		first[d.Items[i].ID()] = i
	}
	byFirst := func(a, b string) int { return first[a] - first[b] }
	for _, ids := range [][]string{d.Anomalies.Disputed, d.Anomalies.Joined, d.Anomalies.LateReports,
		d.Anomalies.Corrections, d.Anomalies.Duplicates} {
		slices.SortStableFunc(ids, byFirst)
	}
	// Resends: a few reports of the last month of history, the ones a
	// backfill that just ended and the first webhooks could both carry.
	var last []int
	lastMonth := d.Months[len(d.Months)-1]
	for i, it := range d.History() {
		if _, ok := it.Raw.(royalties.RawUsage); ok && it.Month == lastMonth {
			last = append(last, i)
		}
	}
	var resends []int
	for _, i := range g.rng.Perm(len(last))[:min(resendCount, len(last))] {
		resends = append(resends, last[i])
	}
	slices.Sort(resends)
	at := make([]int, len(resends)) // how many live items go before each
	for i := range at {
		at[i] = g.rng.IntN(len(d.Items) - d.HistoryLen + 1)
	}
	slices.Sort(at)
	for live, r := d.HistoryLen, 0; live <= len(d.Items); live++ {
		for r < len(resends) && at[r] == live-d.HistoryLen {
			d.Outbox = append(d.Outbox, resends[r])
			d.Anomalies.Resends = append(d.Anomalies.Resends, d.Items[resends[r]].ID())
			r++
		}
		if live < len(d.Items) {
			d.Outbox = append(d.Outbox, live)
		}
	}
}
