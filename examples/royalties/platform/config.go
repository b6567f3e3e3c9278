package platform

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of a Config's zero fields.
const (
	DefaultMonths      = 12
	DefaultStart       = "2025-01"
	DefaultTracks      = 200
	DefaultHolders     = 40
	DefaultPlatforms   = 3
	DefaultTerritories = 4
)

// Upper bounds of a Config's fields.
const (
	MaxMonths = 600
	MaxTracks = 99_999
)

// Config says what to generate. Zero fields take the Default constants;
// negative ones are invalid.
type Config struct {
	// Seed makes the data: the same Config gives byte-identical data.
	Seed uint64
	// Months is the number of months of history; the month after them is
	// the current one, whose usage is delivered live.
	Months int
	// Start is the first month of history, YYYY-MM.
	Start string
	// Tracks is the size of the catalog.
	Tracks int
	// Holders is the number of rights holders, at most MaxHolders.
	Holders int
	// Platforms is the number of streaming platforms, at most
	// len(PlatformNames): the first ones of it.
	Platforms int
	// Territories is the number of territories, at most
	// len(TerritoryNames): the first ones of it.
	Territories int
}

// PlatformNames are the platforms a Config picks from, in order.
var PlatformNames = []string{"streamfy", "tunewave", "soundbox", "beatcast", "melodia", "groovehub"}

// TerritoryNames are the territories (ISO 3166 codes) a Config picks
// from, in order.
var TerritoryNames = []string{"US", "GB", "DE", "BR", "FR", "JP", "MX", "SE"}

// MaxHolders is the most holders a Config can ask for: as many as there
// are names for.
const MaxHolders = 160

// WithDefaults returns the Config with its zero fields set to the
// defaults.
func (c Config) WithDefaults() Config {
	if c.Months == 0 {
		c.Months = DefaultMonths
	}
	if c.Start == "" {
		c.Start = DefaultStart
	}
	if c.Tracks == 0 {
		c.Tracks = DefaultTracks
	}
	if c.Holders == 0 {
		c.Holders = DefaultHolders
	}
	if c.Platforms == 0 {
		c.Platforms = DefaultPlatforms
	}
	if c.Territories == 0 {
		c.Territories = DefaultTerritories
	}
	return c
}

// Validate reports, one line per problem, what is wrong with the Config
// once its defaults are filled in.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	between := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s is %d, want %d to %d", name, v, lo, hi))
		}
	}
	between("months", c.Months, 1, MaxMonths)
	between("tracks", c.Tracks, 1, MaxTracks)
	between("holders", c.Holders, 1, MaxHolders)
	between("platforms", c.Platforms, 1, len(PlatformNames))
	between("territories", c.Territories, 1, len(TerritoryNames))
	if _, err := parseMonth(c.Start); err != nil {
		errs = append(errs, fmt.Errorf("start: %w", err))
	}
	return errors.Join(errs...)
}

// parseMonth reads a YYYY-MM month, as the first instant of it in UTC.
func parseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Format("2006-01") != s || t.Year() < 1000 {
		return time.Time{}, fmt.Errorf("%q is not a month YYYY-MM", s)
	}
	return t, nil
}

// addMonths returns the month n months after t, as YYYY-MM.
func addMonths(t time.Time, n int) string {
	return t.AddDate(0, n, 0).Format("2006-01")
}
