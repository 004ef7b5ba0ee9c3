package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/gateway"
)

// bootstrapTokenEnv, when set, is an admin token (for scripts and tests).
const bootstrapTokenEnv = "ORDERGRID_BOOTSTRAP_TOKEN"

// bootstrapTokenFile, in the data directory, holds the admin token a node
// without configured tokens made for itself.
const bootstrapTokenFile = "bootstrap-admin.token"

// loadTokens builds the API's authenticator: the tokens file, plus the
// bootstrap token of the environment; with neither, an admin token of the
// node's own, made once, kept in the data directory and printed.
func loadTokens(cfg config.Config, logger *slog.Logger, out io.Writer) (*gateway.Tokens, error) {
	var entries []gateway.TokenEntry
	if cfg.Auth.TokensFile != "" {
		var err error
		if entries, err = gateway.LoadTokensFile(cfg.Auth.TokensFile); err != nil {
			return nil, err
		}
	}
	if tok := os.Getenv(bootstrapTokenEnv); tok != "" {
		if len(tok) < 16 {
			return nil, fmt.Errorf("%s: at least 16 characters", bootstrapTokenEnv)
		}
		entries = append(entries, gateway.TokenEntry{Name: "bootstrap", Role: string(gateway.RoleAdmin), SHA256: gateway.TokenHash(tok)})
	}
	if len(entries) == 0 {
		tok, err := ownAdminToken(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		entries = append(entries, gateway.TokenEntry{Name: "bootstrap", Role: string(gateway.RoleAdmin), SHA256: gateway.TokenHash(tok)})
		path := filepath.Join(cfg.DataDir, bootstrapTokenFile)
		fmt.Fprintf(out, "  no API tokens configured: admin token %s\n  (kept in %s; send it as Authorization: Bearer <token>; configure auth.tokens_file for real tokens)\n", tok, path)
	}
	t, err := gateway.NewTokens(entries)
	if err != nil {
		return nil, err
	}
	logger.Info("API tokens", slog.Int("tokens", t.Len()))
	return t, nil
}

// ownAdminToken returns the node's own admin token, made on first start.
func ownAdminToken(dataDir string) (string, error) {
	return ownSecret(dataDir, bootstrapTokenFile, func() (string, error) {
		tok, _, err := gateway.NewToken("bootstrap", gateway.RoleAdmin, nil, time.Time{})
		return tok, err
	})
}

// ownSecret returns the content of a secret the node keeps in its data
// directory (mode 0600), made by make on first use.
func ownSecret(dataDir, name string, make func() (string, error)) (string, error) {
	path := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	s, err := make()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// runToken: ordergrid token new --name N --role R [--channels a,b] [--expires 720h]
func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: ordergrid token new --name NAME --role intake|ops|partner|compliance|admin [--channels a,b] [--expires 720h]")
		return 2
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the token's name, recorded as the principal of what it does")
	role := fs.String("role", "", "intake, ops, partner, compliance or admin")
	channels := fs.String("channels", "", "comma-separated channels (intake and partner tokens only)")
	expires := fs.Duration("expires", 0, "lifetime; 0: no expiry")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var chans []string
	if *channels != "" {
		chans = strings.Split(*channels, ",")
	}
	var until time.Time
	if *expires < 0 {
		fmt.Fprintln(stderr, "ordergrid token new: --expires must be positive")
		return 2
	}
	if *expires > 0 {
		until = time.Now().Add(*expires)
	}
	tok, entry, err := gateway.NewToken(*name, gateway.Role(*role), chans, until)
	if err != nil {
		fmt.Fprintln(stderr, "ordergrid token new:", err)
		return 2
	}
	y, _ := yaml.Marshal([]gateway.TokenEntry{entry})
	fmt.Fprintf(stdout, "%s\n", tok)
	fmt.Fprintf(stderr, "The token is shown once (above, on stdout). Add this to the tokens file (auth.tokens_file), under tokens:\n%s", y)
	return 0
}
