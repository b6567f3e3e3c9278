package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// statement is a statement with its arguments.
type statement struct {
	query string
	args  []any
}

// execer runs statements on a read-model database, in a transaction or
// on the pool.
type execer interface {
	exec(ctx context.Context, query string, args ...any) (int64, error)
	// sendBatch runs stmts in order, in one round trip where the
	// database is across a network.
	sendBatch(ctx context.Context, stmts []statement) error
	// query calls scan with each row's values, in column order.
	query(ctx context.Context, query string, args []any, scan func(values []any) error) error
	// local reports whether the database runs in this process, so that
	// its statements take this process's CPU rather than a round trip
	// (see background).
	local() bool
}

// dialect is what differs between the SQL of the read-model databases.
type dialect interface {
	// name qualifies a physical table name.
	name(physical string) string
	placeholder(n int) string
	// createTable creates a table with its key and, where the database
	// keeps one, the column a full-text index indexes (how depends on
	// whether the table is created indexed and whether it is queried
	// before it is); indexTable makes that column whole and builds the
	// table's indexes over the rows it holds (a generation is built with
	// or without them: see Options.BulkIndexFrom). Both can run again.
	createTable(physical string, t *Table, indexed, queried bool) []string
	indexTable(physical string, t *Table) []string
	dropTable(physical string, t *Table) []string
	// flushSearch brings a table's full-text index up to date with the
	// rows the transaction changed, before it commits; nil when the
	// database keeps it up to date by itself.
	flushSearch(physical string, t *Table) []string
	// analyze refreshes the query planner's statistics of a table.
	analyze(physical string) []string
	columnType(Type) string
	// toDB converts a Go value for a column of type typ.
	toDB(typ Type, v any) (any, error)
	// fromDB converts what the database returned for a column of type typ.
	fromDB(typ Type, v any) (any, error)
	// search returns the join, the condition and the rank (lower is
	// better) of a full-text search for q over a table's search columns,
	// with arg the placeholder of the query.
	search(physical string, arg string) (join, where, rank string)
	// searchAlone returns the query of a page of rows (cols, then the
	// number of candidates) of a search with no other condition, ranked
	// among its first MaxRanked matches by the full-text index itself
	// before a row of the table is read; "" where the database has no such
	// path, and the generic ranked query serves.
	searchAlone(physical, cols, arg string, limit, offset int) string
	// searchArg turns what a user typed into the database's query, or
	// fails with ErrInvalid when it has nothing to search for.
	searchArg(q string) (string, error)
	// insertRows is the INSERT of rows (each the values of cols, in
	// order; no key twice) into table, as few statements as the
	// database takes, each ending with the clause conflict.
	insertRows(table string, cols []string, types []Type, rows [][]any, conflict string) []statement
}

func quote(name string) string { return `"` + name + `"` }

func columnList(cols []string, prefix string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + quote(c)
	}
	return strings.Join(out, ", ")
}

