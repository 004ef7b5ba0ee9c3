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
// Keys kept in the data directory are announced on stderr at every start,
// and refused when privacy.require_external_master_key is on.
func loadKeyring(cfg config.Config, logger *slog.Logger, stderr io.Writer) (*privacy.Keyring, error) {
	if text := os.Getenv(masterKeysEnv); text != "" {
		if cfg.Privacy.MasterKeysFile != "" {
			return nil, fmt.Errorf("master keys: both %s and privacy.master_keys_file are set; use one", masterKeysEnv)
		}
		return privacy.ParseKeyring(text)
	}
	if cfg.Privacy.MasterKeysFile != "" {
		inside, err := within(cfg.DataDir, cfg.Privacy.MasterKeysFile)
		if err != nil {
			return nil, fmt.Errorf("master keys: %w", err)
		}
		if inside {
			if err := keysInDataDir(cfg, cfg.Privacy.MasterKeysFile, logger, stderr); err != nil {
				return nil, err
			}
		}
		return privacy.LoadKeyring(cfg.Privacy.MasterKeysFile)
	}
	own := filepath.Join(cfg.DataDir, ownMasterKeysFile)
	if err := keysInDataDir(cfg, own, logger, stderr); err != nil {
		return nil, err
	}
	text, err := ownSecret(cfg.DataDir, ownMasterKeysFile, func() (string, error) { return privacy.NewMasterKeyLine("k1") })
	if err != nil {
		return nil, fmt.Errorf("master keys: %w", err)
	}
	return privacy.ParseKeyring(text)
}

// errMasterKeyInDataDir: privacy.require_external_master_key is on and the
// master keys would be in the data directory.
var errMasterKeyInDataDir = errors.New("master keys: kept in the data directory, and privacy.require_external_master_key is on")

// keysInDataDir refuses master keys at file, inside the data directory, when
// the configuration requires them outside; otherwise it warns, in the log
// and in a banner on stderr that a person starting the node sees.
func keysInDataDir(cfg config.Config, file string, logger *slog.Logger, stderr io.Writer) error {
	if cfg.Privacy.RequireExternalMasterKey {
		return fmt.Errorf("%w (%s): set privacy.master_keys_file to a file outside %s, or pass the keys in %s",
			errMasterKeyInDataDir, file, cfg.DataDir, masterKeysEnv)
	}
	logger.Warn("MASTER KEY IN THE DATA DIRECTORY: whoever copies the data directory can read every subject's personal data, and an erasure does not hold against them; for trying ordergrid out only",
		slog.String("file", file), slog.String("production", "privacy.master_keys_file outside the data directory (or "+masterKeysEnv+") and privacy.require_external_master_key: true"))
	fmt.Fprintf(stderr, `
*** WARNING: the master key that protects personal data is in the data directory:
***   %s
*** Anyone with a copy of the data directory (a backup, a disk image) can read
*** every customer's personal data, even after an erasure. Fine for trying
*** ordergrid out. In production keep the keys outside it (privacy.master_keys_file
*** or %s) and set privacy.require_external_master_key: true.

`, file, masterKeysEnv)
	return nil
}

// within reports whether path is inside dir (both made absolute and
// cleaned; symbolic links are resolved where they exist).
func within(dir, path string) (bool, error) {
	resolve := func(p string) (string, error) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			return r, nil
		}
		if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
			return filepath.Join(r, filepath.Base(abs)), nil
		}
		return abs, nil
	}
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
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
