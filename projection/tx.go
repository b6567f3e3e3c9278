package projection

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Tx is a projection's handle on its read model inside the transaction
// of a batch. Its methods address tables by their declared names; rows
// go to the tables of the generation being built (the live one, or the
// shadow one of a rebuild).
type Tx struct {
	x      execer
	d      dialect
	tables *generationTables
	// pending are writes not sent yet: a batch's Upserts and Adds go
	// many rows to a statement (on a database across a network, all of
	// them in one round trip), before the next read and before the
	// batch commits.
	pending []pendingWrite
	bg      *background // see background; nil where none runs
}

// pendingWrite is an Upsert or an Add waiting to be sent.
type pendingWrite struct {
	t     *physicalTable
	shape string // "upsert" or "add"
	cols  []string
	statement
}

// maxPending is how many writes wait at most before they are sent.
const maxPending = 1_000

// send runs the pending writes, and waits for those handed to the
// background writer before.
func (tx *Tx) send(ctx context.Context) error {
	stmts := tx.statements()
	if tx.bg != nil {
		if len(stmts) > 0 {
			tx.bg.work <- stmts
		}
		return tx.wait()
	}
	if len(stmts) == 0 {
		return nil
	}
	return tx.x.sendBatch(ctx, stmts)
}

// statements turns the pending writes into statements. Each table's
// writes keep their order, but tables do not depend on each other, so a
// table's consecutive writes of one shape and columns go as one statement
// of many rows, until a key comes again (a statement may not change a row
// twice).
func (tx *Tx) statements() []statement {
	if len(tx.pending) == 0 {
		return nil
	}
	var (
		order   []*physicalTable
		byTable = map[*physicalTable][]pendingWrite{}
	)
	for _, w := range tx.pending {
		if _, ok := byTable[w.t]; !ok {
			order = append(order, w.t)
		}
		byTable[w.t] = append(byTable[w.t], w)
	}
	tx.pending = nil
	var stmts []statement
	for _, t := range order {
		writes := byTable[t]
		for i := 0; i < len(writes); {
			keys := map[string]bool{}
			j := i
			for ; j < len(writes); j++ {
				key := fmt.Sprint(writes[j].keyValues()...)
				if writes[j].query != writes[i].query || keys[key] {
					break
				}
				keys[key] = true
			}
			if j-i == 1 {
				stmts = append(stmts, writes[i].statement)
			} else {
				stmts = append(stmts, tx.rows(writes[i:j])...)
			}
			i = j
		}
	}
	return stmts
}

// background runs a batch's statements on a goroutine of its own while
// the handler goes on with the next events, where the database runs in
// this process (SQLite): the statements and the handler's decoding then
// share the machine's cores instead of taking turns. The transaction is
// used by one goroutine at a time still: the handler only hands
// statements over, and waits for them before it reads, and before the
// batch ends.
type background struct {
	work chan []statement
	done chan struct{}
	err  error
}

// backgroundRows is how many pending writes are handed to the background
// writer at a time.
const backgroundRows = 2 * sqliteMaxRows

// hand gives the pending writes to the background writer, starting it.
func (tx *Tx) hand(ctx context.Context) {
	if tx.bg == nil {
		bg := &background{work: make(chan []statement, 4), done: make(chan struct{})}
		tx.bg = bg
		go func() {
			defer close(bg.done)
			for stmts := range bg.work {
				if bg.err == nil {
					bg.err = tx.x.sendBatch(ctx, stmts)
				}
			}
		}()
	}
	tx.bg.work <- tx.statements()
}

// wait waits for the background writer, if one runs, to have run every
// statement handed to it, and returns its first error.
func (tx *Tx) wait() error {
	if tx.bg == nil {
		return nil
	}
	close(tx.bg.work)
	<-tx.bg.done
	err := tx.bg.err
	tx.bg = nil
	return err
}

