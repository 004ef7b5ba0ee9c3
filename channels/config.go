package channels

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Merge policies for a cross-channel duplicate.
const (
	PolicyMerge  = "merge"  // the later order is merged into the earlier: one shipment, discounts once
	PolicyHold   = "hold"   // the later order is held for review
	PolicyAccept = "accept" // both go on; the duplicate is noted on both
)

// Price rules for a price conflict.
const (
	RuleTransactionTime = "transaction_time" // each order keeps the price it was sold at
	RuleLowest          = "lowest"           // the lower price wins; the other order is flagged
)

// Config is the channels file: connections, the identity key, and the merge
// and price rules.
type Config struct {
	Connections []Connection `yaml:"connections"`
	// IdentityKey is base64 of 32 bytes keying the customer fingerprints;
	// every node of a cluster needs the same.
	IdentityKey string `yaml:"identity_key"`
	Merge       struct {
		// Window is how far apart two orders may be to be duplicates. Default 30m.
		Window time.Duration `yaml:"window"`
		// Default applies to pairs not listed. Default hold.
		Default string `yaml:"default"`
		// Pairs are "a+b": policy, for channels a and b in either order.
		Pairs map[string]string `yaml:"pairs"`
	} `yaml:"merge"`
	Prices struct {
		// Window is how far apart two prices may be to conflict. Default 30m.
		Window time.Duration `yaml:"window"`
		// Rule resolves a conflict. Default transaction_time.
		Rule string `yaml:"rule"`
	} `yaml:"prices"`
	// ReplayEntriesMax bounds the signed pushes each connection remembers
	// within their timestamp window to refuse a replay. Default 100000.
	ReplayEntriesMax int `yaml:"replay_entries_max"`
}

