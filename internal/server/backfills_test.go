package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/backfill"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
)

const (
	shopSource = "https://shop.example"
	shopSecret = "the shop's webhook secret"
)

// backfillBundle is a server and a backfill runner sharing one store and
// one ingester, as in "rawevents serve", and a shop whose API lists its
// orders o-1 to o-n, and whose webhooks deliver the same orders.
type backfillBundle struct {
	*testBundle
	runner *backfill.Runner
}

func setupBackfill(t *testing.T, open func(testing.TB) store, orders int) *backfillBundle {
	t.Helper()
	s := open(t)
	in := ingest.New(s, nil)
	t.Cleanup(in.Close)
	srv, err := server.New(server.Config{
		Store: s, Ingester: in, Logger: slog.New(slog.DiscardHandler), Tokens: adminTokens,
		Sources: map[string]server.WebhookSource{"shop": {Source: shopSource, Secret: shopSecret, SignatureHeader: "X-Signature", ID: "json:/id", Type: "json:/kind"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("after"))
		to := min(from+10, orders)
		var items []string
		for i := from + 1; i <= to; i++ {
			items = append(items, order(i))
		}
		next := ""
		if to < orders {
			next = strconv.Itoa(to)
		}
		fmt.Fprintf(w, `{"orders":[%s],"next":%q}`, strings.Join(items, ","), next)
	}))
	t.Cleanup(api.Close)
	shop, err := backfill.HTTPConfig{Source: shopSource, URL: api.URL, CursorParam: "after", Items: "/orders", Next: "/next", ID: "/id", Type: "/kind"}.Backfill("shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	empty := &backfill.Backfill{Name: "empty", EventSource: "empty", Source: backfill.SourceFunc(func(context.Context, string) (*backfill.Page, error) {
		return &backfill.Page{Last: true}, nil
	})}
	runner, err := backfill.NewRunner(&backfill.Config{Store: s.(backfill.Store), Ingester: in, Backfills: []*backfill.Backfill{shop, empty}})
	if err != nil {
		t.Fatal(err)
	}
	return &backfillBundle{testBundle: &testBundle{store: s, url: ts.URL}, runner: runner}
}

// order is the shop's JSON for order i, the same in its API and in its
// webhooks.
func order(i int) string {
	return fmt.Sprintf(`{"id":"o-%d","kind":"order.placed","total":%d}`, i, i)
}