// keyValues are the values of w's key columns.
func (w *pendingWrite) keyValues() []any {
	out := make([]any, 0, len(w.t.Key))
	for i, c := range w.cols {
		if slices.Contains(w.t.Key, c) {
			out = append(out, w.args[i])
		}
	}
	return out
}

// rows is writes (same table, shape and columns, distinct keys) as
// statements of many rows each.
func (tx *Tx) rows(writes []pendingWrite) []statement {
	w := writes[0]
	types := make([]Type, len(w.cols))
	for i, c := range w.cols {
		types[i] = w.t.column(c).Type
	}
	rows := make([][]any, len(writes))
	for i := range writes {
		rows[i] = writes[i].args
	}
	return tx.d.insertRows(w.t.physical, w.cols, types, rows, tx.onConflict(w.t, w.shape, w.cols))
}

// physicalTable is a declared table and where one generation of it lives.
type physicalTable struct {
	*Table
	physical string
	mu       sync.Mutex
	sql      map[string]string // statements by shape, built once
}

func (tx *Tx) table(name string) (*physicalTable, error) {
	t, ok := tx.tables.byName[name]
	if !ok {
		return nil, fmt.Errorf("projection: no table %q: %w", name, ErrInvalid)
	}
	return t, nil
}

// values converts row's values for the columns cols, in order.
func (tx *Tx) values(t *physicalTable, cols []string, row Row) ([]any, error) {
	args := make([]any, len(cols))
	for i, name := range cols {
		c := t.column(name)
		v, err := tx.d.toDB(c.Type, row[name])
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w: %v", t.Name, name, ErrInvalid, err)
		}
		args[i] = v
	}
	return args, nil
}

// rowColumns returns row's column names in table order, checking that
// each is a column and that every key column is there.
func rowColumns(t *physicalTable, row Row) ([]string, error) {
	for name := range row {
		if t.column(name) == nil {
			return nil, fmt.Errorf("table %s has no column %q: %w", t.Name, name, ErrInvalid)
		}
	}
	var cols []string
	for _, c := range t.Columns {
		if _, ok := row[c.Name]; ok {
			cols = append(cols, c.Name)
		}
	}
	for _, k := range t.Key {
		if row[k] == nil {
			return nil, fmt.Errorf("table %s: key column %s is missing: %w", t.Name, k, ErrInvalid)
		}
	}
	return cols, nil
}

func (tx *Tx) placeholders(from, n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = tx.d.placeholder(from + i)
	}
	return strings.Join(out, ", ")
}

// statement returns the SQL of shape for cols, building it once.
func (tx *Tx) statement(t *physicalTable, shape string, cols []string, build func() string) string {
	key := shape + ":" + strings.Join(cols, ",")
	t.mu.Lock()
	defer t.mu.Unlock()
	if q, ok := t.sql[key]; ok {
		return q
	}
	q := build()
	t.sql[key] = q
	return q
}

// Upsert inserts row, or, when a row with its key exists, sets the
// columns row names (the others keep their values). The write may wait
// for the batch's next read or its end, to go in one statement with the
// batch's others (on PostgreSQL, in their round trip); a database error
// then comes from that call (and the batch is applied again event by
// event, so it is told for the right event).
func (tx *Tx) Upsert(ctx context.Context, table string, row Row) error {
	return tx.upsert(ctx, table, row, "upsert")
}

// Add inserts row, or, when a row with its key exists, adds row's values
// to its Integer and Real columns and sets the others: counters and sums.
func (tx *Tx) Add(ctx context.Context, table string, row Row) error {
	return tx.upsert(ctx, table, row, "add")
}

