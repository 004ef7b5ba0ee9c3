package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ordergrid/ordergrid/retention"
)

const archiveUsage = `usage:
  ordergrid archive verify FILE --key KEY       check an archive offline: every order's
                                               proofs against the log's key, its record
                                               against its logged events
  ordergrid archive restore FILE --node URL [--token T]   put its orders back (role admin)`

// runArchive is `ordergrid archive verify|restore`.
func runArchive(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || (args[0] != "verify" && args[0] != "restore") {
		fmt.Fprintln(stderr, archiveUsage)
		return 2
	}
	cmd, file := args[0], args[1]
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "")
	node := fs.String("node", "", "")
	token := fs.String("token", cmp.Or(os.Getenv("ORDERGRID_TOKEN"), os.Getenv(bootstrapTokenEnv)), "")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ordergrid archive: %v\n\n%s\n", err, archiveUsage)
		return 2
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid archive: %v\n", err)
		return 2
	}
	defer f.Close()
	if cmd == "verify" {
		if *key == "" {
			fmt.Fprintf(stderr, "ordergrid archive verify: --key is required\n\n%s\n", archiveUsage)
			return 2
		}
		v, err := readVerifier(*key)
		if err != nil {
			fmt.Fprintf(stderr, "ordergrid archive verify: --key: %v\n", err)
			return 2
		}
		a, err := retention.ReadArchive(f, v)
		if err != nil {
			fmt.Fprintf(stderr, "NOT VERIFIED: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "VERIFIED: archive of partition %d made %s: %d orders %v, every event proven in the log\n",
			a.Header.Partition, a.Header.CreatedAt, len(a.Orders), a.Statuses)
		return 0
	}
	if *node == "" {
		fmt.Fprintf(stderr, "ordergrid archive restore: --node is required\n\n%s\n", archiveUsage)
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*node, "/")+"/v1/admin/archives/restore?name="+url.QueryEscape(filepath.Base(file)), f)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid archive restore: %v\n", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/gzip")
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid archive restore: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ordergrid archive restore: %s: %s\n", resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}
