package projection

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// StartRebuild starts building a new generation of a projection's read
// model, from position 0, into tables of its own, with the projection's
// current version; the live read model keeps serving (and, when its
// version is the code's, being updated) meanwhile. With swap, the new
// generation replaces the live one as soon as it has caught up; without
// it, it waits for Swap or CancelRebuild. Every process running the
// projector takes part in the build. It returns the new generation.
func (p *Projector[TTx]) StartRebuild(ctx context.Context, name string, swap bool) (int, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return 0, err
	}
	if err := p.Setup(ctx); err != nil {
		return 0, err
	}
	gens, err := p.generations(ctx, name)
	if err != nil {
		return 0, err
	}
	for _, g := range gens {
		if g.State == genBuilding {
			return 0, fmt.Errorf("projection %s: generation %d: %w", name, g.Generation, ErrRebuildRunning)
		}
	}
	gen := gens[len(gens)-1].Generation + 1
	if err := p.addGeneration(ctx, pr, gen, genBuilding, swap); err != nil {
		return 0, err
	}
	return gen, nil
}

// Building returns the generation being built, or 0.
func (p *Projector[TTx]) Building(ctx context.Context, name string) (int, error) {
	_, building, err := p.current(ctx, name)
	if err != nil || building == nil {
		return 0, err
	}
	return building.Generation, nil
}

// swapWhenCaughtUp swaps a rebuild in once it has applied the whole log
// as it was a moment before, and has its indexes.
func (p *Projector[TTx]) swapWhenCaughtUp(ctx context.Context, name string, g *generation) error {
	if !g.Indexed {
		return nil
	}
	head, err := p.log.Head(ctx)
	if err != nil {
		return err
	}
	at, err := p.generationPosition(ctx, name, g.Generation)
	if err != nil || at < head {
		return err
	}
	return p.Swap(ctx, name)
}

// Swap makes the generation being built the live one, atomically: a
// query reads either the old tables or the new ones, whole. The old
// tables stay until DropRetired.
func (p *Projector[TTx]) Swap(ctx context.Context, name string) error {
	if _, err := p.Projection(name); err != nil {
		return err
	}
	_, building, err := p.current(ctx, name)
	if err != nil {
		return err
	}
	if building == nil {
		return fmt.Errorf("projection %s: no rebuild to swap in: %w", name, ErrNotFound)
	}
	// One statement flips both rows, so that no reader sees two live
	// generations or none.
	n, err := p.ddl.exec(ctx, fmt.Sprintf(`UPDATE %s SET state = CASE WHEN generation = %s THEN %s ELSE %s END
		WHERE projection = %s AND (state = %s OR (state = %s AND generation = %s))`,
		p.registry(), p.d.placeholder(1), p.d.placeholder(2), p.d.placeholder(3), p.d.placeholder(4), p.d.placeholder(2),
		p.d.placeholder(5), p.d.placeholder(1)),
		building.Generation, genLive, genRetired, name, genBuilding)
	if err != nil {
		return fmt.Errorf("projection %s: swap: %w", name, err)
	}
	if n > 0 {
		p.opts.Logger.Info("rebuilt read model swapped in", "projection", name, "generation", building.Generation)
	}
	return nil
}

// CancelRebuild stops the rebuild under way and drops its tables.
func (p *Projector[TTx]) CancelRebuild(ctx context.Context, name string) error {
	pr, err := p.Projection(name)
	if err != nil {
		return err
	}
	_, building, err := p.current(ctx, name)
	if err != nil {
		return err
	}
	if building == nil {
		return fmt.Errorf("projection %s: no rebuild to cancel: %w", name, ErrNotFound)
	}
	return p.drop(ctx, pr, building.Generation, genBuilding)
}