func (tx *Tx) upsert(ctx context.Context, table string, row Row, shape string) error {
	t, err := tx.table(table)
	if err != nil {
		return err
	}
	cols, err := rowColumns(t, row)
	if err != nil {
		return err
	}
	args, err := tx.values(t, cols, row)
	if err != nil {
		return err
	}
	q := tx.statement(t, shape, cols, func() string {
		return fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) %s`,
			tx.d.name(t.physical), columnList(cols, ""), tx.placeholders(1, len(cols)), tx.onConflict(t, shape, cols))
	})
	tx.pending = append(tx.pending, pendingWrite{t: t, shape: shape, cols: cols, statement: statement{q, args}})
	if tx.x.local() && len(tx.pending) >= backgroundRows {
		tx.hand(ctx)
		return nil
	}
	if len(tx.pending) >= maxPending {
		return tx.send(ctx)
	}
	return nil
}

// onConflict is what an Upsert or an Add of cols does to a row whose key
// exists.
func (tx *Tx) onConflict(t *physicalTable, shape string, cols []string) string {
	var set []string
	for _, c := range cols {
		if slices.Contains(t.Key, c) {
			continue
		}
		typ := t.column(c).Type
		if shape == "add" && (typ == Integer || typ == Real) {
			set = append(set, fmt.Sprintf("%s = coalesce(%s.%s, 0) + excluded.%s", quote(c), tx.d.name(t.physical), quote(c), quote(c)))
		} else {
			set = append(set, fmt.Sprintf("%s = excluded.%s", quote(c), quote(c)))
		}
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf(`ON CONFLICT (%s) %s`, columnList(t.Key, ""), action)
}

// Update sets the columns row names on the row with row's key; it
// reports whether there was one.
func (tx *Tx) Update(ctx context.Context, table string, row Row) (bool, error) {
	if err := tx.send(ctx); err != nil {
		return false, err
	}
	t, err := tx.table(table)
	if err != nil {
		return false, err
	}
	cols, err := rowColumns(t, row)
	if err != nil {
		return false, err
	}
	var set []string
	for _, c := range cols {
		if !slices.Contains(t.Key, c) {
			set = append(set, c)
		}
	}
	if len(set) == 0 {
		return false, fmt.Errorf("table %s: Update names no column to set: %w", t.Name, ErrInvalid)
	}
	args, err := tx.values(t, append(set, t.Key...), row)
	if err != nil {
		return false, err
	}
	q := tx.statement(t, "update", set, func() string {
		sets := make([]string, len(set))
		for i, c := range set {
			sets[i] = quote(c) + " = " + tx.d.placeholder(i+1)
		}
		return fmt.Sprintf(`UPDATE %s SET %s WHERE %s`, tx.d.name(t.physical), strings.Join(sets, ", "), tx.keyCondition(t, len(set)+1))
	})
	n, err := tx.x.exec(ctx, q, args...)
	return n > 0, err
}

// keyCondition matches a table's key to placeholders from n on.
func (tx *Tx) keyCondition(t *physicalTable, from int) string {
	conds := make([]string, len(t.Key))
	for i, k := range t.Key {
		conds[i] = quote(k) + " = " + tx.d.placeholder(from+i)
	}
	return strings.Join(conds, " AND ")
}

// keyArgs converts a key given as values, in the order of Table.Key.
func (tx *Tx) keyArgs(t *physicalTable, key []any) ([]any, error) {
	if len(key) != len(t.Key) {
		return nil, fmt.Errorf("table %s: key has %d columns, got %d values: %w", t.Name, len(t.Key), len(key), ErrInvalid)
	}
	row := Row{}
	for i, k := range t.Key {
		row[k] = key[i]
	}
	return tx.values(t, t.Key, row)
}

// Delete removes the row with key (values in the order of Table.Key); it
// reports whether there was one.
func (tx *Tx) Delete(ctx context.Context, table string, key ...any) (bool, error) {
	if err := tx.send(ctx); err != nil {
		return false, err
	}
	t, err := tx.table(table)
	if err != nil {
		return false, err
	}
	args, err := tx.keyArgs(t, key)
	if err != nil {
		return false, err
	}
	q := tx.statement(t, "delete", nil, func() string {
		return fmt.Sprintf(`DELETE FROM %s WHERE %s`, tx.d.name(t.physical), tx.keyCondition(t, 1))
	})
	n, err := tx.x.exec(ctx, q, args...)
	return n > 0, err
}

// Get returns the row with key (values in the order of Table.Key), or nil
// when there is none. It sees what the batch wrote before it.
func (tx *Tx) Get(ctx context.Context, table string, key ...any) (Row, error) {
	if err := tx.send(ctx); err != nil {
		return nil, err
	}
	t, err := tx.table(table)
	if err != nil {
		return nil, err
	}
	args, err := tx.keyArgs(t, key)
	if err != nil {
		return nil, err
	}
	q := tx.statement(t, "get", nil, func() string {
		return fmt.Sprintf(`SELECT %s FROM %s WHERE %s`, columnList(columnNames(t.Table), ""), tx.d.name(t.physical), tx.keyCondition(t, 1))
	})
	var out Row
	err = tx.x.query(ctx, q, args, func(values []any) error {
		out, err = scanRow(tx.d, t.Table, values)
		return err
	})
	return out, err
}

// List returns the rows whose columns equal the values of filters (every
// row when filters is empty), in key order. It sees what the batch wrote
// before it. Filter on key or indexed columns to keep it fast.
func (tx *Tx) List(ctx context.Context, table string, filters Row) ([]Row, error) {
	if err := tx.send(ctx); err != nil {
		return nil, err
	}
	t, err := tx.table(table)
	if err != nil {
		return nil, err
	}
	var cols []string
	for _, c := range t.Columns {
		if _, ok := filters[c.Name]; ok {
			cols = append(cols, c.Name)
		}
	}
	if len(cols) != len(filters) {
		return nil, fmt.Errorf("table %s: List filters on a column it does not have: %w", t.Name, ErrInvalid)
	}
	args, err := tx.values(t, cols, filters)
	if err != nil {
		return nil, err
	}
	q := tx.statement(t, "list", cols, func() string {
		where := ""
		if len(cols) > 0 {
			conds := make([]string, len(cols))
			for i, c := range cols {
				conds[i] = quote(c) + " = " + tx.d.placeholder(i+1)
			}
			where = " WHERE " + strings.Join(conds, " AND ")
		}
		return fmt.Sprintf(`SELECT %s FROM %s%s ORDER BY %s`, columnList(columnNames(t.Table), ""), tx.d.name(t.physical), where, columnList(t.Key, ""))
	})
	var rows []Row
	err = tx.x.query(ctx, q, args, func(values []any) error {
		row, err := scanRow(tx.d, t.Table, values)
		rows = append(rows, row)
		return err
	})
	return rows, err
}

// flush sends the pending writes and brings the full-text indexes up to
// date with what the transaction wrote, before it commits (once they are
// built: see Options.BulkIndexFrom).
func (tx *Tx) flush(ctx context.Context) error {
	if err := tx.send(ctx); err != nil {
		return err
	}
	for _, t := range tx.tables.byName {
		if len(t.Search) == 0 {
			continue
		}
		stmts := tx.d.flushSearch(t.physical, t.Table)
		if len(stmts) == 0 {
			continue // the database keeps the index itself
		}
		if built, err := tx.tables.built(ctx, tx.x, tx.d); err != nil || !built {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.x.exec(ctx, q); err != nil {
				return fmt.Errorf("table %s: full-text index: %w", t.Name, err)
			}
		}
	}
	return nil
}

func columnNames(t *Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// scanRow turns a row's values, in column order, into a Row.
func scanRow(d dialect, t *Table, values []any) (Row, error) {
	row := make(Row, len(t.Columns))
	for i, c := range t.Columns {
		v, err := d.fromDB(c.Type, values[i])
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", t.Name, c.Name, err)
		}
		row[c.Name] = v
	}
	return row, nil
}
