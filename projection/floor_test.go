package projection_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rawevents/rawevents/projection/internal/loadquery"
)

// A floor is what the read-model database alone takes for the work of
// BenchmarkCatchUp's projection, with nothing of rawevents in the way:
// the rows of the log decoded before the timer starts, written with
// statements prepared once, 500 to a transaction (writes), and the
// full-text index built over the final rows in one statement (search).
// Both report events/s of the catch-up log, so that 1/read + 1/noop +
// 1/writes + 1/search bounds what any catch-up of it can reach on one
// core.
type floor interface {
	// writes upserts rows, 500 to a transaction, into a new table named
	// name, as the projection's table is while it is built.
	writes(ctx context.Context, name string, rows []floorRow) error
	// search builds a full-text index of the title and body of the rows
	// of the table name.
	search(ctx context.Context, name string) error
}

// floorRow is one event of the catch-up log, decoded.
type floorRow struct {
	ID, Title, Body, Category string
	Amount                    int64
	Updated                   time.Time
}

// floorRows decodes the catch-up log's events.
func floorRows(b *testing.B) []floorRow {
	rows := make([]floorRow, catchUpEvents)
	for n := range rows {
		e := loadquery.ItemEvent(n, catchUpKeys)
		var it struct {
			ID, Title, Body, Category string
			Amount                    int64
		}
		if err := json.Unmarshal(e.Data, &it); err != nil {
			b.Fatal(err)
		}
		rows[n] = floorRow{it.ID, it.Title, it.Body, it.Category, it.Amount, time.Now()}
	}
	return rows
}

// benchFloor runs f's writes and search, each on a table of its own.
func benchFloor(b *testing.B, f floor) {
	ctx := context.Background()
	rows := floorRows(b)
	var seq int
	b.Run("floor-writes", func(b *testing.B) {
		for range b.N {
			seq++
			if err := f.writes(ctx, fmt.Sprintf("floor_w%d", seq), rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(catchUpEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("floor-search", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			seq++
			name := fmt.Sprintf("floor_s%d", seq)
			if err := f.writes(ctx, name, rows); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := f.search(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(catchUpEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// sqliteFloor writes with one prepared single-row upsert, and builds a
// contentless FTS5 index as package projection does.
type sqliteFloor struct{ db *sql.DB }

func (f sqliteFloor) writes(ctx context.Context, name string, rows []floorRow) error {
	if _, err := f.db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %q (_rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, title TEXT,
		body TEXT, category TEXT NOT NULL, amount INTEGER NOT NULL, updated TEXT, UNIQUE (id))`, name)); err != nil {
		return err
	}
	q := fmt.Sprintf(`INSERT INTO %q (id, title, body, category, amount, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, category = excluded.category,
		amount = excluded.amount, updated = excluded.updated`, name)
	for len(rows) > 0 {
		chunk := rows[:min(500, len(rows))]
		rows = rows[len(chunk):]
		tx, err := f.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			tx.Rollback() //nolint:errcheck // the error is err
			return err
		}
		for _, r := range chunk {
			if _, err := stmt.Exec(r.ID, r.Title, r.Body, r.Category, r.Amount, r.Updated.Format(time.RFC3339Nano)); err != nil {
				tx.Rollback() //nolint:errcheck // the error is err
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (f sqliteFloor) search(ctx context.Context, name string) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // committed below
	for _, q := range []string{
		fmt.Sprintf(`CREATE VIRTUAL TABLE %q USING fts5(title, body, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`, name+"_fts"),
		fmt.Sprintf(`INSERT INTO %q (rowid, title, body) SELECT _rowid, title, body FROM %q`, name+"_fts", name),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// postgresFloor writes 500 rows a statement, each column an array of
// its own type, and builds a GIN index of the tsvectors.
type postgresFloor struct {
	pool   *pgxpool.Pool
	schema string
}

func (f postgresFloor) name(table string) string { return pgx.Identifier{f.schema, table}.Sanitize() }

func (f postgresFloor) writes(ctx context.Context, name string, rows []floorRow) error {
	t := f.name(name)
	if _, err := f.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (id text NOT NULL PRIMARY KEY, title text, body text,
		category text NOT NULL, amount bigint NOT NULL, updated timestamptz)`, t)); err != nil {
		return err
	}
	q := fmt.Sprintf(`INSERT INTO %s SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, category = excluded.category,
		amount = excluded.amount, updated = excluded.updated`, t)
	for len(rows) > 0 {
		chunk := rows[:min(500, len(rows))]
		rows = rows[len(chunk):]
		var (
			ids, titles, bodies, cats = make([]string, len(chunk)), make([]string, len(chunk)), make([]string, len(chunk)), make([]string, len(chunk))
			amounts                   = make([]int64, len(chunk))
			times                     = make([]time.Time, len(chunk))
		)
		for i, r := range chunk {
			ids[i], titles[i], bodies[i], cats[i], amounts[i], times[i] = r.ID, r.Title, r.Body, r.Category, r.Amount, r.Updated
		}
		if _, err := f.pool.Exec(ctx, q, ids, titles, bodies, cats, amounts, times); err != nil {
			return err
		}
	}
	return nil
}

func (f postgresFloor) search(ctx context.Context, name string) error {
	_, err := f.pool.Exec(ctx, fmt.Sprintf(`CREATE INDEX ON %s USING gin (to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(body, '')))`,
		f.name(name)))
	return err
}
