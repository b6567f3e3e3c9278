package rawevents

import (
	"context"
	"sync"
)

type commitHooksKey struct{}

// commitHooks are the functions to run once a transaction commits.
type commitHooks struct {
	mu  sync.Mutex
	fns []func()
}

// WithCommitHooks returns a context for work done in a transaction, and a
// function to call once that transaction has committed: it runs what the
// work registered with OnCommit. When the transaction rolls back, do not
// call it. The subscription engine does this for its handlers.
func WithCommitHooks(ctx context.Context) (context.Context, func()) {
	hooks := &commitHooks{}
	return context.WithValue(ctx, commitHooksKey{}, hooks), func() {
		hooks.mu.Lock()
		fns := hooks.fns
		hooks.fns = nil
		hooks.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}
}

// OnCommit registers fn to run after the transaction that ctx's work runs
// in commits, and reports whether it could: false means ctx carries no
// commit hooks (see WithCommitHooks), so nobody will say whether the work
// committed. Caches of committed state use it, so that a rolled-back
// transaction never leaves its writes in a cache.
func OnCommit(ctx context.Context, fn func()) bool {
	hooks, ok := ctx.Value(commitHooksKey{}).(*commitHooks)
	if !ok {
		return false
	}
	hooks.mu.Lock()
	hooks.fns = append(hooks.fns, fn)
	hooks.mu.Unlock()
	return true
}
