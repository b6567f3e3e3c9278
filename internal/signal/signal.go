// Package signal broadcasts "something changed" to any number of waiters
// without queueing: each waiter gets a channel that is closed at the next
// broadcast.
package signal

import "sync"

// Broadcaster hands out channels that close on the next Broadcast. The zero
// value is ready to use.
type Broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel that is closed by the next call to Broadcast.
func (b *Broadcaster) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Broadcast wakes every current waiter.
func (b *Broadcaster) Broadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
