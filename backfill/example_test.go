package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/driver/sqlite"
	"github.com/rawevents/rawevents/ingest"
)

// Pull a source's history into the raw log, then run it again: a complete
// backfill is not pulled twice, and what a webhook delivered first is not
// stored twice.
func ExampleRunner_Run() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "backfill-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d, err := sqlite.Open(filepath.Join(dir, "events.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	store, err := rawevents.NewStore(ctx, d, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	in := ingest.New(store, nil) // the ingester the HTTP API would use
	defer in.Close()

	// A source with five invoices, two per page; the cursor is the offset
	// of the next page.
	invoices := backfill.SourceFunc(func(ctx context.Context, cursor string) (*backfill.Page, error) {
		from, _ := strconv.Atoi(cursor)
		to := min(from+2, 5)
		page := &backfill.Page{Next: strconv.Itoa(to), Last: to == 5, Total: 5}
		for i := from; i < to; i++ {
			page.Items = append(page.Items, backfill.Item{
				ID: fmt.Sprintf("inv-%d", i+1), Type: "invoice.issued", Data: fmt.Appendf(nil, `{"amount":%d}`, 100*(i+1)),
			})
		}
		return page, nil
	})
	runner, err := backfill.NewRunner(&backfill.Config{Store: store, Ingester: in, Backfills: []*backfill.Backfill{
		{Name: "invoices", Source: invoices, EventSource: "https://billing.example", Rate: 10},
	}})
	if err != nil {
		log.Fatal(err)
	}

	// inv-2 was delivered by a webhook before the backfill ran.
	webhook := cloudevents.NewEvent()
	webhook.SetID("inv-2")
	webhook.SetSource("https://billing.example")
	webhook.SetType("invoice.issued")
	if err := webhook.SetData(cloudevents.ApplicationJSON, []byte(`{"amount":200}`)); err != nil {
		log.Fatal(err)
	}
	if _, err := in.Ingest(ctx, []ingest.Raw{{Event: webhook, Transport: ingest.Transport{Mode: "webhook"}}}); err != nil {
		log.Fatal(err)
	}

	p, err := runner.Run(ctx, "invoices", &backfill.RunOpts{OnProgress: func(p backfill.Progress) {
		fmt.Printf("%s: %d/%d items after %d pages\n", p.State, p.Items, p.Total, p.Pages)
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %d, duplicates %d\n", p.Stored, p.Duplicates)

	_, err = runner.Run(ctx, "invoices", nil)
	fmt.Println(errors.Is(err, backfill.ErrCompleted))

	raw, err := store.ReadStream(ctx, ingest.StreamID("https://billing.example"), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range raw {
		fmt.Println(e.Metadata.Origin.ID, e.Metadata.Extra["received_via"])
	}
	// Output:
	// in_progress: 0/0 items after 0 pages
	// in_progress: 2/5 items after 1 pages
	// in_progress: 4/5 items after 2 pages
	// completed: 5/5 items after 3 pages
	// stored 4, duplicates 1
	// true
	// inv-2 webhook
	// inv-1 backfill
	// inv-3 backfill
	// inv-4 backfill
	// inv-5 backfill
}

// Configure a backfill from a JSON API without code, as the "backfills" of
// the config file do.
func ExampleHTTPConfig_Backfill() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_token") == "" {
			fmt.Fprint(w, `{"results":[{"uid":"a1","event":"signup","at":"2026-01-01T10:00:00Z"}],"paging":{"next_token":"t2"}}`)
			return
		}
		fmt.Fprint(w, `{"results":[{"uid":"b2","event":"login","at":"2026-01-02T10:00:00Z"}],"paging":{"next_token":null}}`)
	}))
	defer api.Close()

	b, err := backfill.HTTPConfig{
		Source: "https://accounts.example", URL: api.URL + "/v1/activity", CursorParam: "page_token",
		Items: "/results", Next: "/paging/next_token", ID: "/uid", Type: "/event", TypePrefix: "com.accounts.", Time: "/at",
	}.Backfill("accounts", nil)
	if err != nil {
		log.Fatal(err)
	}
	for cursor := ""; ; {
		page, err := b.Source.Fetch(context.Background(), cursor)
		if err != nil {
			log.Fatal(err)
		}
		for _, it := range page.Items {
			fmt.Println(it.ID, it.Type, it.Time.Format("2006-01-02"))
		}
		if page.Last {
			break
		}
		cursor = page.Next
	}
	// Output:
	// a1 com.accounts.signup 2026-01-01
	// b2 com.accounts.login 2026-01-02
}