// Validate fills defaults and checks every field; errors name the field.
func (c *Config) Validate() error {
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, field+": "+fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for i, conn := range c.Connections {
		f := fmt.Sprintf("connections[%d]", i)
		if _, ok := Adapters[conn.Channel]; !ok {
			bad(f+".channel", "%q: want one of %s", conn.Channel, strings.Join(Names(), ", "))
		}
		if conn.Secret == "" && conn.Token == "" {
			bad(f+".secret", "required")
		}
		if conn.Channel == "douyin" && conn.AppKey == "" {
			bad(f+".app_key", "required for douyin's event-sign")
		}
		if conn.Channel == "wechat" && conn.Token == "" {
			bad(f+".token", "required for wechat's push signature")
		}
		if conn.Channel != "wechat" && (conn.EncodingAESKey != "" || conn.AppID != "" || conn.AllowPlainPush) {
			bad(f, "encoding_aes_key, app_id and allow_plain_push are wechat's only")
		}
		if conn.EncodingAESKey != "" {
			if _, err := WeChatAESKey(conn.EncodingAESKey); err != nil {
				bad(f+".encoding_aes_key", "want the 43-character key shown with the push settings (base64 of 32 bytes without its \"=\")")
			}
			if conn.AppID == "" {
				bad(f+".app_id", "required with encoding_aes_key: an encrypted push names the appid it is for")
			}
		}
		if conn.API != nil {
			conn.API.validate(f+".api", bad)
		}
		if k := conn.Channel + "/" + conn.Name; seen[k] {
			bad(f+".name", "%q twice for %s", conn.Name, conn.Channel)
		} else {
			seen[k] = true
		}
	}
	if c.IdentityKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.IdentityKey); err != nil || len(k) != 32 {
			bad("identity_key", "want base64 of 32 bytes")
		}
	}
	if c.Merge.Window == 0 {
		c.Merge.Window = 30 * time.Minute
	}
	if c.Merge.Window < 0 || c.Merge.Window > 7*24*time.Hour {
		bad("merge.window", "%s outside 0..168h", c.Merge.Window)
	}
	policies := []string{PolicyMerge, PolicyHold, PolicyAccept}
	if c.Merge.Default == "" {
		c.Merge.Default = PolicyHold
	}
	if !slices.Contains(policies, c.Merge.Default) {
		bad("merge.default", "%q: want merge, hold or accept", c.Merge.Default)
	}
	for pair, p := range c.Merge.Pairs {
		a, b, ok := strings.Cut(pair, "+")
		_, okA := Adapters[a]
		_, okB := Adapters[b]
		if !ok || !okA || !okB || a == b {
			bad("merge.pairs."+pair, "want two different channels joined by +, e.g. douyin+tmall")
		}
		if !slices.Contains(policies, p) {
			bad("merge.pairs."+pair, "%q: want merge, hold or accept", p)
		}
	}
	if c.ReplayEntriesMax == 0 {
		c.ReplayEntriesMax = 100_000
	}
	if c.ReplayEntriesMax < 1 || c.ReplayEntriesMax > 10_000_000 {
		bad("replay_entries_max", "%d outside 1..10000000", c.ReplayEntriesMax)
	}
	if c.Prices.Window == 0 {
		c.Prices.Window = 30 * time.Minute
	}
	if c.Prices.Window < 0 || c.Prices.Window > 7*24*time.Hour {
		bad("prices.window", "%s outside 0..168h", c.Prices.Window)
	}
	if c.Prices.Rule == "" {
		c.Prices.Rule = RuleTransactionTime
	}
	if c.Prices.Rule != RuleTransactionTime && c.Prices.Rule != RuleLowest {
		bad("prices.rule", "%q: want transaction_time or lowest", c.Prices.Rule)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// validate checks a connection's API settings; bad names the field.
func (a *API) validate(f string, bad func(field, format string, args ...any)) {
	if u, err := url.Parse(a.BaseURL); a.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(f+".base_url", "%q: want the platform's API endpoint, an http(s) URL", a.BaseURL)
	}
	if a.RatePerSecond < 0 || a.RatePerSecond > 10_000 {
		bad(f+".rate_per_second", "%v outside 0..10000", a.RatePerSecond)
	}
	if a.Burst < 0 || a.Burst > 10_000 {
		bad(f+".burst", "%d outside 0..10000", a.Burst)
	}
	if a.TimeoutMs < 0 || a.TimeoutMs > 300_000 {
		bad(f+".timeout_ms", "%d outside 0..300000", a.TimeoutMs)
	}
	if p := a.Pull; p != nil {
		if p.IntervalMs != 0 && (p.IntervalMs < 1000 || p.IntervalMs > 86_400_000) {
			bad(f+".pull.interval_ms", "%d outside 1000..86400000", p.IntervalMs)
		}
		if p.OverlapMs < 0 || p.OverlapMs > 86_400_000 {
			bad(f+".pull.overlap_ms", "%d outside 0..86400000", p.OverlapMs)
		}
		if p.StartLookbackMs < 0 || p.StartLookbackMs > 90*86_400_000 {
			bad(f+".pull.start_lookback_ms", "%d outside 0..90 days", p.StartLookbackMs)
		}
		if p.WindowMaxMs != 0 && (p.WindowMaxMs < 1000 || p.WindowMaxMs > 7*86_400_000) {
			bad(f+".pull.window_max_ms", "%d outside 1000..7 days", p.WindowMaxMs)
		}
		if p.PageSize < 0 || p.PageSize > 100 {
			bad(f+".pull.page_size", "%d outside 0..100", p.PageSize)
		}
	}
}

// Policy returns the merge policy of a channel pair.
func (c *Config) Policy(a, b string) string {
	if p, ok := c.Merge.Pairs[a+"+"+b]; ok {
		return p
	}
	if p, ok := c.Merge.Pairs[b+"+"+a]; ok {
		return p
	}
	return c.Merge.Default
}

// Connection returns a channel's connection by name; "" picks the only one.
func (c *Config) Connection(channel, name string) (*Connection, bool) {
	var found *Connection
	n := 0
	for i := range c.Connections {
		conn := &c.Connections[i]
		if conn.Channel != channel {
			continue
		}
		n++
		if conn.Name == name {
			return conn, true
		}
		found = conn
	}
	if name == "" && n == 1 {
		return found, true
	}
	return nil, false
}

// Decrypter opens receiver fields a platform sent encrypted, through the
// platform's decryption API. Without one an order keeps the masked values
// and the platform's buyer id identifies the customer.
type Decrypter interface {
	Decrypt(ctx context.Context, conn *Connection, m *Mapped) error
}
