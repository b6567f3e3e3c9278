package server_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
	"github.com/rawevents/rawevents/internal/server"
)

// The @octokit/webhooks-examples package holds real GitHub webhook
// payloads; .ci/run installs it where the tests look for it.
const (
	webhookExamplesPackage = "@octokit/webhooks-examples@7.6.1"
	webhookExamplesInstall = "npm install --prefix .ci/npm " + webhookExamplesPackage + " --no-audit --no-fund"
)

const (
	githubSecret  = "a webhook secret for the tests"
	genericSecret = "another webhook secret, base64"
	// readerSecret is a bearer token with the read scope: a webhook needs
	// none, the read back does.
	readerSecret = "reader-secret-for-webhook-tests"
)

// webhookConfig is a server with a GitHub source, a generic source and a
// bearer token, which the webhooks must not need.
func webhookConfig() server.Config {
	return server.Config{
		Tokens: []server.Token{{Name: "reader", Secret: readerSecret, Scopes: []string{server.ScopeRead}}},
		Sources: map[string]server.WebhookSource{
			"github": {Kind: "github", Secret: githubSecret},
			"shop": {
				Kind: "generic", Secret: genericSecret,
				SignatureHeader: "X-Signature", SignatureEncoding: "base64",
				ID: "json:/event/id", Type: "json:/kind", TypePrefix: "com.example.",
			},
		},
	}
}

// githubExample is one payload of @octokit/webhooks-examples.
type githubExample struct {
	Event   string          // the X-GitHub-Event header: the webhook's name
	Payload json.RawMessage // the body, exactly as the package has it
}

