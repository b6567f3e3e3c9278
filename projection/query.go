package projection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query selects rows of a read-model table.
type Query struct {
	// Filters keeps rows whose column equals the value, given as text
	// (as in a URL); only key and indexed columns can be filtered on.
	Filters map[string]string
	// Sort is a key or indexed column, "-column" for descending order;
	// "relevance" sorts by how well rows match Search, best first, among
	// at most MaxRanked matches (see Page.Ranked). Empty sorts by
	// relevance with a Search, by key without.
	Sort string
	// Search is a full-text search over the table's search columns:
	// words, "quoted phrases", -excluded words and OR.
	Search string
	// Limit is the page size, 1 to MaxLimit; 0 means DefaultLimit.
	Limit int
	// Cursor continues from where the previous page (Page.Next) ended.
	Cursor string
}

// Page sizes of List.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// MaxRanked is how many matches of a search sorted by relevance are
// ranked at most. Ranking scores every match before the first page can
// be told, so a common word over a large table would cost seconds: the
// first MaxRanked matches the index yields are ranked, and Page.Ranked
// says so.
const MaxRanked = 1000

// Page is a page of rows.
type Page struct {
	Rows []Row `json:"rows"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
	// Ranked is, for a search sorted by relevance, how many matches were
	// ranked and are paged through: every match when fewer than
	// MaxRanked; at MaxRanked, more rows may match (sort by a column to
	// page through them all, or narrow the search).
	Ranked int `json:"ranked,omitempty"`
}

// cursor is what a page's Next holds: the sort values of its last row,
// or, sorted by relevance, how many rows came before.
type cursor struct {
	Values []string `json:"v,omitempty"`
	Offset int      `json:"o,omitempty"`
}

// List returns a page of a table of a projection's live read model.
// Questions the table cannot answer (an unknown or unindexed column, a
// value of the wrong type, a bad cursor, a search with nothing to search
// for) fail with ErrInvalid.
func (p *Projector[TTx]) List(ctx context.Context, name, table string, q *Query) (*Page, error) {
	t, live, err := p.liveTable(ctx, name, table)
	if err != nil {
		return nil, err
	}
	physical := physicalName(name, table, live.Generation)
	if q == nil {
		q = &Query{}
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, fmt.Errorf("limit: %w: must be 1 to %d", ErrInvalid, MaxLimit)
	}
	var (
		where []string
		args  []any
		join  string
	)
	arg := func(v any) string {
		args = append(args, v)
		return p.d.placeholder(len(args))
	}
	filters := make([]string, 0, len(q.Filters))
	for col := range q.Filters {
		filters = append(filters, col)
	}
	slices.Sort(filters)
	for _, col := range filters {
		if !t.queryable(col) {
			return nil, fmt.Errorf("filter %s: %w: not a key or indexed column of %s", col, ErrInvalid, t.Name)
		}
		v, err := p.parseValue(t.column(col), q.Filters[col])
		if err != nil {
			return nil, fmt.Errorf("filter %s: %w", col, err)
		}
		where = append(where, "t."+quote(col)+" = "+arg(v))
	}
	var rank, searchArg string
	if q.Search != "" {
		if len(t.Search) == 0 {
			return nil, fmt.Errorf("q: %w: table %s has no search columns", ErrInvalid, t.Name)
		}
		if !live.Indexed {
			return nil, fmt.Errorf("projection %s: %w", name, ErrIndexing)
		}
		s, err := p.d.searchArg(q.Search)
		if err != nil {
			return nil, err
		}
		var cond string
		searchArg = arg(s)
		join, cond, rank = p.d.search(physical, searchArg)
		where = append(where, cond)
	}
	var cur cursor
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || json.Unmarshal(b, &cur) != nil {
			return nil, fmt.Errorf("cursor: %w: not a cursor this API gave", ErrInvalid)
		}
	}
	var order []string
	sort := q.Sort
	if sort == "" && q.Search != "" {
		sort = "relevance"
	}
	desc := strings.HasPrefix(sort, "-")
	sortCol := strings.TrimPrefix(sort, "-")
	relevance := sortCol == "relevance"
	switch {
	case relevance:
		if rank == "" || desc {
			return nil, fmt.Errorf("sort: %w: relevance needs q and sorts best first", ErrInvalid)
		}
	case sortCol != "" && !t.queryable(sortCol):
		return nil, fmt.Errorf("sort: %w: %q is not a key or indexed column of %s", ErrInvalid, sortCol, t.Name)
	case sortCol != "" && !slices.Contains(t.Key, sortCol):
		order = append(order, sortCol)
	}
	order = append(order, t.Key...)
	dir := ""
	if desc {
		dir = " DESC"
	}
	var orderBy []string
	for _, c := range order {
		orderBy = append(orderBy, "t."+quote(c)+dir)
	}
	offset := 0
	switch {
	case relevance:
		offset = cur.Offset
		if offset < 0 {
			return nil, fmt.Errorf("cursor: %w: not a cursor this API gave", ErrInvalid)
		}
	case q.Cursor != "":
		if len(cur.Values) != len(order) {
			return nil, fmt.Errorf("cursor: %w: it belongs to another sort order", ErrInvalid)
		}
		places := make([]string, len(order))
		for i, c := range order {
			v, err := p.parseValue(t.column(c), cur.Values[i])
			if err != nil {
				return nil, fmt.Errorf("cursor: %w", err)
			}
			places[i] = arg(v)
		}
		op := ">"
		if desc {
			op = "<"
		}
		where = append(where, fmt.Sprintf("(%s) %s (%s)", columnList(order, "t."), op, strings.Join(places, ", ")))
	}
	cols := columnNames(t)
	selected := columnList(cols, "t.")
	if relevance {
		selected += ", " + rank + " AS _rank"
	}
	query := fmt.Sprintf(`SELECT %s FROM %s t%s`, selected, p.d.name(physical), join)
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var alone string
	if relevance && len(where) == 1 {
		alone = p.d.searchAlone(physical, columnList(cols, "t."), searchArg, limit+1, offset)
	}
	switch {
	case alone != "":
		query = alone
	case relevance:
		// The first MaxRanked matches, in whatever order the index yields
		// them, then ranked: the count of candidates comes with each row.
		query = fmt.Sprintf(`SELECT %s, count(*) OVER () FROM (%s LIMIT %d) t ORDER BY t._rank, %s LIMIT %d OFFSET %d`,
			columnList(cols, "t."), query, MaxRanked, strings.Join(orderBy, ", "), limit+1, offset)
	default:
		query += " ORDER BY " + strings.Join(orderBy, ", ") + " LIMIT " + strconv.Itoa(limit+1)
	}
	page := &Page{Rows: []Row{}}
	err = p.pool.query(ctx, query, args, func(values []any) error {
		if relevance {
			page.Ranked = int(toInt(values[len(cols)]))
		}
		row, err := scanRow(p.d, t, values)
		page.Rows = append(page.Rows, row)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(page.Rows) > limit {
		page.Rows = page.Rows[:limit]
		next := cursor{Offset: offset + limit}
		if !relevance {
			next = cursor{}
			last := page.Rows[limit-1]
			for _, c := range order {
				next.Values = append(next.Values, formatValue(last[c]))
			}
		}
		b, _ := json.Marshal(next)
		page.Next = base64.RawURLEncoding.EncodeToString(b)
	}
	return page, nil
}

// Get returns the row of a table whose key is key, given as text; the
// table's key must be one column. It fails with ErrNotFound when there is
// no such row.
func (p *Projector[TTx]) Get(ctx context.Context, name, table, key string) (Row, error) {
	t, live, err := p.liveTable(ctx, name, table)
	if err != nil {
		return nil, err
	}
	physical := physicalName(name, table, live.Generation)
	if len(t.Key) != 1 {
		return nil, fmt.Errorf("table %s has a key of %d columns: %w: filter on them instead", t.Name, len(t.Key), ErrInvalid)
	}
	v, err := p.parseValue(t.column(t.Key[0]), key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	var row Row
	err = p.pool.query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s = %s`, columnList(columnNames(t), ""), p.d.name(physical),
		quote(t.Key[0]), p.d.placeholder(1)), []any{v}, func(values []any) error {
		row, err = scanRow(p.d, t, values)
		return err
	})
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fmt.Errorf("%s %s: no row with key %q: %w", name, table, key, ErrNotFound)
	}
	return row, nil
}

