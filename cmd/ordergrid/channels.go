package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/privacy"
)

// identityLabel names the key derived from the master keys for customer
// fingerprints when the channels file sets none.
const identityLabel = "ordergrid customer identity v1"

// loadChannels reads channels.file: the connections (the gateway's), the
// identity key and the merge and price rules (the channel workflow's).
// Without a file there is no connection.
func loadChannels(cfg config.Config, keyring *privacy.Keyring) (*channels.Config, []byte, error) {
	c := &channels.Config{}
	if cfg.Channels.File != "" {
		raw, err := os.ReadFile(cfg.Channels.File)
		if err != nil {
			return nil, nil, fmt.Errorf("channels.file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("channels.file %s: %w", cfg.Channels.File, err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("channels.file %s: %w", cfg.Channels.File, err)
	}
	key := keyring.Derive(identityLabel)
	if c.IdentityKey != "" {
		key, _ = base64.StdEncoding.DecodeString(c.IdentityKey) // validated
	}
	return c, key, nil
}
