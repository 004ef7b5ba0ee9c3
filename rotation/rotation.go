// Package rotation rewraps every subject's data key by the active master
// key: the second step of a master key rotation (the first adds the new
// key to the keyring and makes it active; see package privacy). The data
// keys themselves do not change, so nothing sealed needs touching.
package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/statemachine"
)

// pageSize is how many subject keys one read of a partition returns.
const pageSize = 512

// Partitions is what a rewrap needs of the grid: every partition
// (actors.Node in a node).
type Partitions interface {
	Partitions() []actors.Partition
}

// Report is what a rewrap of the subject keys did.
type Report struct {
	ActiveMasterKey string `json:"active_master_key"`
	Examined        int    `json:"examined"`
	Rewrapped       int    `json:"rewrapped"`
}

// ErrNoKeyring refuses a rewrap on a node without master keys: a
// failure.Internal (no retry helps). Its text is what the API always
// answered.
var ErrNoKeyring = failure.MarkInternal(errors.New("actors: no master keys: personal data cannot be sealed"))

// Rewrapper rewraps the subject keys of a grid by a keyring's active key.
type Rewrapper struct {
	grid    Partitions
	keyring *privacy.Keyring
}

// NewRewrapper returns the rewrapper of grid's subject keys; keyring nil:
// every rewrap is refused with ErrNoKeyring.
func NewRewrapper(grid Partitions, keyring *privacy.Keyring) *Rewrapper {
	return &Rewrapper{grid: grid, keyring: keyring}
}

// Rewrap wraps every subject's data key by the active master key, and
// calls progress (if not nil) after each page of keys. Each replacement
// is a command that applies only if the key is still under the master key
// it was read under, so a concurrent erasure or rewrap wins. A rewrap
// stopped by an error may be run again.
func (r *Rewrapper) Rewrap(ctx context.Context, progress func(Report)) (Report, error) {
	kr := r.keyring
	if kr == nil {
		return Report{}, ErrNoKeyring
	}
	rep := Report{ActiveMasterKey: kr.Active()}
	for _, p := range r.grid.Partitions() {
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			keys, err := statemachine.SubjectKeys(p.Reader(), p.Prefix(), after, pageSize)
			if err != nil {
				return rep, fmt.Errorf("partition %d: %w", p.ID(), err)
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
				res, err := p.Propose(ctx, "system:rotation", &gridpb.Command{Kind: &gridpb.Command_RewrapSubjectKey{RewrapSubjectKey: &gridpb.RewrapSubjectKeyCommand{
					Key:             &gridpb.SubjectKeyRecord{Subject: k.Subject, MasterKeyId: nw.MasterKeyID, Nonce: nw.Nonce, WrappedKey: nw.Ciphertext},
					FromMasterKeyId: k.MasterKeyId,
				}}})
				if err != nil {
					return rep, err
				}
				if res.Outcome == gridpb.Outcome_OUTCOME_OK {
					rep.Rewrapped++
				}
			}
			if progress != nil {
				progress(rep)
			}
			if len(keys) < pageSize {
				break
			}
		}
	}
	return rep, nil
}