// liveTable returns a table of a projection and its live generation.
func (p *Projector[TTx]) liveTable(ctx context.Context, name, table string) (*Table, *generation, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return nil, nil, err
	}
	t, err := pr.table(table)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%w)", err, ErrNotFound)
	}
	live, _, err := p.current(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return t, live, nil
}

// parseValue reads a column's value from text, as filters and cursors
// give it.
func (p *Projector[TTx]) parseValue(c *Column, s string) (any, error) {
	var v any
	var err error
	switch c.Type {
	case Text:
		v = s
	case Integer:
		v, err = strconv.ParseInt(s, 10, 64)
	case Real:
		v, err = strconv.ParseFloat(s, 64)
	case Bool:
		v, err = strconv.ParseBool(s)
	case Time:
		v, err = time.Parse(time.RFC3339Nano, s)
	default:
		err = fmt.Errorf("a %s column cannot be compared", c.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a %s value", ErrInvalid, s, c.Type)
	}
	return p.d.toDB(c.Type, v)
}

// formatValue writes a value as parseValue reads it.
func formatValue(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// Checksum returns a digest of a generation's rows (the live one when
// generation is 0), the same for the same rows on every database: a
// rebuilt read model equals the live one when their checksums do.
func (p *Projector[TTx]) Checksum(ctx context.Context, name string, generation int) (string, error) {
	pr, err := p.Projection(name)
	if err != nil {
		return "", err
	}
	if generation == 0 {
		live, _, err := p.current(ctx, name)
		if err != nil {
			return "", err
		}
		generation = live.Generation
	}
	h := sha256.New()
	for i := range pr.Tables {
		t := &pr.Tables[i]
		rows, err := p.allRows(ctx, t, physicalName(name, t.Name, generation))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "table %s %d\n", t.Name, len(rows))
		for _, row := range rows {
			for _, c := range t.Columns {
				v := row[c.Name]
				if raw, ok := v.(json.RawMessage); ok {
					v = canonicalJSON(raw)
				}
				fmt.Fprintf(h, "%s=%s\x00", c.Name, formatValue(v))
			}
			h.Write([]byte{'\n'})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// canonicalJSON rewrites JSON with sorted keys and no spaces, as both
// databases may hand it back differently.
func canonicalJSON(raw json.RawMessage) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