// githubExamples reads every payload for api.github.com. Where the package
// is missing the test fails in CI and is skipped elsewhere.
func githubExamples(t *testing.T) []githubExample {
	t.Helper()
	dir := os.Getenv("RAWEVENTS_WEBHOOK_EXAMPLES")
	if dir == "" {
		dir = filepath.Join(moduleRoot(t), ".ci", "npm", "node_modules", "@octokit", "webhooks-examples")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "api.github.com", "index.json"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the GitHub webhook examples are required in CI (.ci/run installs them): %v", err)
		}
		t.Skipf("the GitHub webhook examples are not installed (%v); run at the repository's root: %s", err, webhookExamplesInstall)
	}
	var webhooks []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(raw, &webhooks); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	var out []githubExample
	for _, w := range webhooks {
		for _, payload := range w.Examples {
			out = append(out, githubExample{Event: w.Name, Payload: payload})
		}
	}
	if len(out) < 100 {
		t.Fatalf("%s holds %d examples; is it the right package?", dir, len(out))
	}
	return out
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// signHex signs body as GitHub does: "sha256=" and the hex HMAC-SHA256.
func signHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// signBase64 signs body for a generic source with base64 signatures.
func signBase64(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// githubHeaders are the headers of a GitHub delivery.
func githubHeaders(eventName, delivery string, body []byte) http.Header {
	return headers(
		"Content-Type", "application/json",
		"User-Agent", "GitHub-Hookshot/044aadd",
		"X-GitHub-Event", eventName,
		"X-GitHub-Delivery", delivery,
		"X-GitHub-Hook-ID", "292430182",
		"X-Hub-Signature-256", signHex(githubSecret, body),
	)
}

// answer is an HTTP answer, kept whole: status, headers and body bytes.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// exchange sends a request and reads the whole answer.
func (b *testBundle) exchange(t *testing.T, method, path string, header http.Header, body []byte) answer {
	t.Helper()
	ex, err := b.tryExchange(method, path, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// tryExchange is exchange for goroutines other than the test's.
func (b *testBundle) tryExchange(method, path string, header http.Header, body []byte) (answer, error) {
	req, err := http.NewRequest(method, b.url+path, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if header != nil {
		req.Header = header.Clone()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// ingestResults decodes a 200 answer of an ingest operation.
func ingestResults(t *testing.T, ex answer) server.IngestResponse {
	t.Helper()
	if ex.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", ex.status, ex.body)
	}
	var out server.IngestResponse
	if err := json.Unmarshal(ex.body, &out); err != nil {
		t.Fatalf("answer %q: %v", ex.body, err)
	}
	return out
}

// requireProblemDetail checks that an answer is an RFC 9457 problem detail with
// the given status.
func requireProblemDetail(t *testing.T, ex answer, status int) {
	t.Helper()
	if ex.status != status {
		t.Fatalf("status %d, want %d: %s", ex.status, status, ex.body)
	}
	if ct := ex.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, ex.body)
	}
	var problem struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(ex.body, &problem); err != nil {
		t.Fatalf("problem %q: %v", ex.body, err)
	}
	if problem.Status != status || problem.Title == "" {
		t.Fatalf("problem %s: want status %d and a title", ex.body, status)
	}
}

// storedCloudEvent is a raw event as GET /v1/raw-events answers it.
type storedCloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      []byte          `json:"data_base64"`
	position        int64
}

// readCloudEvent reads a raw event back through the API.
func (b *testBundle) readCloudEvent(t *testing.T, source, id string) storedCloudEvent {
	t.Helper()
	q := url.Values{"source": {source}, "id": {id}}
	ex := b.exchange(t, http.MethodGet, "/v1/raw-events?"+q.Encode(), headers("Authorization", "Bearer "+readerSecret), nil)
	if ex.status != http.StatusOK {
		t.Fatalf("read back (%s, %s): status %d: %s", source, id, ex.status, ex.body)
	}
	if ct := ex.header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Fatalf("read back: Content-Type %q", ct)
	}
	var out storedCloudEvent
	if err := json.Unmarshal(ex.body, &out); err != nil {
		t.Fatalf("read back %q: %v", ex.body, err)
	}
	if _, err := fmt.Sscan(ex.header.Get("Rawevents-Position"), &out.position); err != nil {
		t.Fatalf("Rawevents-Position %q: %v", ex.header.Get("Rawevents-Position"), err)
	}
	return out
}

// storedRaw returns the store's event for a raw event.
func (b *testBundle) storedRaw(t *testing.T, source, id string) event.Event {
	t.Helper()
	events, err := b.store.LookupKeys(context.Background(), ingest.Key(source, id))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("lookup (%s, %s): %d events", source, id, len(events))
	}
	return events[0]
}

// requireWebhookEvent checks a delivery answered with res is stored as the
// CloudEvent (source, id, typ) with body as its data, byte for byte.
func (b *testBundle) requireWebhookEvent(t *testing.T, res server.IngestResponse, source, id, typ string, body []byte) {
	t.Helper()
	if len(res.Results) != 1 {
		t.Fatalf("results %+v, want one", res.Results)
	}
	r := res.Results[0]
	if r.Source != source || r.ID != id || r.Duplicate || r.Position <= 0 || res.Position != r.Position {
		t.Fatalf("answer %+v, want a new event (%s, %s)", res, source, id)
	}
	got := b.readCloudEvent(t, source, id)
	if got.SpecVersion != "1.0" || got.ID != id || got.Source != source || got.Type != typ || got.position != r.Position {
		t.Fatalf("stored %s/%s/%s/%s at %d, want 1.0/%s/%s/%s at %d",
			got.SpecVersion, got.ID, got.Source, got.Type, got.position, id, source, typ, r.Position)
	}
	if got.DataContentType != "application/json" || got.DataBase64 != nil {
		t.Fatalf("stored as %q with data_base64 %q, want application/json in data", got.DataContentType, got.DataBase64)
	}
	if !bytes.Equal(got.Data, body) {
		t.Fatalf("stored data differs from the body sent:\n got %.200q\nwant %.200q", got.Data, body)
	}
	stored := b.storedRaw(t, source, id)
	if stored.Position != r.Position || stored.StreamID != ingest.StreamID(source) || stored.Type != typ {
		t.Fatalf("stored in %s at %d as %s", stored.StreamID, stored.Position, stored.Type)
	}
	if via, verified := stored.Metadata.Extra["received_via"], stored.Metadata.Extra["verified"]; via != "webhook" || verified != "hmac-sha256" {
		t.Fatalf("metadata %v, want received_via=webhook verified=hmac-sha256", stored.Metadata.Extra)
	}
}