// DropRetired drops the tables of the generations a swap replaced and
// returns how many generations it dropped.
func (p *Projector[TTx]) DropRetired(ctx context.Context, name string) (int, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return 0, err
	}
	gens, err := p.generations(ctx, name)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range gens {
		if g.State == genRetired {
			if err := p.drop(ctx, pr, g.Generation, genRetired); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func (p *Projector[TTx]) drop(ctx context.Context, pr *Projection, gen int, state string) error {
	// Mark it dropped first: a process that still runs the generation
	// stops at its next look at the registry instead of writing to tables
	// that are gone. The row stays, so that its number (and with it the
	// name of its checkpoints) is never given to another generation.
	if _, err := p.ddl.exec(ctx, fmt.Sprintf(`UPDATE %s SET state = %s WHERE projection = %s AND generation = %s AND state = %s`,
		p.registry(), p.d.placeholder(1), p.d.placeholder(2), p.d.placeholder(3), p.d.placeholder(4)), genDropped, pr.Name, gen, state); err != nil {
		return fmt.Errorf("projection %s: unregister generation %d: %w", pr.Name, gen, err)
	}
	p.mu.Lock()
	if run := p.running[subscriptionName(pr.Name, gen)]; run != nil {
		run.cancel()
		<-run.done
		delete(p.running, subscriptionName(pr.Name, gen))
	}
	p.mu.Unlock()
	for i := range pr.Tables {
		for _, stmt := range p.d.dropTable(physicalName(pr.Name, pr.Tables[i].Name, gen), &pr.Tables[i]) {
			if _, err := p.ddl.exec(ctx, stmt); err != nil {
				return fmt.Errorf("projection %s: drop generation %d: %w", pr.Name, gen, err)
			}
		}
	}
	return nil
}

// Diff compares two generations of a read model, table by table.
type Diff struct {
	Tables []TableDiff `json:"tables"`
}

// TableDiff is what differs in one table: rows only in the new
// generation, only in the old one, and in both with other values, with a
// few of each as examples.
type TableDiff struct {
	Table    string      `json:"table"`
	Added    int         `json:"added"`
	Removed  int         `json:"removed"`
	Changed  int         `json:"changed"`
	Same     int         `json:"same"`
	Examples []DiffEntry `json:"examples,omitempty"`
}

// DiffEntry is one differing row: Old is nil for an added row, New for a
// removed one.
type DiffEntry struct {
	Key []any `json:"key"`
	Old Row   `json:"old,omitempty"`
	New Row   `json:"new,omitempty"`
}

// maxExamples is how many differing rows a TableDiff shows.
const maxExamples = 5

// Compare compares the generation being built with the live one. Run it
// once the rebuild has caught up (Status shows its progress); while either
// generation is moving, rows may differ only because one is further.
func (p *Projector[TTx]) Compare(ctx context.Context, name string) (*Diff, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return nil, err
	}
	live, building, err := p.current(ctx, name)
	if err != nil {
		return nil, err
	}
	if building == nil {
		return nil, fmt.Errorf("projection %s: no rebuild to compare: %w", name, ErrNotFound)
	}
	out := &Diff{}
	for i := range pr.Tables {
		td, err := p.compareTable(ctx, &pr.Tables[i], physicalName(name, pr.Tables[i].Name, live.Generation),
			physicalName(name, pr.Tables[i].Name, building.Generation))
		if err != nil {
			return nil, err
		}
		out.Tables = append(out.Tables, *td)
	}
	return out, nil
}

// compareTable walks both tables in key order at once.
func (p *Projector[TTx]) compareTable(ctx context.Context, t *Table, oldTable, newTable string) (*TableDiff, error) {
	oldRows, err := p.allRows(ctx, t, oldTable)
	if err != nil {
		return nil, err
	}
	newRows, err := p.allRows(ctx, t, newTable)
	if err != nil {
		return nil, err
	}
	td := &TableDiff{Table: t.Name}
	example := func(e DiffEntry) {
		if len(td.Examples) < maxExamples {
			td.Examples = append(td.Examples, e)
		}
	}
	i, j := 0, 0
	for i < len(oldRows) || j < len(newRows) {
		var c int
		switch {
		case i == len(oldRows):
			c = 1
		case j == len(newRows):
			c = -1
		default:
			c = compareKeys(keyOf(t, oldRows[i]), keyOf(t, newRows[j]))
		}
		switch {
		case c < 0:
			td.Removed++
			example(DiffEntry{Key: keyOf(t, oldRows[i]), Old: oldRows[i]})
			i++
		case c > 0:
			td.Added++
			example(DiffEntry{Key: keyOf(t, newRows[j]), New: newRows[j]})
			j++
		default:
			if reflect.DeepEqual(oldRows[i], newRows[j]) {
				td.Same++
			} else {
				td.Changed++
				example(DiffEntry{Key: keyOf(t, oldRows[i]), Old: oldRows[i], New: newRows[j]})
			}
			i, j = i+1, j+1
		}
	}
	return td, nil
}

// allRows reads a whole table in key order. Comparing read models is an
// operator's tool; it holds both tables in memory.
func (p *Projector[TTx]) allRows(ctx context.Context, t *Table, physical string) ([]Row, error) {
	var rows []Row
	err := p.pool.query(ctx, fmt.Sprintf(`SELECT %s FROM %s`, columnList(columnNames(t), ""), p.d.name(physical)), nil,
		func(values []any) error {
			row, err := scanRow(p.d, t, values)
			rows = append(rows, row)
			return err
		})
	if err != nil {
		return nil, err
	}
	// Sorted here, in Go, so that both databases agree on the order.
	slices.SortFunc(rows, func(a, b Row) int { return compareKeys(keyOf(t, a), keyOf(t, b)) })
	return rows, nil
}

func keyOf(t *Table, row Row) []any {
	key := make([]any, len(t.Key))
	for i, k := range t.Key {
		key[i] = row[k]
	}
	return key
}

func compareKeys(a, b []any) int {
	for i := range a {
		if c := compareValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
