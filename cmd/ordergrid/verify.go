package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/anchor"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

const verifyUsage = `usage: ordergrid verify BUNDLE|EXPORT --key KEY [--fabric ENVFILE [--node URL [--token T]]]

Checks an order's proof bundle (from GET /v1/orders/{id}/proof), or an
audit export (GET /v1/audit/export, ordergrid audit export; JSON Lines or
CSV), offline: the checkpoint's signature by the log's key, every event's
inclusion proof, that every decoded event is its leaf, and that nothing is
missing: a bundle must hold exactly the order's leaves its seal (signed by
the log's key) states; an unfiltered export every leaf from 0 to the
checkpoint's size, once and in order; a filtered export exactly the leaves
its seal states. A gap, a repeated or reordered entry or a cut tail fails,
naming the first missing leaf where it can. Prints the verified history
(of an export: a summary and its first events).

  BUNDLE   the bundle file, or - for standard input
  EXPORT   an export file (not standard input)
  --key    the log's verifier key, or a file holding it: the key the operator
           published (GET /v1/ledger/key shows it); pin it, do not take it
           from the party whose proofs you check
  --fabric also check that the checkpoint, or a later one consistent with it,
           is anchored on the Fabric channel. ENVFILE holds the
           ORDERGRID_LEDGER_FABRIC_* settings (scripts/fabric-up.sh writes
           one); "env" reads them from the environment
  --node   a node to fetch a consistency proof from, when the channel holds
           a later checkpoint than the bundle's (the proof is checked, the
           node need not be trusted)
  --token  the API token for --node (default $ORDERGRID_TOKEN, else
           $ORDERGRID_BOOTSTRAP_TOKEN)
  --timeout bound on the Fabric and node calls (default 30s)

Exit status: 0 verified, 1 not verified, 2 bad usage.`