func TestWebhookGitHubExamples(t *testing.T) {
	t.Parallel()
	examples := githubExamples(t)
	t.Logf("%d GitHub webhook examples", len(examples))
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, webhookConfig())
		t.Run("Deliveries", func(t *testing.T) {
			seen := map[string]int{}
			for _, ex := range examples {
				name := fmt.Sprintf("%s-%d", ex.Event, seen[ex.Event])
				seen[ex.Event]++
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					delivery := uuid.NewString()
					res := ingestResults(t, b.exchange(t, http.MethodPost, "/v1/sources/github/webhook",
						githubHeaders(ex.Event, delivery, ex.Payload), ex.Payload))
					b.requireWebhookEvent(t, res, "github", delivery, "com.github."+ex.Event, ex.Payload)
				})
			}
		})
		if n := len(b.log(t)); n != len(examples) {
			t.Fatalf("the log holds %d events for %d deliveries", n, len(examples))
		}
	})
}

// githubPush is a small push delivery for the cases that need no real
// payload.
var githubPush = []byte(`{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0000000000000000000000000000000000000000",` +
	`"repository":{"id":17273051,"full_name":"octo-org/octo-repo"},"pusher":{"name":"octocat"},"commits":[]}`)

func TestWebhookGitHubDocsTestVector(t *testing.T) {
	t.Parallel()
	// GitHub's documentation gives this secret, payload and signature to
	// check an implementation against ("Validating webhook deliveries").
	const (
		secret    = "It's a Secret to Everybody"
		payload   = "Hello, World!"
		signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		config := webhookConfig()
		config.Sources["docs"] = server.WebhookSource{Kind: "github", Secret: secret}
		b := setup(t, open, config)
		delivery := uuid.NewString()
		res := ingestResults(t, b.exchange(t, http.MethodPost, "/v1/sources/docs/webhook", headers(
			"Content-Type", "text/plain; charset=utf-8",
			"X-GitHub-Event", "ping", "X-GitHub-Delivery", delivery, "X-Hub-Signature-256", signature,
		), []byte(payload)))
		if len(res.Results) != 1 || res.Results[0].Duplicate {
			t.Fatalf("answer %+v", res)
		}
		got := b.readCloudEvent(t, "docs", delivery)
		if got.Type != "com.github.ping" || got.DataContentType != "text/plain" || string(got.DataBase64) != payload || got.Data != nil {
			t.Fatalf("stored %+v, want the payload in data_base64", got)
		}
	})
}

