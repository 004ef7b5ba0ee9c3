package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
)

// tokenFromEnv is the API token when -token is not given: ORDERGRID_TOKEN,
// else ORDERGRID_BOOTSTRAP_TOKEN (the admin token scripts give their nodes).
func tokenFromEnv() string {
	if t := os.Getenv("ORDERGRID_TOKEN"); t != "" {
		return t
	}
	return os.Getenv("ORDERGRID_BOOTSTRAP_TOKEN")
}

// throwawayToken is the admin token of a throwaway node.
func throwawayToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "og_bench_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// bearerTransport adds "Authorization: Bearer <token>" to every request.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token == "" {
		return b.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// bearerCreds is gRPC per-call credentials with the token.
type bearerCreds string

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return false }
