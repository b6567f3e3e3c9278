package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/danielgtaylor/huma/v2"

	"github.com/rawevents/rawevents/ingest"
)

// WebhookSource configures one sender of webhooks that does not speak
// CloudEvents: how to check its signature and where each delivery's id
// and type are. Kind "github" fills in GitHub's conventions.
type WebhookSource struct {
	// Kind is "github" or "generic" (the default).
	Kind string `json:"kind,omitempty"`
	// Source is the CloudEvents source of the events; default: the name.
	Source string `json:"source,omitempty"`
	// Secret is the HMAC-SHA256 key the sender signs bodies with.
	// Required: an unsigned webhook would let anyone write events.
	Secret string `json:"secret"`
	// SignatureHeader carries the signature (github:
	// X-Hub-Signature-256).
	SignatureHeader string `json:"signature_header,omitempty"`
	// SignaturePrefix precedes the signature in the header (github:
	// "sha256=").
	SignaturePrefix string `json:"signature_prefix,omitempty"`
	// SignatureEncoding is "hex" (default) or "base64".
	SignatureEncoding string `json:"signature_encoding,omitempty"`
	// ID says where a delivery's id is: "header:Name" or "json:/pointer"
	// (RFC 6901, into the body). github: header:X-GitHub-Delivery.
	ID string `json:"id,omitempty"`
	// Type says where the event type is, like ID. github:
	// header:X-GitHub-Event.
	Type string `json:"type,omitempty"`
	// TypePrefix is put before the type (github: "com.github.").
	TypePrefix string `json:"type_prefix,omitempty"`
}

// String hides the secret.
func (w WebhookSource) String() string {
	return fmt.Sprintf("webhook(kind=%s source=%s id=%s type=%s)", w.Kind, w.Source, w.ID, w.Type)
}

// withDefaults fills in the conventions of the source's kind.
func (w WebhookSource) withDefaults(name string) WebhookSource {
	if w.Kind == "github" {
		w.SignatureHeader = cmp.Or(w.SignatureHeader, "X-Hub-Signature-256")
		w.SignaturePrefix = cmp.Or(w.SignaturePrefix, "sha256=")
		w.ID = cmp.Or(w.ID, "header:X-GitHub-Delivery")
		w.Type = cmp.Or(w.Type, "header:X-GitHub-Event")
		w.TypePrefix = cmp.Or(w.TypePrefix, "com.github.")
	}
	w.Kind = cmp.Or(w.Kind, "generic")
	w.Source = cmp.Or(w.Source, name)
	w.SignatureEncoding = cmp.Or(w.SignatureEncoding, "hex")
	return w
}

func validateSources(sources map[string]WebhookSource) error {
	var errs []error
	for name, w := range sources {
		w = w.withDefaults(name)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("webhook source %q: %s", name, fmt.Sprintf(format, args...)))
		}
		if name == "" || strings.ContainsAny(name, "/?#") {
			bad("the name must be non-empty, without / ? #")
		}
		if w.Kind != "generic" && w.Kind != "github" {
			bad("kind %q: want github or generic", w.Kind)
		}
		if len(w.Secret) < 16 {
			bad("secret missing or shorter than 16 characters")
		}
		if w.SignatureHeader == "" {
			bad("signature_header is required")
		}
		if w.SignatureEncoding != "hex" && w.SignatureEncoding != "base64" {
			bad("signature_encoding %q: want hex or base64", w.SignatureEncoding)
		}
		for _, f := range [...]struct{ field, spec string }{{"id", w.ID}, {"type", w.Type}} {
			if _, _, err := parseLocator(f.spec); err != nil {
				bad("%s: %v", f.field, err)
			}
		}
		if len(w.Source) > ingest.MaxSourceLength {
			bad("source longer than %d bytes", ingest.MaxSourceLength)
		}
	}
	return errors.Join(errs...)
}

// parseLocator reads "header:Name" or "json:/pointer".
func parseLocator(spec string) (kind, where string, err error) {
	kind, where, ok := strings.Cut(spec, ":")
	switch {
	case !ok || where == "":
		return "", "", fmt.Errorf("%q: want header:Name or json:/pointer", spec)
	case kind == "header":
		return kind, where, nil
	case kind == "json" && strings.HasPrefix(where, "/"):
		return kind, where, nil
	}
	return "", "", fmt.Errorf("%q: want header:Name or json:/pointer", spec)
}

type webhookInput struct {
	rawRequest
	Source string `path:"source" doc:"The webhook source's name in the server configuration."`
}