func TestWebhookGitHubRejects(t *testing.T) {
	t.Parallel()
	valid := func() http.Header { return githubHeaders("push", uuid.NewString(), githubPush) }
	withHeader := func(name, value string) func() http.Header {
		return func() http.Header {
			h := valid()
			if value == "" {
				h.Del(name)
			} else {
				h.Set(name, value)
			}
			return h
		}
	}
	goodHex := strings.TrimPrefix(signHex(githubSecret, githubPush), "sha256=")
	for _, tt := range []struct {
		name   string
		path   string // default: the github source
		header func() http.Header
		body   []byte // default: githubPush
		status int
	}{
		{name: "MissingSignature", header: withHeader("X-Hub-Signature-256", ""), status: http.StatusUnauthorized},
		{name: "EmptySignature", header: withHeader("X-Hub-Signature-256", "sha256="), status: http.StatusUnauthorized},
		{name: "WrongSecret", header: withHeader("X-Hub-Signature-256", signHex("not the source's secret", githubPush)), status: http.StatusUnauthorized},
		{name: "SignatureOfAnotherBody", header: withHeader("X-Hub-Signature-256", signHex(githubSecret, []byte(`{"zen":"Keep it logically awesome."}`))), status: http.StatusUnauthorized},
		{name: "BodyChangedAfterSigning", header: valid, body: append(bytes.Clone(githubPush), ' '), status: http.StatusUnauthorized},
		{name: "MalformedHex", header: withHeader("X-Hub-Signature-256", "sha256=zz"+goodHex[2:]), status: http.StatusUnauthorized},
		{name: "TruncatedSignature", header: withHeader("X-Hub-Signature-256", "sha256="+goodHex[:32]), status: http.StatusUnauthorized},
		{name: "WrongPrefix", header: withHeader("X-Hub-Signature-256", "sha1="+goodHex), status: http.StatusUnauthorized},
		{name: "NoPrefix", header: withHeader("X-Hub-Signature-256", goodHex), status: http.StatusUnauthorized},
		{name: "SHA1SignatureHeaderOnly", header: func() http.Header {
			h := valid()
			h.Del("X-Hub-Signature-256")
			h.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
			return h
		}, status: http.StatusUnauthorized},
		{name: "UnknownSource", path: "/v1/sources/gitlab/webhook", header: valid, status: http.StatusNotFound},
		{name: "MissingDelivery", header: withHeader("X-GitHub-Delivery", ""), status: http.StatusBadRequest},
		{name: "MissingEvent", header: withHeader("X-GitHub-Event", ""), status: http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
				b := setup(t, open, webhookConfig())
				// One delivery first, so that "unchanged" is not "empty".
				ingestResults(t, b.exchange(t, http.MethodPost, "/v1/sources/github/webhook", valid(), githubPush))
				before := b.log(t)
				path, body := cmp.Or(tt.path, "/v1/sources/github/webhook"), tt.body
				if body == nil {
					body = githubPush
				}
				requireProblemDetail(t, b.exchange(t, http.MethodPost, path, tt.header(), body), tt.status)
				if after := b.log(t); len(after) != len(before) {
					t.Fatalf("the log grew from %d to %d events", len(before), len(after))
				}
			})
		})
	}
}

func TestWebhookGitHubRedelivery(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, webhookConfig())
		delivery := uuid.NewString()
		send := func(body []byte) server.IngestResponse {
			return ingestResults(t, b.exchange(t, http.MethodPost, "/v1/sources/github/webhook", githubHeaders("push", delivery, body), body))
		}
		first := send(githubPush)
		b.requireWebhookEvent(t, first, "github", delivery, "com.github.push", githubPush)
		before := len(b.log(t))

		// GitHub's "Redeliver" sends the same body with the same delivery
		// id; a changed body under the same id is a duplicate as well, and
		// the first delivery's data stays.
		for _, body := range [][]byte{githubPush, []byte(`{"ref":"refs/heads/other"}`)} {
			again := send(body)
			if len(again.Results) != 1 || !again.Results[0].Duplicate || again.Position != first.Position || again.Results[0].Position != first.Position {
				t.Fatalf("redelivery answered %+v, want a duplicate at %d", again, first.Position)
			}
		}
		if after := len(b.log(t)); after != before {
			t.Fatalf("the log grew from %d to %d events", before, after)
		}
		if got := b.readCloudEvent(t, "github", delivery); !bytes.Equal(got.Data, githubPush) {
			t.Fatalf("stored data %q, want the first delivery's", got.Data)
		}
	})
}

