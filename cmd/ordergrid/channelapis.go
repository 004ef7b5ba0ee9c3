package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/platforms"
)

// platformClients are the API clients of the connections with api
// settings, by channel/name.
type platformClients map[string]*platforms.Client

// newPlatformClients makes a client for every connection of cfg with api
// settings; a connection whose channel has no API client is an error
// naming it.
func newPlatformClients(cfg *channels.Config, logger *slog.Logger, reg prometheus.Registerer) (platformClients, error) {
	out := platformClients{}
	if cfg == nil {
		return out, nil
	}
	var metrics *platforms.Metrics
	for i := range cfg.Connections {
		conn := &cfg.Connections[i]
		if conn.API == nil {
			continue
		}
		if metrics == nil {
			metrics = platforms.NewMetrics(reg)
		}
		c, err := platforms.New(conn, platforms.Options{Logger: logger, Metrics: metrics})
		if err != nil {
			return nil, fmt.Errorf("channels.file connections[%d].api: %w", i, err)
		}
		out[conn.Channel+"/"+conn.Name] = c
	}
	return out, nil
}

// fetchConnections are the connections the fetch workflow serves.
func (p platformClients) fetchConnections(cfg *channels.Config) []intake.FetchConnection {
	var out []intake.FetchConnection
	if cfg == nil {
		return nil
	}
	for i := range cfg.Connections {
		conn := &cfg.Connections[i]
		if c, ok := p[conn.Channel+"/"+conn.Name]; ok {
			out = append(out, intake.FetchConnection{Conn: conn, Adapter: channels.Adapters[conn.Channel], API: c})
		}
	}
	return out
}

// Decrypt opens an order's receiver fields through its connection's
// platform (channels.Decrypter): Douyin, Taobao/Tmall and Pinduoduo. A
// connection without api settings, or a platform without a decryption
// call, leaves them as received.
func (p platformClients) Decrypt(ctx context.Context, conn *channels.Connection, m *channels.Mapped) error {
	c, ok := p[conn.Channel+"/"+conn.Name]
	if !ok {
		return nil
	}
	if err := c.Decrypt(ctx, m); err != nil && !errors.Is(err, platforms.ErrUnsupported) {
		return err
	}
	return nil
}

// fetchAttempts bounds the fetches of an order after a platform's answer:
// an order it says does not exist gets 5 tries (about a minute: it may not
// be indexed yet), an answer not in its documented shape 3; the rest the
// fetch workflow's default.
func fetchAttempts(err error) uint32 {
	switch {
	case errors.Is(err, platforms.ErrNotFound):
		return 5
	case errors.Is(err, platforms.ErrMalformed):
		return 3
	default:
		return 0
	}
}

// decryptRetry: a fetched order whose receiver the platform could not open
// for now (throttled, a temporary failure) is fetched again later rather
// than taken with masked fields.
func decryptRetry(err error) bool {
	return errors.Is(err, platforms.ErrThrottled) || errors.Is(err, platforms.ErrTemporary)
}

// The connectors keep to each platform's window limits.
var _ intake.WindowLimiter = (*platforms.Client)(nil)
