package retention

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
)

func verifier(t *testing.T) *checkpoint.Verifier {
	t.Helper()
	_, vkey, err := checkpoint.GenerateKey("ordergrid.test/retention")
	if err != nil {
		t.Fatal(err)
	}
	v, err := checkpoint.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A written archive is in place whole (no temporary file left) and reads
// back with its header.
func TestWriteArchiveReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "archive", "p001-1.jsonl.gz")
	h := ArchiveHeader{Format: ArchiveFormat, Partition: 1, CreatedAt: "2026-11-28T00:00:00Z"}
	if err := writeArchive(path, h, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := ReadArchive(f, verifier(t))
	if err != nil {
		t.Fatal(err)
	}
	if a.Header != h || len(a.Orders) != 0 {
		t.Fatalf("read back %+v, %d orders", a.Header, len(a.Orders))
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// What is not an archive, or not a whole one, does not verify.
func TestReadArchiveRefuses(t *testing.T) {
	header := `{"format":"ordergrid-archive/1","partition":1,"created_at":"x"}` + "\n"
	for name, body := range map[string][]byte{
		"not gzip":       []byte("plain"),
		"empty":          gzipped(""),
		"other format":   gzipped(`{"format":"ordergrid-archive/2","partition":1,"created_at":"x"}` + "\n"),
		"unknown field":  gzipped(`{"format":"ordergrid-archive/1","partition":1,"created_at":"x","extra":1}` + "\n"),
		"no bundle":      gzipped(header + `{"order":"o1","status":"delivered","record":""}` + "\n"),
		"record not b64": gzipped(header + `{"order":"o1","status":"delivered","record":"!","bundle":{}}` + "\n"),
		"not the order":  gzipped(header + `{"order":"o1","status":"delivered","record":"","bundle":{}}` + "\n"),
	} {
		_, err := ReadArchive(bytes.NewReader(body), verifier(t))
		if !errors.Is(err, ErrArchive) {
			t.Errorf("%s: %v, want ErrArchive", name, err)
		} else if !strings.Contains(err.Error(), ErrArchive.Error()) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
