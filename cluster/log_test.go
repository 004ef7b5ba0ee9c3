package cluster

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Raft's lines reach the node's logger at their own level; the first
// election of a group that never had a leader (every start) is not a
// warning worth printing, an election after a leader was lost is.
func TestRaftLogLines(t *testing.T) {
	var buf bytes.Buffer
	w := raftLogWriter{slog.New(slog.NewTextHandler(&buf, nil))}
	_, _ = w.Write([]byte("[ERROR] raft.p3: failed to contact: id=node2\n"))
	_, _ = w.Write([]byte("[WARN]  raft.p3: heartbeat timeout reached\n"))
	out := buf.String()
	if !strings.Contains(out, `level=ERROR msg="raft.p3: failed to contact: id=node2" component=raft`) ||
		!strings.Contains(out, `level=WARN msg="raft.p3: heartbeat timeout reached" component=raft`) {
		t.Fatalf("raft lines:\n%s", out)
	}
	const msg = "heartbeat timeout reached, starting election"
	if !firstElection(hclog.Warn, msg, "last-leader-addr", "", "last-leader-id", "") {
		t.Error("the first election is not excluded")
	}
	if firstElection(hclog.Warn, msg, "last-leader-addr", "127.0.0.1:7000", "last-leader-id", "node1") {
		t.Error("an election after a leader was lost is excluded")
	}
	if firstElection(hclog.Warn, "failed to contact", "last-leader-id", "") {
		t.Error("another warning is excluded")
	}
}