// webhook delivers order i as the shop's webhook and returns the answer's
// result.
func (b *backfillBundle) webhook(t *testing.T, i int) ingest.Result {
	t.Helper()
	body := order(i)
	mac := hmac.New(sha256.New, []byte(shopSecret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, b.url+"/v1/sources/shop/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
	status, out := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("webhook: %d %v", status, out)
	}
	var resp server.IngestResponse
	remarshal(t, out, &resp)
	return resp.Results[0]
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}

// shopIDs returns the ids of the shop's raw events, failing on one stored
// twice, and the way each arrived.
func (b *backfillBundle) shopIDs(t *testing.T) map[string]string {
	t.Helper()
	events, err := b.store.ReadStream(context.Background(), ingest.StreamID(shopSource), &rawevents.ReadStreamOpts{Limit: rawevents.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	via := map[string]string{}
	for _, e := range events {
		if _, twice := via[e.Metadata.Origin.ID]; twice {
			t.Fatalf("%s is stored twice", e.Metadata.Origin.ID)
		}
		via[e.Metadata.Origin.ID] = e.Metadata.Extra["received_via"]
	}
	return via
}

func TestBackfillAndDeliveriesStoreOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		t.Run("DeliveredThenPulled", func(t *testing.T) {
			t.Parallel()
			b := setupBackfill(t, open, 30)
			b.webhook(t, 5)
			// A CloudEvent of the same source and id, sent by anyone.
			status, _ := b.post(t, "/v1/events", headers("Content-Type", "application/cloudevents+json", "Authorization", "Bearer "+writer),
				[]byte(`{"specversion":"1.0","id":"o-27","source":"`+shopSource+`","type":"order.placed","data":`+order(27)+`}`))
			if status != http.StatusOK {
				t.Fatalf("structured: %d", status)
			}
			p, err := b.runner.Run(t.Context(), "shop", nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Items != 30 || p.Stored != 28 || p.Duplicates != 2 {
				t.Errorf("progress %+v, want 28 stored and the 2 delivered as duplicates", p)
			}
			via := b.shopIDs(t)
			if len(via) != 30 || via["o-5"] != "webhook" || via["o-27"] != "structured" || via["o-6"] != "backfill" {
				t.Errorf("stored %d: o-5 via %s, o-27 via %s, o-6 via %s", len(via), via["o-5"], via["o-27"], via["o-6"])
			}
		})

		t.Run("PulledThenDelivered", func(t *testing.T) {
			t.Parallel()
			b := setupBackfill(t, open, 30)
			if _, err := b.runner.Run(t.Context(), "shop", nil); err != nil {
				t.Fatal(err)
			}
			pulled, err := b.store.LookupKeys(t.Context(), ingest.Key(shopSource, "o-12"))
			if err != nil || len(pulled) != 1 {
				t.Fatalf("lookup: %v %v", pulled, err)
			}
			res := b.webhook(t, 12)
			if !res.Duplicate || res.Position != pulled[0].Position {
				t.Errorf("webhook after the backfill: %+v, want a duplicate at position %d", res, pulled[0].Position)
			}
			if via := b.shopIDs(t); len(via) != 30 || via["o-12"] != "backfill" {
				t.Errorf("stored %d, o-12 via %s", len(via), via["o-12"])
			}
		})
	})
}

func TestBackfillsAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setupBackfill(t, open, 25)

		var page server.BackfillPage
		b.get(t, "/v1/backfills", reader, &page)
		if len(page.Backfills) != 0 || page.Next != "" {
			t.Fatalf("before any run: %+v", page)
		}
		for _, name := range []string{"shop", "empty"} {
			if _, err := b.runner.Run(t.Context(), name, &backfill.RunOpts{Actor: "ana"}); err != nil {
				t.Fatal(err)
			}
		}

		b.get(t, "/v1/backfills", reader, &page)
		if len(page.Backfills) != 2 || page.Next != "shop" {
			t.Fatalf("list %+v", page)
		}
		empty, shop := page.Backfills[0], page.Backfills[1]
		if empty.Name != "empty" || empty.State != backfill.StateCompleted || empty.Items != 0 {
			t.Errorf("empty: %+v", empty)
		}
		if shop.Name != "shop" || shop.Source != shopSource || shop.State != backfill.StateCompleted || shop.Items != 25 ||
			shop.Stored != 25 || shop.Pages != 3 || shop.Cursor != "" || shop.Runs != 1 || shop.CompletedAt == nil || shop.UpdatedAt.IsZero() {
			t.Errorf("shop: %+v", shop)
		}

		b.get(t, "/v1/backfills?limit=1", reader, &page)
		if len(page.Backfills) != 1 || page.Next != "empty" {
			t.Fatalf("first page: %+v", page)
		}
		b.get(t, "/v1/backfills?limit=1&after=empty", reader, &page)
		if len(page.Backfills) != 1 || page.Backfills[0].Name != "shop" || page.Next != "shop" {
			t.Fatalf("second page: %+v", page)
		}
		b.get(t, "/v1/backfills?after=shop", reader, &page)
		if len(page.Backfills) != 0 || page.Next != "shop" {
			t.Fatalf("past the end: %+v", page)
		}

		var one backfill.Progress
		b.get(t, "/v1/backfills/shop", reader, &one)
		if one.Name != "shop" || one.Items != 25 || !one.UpdatedAt.Equal(shop.UpdatedAt) {
			t.Errorf("one: %+v", one)
		}
		for path, want := range map[string]int{
			"/v1/backfills/nope":    http.StatusNotFound,
			"/v1/backfills/a%20b":   http.StatusNotFound,
			"/v1/backfills?limit=0": http.StatusUnprocessableEntity,
		} {
			if status, raw := b.call(t, http.MethodGet, path, reader, ""); status != want {
				t.Errorf("GET %s: %d %s, want %d", path, status, raw, want)
			}
		}
		if status, _ := b.call(t, http.MethodGet, "/v1/backfills", "", ""); status != http.StatusUnauthorized {
			t.Errorf("without a token: %d, want 401", status)
		}
		if status, _ := b.call(t, http.MethodGet, "/v1/backfills", writer, ""); status != http.StatusForbidden {
			t.Errorf("with an ingest token: %d, want 403", status)
		}
	})
}
