package actors

import (
	"context"
	"fmt"

	"github.com/ordergrid/ordergrid/privacy"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// rewrapPageSize is how many subject keys one read of a partition returns.
const rewrapPageSize = 512

// RewrapReport is what a rewrap of the subject keys did.
type RewrapReport struct {
	ActiveMasterKey string `json:"active_master_key"`
	Examined        int    `json:"examined"`
	Rewrapped       int    `json:"rewrapped"`
}

// RewrapSubjectKeys wraps every subject's data key by the active master key
// (the second step of a master key rotation; see package privacy). The data
// keys themselves do not change, so nothing sealed needs touching. Each
// replacement is a command that applies only if the key is still under the
// master key it was read under, so a concurrent erasure or rewrap wins.
func (n *Node) RewrapSubjectKeys(ctx context.Context, progress func(RewrapReport)) (RewrapReport, error) {
	kr := n.opts.Keyring
	if kr == nil {
		return RewrapReport{}, errNoKeyring
	}
	rep := RewrapReport{ActiveMasterKey: kr.Active()}
	for _, p := range n.host.Partitions() {
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			keys, err := statemachine.SubjectKeys(n.reader(p), p.Prefix, after, rewrapPageSize)
			if err != nil {
				return rep, fmt.Errorf("partition %d: %w", p.ID, err)
			}
			for _, k := range keys {
				rep.Examined++
				after = k.Subject
				nw, changed, err := kr.Rewrap(k.Subject, privacy.Wrapped{MasterKeyID: k.MasterKeyId, Nonce: k.Nonce, Ciphertext: k.WrappedKey})
				if err != nil {
					return rep, fmt.Errorf("subject key %s: %w", statemachine.SubjectHash(k.Subject), err)
				}
				if !changed {
					continue
				}
				res, err := n.propose(ctx, p, "system:rotation", &pb.Command{Kind: &pb.Command_RewrapSubjectKey{RewrapSubjectKey: &pb.RewrapSubjectKeyCommand{
					Key:             &pb.SubjectKeyRecord{Subject: k.Subject, MasterKeyId: nw.MasterKeyID, Nonce: nw.Nonce, WrappedKey: nw.Ciphertext},
					FromMasterKeyId: k.MasterKeyId,
				}}})
				if err != nil {
					return rep, err
				}
				if res.Outcome == pb.Outcome_OUTCOME_OK {
					rep.Rewrapped++
				}
			}
			if progress != nil {
				progress(rep)
			}
			if len(keys) < rewrapPageSize {
				break
			}
		}
	}
	return rep, nil
}
