package signal

import (
	"testing"
	"time"
)

func TestBroadcaster(t *testing.T) {
	t.Parallel()

	var b Broadcaster
	first, second := b.Wait(), b.Wait()
	select {
	case <-first:
		t.Fatal("closed before any broadcast")
	default:
	}
	b.Broadcast()
	for _, ch := range []<-chan struct{}{first, second} {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatal("waiter not woken")
		}
	}
	select {
	case <-b.Wait():
		t.Fatal("a new waiter must wait for the next broadcast")
	default:
	}
}