// runVerify is `ordergrid verify`.
func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "")
	fabricEnv := fs.String("fabric", "", "")
	node := fs.String("node", "", "")
	token := fs.String("token", cmp.Or(os.Getenv("ORDERGRID_TOKEN"), os.Getenv(bootstrapTokenEnv)), "")
	timeout := fs.Duration("timeout", 30*time.Second, "")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(stderr, "ordergrid verify: %v\n\n%s\n", err, verifyUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 || *key == "" {
		fmt.Fprintf(stderr, "ordergrid verify: need one BUNDLE and --key\n\n%s\n", verifyUsage)
		return 2
	}
	v, err := readVerifier(*key)
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid verify: --key: %v\n", err)
		return 2
	}
	if isExport, err := looksLikeExport(positional[0]); err != nil {
		fmt.Fprintf(stderr, "ordergrid verify: %v\n", err)
		return 2
	} else if isExport {
		return verifyExportFile(positional[0], v, *fabricEnv, *node, *token, *timeout, stdout, stderr)
	}
	data, err := readBundle(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "ordergrid verify: %v\n", err)
		return 2
	}
	got, err := ledger.VerifyBundle(data, v)
	if err != nil {
		fmt.Fprintf(stderr, "NOT VERIFIED: %v\n", err)
		return 1
	}
	printHistory(stdout, got)
	if *fabricEnv == "" {
		if got.Anchor != nil {
			fmt.Fprintf(stdout, "anchor (claimed, not checked; use --fabric): channel %s, tx %s, block %d\n",
				got.Anchor.Channel, got.Anchor.TransactionID, got.Anchor.BlockNumber)
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	msg, err := checkAnchored(ctx, *fabricEnv, *node, *token, v, got.Checkpoint)
	if err != nil {
		fmt.Fprintf(stderr, "NOT ANCHORED: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

func readVerifier(key string) (*checkpoint.Verifier, error) {
	if raw, err := os.ReadFile(key); err == nil {
		key = string(raw)
	}
	return checkpoint.NewVerifier(strings.TrimSpace(key))
}

func readBundle(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, ledger.BundleBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return data, nil
}

func printHistory(w io.Writer, got *ledger.Verified) {
	c := got.Checkpoint
	fmt.Fprintf(w, "VERIFIED: order %s: %d events in the log %s, checkpoint of %d leaves, root %s\n",
		got.Order, len(got.Entries), c.Origin, c.Size, c.Root)
	fmt.Fprintf(w, "complete: all %d of the order's leaves in this checkpoint, the last leaf %d, as the log's key sealed\n",
		got.Seal.Count, got.Seal.Last)
	for _, e := range got.Entries {
		ev := e.Event
		what := ev.Status
		if ev.Kind == ledger.KindStock {
			what = fmt.Sprintf("%s x%d at %s", ev.SKU, ev.Qty, ev.Warehouse)
		}
		if len(ev.Lines) > 0 {
			var ls []string
			for _, l := range ev.Lines {
				ls = append(ls, fmt.Sprintf("%s x%d", l.SKU, l.Qty))
			}
			what += " [" + strings.Join(ls, ", ") + "]"
		}
		fmt.Fprintf(w, "  leaf %-8d %s  %-5s %-16s %s  by %s\n", e.Index, ev.At, ev.Kind, ev.Type, what, ev.Principal)
	}
}

// readFabricEnv reads ORDERGRID_LEDGER_FABRIC_* settings from a file of
// KEY=VALUE lines, or from the environment when name is "env".
func readFabricEnv(name string) (anchor.FabricOptions, error) {
	vals := map[string]string{}
	if name == "env" {
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			vals[k] = v
		}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return anchor.FabricOptions{}, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, _ := strings.Cut(line, "=")
			vals[k] = strings.Trim(v, `"'`)
		}
		if err := sc.Err(); err != nil {
			return anchor.FabricOptions{}, err
		}
	}
	get := func(k, def string) string {
		if v := vals["ORDERGRID_LEDGER_FABRIC_"+k]; v != "" {
			return v
		}
		return def
	}
	o := anchor.FabricOptions{Endpoint: get("PEER_ENDPOINT", ""), HostOverride: get("PEER_HOST_OVERRIDE", ""),
		TLSCAFile: get("TLS_CA_FILE", ""), MSPID: get("MSP_ID", "Org1MSP"), CertFile: get("CERT_FILE", ""),
		KeyFile: get("KEY_FILE", ""), Channel: get("CHANNEL", "ordergrid"), Chaincode: get("CHAINCODE", "anchors")}
	if o.Endpoint == "" || o.CertFile == "" || o.KeyFile == "" {
		return o, fmt.Errorf("--fabric %s: needs ORDERGRID_LEDGER_FABRIC_PEER_ENDPOINT, _CERT_FILE and _KEY_FILE", name)
	}
	return o, nil
}

// checkAnchored checks on the channel that checkpoint c, or a later anchored
// checkpoint consistent with it, is anchored.
func checkAnchored(ctx context.Context, envFile, node, token string, v *checkpoint.Verifier, c checkpoint.Checkpoint) (string, error) {
	o, err := readFabricEnv(envFile)
	if err != nil {
		return "", err
	}
	chain, err := anchor.DialFabric(o)
	if err != nil {
		return "", err
	}
	defer chain.Close()
	return anchor.CheckAnchored(ctx, chain, v, c, consistencyFrom(node, token))
}

// consistencyFrom fetches consistency proofs from a node's API; nil when no
// node is given.
func consistencyFrom(node, token string) anchor.ProofSource {
	if node == "" {
		return nil
	}
	return func(ctx context.Context, from, to uint64) ([]merkle.Hash, error) {
		u := fmt.Sprintf("%s/v1/ledger/consistency?from=%d&to=%d", strings.TrimRight(node, "/"), from, to)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return nil, fmt.Errorf("%s: %s: %s", u, resp.Status, b)
		}
		var body struct {
			Proof []string `json:"proof"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		return merkle.DecodeProof(body.Proof)
	}
}
