package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "platform: flag provided but not defined: -nope (see --help)"},
		{[]string{"--months", "x"}, `platform: invalid value "x" for flag -months: parse error (see --help)`},
		{[]string{"--months", "0"}, "platform: --months, --tracks, --holders, --platforms and --territories must be at least 1"},
		{[]string{"--months", "-3", "--platforms", "9"}, "platform: months is -3, want 1 to 600; platforms is 9, want 1 to 6"},
		{[]string{"--start", "2025-1"}, `platform: start: "2025-1" is not a month YYYY-MM`},
		{[]string{"--secret", "s"}, "platform: --secret needs --webhook"},
		{[]string{"--webhook", "http://x/y"}, "platform: no secret"},
		{[]string{"--webhook", "x/y", "--secret", "s"}, `platform: URL "x/y": want http(s)://host/path`},
		{[]string{"--webhook", "http://x/y", "--secret", "s", "--rate", "-1"}, "platform: rate -1: want 0 or more items a second"},
		{[]string{"--exit"}, "platform: --exit needs --webhook"},
		{[]string{"serve"}, `platform: unexpected argument "serve" (see --help)`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr); code != 2 || stderr.String() != c.want+"\n" || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want %q", c.args, code, stderr.String(), stdout.String(), c.want)
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, io.Discard); code != 0 || !strings.Contains(stdout.String(), "-webhook") {
		t.Errorf("--help: exit %d, %s", code, stdout.String())
	}
}

func TestRunSendsAndExits(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte("a secret of sixteen bytes"))
		mac.Write(body)
		if r.Header.Get("X-Signature") != hex.EncodeToString(mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--seed", "2", "--months", "2", "--tracks", "10", "--addr", "127.0.0.1:0",
		"--webhook", srv.URL, "--secret", "a secret of sixteen bytes", "--rate", "0", "--exit", "--quiet"}, &stdout, &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"platform: seed 2: history 2025-01..2025-02", "serving the history on http://127.0.0.1:", "platform: sent "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if got.Load() == 0 || !strings.Contains(out, "sent "+strconv.FormatInt(got.Load(), 10)+" webhooks") {
		t.Errorf("%d received; out:\n%s", got.Load(), out)
	}

	// Refused: the error on one line, exit 1.
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"--months", "2", "--tracks", "10", "--addr", "127.0.0.1:0",
		"--webhook", srv.URL, "--secret", "s", "--rate", "0", "--exit"}, &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "platform: send rpt-") || strings.Count(stderr.String(), "\n") != 1 ||
		!strings.Contains(stderr.String(), "401 Unauthorized") {
		t.Errorf("exit %d: %q", code, stderr.String())
	}
}
