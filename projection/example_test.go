package projection_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/projection"
)

// A read model of books with a full-text searchable title, kept in a
// second SQLite file beside the event store's.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "projection-example")
	defer os.RemoveAll(dir)
	open := func(name string) *rawevents.Store[*sql.Tx] {
		d, err := sqlite.Open(filepath.Join(dir, name), nil)
		if err != nil {
			panic(err)
		}
		if _, err := d.Migrate(ctx); err != nil {
			panic(err)
		}
		store, err := rawevents.NewStore(ctx, d, nil)
		if err != nil {
			panic(err)
		}
		return store
	}
	log, read := open("events.db"), open("events.read.db")
	defer log.Close()
	defer read.Close()

	books := &projection.Projection{
		Name: "books", Version: 1, Types: []string{"book.added"},
		Tables: []projection.Table{{
			Name: "book",
			Columns: []projection.Column{
				{Name: "isbn", Type: projection.Text},
				{Name: "title", Type: projection.Text},
				{Name: "year", Type: projection.Integer, Index: true},
			},
			Key:    []string{"isbn"},
			Search: []string{"title"},
		}},
		Handle: func(ctx context.Context, tx *projection.Tx, e event.Event) error {
			var b struct {
				ISBN, Title string
				Year        int
			}
			if err := json.Unmarshal(e.Data, &b); err != nil {
				return err
			}
			return tx.Upsert(ctx, "book", projection.Row{"isbn": b.ISBN, "title": b.Title, "year": b.Year})
		},
	}
	p, err := projection.New(log, read, nil, books)
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(runCtx) }()
	defer func() { stop(); <-done }()

	var last int64
	for _, b := range []string{
		`{"isbn":"978-0","title":"Running the Numbers","year":2019}`,
		`{"isbn":"978-1","title":"A Runner's Guide","year":2021}`,
		`{"isbn":"978-2","title":"Slow Cooking","year":2021}`,
	} {
		res, err := log.Append(ctx, "books", event.Any, event.Proposed{Type: "book.added", Data: json.RawMessage(b)})
		if err != nil {
			panic(err)
		}
		last = res.LastPosition()
	}
	// Read your writes: wait until the read model has the last one.
	if err := p.WaitFor(ctx, "books", last, 10*time.Second); err != nil {
		panic(err)
	}
	page, err := p.List(ctx, "books", "book", &projection.Query{Search: "cooks", Filters: map[string]string{"year": "2021"}})
	if err != nil {
		panic(err)
	}
	for _, row := range page.Rows {
		fmt.Println(row["isbn"], row["title"])
	}
	// Output:
	// 978-2 Slow Cooking
}
