package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rawevents/rawevents"
	"github.com/rawevents/rawevents/driver"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/server"
	"github.com/rawevents/rawevents/rawtest"
)

// seedSubscriptions appends order.placed events to streams ok-1, bad-1,
// ok-2 and bad-2 (positions 1 to 4) and runs two subscriptions until they
// are done: "orders", whose handler fails on the bad-* streams and so
// parks positions 2 and 4, and "audit", which handles everything. Both
// are stopped before it returns, so nothing retries behind a test's back.
func seedSubscriptions[TTx any](t testing.TB, store *rawevents.Store[TTx]) {
	t.Helper()
	ctx := context.Background()
	for _, stream := range []string{"ok-1", "bad-1", "ok-2", "bad-2"} {
		if _, err := store.Append(ctx, stream, event.NoStream, event.Proposed{Type: "order.placed", Data: []byte(`{"total":12}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		parked int
	}{{"orders", 2}, {"audit", 0}} {
		sub, err := rawevents.NewSubscriber(store, &rawevents.Subscription[TTx]{
			Name: tt.name, Partitions: 2, MaxAttempts: 2, Lease: time.Second,
			Backoff: func(int) time.Duration { return time.Millisecond },
			Handle: func(ctx context.Context, tx TTx, e event.Event) error {
				if tt.parked > 0 && strings.HasPrefix(e.StreamID, "bad-") {
					return errors.New("no price list for " + e.StreamID)
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- sub.Run(runCtx) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := store.SubscriptionStatus(ctx, tt.name)
			if err == nil && st.Lag == 0 && st.Parked == tt.parked {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscription %s did not finish: %+v, %v", tt.name, st, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("run %s: %v", tt.name, err)
		}
	}
}

// forEachSeededBackend is forEachBackend with stores that
// seedSubscriptions filled.
func forEachSeededBackend(t *testing.T, fn func(t *testing.T, open func(testing.TB) store)) {
	seeded := map[string]func(testing.TB) store{
		"SQLite":     func(t testing.TB) store { s := rawtest.SQLite(t); seedSubscriptions(t, s); return s },
		"PostgreSQL": func(t testing.TB) store { s := rawtest.Postgres(t); seedSubscriptions(t, s); return s },
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, seeded[b.name])
		})
	}
}

var adminTokens = []server.Token{
	{Name: "writer", Secret: "writer-secret-0123456789", Scopes: []string{server.ScopeIngest}},
	{Name: "reader", Secret: "reader-secret-0123456789", Scopes: []string{server.ScopeRead}},
	{Name: "ops-team", Secret: "admin-secret-01234567890", Scopes: []string{server.ScopeAdmin}},
}

const (
	writer = "writer-secret-0123456789"
	reader = "reader-secret-0123456789"
	admin  = "admin-secret-01234567890"
)

// call sends a request with an optional bearer token and JSON body and
// returns the status and the raw answer, checking that every error is a
// problem detail.
func (b *testBundle) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 400 {
		var problem struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(raw, &problem) != nil ||
			problem.Status != resp.StatusCode || problem.Title == "" {
			t.Fatalf("%s %s: not a problem detail: %s %s", method, path, resp.Header.Get("Content-Type"), raw)
		}
	}
	return resp.StatusCode, raw
}

// get calls GET and decodes a 200 answer into out.
func (b *testBundle) get(t *testing.T, path, token string, out any) {
	t.Helper()
	status, raw := b.call(t, http.MethodGet, path, token, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, raw)
	}
}

// adminState is what a rejected request must leave unchanged: the log
// and every parked record of "orders".
type adminState struct {
	events []event.Event
	parked []driver.Parked
}

func (b *testBundle) adminState(t *testing.T) adminState {
	t.Helper()
	parked, err := b.store.(server.SubscriptionStore).Parked(context.Background(), "orders", &rawevents.ParkedOpts{
		States: []string{driver.ParkedWaiting, driver.ParkedRetrying, driver.ParkedSkipped, driver.ParkedResolved},
	})
	if err != nil {
		t.Fatal(err)
	}
	return adminState{events: b.log(t), parked: parked}
}

func parkedPositions(page server.ParkedPage) []int64 {
	out := []int64{}
	for _, p := range page.Parked {
		out = append(out, p.Position)
	}
	return out
}

func TestAdminSubscriptions(t *testing.T) {
	t.Parallel()
	forEachSeededBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{Tokens: adminTokens})

		var page server.SubscriptionPage
		b.get(t, "/v1/subscriptions", reader, &page)
		if len(page.Subscriptions) != 2 || page.Next != "orders" {
			t.Fatalf("list: %+v", page)
		}
		audit, orders := page.Subscriptions[0], page.Subscriptions[1]
		if audit.Name != "audit" || audit.Parked != 0 || orders.Name != "orders" || orders.Position != 4 || orders.Head != 4 ||
			orders.Lag != 0 || orders.Parked != 2 || len(orders.Partitions) != 2 {
			t.Errorf("list: %+v", page.Subscriptions)
		}
		for _, tt := range []struct {
			query string
			names []string
			next  string
		}{
			{"?limit=1", []string{"audit"}, "audit"},
			{"?after=audit&limit=1", []string{"orders"}, "orders"},
			{"?after=orders", []string{}, "orders"},
			{"?after=b", []string{"orders"}, "orders"},
		} {
			var page server.SubscriptionPage
			b.get(t, "/v1/subscriptions"+tt.query, admin, &page)
			names := []string{}
			for _, st := range page.Subscriptions {
				names = append(names, st.Name)
			}
			if !reflect.DeepEqual(names, tt.names) || page.Next != tt.next {
				t.Errorf("list %s: %v next %q, want %v next %q", tt.query, names, page.Next, tt.names, tt.next)
			}
		}

		var st rawevents.SubscriptionStatus
		b.get(t, "/v1/subscriptions/orders", reader, &st)
		if st.Name != "orders" || st.Parked != 2 || len(st.Partitions) != 2 || st.Partitions[0].Position != 4 {
			t.Errorf("get: %+v", st)
		}
	})
}

func TestAdminParked(t *testing.T) {
	t.Parallel()
	forEachSeededBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{Tokens: adminTokens})

		var page server.ParkedPage
		b.get(t, "/v1/subscriptions/orders/parked", reader, &page)
		if len(page.Parked) != 2 || page.Next != 4 {
			t.Fatalf("parked: %+v", page)
		}
		if p := page.Parked[0]; p.Position != 2 || p.StreamID != "bad-1" || p.State != driver.ParkedWaiting || p.Attempts != 2 ||
			p.Error != "no price list for bad-1" || p.Subscription != "orders" {
			t.Errorf("parked[0]: %+v", p)
		}
		for _, tt := range []struct {
			query string
			want  []int64
			next  int64
		}{
			{"?limit=1", []int64{2}, 2},
			{"?after=2", []int64{4}, 4},
			{"?after=4", []int64{}, 4},
			{"?state=skipped", []int64{}, 0},
			{"?state=skipped,parked&after=1", []int64{2, 4}, 4},
		} {
			var page server.ParkedPage
			b.get(t, "/v1/subscriptions/orders/parked"+tt.query, admin, &page)
			if got := parkedPositions(page); !reflect.DeepEqual(got, tt.want) || page.Next != tt.next {
				t.Errorf("parked %s: %v next %d, want %v next %d", tt.query, got, page.Next, tt.want, tt.next)
			}
		}
		var empty server.ParkedPage
		b.get(t, "/v1/subscriptions/audit/parked", reader, &empty)
		if empty.Parked == nil || len(empty.Parked) != 0 {
			t.Errorf("a subscription without parked events: %+v, want an empty list", empty)
		}

		status, raw := b.call(t, http.MethodPost, "/v1/subscriptions/orders/parked/2/retry", admin, `{"reason":"price list loaded"}`)
		var decided server.Decision
		if status != http.StatusAccepted || json.Unmarshal(raw, &decided) != nil {
			t.Fatalf("retry: %d %s", status, raw)
		}
		if want := (server.Decision{Subscription: "orders", Position: 2, State: "retrying", Actor: "ops-team", Reason: "price list loaded"}); decided != want {
			t.Errorf("retry answered %+v, want %+v", decided, want)
		}
		if status, raw := b.call(t, http.MethodPost, "/v1/subscriptions/orders/parked/4/skip", admin, ""); status != http.StatusOK ||
			!strings.Contains(string(raw), `"state":"skipped"`) {
			t.Fatalf("skip without a body: %d %s", status, raw)
		}

		st := b.adminState(t)
		if st.parked[0].State != driver.ParkedRetrying || st.parked[1].State != driver.ParkedSkipped {
			t.Errorf("states after retry and skip: %+v", st.parked)
		}
		var audit []event.Event
		for _, e := range st.events {
			if e.StreamID == rawevents.ParkedStream("orders") {
				audit = append(audit, e)
			}
		}
		if len(audit) != 2 || audit[0].Type != rawevents.ParkedRetryRequested || audit[0].Metadata.Actor != "ops-team" ||
			!strings.Contains(string(audit[0].Data), `"reason":"price list loaded"`) ||
			audit[1].Type != rawevents.ParkedSkippedType || audit[1].Metadata.Actor != "ops-team" {
			t.Errorf("audit trail: %+v", audit)
		}
	})
}

func TestAdminBadRequests(t *testing.T) {
	t.Parallel()
	forEachSeededBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{Tokens: adminTokens})
		if status, raw := b.call(t, http.MethodPost, "/v1/subscriptions/orders/parked/4/skip", admin, `{"reason":"refunded"}`); status != http.StatusOK {
			t.Fatalf("skip: %d %s", status, raw)
		}
		before := b.adminState(t)
		for _, tt := range []struct {
			name, method, path, token, body string
			status                          int
		}{
			{"ListMissingToken", "GET", "/v1/subscriptions", "", "", 401},
			{"ListBadToken", "GET", "/v1/subscriptions", "not-a-token-0123456789", "", 401},
			{"ListWrongScope", "GET", "/v1/subscriptions", writer, "", 403},
			{"ListBadLimit", "GET", "/v1/subscriptions?limit=0", reader, "", 422},
			{"GetUnknown", "GET", "/v1/subscriptions/nope", reader, "", 404},
			{"GetWrongScope", "GET", "/v1/subscriptions/orders", writer, "", 403},
			{"ParkedUnknownSubscription", "GET", "/v1/subscriptions/nope/parked", reader, "", 404},
			{"ParkedUnknownState", "GET", "/v1/subscriptions/orders/parked?state=stuck", reader, "", 422},
			{"ParkedNegativeAfter", "GET", "/v1/subscriptions/orders/parked?after=-1", reader, "", 422},
			{"ParkedMissingToken", "GET", "/v1/subscriptions/orders/parked", "", "", 401},
			{"RetryMissingToken", "POST", "/v1/subscriptions/orders/parked/2/retry", "", `{}`, 401},
			{"RetryReadScope", "POST", "/v1/subscriptions/orders/parked/2/retry", reader, `{}`, 403},
			{"SkipIngestScope", "POST", "/v1/subscriptions/orders/parked/2/skip", writer, `{}`, 403},
			{"RetryUnknownSubscription", "POST", "/v1/subscriptions/nope/parked/2/retry", admin, `{}`, 404},
			{"RetryNeverParked", "POST", "/v1/subscriptions/orders/parked/3/retry", admin, `{}`, 404},
			{"RetryBeyondTheLog", "POST", "/v1/subscriptions/orders/parked/999/retry", admin, `{}`, 404},
			{"RetrySkipped", "POST", "/v1/subscriptions/orders/parked/4/retry", admin, `{}`, 404},
			{"SkipSkipped", "POST", "/v1/subscriptions/orders/parked/4/skip", admin, `{}`, 404},
			{"PositionNotANumber", "POST", "/v1/subscriptions/orders/parked/two/retry", admin, `{}`, 422},
			{"PositionZero", "POST", "/v1/subscriptions/orders/parked/0/skip", admin, `{}`, 422},
			{"PositionNegative", "POST", "/v1/subscriptions/orders/parked/-2/skip", admin, `{}`, 422},
			{"BodyNotJSON", "POST", "/v1/subscriptions/orders/parked/2/skip", admin, `{"reason":`, 400},
			{"BodyUnknownField", "POST", "/v1/subscriptions/orders/parked/2/skip", admin, `{"why":"x"}`, 422},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, raw := b.call(t, tt.method, tt.path, tt.token, tt.body)
				if status != tt.status {
					t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, status, raw, tt.status)
				}
				if strings.Contains(string(raw), "sqlite") || strings.Contains(string(raw), "postgres") {
					t.Errorf("the problem detail shows the storage error: %s", raw)
				}
				if after := b.adminState(t); !reflect.DeepEqual(after, before) {
					t.Errorf("the store changed:\n before %+v\n after  %+v", before, after)
				}
			})
		}
	})
}

func TestAdminWithoutTokens(t *testing.T) {
	t.Parallel()
	forEachSeededBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{})
		before := b.adminState(t)
		for _, body := range []string{"", `{}`, `{"reason":"fixed"}`, `{"actor":"  "}`} {
			status, raw := b.call(t, http.MethodPost, "/v1/subscriptions/orders/parked/2/retry", "", body)
			if status != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "body.actor") {
				t.Errorf("retry with body %q and no token: %d %s, want 422 on body.actor", body, status, raw)
			}
		}
		if after := b.adminState(t); !reflect.DeepEqual(after, before) {
			t.Errorf("the store changed:\n before %+v\n after  %+v", before, after)
		}
		status, raw := b.call(t, http.MethodPost, "/v1/subscriptions/orders/parked/2/retry", "", `{"actor":"ana","reason":"fixed"}`)
		if status != http.StatusAccepted || !strings.Contains(string(raw), `"actor":"ana"`) {
			t.Fatalf("retry with an actor: %d %s", status, raw)
		}
		audit, err := b.store.ReadStream(context.Background(), rawevents.ParkedStream("orders"), nil)
		if err != nil || len(audit) != 1 || audit[0].Metadata.Actor != "ana" {
			t.Errorf("audit trail: %+v, %v", audit, err)
		}
	})
}

func TestAdminOpenAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, backends[0].open, server.Config{})
	var spec struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	b.get(t, "/openapi.json", "", &spec)
	for _, tt := range []struct{ path, method, scope string }{
		{"/v1/subscriptions", "get", server.ScopeRead},
		{"/v1/subscriptions/{name}", "get", server.ScopeRead},
		{"/v1/subscriptions/{name}/parked", "get", server.ScopeRead},
		{"/v1/subscriptions/{name}/parked/{position}/retry", "post", server.ScopeAdmin},
		{"/v1/subscriptions/{name}/parked/{position}/skip", "post", server.ScopeAdmin},
	} {
		op, ok := spec.Paths[tt.path][tt.method]
		if !ok {
			t.Errorf("%s %s missing from the OpenAPI description", tt.method, tt.path)
			continue
		}
		if len(op.Security) != 1 || !reflect.DeepEqual(op.Security[0]["bearer"], []string{tt.scope}) {
			t.Errorf("%s %s: security %v, want bearer %s", tt.method, tt.path, op.Security, tt.scope)
		}
	}
}
