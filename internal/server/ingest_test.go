package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
)

// readRaw fetches a raw event back and decodes the stored CloudEvent.
func (b *testBundle) readRaw(t *testing.T, source, id string) *ce.Event {
	t.Helper()
	resp, err := http.Get(b.url + "/v1/raw-events?source=" + source + "&id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/cloudevents+json" {
		t.Fatalf("read %s/%s: %d %s", source, id, resp.StatusCode, raw)
	}
	var e ce.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("stored event %s: %v", raw, err)
	}
	return &e
}

// TestCloudEventsSDKClient sends events with the official CloudEvents Go
// SDK in each HTTP mode and reads them back byte for byte.
func TestCloudEventsSDKClient(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{})
		ctx := context.Background()
		sdkEvent := func(id, contentType string, data []byte) ce.Event {
			e := cloudevents.NewEvent()
			e.SetID(id)
			e.SetSource("https://sdk.example/orders")
			e.SetType("com.example.order.placed")
			e.SetSubject("order-" + id)
			e.SetExtension("tenant", "acme")
			if err := e.SetData(contentType, data); err != nil {
				t.Fatal(err)
			}
			return e
		}
		jsonData := []byte("{\n  \"total\": 12.50,  \"note\": \"<fragile> & \\\"quoted\\\"\"\n}")
		binData := []byte{0x00, 0x9f, 0xff, '\n', 'x'}
		for _, tt := range []struct {
			name, mode string
			encoding   binding.Encoding
			event      ce.Event
		}{
			{"Structured", "structured", binding.EncodingStructured, sdkEvent("s1", "application/json", jsonData)},
			{"Binary", "binary", binding.EncodingBinary, sdkEvent("b1", "application/json", jsonData)},
			{"BinaryOctets", "binary", binding.EncodingBinary, sdkEvent("b2", "application/octet-stream", binData)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p, err := cehttp.New(cehttp.WithTarget(b.url + "/v1/events"))
				if err != nil {
					t.Fatal(err)
				}
				client, err := cloudevents.NewClient(p)
				if err != nil {
					t.Fatal(err)
				}
				sendCtx := binding.WithPreferredEventEncoding(ctx, tt.encoding)
				if res := client.Send(sendCtx, tt.event); !cloudevents.IsACK(res) {
					t.Fatalf("send: %v", res)
				}
				back := b.readRaw(t, tt.event.Source(), tt.event.ID())
				if string(back.Data()) != string(tt.event.Data()) {
					t.Fatalf("data %q, want %q", back.Data(), tt.event.Data())
				}
				if back.Type() != tt.event.Type() || back.Subject() != tt.event.Subject() || back.Extensions()["tenant"] != "acme" {
					t.Fatalf("attributes: %+v", back)
				}
				stored, err := b.store.LookupKeys(ctx, ingest.Key(tt.event.Source(), tt.event.ID()))
				if err != nil || len(stored) != 1 {
					t.Fatalf("lookup: %v", err)
				}
				if mode := stored[0].Metadata.Extra["received_via"]; mode != tt.mode {
					t.Fatalf("received via %q, want %q", mode, tt.mode)
				}
			})
		}

		t.Run("Batch", func(t *testing.T) {
			events := []ce.Event{sdkEvent("m1", "application/json", []byte(`{"a": 1}`)), sdkEvent("m2", "text/plain", []byte("plain text"))}
			body, err := json.Marshal(events)
			if err != nil {
				t.Fatal(err)
			}
			status, out := b.post(t, "/v1/events", headers("Content-Type", "application/cloudevents-batch+json"), body)
			if status != http.StatusOK || len(out["results"].([]any)) != 2 {
				t.Fatalf("batch: %d %v", status, out)
			}
			for _, e := range events {
				if back := b.readRaw(t, e.Source(), e.ID()); string(back.Data()) != string(e.Data()) {
					t.Fatalf("%s: data %q, want %q", e.ID(), back.Data(), e.Data())
				}
			}
		})
	})
}

// TestIdempotentUnderConcurrency has 32 clients send overlapping batches
// that share ids: each (source, id) is stored once, and every client is
// told the same position for it.
func TestIdempotentUnderConcurrency(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, server.Config{})
		const clients, batches, size, distinct = 32, 5, 20, 400
		var mu sync.Mutex
		positions := map[string]map[float64]bool{}
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for n := range batches {
					var batch []string
					for i := range size {
						k := (c*37 + n*size + i*11) % distinct
						batch = append(batch, fmt.Sprintf(`{"specversion":"1.0","id":"%d","source":"src-%d","type":"t","data":{"k":%d}}`, k, k%3, k))
					}
					status, out := b.post(t, "/v1/events", headers("Content-Type", "application/cloudevents-batch+json"), []byte("["+strings.Join(batch, ",")+"]"))
					if status != http.StatusOK {
						t.Errorf("client %d: %d %v", c, status, out)
						return
					}
					mu.Lock()
					for _, r := range out["results"].([]any) {
						r := r.(map[string]any)
						key := r["source"].(string) + "/" + r["id"].(string)
						if positions[key] == nil {
							positions[key] = map[float64]bool{}
						}
						positions[key][r["position"].(float64)] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for key, seen := range positions {
			if len(seen) != 1 {
				t.Fatalf("%s reported at positions %v", key, seen)
			}
		}
		if n := len(b.log(t)); n != len(positions) {
			t.Fatalf("the log holds %d events for %d distinct (source, id)", n, len(positions))
		}
	})
}