// createColumns is the column list of a CREATE TABLE.
func createColumns(d dialect, t *Table) string {
	var defs []string
	for _, c := range t.Columns {
		def := quote(c.Name) + " " + d.columnType(c.Type)
		if c.Index || slices.Contains(t.Key, c.Name) {
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	return strings.Join(defs, ", ")
}

// createIndexes indexes a table's indexed columns and its declared
// Indexes, each with its key columns after it so that a filtered, sorted
// page is read in index order.
func createIndexes(q, physical string, t *Table) []string {
	var stmts []string
	index := func(name string, cols []string) {
		for _, k := range t.Key {
			if !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
		stmts = append(stmts, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`, quote(name), q, columnList(cols, "")))
	}
	for i, c := range t.Columns {
		if c.Index {
			index(fmt.Sprintf("%s_i%d", physical, i), []string{c.Name})
		}
	}
	for i, cols := range t.Indexes {
		index(fmt.Sprintf("%s_x%d", physical, i), slices.Clone(cols))
	}
	return stmts
}

// sqliteDialect is SQLite with FTS5.
type sqliteDialect struct{}

func (sqliteDialect) name(physical string) string { return quote(physical) }
func (sqliteDialect) placeholder(n int) string    { return "?" + strconv.Itoa(n) }

// sqliteMaxRows is the most rows an INSERT of insertRows lists. The
// statements list 2^k rows, so that a few texts, prepared once per
// connection, serve every batch.
const sqliteMaxRows = 64

func (d sqliteDialect) insertRows(table string, cols []string, _ []Type, rows [][]any, conflict string) []statement {
	tuple := "(" + strings.Repeat("?, ", len(cols)-1) + "?)"
	head := fmt.Sprintf(`INSERT INTO %s (%s) VALUES `, d.name(table), columnList(cols, ""))
	var stmts []statement
	for len(rows) > 0 {
		n := sqliteMaxRows
		for n > len(rows) {
			n /= 2
		}
		args := make([]any, 0, n*len(cols))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		stmts = append(stmts, statement{head + strings.Repeat(tuple+", ", n-1) + tuple + " " + conflict, args})
		rows = rows[n:]
	}
	return stmts
}

func (sqliteDialect) columnType(t Type) string {
	switch t {
	case Integer, Bool:
		return "INTEGER"
	case Real:
		return "REAL"
	default:
		return "TEXT"
	}
}

func (d sqliteDialect) createTable(physical string, t *Table, _, _ bool) []string {
	// A rowid of its own keeps the full-text index's references stable
	// (SQLite may renumber implicit rowids on VACUUM).
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (_rowid INTEGER PRIMARY KEY, %s, UNIQUE (%s))`,
		d.name(physical), createColumns(d, t), columnList(t.Key, ""))}
}

func (d sqliteDialect) indexTable(physical string, t *Table) []string {
	q := d.name(physical)
	stmts := createIndexes(q, physical, t)
	if len(t.Search) == 0 {
		return stmts
	}
	// The full-text index is contentless and brought up to date once per
	// batch (see flushSearch), not row by row: FTS5 writes its pending
	// changes out at every statement, and a segment per row costs more in
	// merges than the rows themselves. Triggers note which rows changed.
	// The index starts from every row the table holds, in one pass.
	fts, dirty := quote(physical+"_fts"), quote(physical+"_dirty")
	return append(stmts,
		fmt.Sprintf(`CREATE VIRTUAL TABLE IF NOT EXISTS %s USING fts5(%s, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`,
			fts, columnList(t.Search, "")),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (rowid INTEGER PRIMARY KEY)`, dirty),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER INSERT ON %s BEGIN INSERT OR IGNORE INTO %s VALUES (new._rowid); END`,
			quote(physical+"_ai"), q, dirty),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER DELETE ON %s BEGIN INSERT OR IGNORE INTO %s VALUES (old._rowid); END`,
			quote(physical+"_ad"), q, dirty),
		// Only an update of a search column changes the index.
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER UPDATE OF %s ON %s BEGIN INSERT OR IGNORE INTO %s VALUES (new._rowid); END`,
			quote(physical+"_au"), columnList(t.Search, ""), q, dirty),
		fmt.Sprintf(`INSERT INTO %s (%s) VALUES ('delete-all')`, fts, fts),
		fmt.Sprintf(`INSERT INTO %s (rowid, %s) SELECT _rowid, %s FROM %s`, fts, columnList(t.Search, ""), columnList(t.Search, ""), q),
		fmt.Sprintf(`DELETE FROM %s`, dirty),
	)
}

func (d sqliteDialect) flushSearch(physical string, t *Table) []string {
	fts, dirty := quote(physical+"_fts"), quote(physical+"_dirty")
	cols := columnList(t.Search, "")
	return []string{
		fmt.Sprintf(`DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s)`, fts, dirty),
		fmt.Sprintf(`INSERT INTO %s (rowid, %s) SELECT t._rowid, %s FROM %s t JOIN %s d ON d.rowid = t._rowid`,
			fts, cols, columnList(t.Search, "t."), d.name(physical), dirty),
		fmt.Sprintf(`DELETE FROM %s`, dirty),
	}
}

// analyze samples at most about 1,000 rows of each index (analysis_limit),
// so that it takes milliseconds at any size.
func (d sqliteDialect) analyze(physical string) []string {
	return []string{`PRAGMA analysis_limit = 1000`, `ANALYZE ` + d.name(physical)}
}

func (d sqliteDialect) dropTable(physical string, t *Table) []string {
	stmts := []string{fmt.Sprintf(`DROP TABLE IF EXISTS %s`, d.name(physical))}
	if len(t.Search) > 0 {
		stmts = append(stmts, fmt.Sprintf(`DROP TABLE IF EXISTS %s`, quote(physical+"_fts")),
			fmt.Sprintf(`DROP TABLE IF EXISTS %s`, quote(physical+"_dirty")))
	}
	return stmts
}

func (sqliteDialect) toDB(typ Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a bool, got %T", v)
		}
		if b {
			return int64(1), nil
		}
		return int64(0), nil
	case Time:
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("want a time.Time, got %T", v)
		}
		// Fixed width, so that text order is time order.
		return t.UTC().Format(sqliteTime), nil
	case JSON:
		b, err := jsonBytes(v)
		return string(b), err
	}
	return scalarToDB(typ, v)
}

