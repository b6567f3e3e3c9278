package sqlite

import (
	"context"

	"github.com/rawevents/rawevents/driver"
)

// MigrateTo is Migrate up to version only, so that a test can store rows
// the way an older schema did and then migrate them.
func (d *Driver) MigrateTo(ctx context.Context, version int) (*driver.MigrateResult, error) {
	all := d.migrations
	d.migrations = all[:version]
	defer func() { d.migrations = all }()
	return d.Migrate(ctx)
}
