package domain_test

import (
	"testing"

	"github.com/rawevents/rawevents/domain"
	"github.com/rawevents/rawevents/event"
	"github.com/rawevents/rawevents/ingest"
)

type rawPayload struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// TestRawData: RawData decodes a JSON payload inline under any JSON
// media type (the CloudEvents SDK alone fails on a +json type and on
// upper case, which ingestion stores inline too), JSON kept as
// data_base64, and no data; it fails on a payload of the wrong shape and
// on a broken envelope.
func TestRawData(t *testing.T) {
	tests := []struct {
		env  string
		want rawPayload
		err  bool
	}{
		{env: `{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data":{"key":"k1","seq":3}}`, want: rawPayload{"k1", 3}},
		{env: `{"specversion":"1.0","id":"2","source":"s","type":"t","data":{"key":"k2","seq":4}}`, want: rawPayload{"k2", 4}},
		{env: `{"specversion":"1.0","id":"3","source":"s","type":"t","datacontenttype":"application/json; charset=utf-8","data":{"key":"k3"}}`, want: rawPayload{Key: "k3"}},
		{env: `{"specversion":"1.0","id":"4","source":"s","type":"t","datacontenttype":"application/vnd.x+json","data":{"key":"k4"}}`, want: rawPayload{Key: "k4"}},
		{env: `{"specversion":"1.0","id":"5","source":"s","type":"t","datacontenttype":"Text/JSON","data":{"seq":5}}`, want: rawPayload{Seq: 5}},
		{env: `{"specversion":"1.0","id":"6","source":"s","type":"t","datacontenttype":"application/json","data_base64":"IHsia2V5IjoiazYifSA="}`, want: rawPayload{Key: "k6"}},
		{env: `{"specversion":"1.0","id":"7","source":"s","type":"t"}`},
		{env: `{"specversion":"1.0","id":"8","source":"s","type":"t","data":null}`},
		{env: `{"specversion":"1.0","id":"9","source":"s","type":"t","datacontenttype":"text/plain","data_base64":"aGVsbG8="}`, err: true},
		{env: `{"specversion":"1.0","id":"10","source":"s","type":"t","data":{"key":1}}`, err: true},
		{env: `{"specversion":"1.0","id":"11","source":"s","type":"t","data":"not an object"}`, err: true},
		{env: `not json`, err: true},
		// Not for the fast path (a repeated member, a name in upper case):
		// read as the SDK reads it.
		{env: `{"specversion":"1.0","id":"13","source":"s","type":"t","data":{"key":"a"},"data":{"key":"k13"}}`, want: rawPayload{Key: "k13"}},
		{env: `{"specversion":"1.0","id":"14","source":"s","type":"t","Data":{"key":"k14"}}`, err: true},
		{env: `{"specversion":"1.0","id":12,"source":"s","type":"t","data":{"key":"k12"}}`, err: true},
	}
	for _, tt := range tests {
		var got rawPayload
		err := domain.RawData(event.Event{Data: []byte(tt.env)}, &got)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v, error %v", tt.env, got, err, tt.want, tt.err)
		}
	}
}

func BenchmarkRawData(b *testing.B) {
	raw := event.Event{Data: []byte(`{"specversion":"1.0","id":"k001-1","source":"gen","type":"seq","datacontenttype":"application/json","data":{"key":"k001","seq":1}}`)}
	b.Run("RawData", func(b *testing.B) {
		for range b.N {
			var p rawPayload
			if err := domain.RawData(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SDK", func(b *testing.B) {
		for range b.N {
			var p rawPayload
			ev, err := ingest.Decode(raw.Data)
			if err == nil {
				err = ev.DataAs(&p)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