const sqliteTime = "2006-01-02T15:04:05.000000Z"

func (sqliteDialect) fromDB(typ Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Bool:
		n, ok := v.(int64)
		return n != 0, boolErr(ok, v)
	case Time:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("time column holds %T", v)
		}
		return time.Parse(sqliteTime, s)
	case JSON:
		s, ok := v.(string)
		return json.RawMessage(s), boolErr(ok, v)
	case Text:
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
	}
	return v, nil
}

func boolErr(ok bool, v any) error {
	if !ok {
		return fmt.Errorf("unexpected %T from the database", v)
	}
	return nil
}

func (d sqliteDialect) search(physical string, arg string) (join, where, rank string) {
	fts := quote(physical + "_fts")
	return fmt.Sprintf(` JOIN %s ON %s.rowid = t._rowid`, fts, fts), fmt.Sprintf(`%s MATCH %s`, fts, arg), fts + ".rank"
}

func (d sqliteDialect) searchAlone(physical, cols, arg string, limit, offset int) string {
	fts := quote(physical + "_fts")
	return fmt.Sprintf(`SELECT %s, s.n FROM (SELECT r, k, count(*) OVER () AS n FROM (SELECT rowid AS r, rank AS k FROM %s WHERE %s MATCH %s LIMIT %d)
			ORDER BY k, r LIMIT %d OFFSET %d) s JOIN %s t ON t._rowid = s.r ORDER BY s.k, s.r`,
		cols, fts, fts, arg, MaxRanked, limit, offset, d.name(physical))
}

// searchArg turns user input into an FTS5 query that cannot be a syntax
// error: every word and "quoted phrase" becomes a quoted string (the
// tokenizer still stems it), -word excludes, OR between terms is kept.
func (sqliteDialect) searchArg(q string) (string, error) {
	terms, err := parseSearch(q)
	if err != nil {
		return "", err
	}
	var pos, neg []string
	for _, t := range terms {
		s := `"` + strings.ReplaceAll(t.text, `"`, `""`) + `"`
		switch {
		case t.or:
			pos = append(pos, "OR")
		case t.not:
			neg = append(neg, "NOT "+s)
		default:
			pos = append(pos, s)
		}
	}
	return strings.Join(append(pos, neg...), " "), nil
}

// postgresDialect is PostgreSQL with tsvector and GIN.
type postgresDialect struct {
	schema   string
	language string
}

func (d postgresDialect) name(physical string) string {
	return pgx.Identifier{d.schema, physical}.Sanitize()
}

func (postgresDialect) placeholder(n int) string { return "$" + strconv.Itoa(n) }

// insertRows sends each column's values as an array, unnested into
// rows, so that the statement's text does not depend on how many rows it
// has.
func (d postgresDialect) insertRows(table string, cols []string, types []Type, rows [][]any, conflict string) []statement {
	arrays := make([]string, len(cols))
	args := make([]any, len(cols))
	for i := range cols {
		arrays[i] = d.placeholder(i+1) + "::" + d.columnType(types[i]) + "[]"
		column := make([]any, len(rows))
		for j, r := range rows {
			column[j] = r[i]
		}
		args[i] = column
	}
	return []statement{{fmt.Sprintf(`INSERT INTO %s (%s) SELECT * FROM unnest(%s) %s`,
		d.name(table), columnList(cols, ""), strings.Join(arrays, ", "), conflict), args}}
}

