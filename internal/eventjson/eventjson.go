// Package eventjson decodes the JSON that rawevents itself writes, on the
// paths every event of the log takes: a stored event's metadata and the
// envelope of a raw event. It uses the JSON v2 decoder, which reads these
// small objects in one pass, two to three times faster than encoding/json
// (which first checks the whole input, then decodes it), with a third of
// the allocations.
package eventjson

import (
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/rawevents/rawevents/event"
)

// Metadata decodes a stored event's metadata into m.
func Metadata(b []byte, m *event.Metadata) error {
	return jsonv2.Unmarshal(b, m)
}

// Envelope is the part of a structured CloudEvent (as ingestion stores a
// raw event) that is needed to read its data without the SDK.
type Envelope struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	DataContentType string         `json:"datacontenttype"`
	Data            jsontext.Value `json:"data"`
}

// DecodeEnvelope decodes a structured CloudEvent's envelope into env.
func DecodeEnvelope(b []byte, env *Envelope) error {
	return jsonv2.Unmarshal(b, env)
}
