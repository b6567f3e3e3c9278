package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/internal/eventjson"
)

// ErrUnknownType means an event's type is not registered.
var ErrUnknownType = errors.New("event type not registered")

// Types maps Go types to the names and schema versions their events are
// stored under, and back. Names are explicit, never derived from Go type
// names, so renaming a Go type never changes stored data. A Types is
// built once at start and then only read; it is safe for concurrent reads.
type Types struct {
	byName map[string]*typeInfo
	byType map[reflect.Type]*typeInfo
}

type typeInfo struct {
	name    string
	version int
	goType  reflect.Type
}

// NewTypes returns an empty registry.
func NewTypes() *Types {
	return &Types{byName: map[string]*typeInfo{}, byType: map[reflect.Type]*typeInfo{}}
}

// Register registers E as the payload of events named name at schema
// version version (>= 1). E is encoded as JSON. It fails when the name or
// the Go type is registered already.
func Register[E any](types *Types, name string, version int) error {
	goType := reflect.TypeFor[E]()
	switch {
	case name == "" || strings.TrimSpace(name) != name:
		return fmt.Errorf("register %v: name %q must be non-empty without surrounding space", goType, name)
	case version < 1:
		return fmt.Errorf("register %s: schema version %d must be >= 1", name, version)
	case goType.Kind() == reflect.Pointer || goType.Kind() == reflect.Interface:
		return fmt.Errorf("register %s: %v: register the value type", name, goType)
	}
	if other, ok := types.byName[name]; ok {
		return fmt.Errorf("register %s: name already registered for %v", name, other.goType)
	}
	if other, ok := types.byType[goType]; ok {
		return fmt.Errorf("register %s: %v already registered as %s", name, goType, other.name)
	}
	info := &typeInfo{name: name, version: version, goType: goType}
	types.byName[name], types.byType[goType] = info, info
	return nil
}

// MustRegister is Register for names fixed in the code, set up once at
// start: it panics where Register would fail, which any test of the
// setup catches.
func MustRegister[E any](types *Types, name string, version int) {
	if err := Register[E](types, name, version); err != nil {
		panic(err)
	}
}

// Names returns the registered names, sorted.
func (t *Types) Names() []string {
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Encode returns the proposed event for v, a registered value (or a
// pointer to one): its name, schema version and JSON data.
func (t *Types) Encode(v any) (event.Proposed, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return event.Proposed{}, fmt.Errorf("encode %v: %w", v, ErrUnknownType)
	}
	info, ok := t.byType[rv.Type()]
	if !ok {
		return event.Proposed{}, fmt.Errorf("encode %v: %w", rv.Type(), ErrUnknownType)
	}
	data, err := json.Marshal(rv.Interface())
	if err != nil {
		return event.Proposed{}, fmt.Errorf("encode %s: %w", info.name, err)
	}
	return event.Proposed{Type: info.name, SchemaVersion: info.version, Data: data}, nil
}

// Decode returns the payload of a stored event as a value of its
// registered Go type. An event of a schema version other than the
// registered one fails with a *SchemaVersionError.
func (t *Types) Decode(e event.Event) (any, error) {
	info, ok := t.byName[e.Type]
	if !ok {
		return nil, fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, ErrUnknownType)
	}
	if e.SchemaVersion != info.version {
		return nil, &SchemaVersionError{Type: e.Type, Stored: e.SchemaVersion, Registered: info.version}
	}
	ptr := reflect.New(info.goType)
	if err := eventjson.Payload(e.Data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	return ptr.Elem().Interface(), nil
}

// SchemaVersionError says that a stored event has a schema version its
// registered type does not read.
type SchemaVersionError struct {
	Type       string
	Stored     int
	Registered int
}

// Error describes the mismatch in one line.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("event %s: stored at schema version %d, registered at %d", e.Type, e.Stored, e.Registered)
}