func (postgresDialect) columnType(t Type) string {
	switch t {
	case Integer:
		return "bigint"
	case Real:
		return "double precision"
	case Bool:
		return "boolean"
	case Time:
		return "timestamptz"
	case JSON:
		return "jsonb"
	default:
		return "text"
	}
}

// searchDoc is the tsvector of a table's search columns, each prefixed
// with prefix ("NEW." in a trigger).
func (d postgresDialect) searchDoc(t *Table, prefix string) string {
	parts := make([]string, len(t.Search))
	for i, s := range t.Search {
		parts[i] = "coalesce(" + prefix + quote(s) + ", '')"
	}
	return fmt.Sprintf(`to_tsvector(%s::regconfig, %s)`, pgLiteral(d.language), strings.Join(parts, " || ' ' || "))
}

// searchColumn is the generated tsvector column of a table's search
// columns.
func (d postgresDialect) searchColumn(t *Table) string {
	return fmt.Sprintf(`_search tsvector GENERATED ALWAYS AS (%s) STORED`, d.searchDoc(t, ""))
}

// createTable: an indexed table gets its search column generated, kept
// by the database row by row. A table that is queried while it is built
// without its indexes gets a plain one, NULL until indexTable fills it in
// one pass over the final rows and hands it to a trigger: catching up,
// a row is written many times and its words are taken apart once. A
// table nobody queries gets none until indexTable adds it.
func (d postgresDialect) createTable(physical string, t *Table, indexed, queried bool) []string {
	column := ""
	switch {
	case len(t.Search) == 0:
	case indexed:
		column = ", " + d.searchColumn(t)
	case queried:
		column = ", _search tsvector"
	}
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (%s%s, PRIMARY KEY (%s))`,
		d.name(physical), createColumns(d, t), column, columnList(t.Key, ""))}
}

// searchTrigger is the function that keeps a plain search column.
func (d postgresDialect) searchTrigger(physical string) string { return d.name(physical + "__tsv") }

func (d postgresDialect) indexTable(physical string, t *Table) []string {
	q := d.name(physical)
	var stmts []string
	if len(t.Search) > 0 {
		// Adding the column rewrites the table under a lock that queries
		// wait for: only where nobody queries the table (see
		// createTable). Filling a plain one takes a lock that writers
		// wait for, not readers. Either comes first, so that writers
		// wait for the build rather than deadlock with it.
		stmts = append(stmts, fmt.Sprintf(`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %[1]s::regclass AND attname = '_search' AND NOT attisdropped) THEN
				ALTER TABLE %[2]s ADD COLUMN %[3]s;
			ELSIF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %[1]s::regclass AND attname = '_search' AND attgenerated = '' AND NOT attisdropped)
				AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %[1]s::regclass AND tgname = '_search') THEN
				CREATE OR REPLACE FUNCTION %[4]s() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW._search := %[5]s; RETURN NEW; END $f$;
				CREATE TRIGGER _search BEFORE INSERT OR UPDATE OF %[6]s ON %[2]s FOR EACH ROW EXECUTE FUNCTION %[4]s();
				UPDATE %[2]s SET _search = %[7]s;
			END IF; END $$`, pgLiteral(q), q, d.searchColumn(t), d.searchTrigger(physical), d.searchDoc(t, "NEW."),
			columnList(t.Search, ""), d.searchDoc(t, "")))
	}
	stmts = append(stmts, createIndexes(q, physical, t)...)
	if len(t.Search) > 0 {
		stmts = append(stmts, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s USING gin (_search)`, quote(physical+"__search"), q))
	}
	return stmts
}

func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (postgresDialect) flushSearch(string, *Table) []string { return nil }

func (d postgresDialect) analyze(physical string) []string {
	return []string{`ANALYZE ` + d.name(physical)}
}

