package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/privacy"
)

// masterKeysEnv, when set, holds the master keys themselves (the text of a
// master keys file), for deployments that inject secrets as variables.
const masterKeysEnv = "ORDERGRID_MASTER_KEYS"

// ownMasterKeysFile, in the data directory, holds the master key a node
// without configured keys made for itself.
const ownMasterKeysFile = "master.keys"

// loadKeyring returns the master keys: from ORDERGRID_MASTER_KEYS, the
// configured file, or (neither) the node's own file, made on first start.
func loadKeyring(cfg config.Config, logger *slog.Logger) (*privacy.Keyring, error) {
	if text := os.Getenv(masterKeysEnv); text != "" {
		if cfg.Privacy.MasterKeysFile != "" {
			return nil, fmt.Errorf("master keys: both %s and privacy.master_keys_file are set; use one", masterKeysEnv)
		}
		return privacy.ParseKeyring(text)
	}
	if cfg.Privacy.MasterKeysFile != "" {
		return privacy.LoadKeyring(cfg.Privacy.MasterKeysFile)
	}
	text, err := ownSecret(cfg.DataDir, ownMasterKeysFile, func() (string, error) { return privacy.NewMasterKeyLine("k1") })
	if err != nil {
		return nil, fmt.Errorf("master keys: %w", err)
	}
	logger.Warn("personal data is sealed under a master key kept in the data directory; set privacy.master_keys_file (outside it) in production",
		slog.String("file", filepath.Join(cfg.DataDir, ownMasterKeysFile)))
	return privacy.ParseKeyring(text)
}

// runPrivacy: ordergrid privacy keygen --id ID  (prints a master key line)
func runPrivacy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprintln(stderr, "usage: ordergrid privacy keygen --id ID   (prints a master key line; append it to the master keys file)")
		return 2
	}
	fs := flag.NewFlagSet("privacy keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "the new key's id (e.g. k2)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	line, err := privacy.NewMasterKeyLine(*id)
	if err != nil {
		fmt.Fprintln(stderr, "ordergrid privacy keygen:", err)
		return 2
	}
	fmt.Fprintln(stdout, line)
	return 0
}