func (s *Server) registerWebhooks() {
	huma.Register(s.api, huma.Operation{
		OperationID: "receive-webhook", Method: http.MethodPost, Path: "/v1/sources/{source}/webhook", Tags: []string{"ingest"},
		Summary: "Receive a signed webhook",
		Description: "For senders that do not speak CloudEvents. The body is verified with the source's HMAC-SHA256 secret " +
			"(GitHub's X-Hub-Signature-256 scheme, or a configured header) and stored byte for byte as the data of a " +
			"CloudEvent whose id and type come from the configured header or JSON pointer. A missing or wrong signature " +
			"is 401 and stores nothing. Authenticated by the signature, not by a bearer token.",
		MaxBodyBytes:     s.config.MaxEventBytes,
		SkipValidateBody: true,
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"*/*": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
		}},
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestEntityTooLarge},
	}, func(ctx context.Context, in *webhookInput) (*ingestOutput, error) {
		cfg, ok := s.config.Sources[in.Source]
		if !ok {
			return nil, huma.Error404NotFound(fmt.Sprintf("no webhook source %q is configured", in.Source))
		}
		cfg = cfg.withDefaults(in.Source)
		if err := verifySignature(cfg, in.header, in.RawBody); err != nil {
			return nil, huma.Error401Unauthorized(err.Error())
		}
		id, err := locate(cfg.ID, in.header, in.RawBody)
		if err != nil {
			return nil, huma.Error400BadRequest("delivery id: " + err.Error())
		}
		typ, err := locate(cfg.Type, in.header, in.RawBody)
		if err != nil {
			return nil, huma.Error400BadRequest("event type: " + err.Error())
		}
		e := ce.New()
		e.SetID(id)
		e.SetSource(cfg.Source)
		e.SetType(cfg.TypePrefix + typ)
		contentType := in.header.Get("Content-Type")
		if mediaType, _, err := mime.ParseMediaType(contentType); err == nil {
			contentType = mediaType
		}
		e.SetDataContentType(cmp.Or(contentType, "application/octet-stream"))
		e.DataEncoded = in.RawBody
		t := in.transport(ctx, "webhook")
		t.Verified = "hmac-sha256"
		return s.ingest(ctx, []ingest.Raw{{Event: e, Transport: t}})
	})
}

// verifySignature checks the body's HMAC-SHA256 against the header, in
// constant time.
func verifySignature(cfg WebhookSource, header http.Header, body []byte) error {
	value := header.Get(cfg.SignatureHeader)
	if value == "" {
		return fmt.Errorf("missing %s signature header", cfg.SignatureHeader)
	}
	encoded, ok := strings.CutPrefix(value, cfg.SignaturePrefix)
	if !ok {
		return fmt.Errorf("%s does not start with %q", cfg.SignatureHeader, cfg.SignaturePrefix)
	}
	var got []byte
	var err error
	if cfg.SignatureEncoding == "base64" {
		got, err = base64.StdEncoding.DecodeString(encoded)
	} else {
		got, err = hex.DecodeString(encoded)
	}
	if err != nil {
		return fmt.Errorf("%s is not %s", cfg.SignatureHeader, cfg.SignatureEncoding)
	}
	mac := hmac.New(sha256.New, []byte(cfg.Secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// locate finds a value by a "header:Name" or "json:/pointer" locator.
func locate(spec string, header http.Header, body []byte) (string, error) {
	kind, where, err := parseLocator(spec)
	if err != nil {
		return "", err
	}
	if kind == "header" {
		if v := header.Get(where); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("header %s is missing", where)
	}
	// Numbers are kept as written: a float64 would turn two large ids into
	// one, and the second delivery into a duplicate of the first.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return "", fmt.Errorf("the body is not JSON, so %s cannot be read", where)
	}
	v, ok := jsonPointer(doc, where)
	if !ok {
		return "", fmt.Errorf("nothing at %s in the body", where)
	}
	switch v := v.(type) {
	case string:
		if v != "" {
			return v, nil
		}
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("%s is not a non-empty string or a number", where)
}

// jsonPointer resolves an RFC 6901 pointer in a decoded JSON document.
func jsonPointer(doc any, pointer string) (any, bool) {
	for _, token := range strings.Split(pointer, "/")[1:] {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		switch node := doc.(type) {
		case map[string]any:
			v, ok := node[token]
			if !ok {
				return nil, false
			}
			doc = v
		case []any:
			i, err := strconv.Atoi(token)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			doc = node[i]
		default:
			return nil, false
		}
	}
	return doc, true
}
