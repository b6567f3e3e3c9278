package tasks

import (
	"context"
	"fmt"
	"net/http"

	"riverqueue.com/riverui"
)

// UIHandler returns River's web UI and its JSON API for c's database,
// served under prefix (for example "/admin/river"): mount it at
// prefix+"/" and put it behind whatever guards admin pages, because it
// shows task arguments and can cancel, retry and delete tasks.
//
// The handler's background services (caches, periodic queries) run until
// ctx is done. The client need not be started, and an insert-only client
// is enough.
func UIHandler[TTx any](ctx context.Context, c *Client[TTx], prefix string) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(c.river, nil),
		Logger:    c.logger,
		Prefix:    prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("tasks: UI: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("tasks: UI: %w", err)
	}
	return h, nil
}
