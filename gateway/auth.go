package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Role is what a token may do.
type Role string

// The roles. Admin may do everything, the others what their name says.
const (
	// RoleIntake creates orders of its channels.
	RoleIntake Role = "intake"
	// RoleOps records fulfilment events and sets stock; it reads orders and stock.
	RoleOps Role = "ops"
	// RolePartner reads the orders, events and proofs of its channels only.
	RolePartner Role = "partner"
	// RoleCompliance exports the audit trail and erases subjects; it reads orders.
	RoleCompliance Role = "compliance"
	// RoleAdmin runs the cluster and may do everything the others may.
	RoleAdmin Role = "admin"
)

var roles = []Role{RoleIntake, RoleOps, RolePartner, RoleCompliance, RoleAdmin}

// channelBound roles act only on orders of their token's channels.
func (r Role) channelBound() bool { return r == RoleIntake || r == RolePartner }

// Principal is the authenticated caller: a token's name and what it may do.
// Its Name is recorded with every event it causes.
type Principal struct {
	Name     string
	Role     Role
	Channels []string
	Expires  time.Time
}

// mayUseChannel reports whether p may act on an order of channel.
func (p *Principal) mayUseChannel(channel string) bool {
	return !p.Role.channelBound() || slices.Contains(p.Channels, channel)
}

// TokenEntry is one token in the tokens file: the token itself is never
// stored, only its SHA-256.
type TokenEntry struct {
	Name     string   `yaml:"name"`
	Role     string   `yaml:"role"`
	Channels []string `yaml:"channels,omitempty"`
	SHA256   string   `yaml:"sha256"`
	// Expires, RFC 3339, is when the token stops working; empty: never.
	Expires string `yaml:"expires,omitempty"`
}

// TokensFile is the YAML file named by auth.tokens_file.
type TokensFile struct {
	Tokens []TokenEntry `yaml:"tokens"`
}

// tokenPrefix marks ordergrid tokens, so a leaked one is recognisable.
const tokenPrefix = "og_"

// NewToken returns a fresh random token and its tokens-file entry.
func NewToken(name string, role Role, channels []string, expires time.Time) (string, TokenEntry, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", TokenEntry{}, fmt.Errorf("token: %w", err)
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	e := TokenEntry{Name: name, Role: string(role), Channels: channels, SHA256: TokenHash(tok)}
	if !expires.IsZero() {
		e.Expires = expires.UTC().Format(time.RFC3339)
	}
	if _, err := e.principal(); err != nil {
		return "", TokenEntry{}, err
	}
	return tok, e, nil
}

// TokenHash is the hex SHA-256 under which a token is stored.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (e TokenEntry) principal() (*Principal, error) {
	p := &Principal{Name: e.Name, Role: Role(e.Role), Channels: e.Channels}
	switch {
	case !namePattern.MatchString(e.Name):
		return nil, fmt.Errorf("name %q: 1-128 of A-Z a-z 0-9 . _ : -", e.Name)
	case !slices.Contains(roles, p.Role):
		return nil, fmt.Errorf("token %s: role %q is not one of intake, ops, partner, compliance, admin", e.Name, e.Role)
	case p.Role.channelBound() && len(e.Channels) == 0:
		return nil, fmt.Errorf("token %s: role %s needs at least one channel", e.Name, e.Role)
	case !p.Role.channelBound() && len(e.Channels) > 0:
		return nil, fmt.Errorf("token %s: role %s is not bound to channels", e.Name, e.Role)
	}
	for _, c := range e.Channels {
		if !namePattern.MatchString(c) {
			return nil, fmt.Errorf("token %s: channel %q: 1-128 of A-Z a-z 0-9 . _ : -", e.Name, c)
		}
	}
	if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("token %s: sha256 must be 64 hex digits", e.Name)
	}
	if e.Expires != "" {
		t, err := time.Parse(time.RFC3339, e.Expires)
		if err != nil {
			return nil, fmt.Errorf("token %s: expires: %w", e.Name, err)
		}
		p.Expires = t
	}
	return p, nil
}

