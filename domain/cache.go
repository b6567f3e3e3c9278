package domain

import (
	"container/list"
	"sync"
)

// stateCache keeps the committed state of recently used aggregate
// instances, least recently used out first.
type stateCache[S any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cached[S], most recent first
	byKey map[string]*list.Element
}

type cached[S any] struct {
	stream  string
	version int64
	state   S
}

func newStateCache[S any](size int) *stateCache[S] {
	return &stateCache[S]{max: size, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *stateCache[S]) get(stream string) (cached[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[stream]
	if !ok {
		return cached[S]{}, false
	}
	c.order.MoveToFront(el)
	return *el.Value.(*cached[S]), true
}

func (c *stateCache[S]) put(stream string, version int64, state S) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[stream]; ok {
		if e := el.Value.(*cached[S]); e.version < version {
			e.version, e.state = version, state
		}
		c.order.MoveToFront(el)
		return
	}
	c.byKey[stream] = c.order.PushFront(&cached[S]{stream: stream, version: version, state: state})
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*cached[S]).stream)
	}
}

func (c *stateCache[S]) remove(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[stream]; ok {
		c.order.Remove(el)
		delete(c.byKey, stream)
	}
}
