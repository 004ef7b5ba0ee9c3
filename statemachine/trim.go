package statemachine

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
)

// Outbox trimming, the command the ledger's sequencer has a partition apply.
const (
	// TrimPrincipal is the principal of a trim_outbox command.
	TrimPrincipal = "ledger"
	// trimTimeout bounds one trim proposal.
	trimTimeout = 10 * time.Second
)

// TrimOutbox proposes to partition p that its outbox below Raft index
// before, which the ledger has appended, be dropped (ledger's
// SequencerOptions.TrimOutbox). It waits at most 10 s within ctx.
func TrimOutbox(ctx context.Context, p *cluster.Partition, before uint64) error {
	data, err := proto.Marshal(&gridpb.Command{AtUnixNano: time.Now().UnixNano(), Principal: TrimPrincipal,
		Kind: &gridpb.Command_TrimOutbox{TrimOutbox: &gridpb.TrimOutboxCommand{BeforeIndex: before}}})
	if err != nil {
		return fmt.Errorf("statemachine: trim command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, trimTimeout)
	defer cancel()
	if _, err := p.Propose(ctx, data); err != nil {
		return fmt.Errorf("statemachine: trim outbox below %d: %w", before, err)
	}
	return nil
}
