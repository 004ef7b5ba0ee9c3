package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/anchor"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/statemachine"
)

// startLedger starts the node's sequencer (it acts while this node leads
// the ledger group).
func startLedger(ctx context.Context, c config.Ledger, host *cluster.Host, logger *slog.Logger, reg prometheus.Registerer) (*ledger.Sequencer, error) {
	opts := ledger.SequencerOptions{Origin: c.Origin, SequenceInterval: c.SequenceInterval,
		CheckpointInterval: c.CheckpointInterval, Logger: logger, Registerer: reg, TrimOutbox: statemachine.TrimOutbox}
	if c.SigningKeyFile != "" {
		raw, err := os.ReadFile(c.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ledger.signing_key_file: %w", err)
		}
		opts.SignerKey = string(raw)
	}
	seq, err := ledger.NewSequencer(host, opts)
	if err != nil {
		return nil, err
	}
	go seq.Run(ctx)
	return seq, nil
}

// ledgerChecks are the ledger's /readyz details.
func ledgerChecks(seq *ledger.Sequencer, a *anchoring) map[string]string {
	out := map[string]string{"ledger": "ok"}
	if err := seq.SigningError(); err != nil {
		out["ledger"] = err.Error()
	}
	if a != nil {
		out["anchoring"] = a.check()
	}
	return out
}

// anchoring is the node's Fabric anchoring, when configured.
type anchoring struct {
	worker *anchor.Worker
	chain  *anchor.Fabric
}

func startAnchoring(ctx context.Context, c config.Ledger, seq *ledger.Sequencer, logger *slog.Logger, reg prometheus.Registerer) (*anchoring, error) {
	f := c.Fabric
	if f.PeerEndpoint == "" {
		return nil, nil
	}
	chain, err := anchor.DialFabric(anchor.FabricOptions{Endpoint: f.PeerEndpoint, HostOverride: f.PeerHostOverride,
		TLSCAFile: f.TLSCAFile, MSPID: f.MSPID, CertFile: f.CertFile, KeyFile: f.KeyFile, Channel: f.Channel, Chaincode: f.Chaincode})
	if err != nil {
		return nil, fmt.Errorf("ledger.fabric: %w", err)
	}
	w := anchor.NewWorker(seq, chain, anchor.Options{Interval: f.AnchorInterval, Channel: f.Channel, Chaincode: f.Chaincode,
		Logger: logger, Registerer: reg})
	go func() {
		w.Run(ctx)
		chain.Close()
	}()
	logger.Info("ledger: anchoring on Fabric", slog.String("peer", f.PeerEndpoint), slog.String("channel", f.Channel), slog.String("chaincode", f.Chaincode))
	return &anchoring{worker: w, chain: chain}, nil
}

// status is GET /v1/ledger/anchors' "status".
func (a *anchoring) status() any {
	if a == nil {
		return map[string]string{"state": "off", "detail": "ledger.fabric.peer_endpoint is not set"}
	}
	return a.worker.Status()
}

// check is the /readyz detail: amber (not "ok") while anchoring fails.
func (a *anchoring) check() string {
	st := a.worker.Status()
	if st.State == "failing" {
		return fmt.Sprintf("failing for %s, %d leaves not anchored: %s", st.FailingFor, st.BacklogSize, st.Error)
	}
	return "ok"
}

// runLedger is `ordergrid ledger keygen`.
func runLedger(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprintln(stderr, "usage: ordergrid ledger keygen --origin NAME --out FILE")
		return 2
	}
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	origin := fs.String("origin", ledger.DefaultOrigin, "the log's origin (its checkpoints' first line)")
	out := fs.String("out", "", "file to write the signer key to (mode 0600; must not exist)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "ordergrid ledger keygen: --out is required")
		return 2
	}
	skey, vkey, err := checkpoint.GenerateKey(*origin)
	if err != nil {
		fmt.Fprintln(stderr, "ordergrid ledger keygen:", err)
		return 2
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, "ordergrid ledger keygen:", err)
		return 1
	}
	if _, err := fmt.Fprintln(f, skey); err != nil {
		f.Close()
		fmt.Fprintln(stderr, "ordergrid ledger keygen:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "ordergrid ledger keygen:", err)
		return 1
	}
	fmt.Fprintf(stdout, "signer key written to %s (give every node ledger.signing_key_file=%s)\nverifier key: %s\n", *out, *out, vkey)
	return 0
}
