package platform

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "a secret of sixteen bytes or more"

// receiver records the bodies it accepts, checking each signature, and
// fails the tries fail says to.
type receiver struct {
	t    *testing.T
	mu   sync.Mutex
	got  [][]byte
	hits int // requests, failed ones included
	// fail answers a request (from 1), given the deliveries so far: 0
	// accepts it, -1 drops the connection, else that status.
	fail func(request, accepted int) int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get(SignatureHeader) != hex.EncodeToString(mac.Sum(nil)) {
		rc.t.Errorf("%s with %v: not signed as it should be", r.Method, r.Header)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.hits++
	status := 0
	if rc.fail != nil {
		status = rc.fail(rc.hits, len(rc.got))
	}
	if status == 0 {
		rc.got = append(rc.got, body)
	}
	rc.mu.Unlock()
	switch status {
	case 0:
		w.WriteHeader(http.StatusAccepted)
	case -1:
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	default:
		http.Error(w, `{"detail":"no"}`, status)
	}
}

func outboxJSON(d *Data) [][]byte {
	var out [][]byte
	for _, i := range d.Outbox {
		out = append(out, d.Items[i].JSON())
	}
	return out
}

func TestSendDeliversSignedWithRetries(t *testing.T) {
	d := Generate(Config{Seed: 3, Months: 2, Tracks: 20, Holders: 5})
	rc := &receiver{t: t, fail: func(request, accepted int) int {
		switch {
		case accepted == 2 && request <= 5: // the third item: 503, 500, dropped
			return []int{503, 500, -1}[request-3]
		case accepted == 5 && request == 9: // the sixth: 429
			return 429
		}
		return 0
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var deliveries []Delivery
	var retries []Retry
	err := Send(context.Background(), d, SendConfig{
		URL: srv.URL + "/v1/sources/streamfy/webhook", Secret: secret, Backoff: time.Millisecond,
		OnDelivery: func(dl Delivery) { deliveries = append(deliveries, dl) },
		OnRetry:    func(r Retry) { retries = append(retries, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := outboxJSON(d)
	if len(rc.got) != len(want) || len(want) < 10 {
		t.Fatalf("%d deliveries, want %d", len(rc.got), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.got[i], want[i]) {
			t.Fatalf("delivery %d: %s, want %s", i, rc.got[i], want[i])
		}
	}
	last := deliveries[len(deliveries)-1]
	if len(deliveries) != len(want) || last.Delivered != len(want) || last.Resent != len(d.Anomalies.Resends) ||
		last.Retries != 4 || deliveries[2].Attempts != 4 || deliveries[5].Attempts != 2 || last.Of != len(want) {
		t.Errorf("last delivery %+v; third %+v; sixth %+v", last, deliveries[2], deliveries[5])
	}
	if len(retries) != 4 || retries[0].Seq != 3 || retries[0].Wait != time.Millisecond || retries[1].Wait != 2*time.Millisecond ||
		!strings.Contains(retries[0].Err.Error(), "503") || retries[3].Seq != 6 {
		t.Errorf("retries %+v", retries)
	}
	resent := 0
	for _, dl := range deliveries {
		if dl.Resend {
			resent++
			if dl.Item >= d.HistoryLen {
				t.Errorf("%+v: a live item as a resend", dl)
			}
		}
	}
	if resent != len(d.Anomalies.Resends) || resent == 0 {
		t.Errorf("%d resends, want %d", resent, len(d.Anomalies.Resends))
	}
}

func TestSendStopsOn4xx(t *testing.T) {
	d := Generate(Config{Seed: 3, Months: 2, Tracks: 20, Holders: 5})
	rc := &receiver{t: t, fail: func(request, accepted int) int {
		if accepted == 1 {
			return http.StatusBadRequest
		}
		return 0
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	err := Send(context.Background(), d, SendConfig{URL: srv.URL, Secret: secret, Backoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "after 1 tries") {
		t.Errorf("error %v", err)
	}
	if rc.hits != 2 || len(rc.got) != 1 {
		t.Errorf("%d requests, %d accepted", rc.hits, len(rc.got))
	}
}

func TestSendGivesUp(t *testing.T) {
	d := Generate(Config{Seed: 3, Months: 2, Tracks: 20, Holders: 5})
	rc := &receiver{t: t, fail: func(int, int) int { return http.StatusServiceUnavailable }}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	err := Send(context.Background(), d, SendConfig{URL: srv.URL, Secret: secret, Attempts: 3, Backoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "after 3 tries: 503") || rc.hits != 3 {
		t.Errorf("%d requests; error %v", rc.hits, err)
	}

	// Nothing listening: connection errors, retried, then given up.
	srv.Close()
	err = Send(context.Background(), d, SendConfig{URL: srv.URL, Secret: secret, Attempts: 2, Backoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "after 2 tries") {
		t.Errorf("error %v", err)
	}
}

func TestSendRateAndCancel(t *testing.T) {
	d := Generate(Config{Seed: 3, Months: 1, Tracks: 3, Holders: 2, Platforms: 1, Territories: 1})
	d.Outbox = d.Outbox[:min(5, len(d.Outbox))]
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	start := time.Now()
	if err := Send(context.Background(), d, SendConfig{URL: srv.URL, Secret: secret, Rate: 50}); err != nil {
		t.Fatal(err)
	}
	if took, least := time.Since(start), time.Duration(len(d.Outbox)-1)*20*time.Millisecond; took < least {
		t.Errorf("%d items at 50/s in %v, want at least %v", len(d.Outbox), took, least)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Send(ctx, d, SendConfig{URL: srv.URL, Secret: secret, Rate: 1, OnDelivery: func(Delivery) {
		n++
		cancel()
	}})
	if err != context.Canceled || n != 1 {
		t.Errorf("cancelled after the first: %d delivered, error %v", n, err)
	}
}

func TestSendConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  SendConfig
		want string
	}{
		{SendConfig{URL: "http://x/y", Secret: "s"}, ""},
		{SendConfig{Secret: "s"}, "no URL"},
		{SendConfig{URL: "ftp://x", Secret: "s"}, `URL "ftp://x"`},
		{SendConfig{URL: "localhost:8080/x", Secret: "s"}, `URL "localhost:8080/x"`},
		{SendConfig{URL: "http://x"}, "no secret"},
		{SendConfig{URL: "http://x", Secret: "s", Rate: -1}, "rate -1"},
	} {
		err := c.cfg.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
		if err != nil {
			if err2 := Send(context.Background(), &Data{}, c.cfg); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("%+v: Send says %v", c.cfg, err2)
			}
		}
	}
}