func TestWebhookGeneric(t *testing.T) {
	t.Parallel()
	post := func(t *testing.T, b *testBundle, body []byte, signature string) answer {
		return b.exchange(t, http.MethodPost, "/v1/sources/shop/webhook",
			headers("Content-Type", "application/json", "X-Signature", signature), body)
	}
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, webhookConfig())

		t.Run("StringID", func(t *testing.T) {
			body := []byte(`{"kind": "order.created", "event": {"id": "evt_1Nq"}, "order": {"total": 12.50, "note": "<b>&amp;</b>"}}`)
			res := ingestResults(t, post(t, b, body, signBase64(genericSecret, body)))
			b.requireWebhookEvent(t, res, "shop", "evt_1Nq", "com.example.order.created", body)
		})
		t.Run("NumericID", func(t *testing.T) {
			body := []byte(`{"kind":"order.paid","event":{"id":42}}`)
			res := ingestResults(t, post(t, b, body, signBase64(genericSecret, body)))
			b.requireWebhookEvent(t, res, "shop", "42", "com.example.order.paid", body)
		})
		t.Run("Rejects", func(t *testing.T) {
			for _, tt := range []struct {
				name      string
				body      string
				signature func(body []byte) string // default: a valid one
				status    int
			}{
				{name: "MissingID", body: `{"kind":"order.created","event":{}}`, status: http.StatusBadRequest},
				{name: "EmptyID", body: `{"kind":"order.created","event":{"id":""}}`, status: http.StatusBadRequest},
				{name: "ObjectID", body: `{"kind":"order.created","event":{"id":{"n":1}}}`, status: http.StatusBadRequest},
				{name: "MissingType", body: `{"event":{"id":"evt_2"}}`, status: http.StatusBadRequest},
				{name: "NotJSON", body: `kind=order.created&event[id]=evt_3`, status: http.StatusBadRequest},
				{name: "HexSignature", body: `{"kind":"order.created","event":{"id":"evt_4"}}`, signature: func(body []byte) string {
					return strings.TrimPrefix(signHex(genericSecret, body), "sha256=")
				}, status: http.StatusUnauthorized},
				{name: "NotBase64", body: `{"kind":"order.created","event":{"id":"evt_5"}}`, signature: func([]byte) string { return "%%%" }, status: http.StatusUnauthorized},
				{name: "WrongSecret", body: `{"kind":"order.created","event":{"id":"evt_6"}}`, signature: func(body []byte) string {
					return signBase64(githubSecret, body)
				}, status: http.StatusUnauthorized},
				{name: "MissingSignature", body: `{"kind":"order.created","event":{"id":"evt_7"}}`, signature: func([]byte) string { return "" }, status: http.StatusUnauthorized},
			} {
				t.Run(tt.name, func(t *testing.T) {
					before := len(b.log(t))
					body := []byte(tt.body)
					signature := signBase64(genericSecret, body)
					if tt.signature != nil {
						signature = tt.signature(body)
					}
					requireProblemDetail(t, post(t, b, body, signature), tt.status)
					if after := len(b.log(t)); after != before {
						t.Fatalf("the log grew from %d to %d events", before, after)
					}
				})
			}
		})
	})
}

// TestWebhookGenericLargeNumericIDs: ids are often 64-bit integers, and two
// deliveries whose ids differ beyond float64's 53 bits of precision are two
// facts, not a redelivery.
func TestWebhookGenericLargeNumericIDs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) store) {
		b := setup(t, open, webhookConfig())
		for _, id := range []string{"9007199254740993", "9007199254740992", "1234567890123456789"} {
			body := []byte(`{"kind":"order.created","event":{"id":` + id + `}}`)
			res := ingestResults(t, b.exchange(t, http.MethodPost, "/v1/sources/shop/webhook",
				headers("Content-Type", "application/json", "X-Signature", signBase64(genericSecret, body)), body))
			if len(res.Results) != 1 || res.Results[0].ID != id || res.Results[0].Duplicate {
				t.Errorf("delivery %s answered %+v, want a new event with id %s", id, res.Results, id)
			}
		}
		if n := len(b.log(t)); n != 3 {
			t.Errorf("the log holds %d events for 3 deliveries", n)
		}
	})
}
