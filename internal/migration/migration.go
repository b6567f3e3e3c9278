// Package migration reads a driver's embedded, versioned SQL migrations.
//
// Files are named NNN_description.sql; NNN is the schema version the file
// brings the database to. Versions start at 1 and have no holes.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/rawevents/rawevents/event"
)

// Migration is one versioned SQL script.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads every *.sql file in dir of fsys, sorted by version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migrations []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version < 1 {
			return nil, fmt.Errorf("migration file %q: want NNN_name.sql", e.Name())
		}
		sql, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %q: %w", e.Name(), err)
		}
		migrations = append(migrations, Migration{Version: version, Name: name, SQL: string(sql)})
	}
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].Version < migrations[j].Version })
	for i, m := range migrations {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: version %d found where %d was expected", m.Version, i+1)
		}
	}
	return migrations, nil
}

// Latest returns the highest version in migrations, or 0.
func Latest(migrations []Migration) int {
	if len(migrations) == 0 {
		return 0
	}
	return migrations[len(migrations)-1].Version
}

// Check returns an *event.SchemaError unless a database at version current
// is exactly at the latest of migrations.
func Check(current int, migrations []Migration) error {
	if latest := Latest(migrations); current != latest {
		return &event.SchemaError{Database: current, Known: latest}
	}
	return nil
}

// Pending returns the migrations a database at version current lacks, in
// order. A database newer than every migration is an *event.SchemaError:
// a binary never touches a schema it does not know.
func Pending(current int, migrations []Migration) ([]Migration, error) {
	if latest := Latest(migrations); current > latest {
		return nil, &event.SchemaError{Database: current, Known: latest}
	}
	return migrations[current:], nil
}
