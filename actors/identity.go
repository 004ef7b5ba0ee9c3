package actors

import (
	"context"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// unlinkIdentities removes every fingerprint's link to a customer: the
// first step of its erasure (the erasure then forgets the list). The links
// are made by the channel workflow (intake.ChannelStore.ResolveCustomer).
func (n *Node) unlinkIdentities(ctx context.Context, customer string) error {
	sp := n.subjectPartition(customer)
	hashes, err := statemachine.IdentityHashes(n.reader(sp), sp.Prefix, customer)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := n.propose(ctx, n.host.PartitionOf(IdentityKey(h)), "system:erasure", &gridpb.Command{Kind: &gridpb.Command_UnlinkIdentity{
			UnlinkIdentity: &gridpb.UnlinkIdentityCommand{KeyHash: h, Customer: customer}}}); err != nil {
			return err
		}
	}
	return nil
}