// Tokens authenticates bearer tokens: SHA-256 of the token -> principal.
type Tokens struct {
	byHash map[string]*Principal
	now    func() time.Time
}

// NewTokens checks entries (unique names and hashes, known roles) and
// returns the authenticator.
func NewTokens(entries []TokenEntry) (*Tokens, error) {
	t := &Tokens{byHash: make(map[string]*Principal, len(entries)), now: time.Now}
	names := map[string]bool{}
	for _, e := range entries {
		p, err := e.principal()
		if err != nil {
			return nil, err
		}
		h := strings.ToLower(e.SHA256)
		if names[e.Name] {
			return nil, fmt.Errorf("token name %q appears twice", e.Name)
		}
		if t.byHash[h] != nil {
			return nil, fmt.Errorf("token %s: the same token as %s", e.Name, t.byHash[h].Name)
		}
		names[e.Name] = true
		t.byHash[h] = p
	}
	return t, nil
}

// LoadTokensFile reads a tokens file.
func LoadTokensFile(path string) ([]TokenEntry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	var f TokensFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return f.Tokens, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// Errors of authentication.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrUnknownToken = errors.New("unknown token")
	ErrTokenExpired = errors.New("token expired")
)

// Authenticate returns the principal of an Authorization header value
// ("Bearer <token>").
func (t *Tokens) Authenticate(header string) (*Principal, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil, ErrNoToken
	}
	p := t.byHash[TokenHash(strings.TrimSpace(tok))]
	if p == nil {
		return nil, ErrUnknownToken
	}
	if !p.Expires.IsZero() && !t.now().Before(p.Expires) {
		return nil, fmt.Errorf("%w at %s", ErrTokenExpired, p.Expires.UTC().Format(time.RFC3339))
	}
	return p, nil
}

func unauthenticated(err error) *Problem {
	detail := "send Authorization: Bearer <token>"
	switch {
	case errors.Is(err, ErrUnknownToken):
		detail = "the bearer token is not known"
	case errors.Is(err, ErrTokenExpired):
		detail = "the bearer token " + err.Error()[len("token "):]
	}
	return &Problem{Status: http.StatusUnauthorized, Name: "unauthenticated", Title: "Authentication required", Detail: detail,
		Errors: []*pb.FieldViolation{{Field: "authorization", Detail: detail}}}
}

func forbidden(p *Principal, detail string) *Problem {
	return &Problem{Status: http.StatusForbidden, Name: "forbidden", Title: "Not allowed",
		Detail: fmt.Sprintf("%s (role %s): %s", p.Name, p.Role, detail)}
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalOf returns the caller of ctx, or nil.
func PrincipalOf(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// principalName is what events record as their principal.
func principalName(ctx context.Context) string {
	if p := PrincipalOf(ctx); p != nil {
		return p.Name
	}
	return "anonymous"
}

// allow answers 403 unless the caller has one of the roles (admin always has).
func allow(ctx context.Context, what string, rs ...Role) *Problem {
	p := PrincipalOf(ctx)
	if p == nil {
		return unauthenticated(ErrNoToken)
	}
	if p.Role == RoleAdmin || slices.Contains(rs, p.Role) {
		return nil
	}
	var names []string // in the roles' order, whatever the call site's
	for _, r := range roles {
		if r != RoleAdmin && slices.Contains(rs, r) {
			names = append(names, string(r))
		}
	}
	return forbidden(p, what+" needs role "+strings.Join(append(names, "admin"), " or "))
}

// allowChannel answers 403 when a channel-bound caller acts on another channel's order.
func allowChannel(ctx context.Context, channel, field string) *Problem {
	p := PrincipalOf(ctx)
	if p == nil {
		return unauthenticated(ErrNoToken)
	}
	if p.mayUseChannel(channel) {
		return nil
	}
	pr := forbidden(p, fmt.Sprintf("channel %q is not one of this token's channels (%s)", channel, strings.Join(p.Channels, ", ")))
	if field != "" {
		pr.Errors = []*pb.FieldViolation{{Field: field, Detail: "not one of this token's channels"}}
	}
	return pr
}
