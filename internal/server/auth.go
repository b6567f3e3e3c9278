package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Scopes a token can hold.
const (
	ScopeIngest = "ingest"
	ScopeRead   = "read"
	ScopeAdmin  = "admin"
)

var knownScopes = []string{ScopeIngest, ScopeRead, ScopeAdmin}

// Token is a bearer token and what it may do.
type Token struct {
	// Name identifies the token in logs and in the transport facts of the
	// events it sent. It is not secret.
	Name string `json:"name"`
	// Secret is the bearer value. It is never logged.
	Secret string `json:"secret"`
	// Scopes are the operations it may call: ingest, read, admin (admin
	// implies the others).
	Scopes []string `json:"scopes"`
}

// String hides the secret, so a token printed by mistake leaks nothing.
func (t Token) String() string { return fmt.Sprintf("%s(%s)", t.Name, strings.Join(t.Scopes, ",")) }

// ParseToken reads "name:secret:scope[,scope...]".
func ParseToken(s string) (Token, error) {
	name, rest, ok1 := strings.Cut(s, ":")
	secret, scopes, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return Token{}, errors.New(`token: want "name:secret:scope[,scope...]"`)
	}
	t := Token{Name: name, Secret: secret, Scopes: strings.Split(scopes, ",")}
	return t, validateTokens([]Token{t})
}

func validateTokens(tokens []Token) error {
	var errs []error
	names := map[string]bool{}
	for _, t := range tokens {
		switch {
		case t.Name == "":
			errs = append(errs, errors.New("token: empty name"))
		case names[t.Name]:
			errs = append(errs, fmt.Errorf("token %q: name used twice", t.Name))
		}
		names[t.Name] = true
		if len(t.Secret) < 16 {
			errs = append(errs, fmt.Errorf("token %q: secret shorter than 16 characters", t.Name))
		}
		if len(t.Scopes) == 0 {
			errs = append(errs, fmt.Errorf("token %q: no scopes", t.Name))
		}
		for _, sc := range t.Scopes {
			if !slices.Contains(knownScopes, sc) {
				errs = append(errs, fmt.Errorf("token %q: unknown scope %q (want %s)", t.Name, sc, strings.Join(knownScopes, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}

type tokenKey struct{}

// tokenName returns the name of the token that authorised the request, or
// "" when the server runs without tokens.
func tokenName(ctx context.Context) string {
	name, _ := ctx.Value(tokenKey{}).(string)
	return name
}

// authenticate checks the bearer token against the scope the operation
// declares in its Metadata["scope"]. Secrets are compared as SHA-256
// digests in constant time, against every configured token, so neither
// the match nor its position shows in the timing.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	scope, _ := ctx.Operation().Metadata["scope"].(string)
	if scope == "" || len(s.config.Tokens) == 0 {
		next(ctx)
		return
	}
	presented, ok := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
	if !ok || presented == "" {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="rawevents"`)
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "missing bearer token") //nolint:errcheck // the response is all we can do
		return
	}
	match := s.match(presented)
	if match == nil {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="rawevents", error="invalid_token"`)
		huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "unknown bearer token") //nolint:errcheck
		return
	}
	if !slices.Contains(match.Scopes, scope) && !slices.Contains(match.Scopes, ScopeAdmin) {
		huma.WriteErr(s.api, ctx, http.StatusForbidden, fmt.Sprintf("token %q lacks the %q scope", match.Name, scope)) //nolint:errcheck
		return
	}
	next(huma.WithValue(ctx, tokenKey{}, match.Name))
}

// match returns the configured token whose secret is presented, or nil.
// Secrets are compared as SHA-256 digests in constant time, against every
// configured token, so neither the match nor its position shows in the
// timing.
func (s *Server) match(presented string) *Token {
	digest := sha256.Sum256([]byte(presented))
	var match *Token
	for i := range s.config.Tokens {
		want := sha256.Sum256([]byte(s.config.Tokens[i].Secret))
		if subtle.ConstantTimeCompare(digest[:], want[:]) == 1 {
			match = &s.config.Tokens[i]
		}
	}
	return match
}

// requireAdmin guards a plain http.Handler (a web UI) with the admin
// scope. Besides a bearer token it takes HTTP Basic credentials whose
// password is a token's secret, so that a browser can sign in: it asks
// once and then sends them with every request, the UI's own included.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.config.Tokens) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			_, presented, ok = r.BasicAuth()
		}
		if !ok || presented == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="rawevents admin"`)
			writeProblem(w, http.StatusUnauthorized, "missing credentials: a token with the admin scope, as a bearer token or as the password of HTTP Basic")
			return
		}
		match := s.match(presented)
		if match == nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="rawevents admin"`)
			writeProblem(w, http.StatusUnauthorized, "unknown token")
			return
		}
		if !slices.Contains(match.Scopes, ScopeAdmin) {
			writeProblem(w, http.StatusForbidden, fmt.Sprintf("token %q lacks the %q scope", match.Name, ScopeAdmin))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, match.Name)))
	})
}

// writeProblem writes an RFC 9457 problem detail outside huma.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail}) //nolint:errcheck // the response is all we can do
}

// secured returns the operation's security requirement and scope.
func secured(op huma.Operation, scope string) huma.Operation {
	op.Security = []map[string][]string{{"bearer": {scope}}}
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["scope"] = scope
	return op
}
