package platform

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"
)

// SignatureHeader carries a webhook's signature: the lowercase hex of the
// HMAC-SHA256 of the body, keyed with the secret.
const SignatureHeader = "X-Signature"

// SendConfig says where and how Send delivers.
type SendConfig struct {
	// URL receives each item as a POST; required, http or https.
	URL string
	// Secret keys the signature; required.
	Secret string
	// Rate is how many items a second to send; 0 is as fast as possible.
	Rate float64
	// Client sends the requests; nil is a client with a 10s timeout.
	Client *http.Client
	// Attempts is the most tries per item; 0 is 8.
	Attempts int
	// Backoff is the wait before the first retry, doubled at each retry
	// up to MaxBackoff; 0 is 100ms.
	Backoff time.Duration
	// MaxBackoff caps the wait between retries; 0 is 5s.
	MaxBackoff time.Duration
	// OnDelivery, if set, is called after each item is delivered.
	OnDelivery func(Delivery)
	// OnRetry, if set, is called before each wait for a retry.
	OnRetry func(Retry)
}

// Delivery reports an item Send delivered, with the counts so far.
type Delivery struct {
	Seq      int    // its position in d.Outbox, from 1
	Of       int    // len(d.Outbox)
	Item     int    // its index in d.Items
	ID, Type string // the item's
	Resend   bool   // a history item sent again on purpose
	Status   int    // the 2xx that accepted it
	Attempts int    // tries it took

	Delivered int // items delivered so far, this one included
	Resent    int // of which history items sent again
	Retries   int // failed tries retried so far, on all items
}

// Retry reports a failed try that Send will try again.
type Retry struct {
	Seq     int
	ID      string
	Attempt int           // the try that failed, from 1
	Err     error         // what failed: a 5xx or 429, or the connection
	Wait    time.Duration // before the next try
}

// Send posts d's Outbox one item at a time, in order, to cfg.URL: the
// body is the item's JSON, Content-Type application/json, and
// X-Signature the hex HMAC-SHA256 of the body keyed with cfg.Secret. That
// is every live item, and, among them, a few history items sent again on
// purpose (Anomalies.Resends), as a platform whose webhooks and history
// overlap does.
//
// It sends at most cfg.Rate items a second. A connection error, a 5xx or
// a 429 is retried after a backoff, up to cfg.Attempts tries; any other
// status that is not 2xx stops it with an error, as does ctx.
func Send(ctx context.Context, d *Data, cfg SendConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts := cfg.Attempts
	if attempts <= 0 {
		attempts = 8
	}
	backoff := cfg.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	maxBackoff := cfg.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	resend := make(map[int]bool)
	for _, i := range d.Outbox {
		if i < d.HistoryLen {
			resend[i] = true
		}
	}
	var delivered, resent, retries int
	next := time.Now()
	for seq, i := range d.Outbox {
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
		next = next.Add(interval)
		it := d.Items[i]
		body := it.JSON()
		mac := hmac.New(sha256.New, []byte(cfg.Secret))
		mac.Write(body)
		signature := hex.EncodeToString(mac.Sum(nil))
		wait := backoff
		for attempt := 1; ; attempt++ {
			status, err := post(ctx, client, cfg.URL, body, signature)
			if err == nil {
				delivered++
				if resend[i] {
					resent++
				}
				if cfg.OnDelivery != nil {
					cfg.OnDelivery(Delivery{
						Seq: seq + 1, Of: len(d.Outbox), Item: i, ID: it.ID(), Type: it.Type(),
						Resend: resend[i], Status: status, Attempts: attempt,
						Delivered: delivered, Resent: resent, Retries: retries,
					})
				}
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var permanent *permanentError
			if errors.As(err, &permanent) || attempt == attempts {
				return fmt.Errorf("platform: send %s (%d of %d) after %d tries: %w; delivered %d",
					it.ID(), seq+1, len(d.Outbox), attempt, err, delivered)
			}
			retries++
			if cfg.OnRetry != nil {
				cfg.OnRetry(Retry{Seq: seq + 1, ID: it.ID(), Attempt: attempt, Err: err, Wait: wait})
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			wait = min(2*wait, maxBackoff)
		}
	}
	return nil
}

// Validate says what is wrong with the configuration, if anything: Send
// checks it first.
func (cfg SendConfig) Validate() error {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return errors.New("platform: send: no URL")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("platform: send: URL %q: want http(s)://host/path", cfg.URL)
	case cfg.Secret == "":
		return errors.New("platform: send: no secret")
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return fmt.Errorf("platform: send: rate %v: want 0 or more items a second", cfg.Rate)
	}
	return nil
}

// permanentError is a response not worth retrying.
type permanentError struct{ error }

// post makes one try; an error is retryable unless it is a
// *permanentError.
func post(ctx context.Context, client *http.Client, url string, body []byte, signature string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, signature)
	req.Header.Set("User-Agent", "rawevents-royalties-platform")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return resp.StatusCode, fmt.Errorf("%s", resp.Status)
	}
	return resp.StatusCode, &permanentError{fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(detail))}
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
