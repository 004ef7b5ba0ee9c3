package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/privacy"
)

func TestWithin(t *testing.T) {
	dir := t.TempDir()
	for path, want := range map[string]bool{
		filepath.Join(dir, "master.keys"):            true,
		filepath.Join(dir, "sub", "..", "k"):         true,
		filepath.Join(dir, "a", "b", "k"):            true,
		filepath.Join(dir, "..", "elsewhere", "k"):   false,
		filepath.Join(dir+"-sibling", "master.keys"): false,
		"/etc/ordergrid/master.keys":                 false,
	} {
		if got, err := within(dir, path); err != nil || got != want {
			t.Errorf("within(%s, %s) = %v, %v; want %v", dir, path, got, err, want)
		}
	}
	// A symbolic link into the data directory is inside it.
	link := filepath.Join(t.TempDir(), "keys-link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if got, _ := within(dir, filepath.Join(link, "master.keys")); !got {
		t.Error("a path through a symbolic link into the data directory is outside it")
	}
}

// Master keys in the data directory: announced on stderr by default,
// refused with privacy.require_external_master_key; keys outside it pass.
func TestMasterKeysInDataDir(t *testing.T) {
	t.Setenv(masterKeysEnv, "")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()

	var stderr bytes.Buffer
	if _, err := loadKeyring(cfg, logger, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "WARNING") || !strings.Contains(stderr.String(), filepath.Join(cfg.DataDir, "master.keys")) {
		t.Fatalf("no warning for the node's own master key:\n%s", stderr.String())
	}

	cfg.Privacy.RequireExternalMasterKey = true
	if _, err := loadKeyring(cfg, logger, io.Discard); !errors.Is(err, errMasterKeyInDataDir) {
		t.Fatalf("own master key with require_external_master_key: %v", err)
	}
	cfg.Privacy.MasterKeysFile = filepath.Join(cfg.DataDir, "master.keys")
	if _, err := loadKeyring(cfg, logger, io.Discard); !errors.Is(err, errMasterKeyInDataDir) {
		t.Fatalf("a configured file inside the data directory: %v", err)
	}

	line, err := privacy.NewMasterKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "master.keys")
	if err := os.WriteFile(outside, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Privacy.MasterKeysFile = outside
	stderr.Reset()
	if _, err := loadKeyring(cfg, logger, &stderr); err != nil || stderr.Len() != 0 {
		t.Fatalf("keys outside the data directory: %v, stderr %q", err, stderr.String())
	}
	cfg.Privacy.MasterKeysFile = ""
	t.Setenv(masterKeysEnv, line)
	if _, err := loadKeyring(cfg, logger, io.Discard); err != nil {
		t.Fatalf("keys in %s: %v", masterKeysEnv, err)
	}
}
