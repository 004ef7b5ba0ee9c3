package e2e

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wrapSearch is what an attacker holding the master keys tries at every
// byte of a file: a 12-byte GCM nonce there, and a 48-byte wrapped data key
// (32 bytes and the tag) starting a few bytes after it or ending a few bytes
// before it, whatever framing (protobuf, a log record) lies between.
const (
	wrapNonceBytes = 12
	wrapKeyBytes   = 48
	wrapGapMax     = 8
)

// masterAEADs reads a master keys file ("<id> <base64>" lines) as an
// attacker who copied it would.
func masterAEADs(t *testing.T, path string) []cipher.AEAD {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []cipher.AEAD
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			t.Fatal(err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, aead)
	}
	if len(out) == 0 {
		t.Fatalf("no master key in %s", path)
	}
	return out
}

// recoverDataKeys scans every byte of every file under root for a wrapped
// data key of each subject that the master keys unwrap, and returns, by
// subject, the files it recovered one from.
func recoverDataKeys(t *testing.T, root string, aeads []cipher.AEAD, subjects []string) map[string][]string {
	t.Helper()
	ads := make([][]byte, len(subjects))
	for i, s := range subjects {
		ads[i] = []byte("ordergrid data key v1\x00" + s) // privacy's binding of a wrapped key to its subject
	}
	found := map[string][]string{}
	var scanned int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned += int64(len(b))
		var dst []byte
		hit := make([]bool, len(subjects))
		for i := 0; i+wrapNonceBytes <= len(b); i++ {
			nonce := b[i : i+wrapNonceBytes]
			for gap := 0; gap <= wrapGapMax; gap++ {
				for _, start := range []int{i + wrapNonceBytes + gap, i - gap - wrapKeyBytes} {
					if start < 0 || start+wrapKeyBytes > len(b) {
						continue
					}
					ct := b[start : start+wrapKeyBytes]
					for _, aead := range aeads {
						for s, ad := range ads {
							if hit[s] {
								continue
							}
							if _, err := aead.Open(dst[:0], nonce, ct, ad); err == nil {
								hit[s] = true
								found[subjects[s]] = append(found[subjects[s]], strings.TrimPrefix(path, root))
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scanned %d bytes under %s", scanned, root)
	return found
}

// copyDir copies a directory tree as an attacker with a backup or a disk
// image would have it.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return to
}

func purgesDone(t *testing.T, n *node) int {
	t.Helper()
	body := n.must("GET", "/metrics", nil, 200).body
	m := regexp.MustCompile(`ordergrid_erasure_purges_total\{result="ok"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// Crypto-shredding holds against an attacker with the master key and a copy
// of the data directory: after an erasure and its purge, no byte of any file
// (write-ahead logs, recycled or not, tables, the Raft log, snapshots, the
// ledger) unwraps to the erased subject's data key, while the same search
// still finds a subject that was not erased (the control). The master key is
// the node's own, in the data directory: the worst case.
func TestErasedSubjectKeyUnrecoverableFromDataDir(t *testing.T) {
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/SHRED-1/stock/WH1", map[string]any{"on_hand": 100}, 200)
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	erased, kept := "shred-"+suffix, "keep-"+suffix
	for i, subject := range []string{erased, erased, kept} {
		body := orderBody(fmt.Sprintf("shred-%d", i), "SHRED-1", 1)
		body["customer"] = map[string]any{"id": subject, "name": "Name " + subject, "phone": "1390000" + suffix, "address": "Road " + subject}
		n.must("POST", "/v1/orders", body, 201)
	}
	// Write enough after the keys that their log is flushed and retired
	// before the erasure: the file a recycling store would reuse.
	for i := 0; i < 40; i++ {
		n.must("POST", "/v1/orders", orderBody(fmt.Sprintf("shred-fill-%d", i), "SHRED-1", 1), 201)
	}
	n.must("POST", "/v1/subjects/"+erased+"/erase", nil, 200)
	deadline := time.Now().Add(60 * time.Second)
	for purgesDone(t, n) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no purge finished within 60s of the erasure")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.stop()
	dir := copyDir(t, n.dataDir)
	aeads := masterAEADs(t, filepath.Join(dir, "master.keys"))
	found := recoverDataKeys(t, dir, aeads, []string{erased, kept})
	if len(found[kept]) == 0 {
		t.Fatal("control: the search recovers no key of the subject that was not erased; it is broken")
	}
	if len(found[erased]) > 0 {
		t.Fatalf("the erased subject's data key is recoverable with the master key from %v", found[erased])
	}
	if leaks := findPersonal(t, []string{"Name " + erased, "Road " + erased}, dir); len(leaks) > 0 {
		t.Fatalf("personal data in the data directory:\n%s", strings.Join(leaks, "\n"))
	}
}
