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

// CachedStatements returns the queries the writer's connection holds
// prepared.
func (d *Driver) CachedStatements(ctx context.Context) (map[string]bool, error) {
	conn, err := d.write.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := map[string]bool{}
	err = conn.Raw(func(dc any) error {
		for q := range dc.(*cachingConn).stmts {
			out[q] = true
		}
		return nil
	})
	return out, err
}