// TestBadInput sends the corpus of bad requests: each gets the right
// status and a problem detail, and the store is unchanged.
func TestBadInput(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		tokens := []server.Token{
			{Name: "writer", Secret: "writer-secret-0123456789", Scopes: []string{server.ScopeIngest}},
			{Name: "reader", Secret: "reader-secret-0123456789", Scopes: []string{server.ScopeRead}},
		}
		b := setup(t, open, server.Config{Tokens: tokens, MaxEventBytes: 1024, MaxBatchBytes: 4096})
		const structured, batch = "application/cloudevents+json", "application/cloudevents-batch+json"
		valid := `{"specversion":"1.0","id":"1","source":"s","type":"t"}`
		writer := "Bearer writer-secret-0123456789"
		for _, tt := range []struct {
			name, contentType, auth, body string
			extra                         http.Header
			status                        int
		}{
			{"MalformedJSON", structured, writer, `{"specversion":"1.0",`, nil, 400},
			{"NotAnObject", structured, writer, `[1,2]`, nil, 400},
			{"SpecVersion03", structured, writer, `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, nil, 400},
			{"SpecVersion2", structured, writer, `{"specversion":"2.0","id":"1","source":"s","type":"t"}`, nil, 400},
			{"MissingID", structured, writer, `{"specversion":"1.0","source":"s","type":"t"}`, nil, 400},
			{"MissingSource", structured, writer, `{"specversion":"1.0","id":"1","type":"t"}`, nil, 400},
			{"MissingType", structured, writer, `{"specversion":"1.0","id":"1","source":"s"}`, nil, 400},
			{"InvalidJSONData", "", writer, `{"unterminated":`, headers("Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "s", "Ce-Type", "t", "Content-Type", "application/json"), 400},
			{"BinaryMissingType", "", writer, `{}`, headers("Ce-Specversion", "1.0", "Ce-Id", "1", "Ce-Source", "s", "Content-Type", "application/json"), 400},
			{"WrongContentType", "text/plain", writer, valid, nil, 415},
			{"NoContentType", "", writer, valid, nil, 415},
			{"OversizedEvent", structured, writer, `{"specversion":"1.0","id":"1","source":"s","type":"t","data":"` + strings.Repeat("x", 2000) + `"}`, nil, 413},
			{"OversizedBody", batch, writer, "[" + strings.Repeat(valid+",", 80) + valid + "]", nil, 413},
			{"InvalidBatchItem", batch, writer, `[` + valid + `,{"specversion":"1.0","id":"2","source":"s"}]`, nil, 400},
			{"BatchNotArray", batch, writer, valid, nil, 400},
			{"MissingToken", structured, "", valid, nil, 401},
			{"BadToken", structured, "Bearer not-a-token-at-all-000", valid, nil, 401},
			{"NotBearer", structured, "Basic d3JpdGVyOnNlY3JldA==", valid, nil, 401},
			{"WrongScope", structured, "Bearer reader-secret-0123456789", valid, nil, 403},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := http.Header{}
				for k, v := range tt.extra {
					h[k] = v
				}
				if tt.contentType != "" {
					h.Set("Content-Type", tt.contentType)
				}
				if tt.auth != "" {
					h.Set("Authorization", tt.auth)
				}
				before := len(b.log(t))
				req, err := http.NewRequest(http.MethodPost, b.url+"/v1/events", strings.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = h
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, raw)
				}
				var problem map[string]any
				if resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(raw, &problem) != nil ||
					problem["status"] != float64(tt.status) || problem["title"] == "" {
					t.Fatalf("not a problem detail: %s %s", resp.Header.Get("Content-Type"), raw)
				}
				if after := len(b.log(t)); after != before {
					t.Fatalf("a rejected request changed the log from %d to %d events", before, after)
				}
			})
		}
		if status, out := b.post(t, "/v1/events", headers("Content-Type", structured, "Authorization", writer), []byte(valid)); status != http.StatusOK {
			t.Fatalf("the valid event is refused: %d %v", status, out)
		}
		req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/events", nil)
		req.Header.Set("Authorization", writer)
		if status, _ := do(t, req); status != http.StatusForbidden {
			t.Fatalf("an ingest token reads the log: %d", status)
		}
		req.Header.Set("Authorization", "Bearer reader-secret-0123456789")
		if status, out := do(t, req); status != http.StatusOK || len(out["events"].([]any)) != 1 {
			t.Fatalf("read with the read token: %d %v", status, out)
		}
	})
}

func TestOpenAPIAndHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, backends[0].open, server.Config{})
	for _, path := range []string{"/openapi.json", "/openapi.yaml", "/healthz", "/readyz", "/docs/"} {
		resp, err := http.Get(b.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(b.url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spec struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", spec.OpenAPI)
	}
	for _, path := range []string{"/v1/events", "/v1/raw-events", "/v1/streams/{stream}/events", "/v1/sources/{source}/webhook"} {
		if spec.Paths[path] == nil {
			t.Errorf("%s missing from the OpenAPI description", path)
		}
	}
}