func (d postgresDialect) dropTable(physical string, _ *Table) []string {
	return []string{fmt.Sprintf(`DROP TABLE IF EXISTS %s`, d.name(physical)),
		fmt.Sprintf(`DROP FUNCTION IF EXISTS %s()`, d.searchTrigger(physical))}
}

func (postgresDialect) toDB(typ Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Bool:
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("want a bool, got %T", v)
		}
		return v, nil
	case Time:
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("want a time.Time, got %T", v)
		}
		return t.UTC().Truncate(time.Microsecond), nil
	case JSON:
		b, err := jsonBytes(v)
		return string(b), err
	}
	return scalarToDB(typ, v)
}

func (postgresDialect) fromDB(typ Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Time:
		t, ok := v.(time.Time)
		return t.UTC(), boolErr(ok, v)
	case JSON:
		b, err := json.Marshal(v)
		return json.RawMessage(b), err
	}
	return v, nil
}

func (d postgresDialect) search(_ string, arg string) (join, where, rank string) {
	tsq := fmt.Sprintf(`websearch_to_tsquery(%s::regconfig, %s)`, pgLiteral(d.language), arg)
	return "", "t._search @@ " + tsq, fmt.Sprintf("-ts_rank(t._search, %s)", tsq)
}

func (postgresDialect) searchAlone(string, string, string, int, int) string { return "" }

// searchArg checks that q has something to search for;
// websearch_to_tsquery reads the rest (phrases, -word, OR) and never
// fails on syntax.
func (postgresDialect) searchArg(q string) (string, error) {
	if _, err := parseSearch(q); err != nil {
		return "", err
	}
	return q, nil
}

// scalarToDB converts text and numbers, accepting the usual Go kinds.
func scalarToDB(typ Type, v any) (any, error) {
	switch typ {
	case Text:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		return s, nil
	case Integer:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int32:
			return int64(n), nil
		case int64:
			return n, nil
		case uint32:
			return int64(n), nil
		}
		return nil, fmt.Errorf("want an integer, got %T", v)
	case Real:
		switch n := v.(type) {
		case float64:
			return n, nil
		case float32:
			return float64(n), nil
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		}
		return nil, fmt.Errorf("want a number, got %T", v)
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

func jsonBytes(v any) ([]byte, error) {
	switch b := v.(type) {
	case json.RawMessage:
		if !json.Valid(b) {
			return nil, fmt.Errorf("invalid JSON")
		}
		return b, nil
	case []byte:
		if !json.Valid(b) {
			return nil, fmt.Errorf("invalid JSON")
		}
		return b, nil
	}
	return json.Marshal(v)
}

// sqlExec runs statements through database/sql.
type sqlExec struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
}

// sendBatch runs stmts one by one: SQLite is in this process, there is
// no round trip to save. They are an INSERT of at most sqliteMaxRows
// rows each, so they run without watching ctx, which would cost the
// driver a goroutine per statement; ctx is checked before each.
func (e sqlExec) sendBatch(ctx context.Context, stmts []statement) error {
	for _, s := range stmts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := e.q.ExecContext(context.WithoutCancel(ctx), s.query, s.args...); err != nil {
			return err
		}
	}
	return nil
}

func (sqlExec) local() bool { return true }

func (e sqlExec) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := e.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (e sqlExec) query(ctx context.Context, query string, args []any, scan func([]any) error) error {
	rows, err := e.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	values := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := scan(values); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pgxExec runs statements through pgx.
type pgxExec struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	}
}

// sendBatch runs statements in one round trip.
func (e pgxExec) sendBatch(ctx context.Context, stmts []statement) error {
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.query, s.args...)
	}
	results := e.q.SendBatch(ctx, b)
	for range stmts {
		if _, err := results.Exec(); err != nil {
			results.Close()
			return err
		}
	}
	return results.Close()
}

func (pgxExec) local() bool { return false }

func (e pgxExec) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := e.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (e pgxExec) query(ctx context.Context, query string, args []any, scan func([]any) error) error {
	rows, err := e.q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return err
		}
		if err := scan(values); err != nil {
			return err
		}
	}
	return rows.Err()
}
