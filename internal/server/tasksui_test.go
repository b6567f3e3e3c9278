package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rawevents/rawevents/internal/server"
)

// TestTasksUIRequiresAdmin: the task queue's web UI is served to admin
// tokens only, as a bearer token or as the password of HTTP Basic (what a
// browser sends), and refused with a problem detail otherwise.
func TestTasksUIRequiresAdmin(t *testing.T) {
	t.Parallel()
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("river ui at " + r.URL.Path)) })
	b := setup(t, backends[0].open, server.Config{TasksUI: ui, Tokens: []server.Token{
		{Name: "ops", Secret: "admin-secret-0123456789", Scopes: []string{server.ScopeAdmin}},
		{Name: "reader", Secret: "read-secret-0123456789", Scopes: []string{server.ScopeRead}},
	}})
	get := func(auth func(r *http.Request)) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, b.url+server.TasksUIPath+"/jobs", nil)
		if err != nil {
			t.Fatal(err)
		}
		auth(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(body)
	}
	cases := []struct {
		name   string
		auth   func(r *http.Request)
		status int
	}{
		{"NoCredentials", func(*http.Request) {}, http.StatusUnauthorized},
		{"UnknownToken", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"ReadScope", func(r *http.Request) { r.SetBasicAuth("reader", "read-secret-0123456789") }, http.StatusForbidden},
		{"AdminBearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer admin-secret-0123456789") }, http.StatusOK},
		{"AdminBasic", func(r *http.Request) { r.SetBasicAuth("anyone", "admin-secret-0123456789") }, http.StatusOK},
	}
	for _, c := range cases {
		res, body := get(c.auth)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, res.StatusCode, body, c.status)
			continue
		}
		if c.status == http.StatusOK {
			if body != "river ui at "+server.TasksUIPath+"/jobs" {
				t.Errorf("%s: body %q", c.name, body)
			}
			continue
		}
		var problem struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(body), &problem); err != nil || problem.Status != c.status || problem.Detail == "" ||
			res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: not a problem detail: %s (%v)", c.name, body, err)
		}
		if c.status == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, res.Header.Get("WWW-Authenticate"))
		}
	}
}
