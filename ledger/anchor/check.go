package anchor

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// ProofSource fetches a consistency proof between two tree sizes (from a
// node's API). The proof is checked, so the source need not be trusted.
type ProofSource func(ctx context.Context, from, to uint64) ([]merkle.Hash, error)

// ErrNotAnchored is returned when the channel does not hold the checkpoint
// or a later one proven consistent with it.
var ErrNotAnchored = errors.New("not anchored")

// CheckAnchored checks on the chain that checkpoint c of the log v verifies
// is anchored: the same tree anchored, or a later anchored tree (whose
// anchored checkpoint v also verifies) that proofs shows extends c.
//
// The key the caller verifies with must be one it trusts (published by the
// operator out of band, pinned); the chain's registered key for the origin
// must be the same, or the anchors there belong to another log.
func CheckAnchored(ctx context.Context, chain Chain, v *checkpoint.Verifier, c checkpoint.Checkpoint, proofs ProofSource) (string, error) {
	key, err := chain.Key(ctx, c.Origin)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", fmt.Errorf("%w: the channel has no anchor of %s", ErrNotAnchored, c.Origin)
	}
	if kv, err := checkpoint.NewVerifier(key); err != nil || kv.String() != v.String() {
		return "", fmt.Errorf("%w: the channel anchors %s under the key %s, not the one given", ErrNotAnchored, c.Origin, key)
	}
	a, err := chain.Get(ctx, c.Origin, c.Size)
	if err != nil {
		return "", err
	}
	if a.Size == 0 {
		if a, err = chain.Latest(ctx, c.Origin); err != nil {
			return "", err
		}
	}
	if a.Size == 0 {
		return "", fmt.Errorf("%w: the channel has no anchor of %s", ErrNotAnchored, c.Origin)
	}
	anchored, err := v.Open([]byte(a.Checkpoint))
	if err != nil {
		return "", fmt.Errorf("the channel's checkpoint of %d leaves: %w", a.Size, err)
	}
	if anchored.Size != a.Size || anchored.Root.String() != a.RootHash {
		return "", fmt.Errorf("the channel's anchor of %d leaves does not match its own checkpoint", a.Size)
	}
	switch {
	case anchored.Size == c.Size:
		if anchored.Root != c.Root {
			return "", fmt.Errorf("%w: the channel anchors another root for %d leaves: the log forked", ErrNotAnchored, c.Size)
		}
		return fmt.Sprintf("ANCHORED: this checkpoint is on the channel, tx %s at %s", a.TxID, a.Timestamp), nil
	case anchored.Size < c.Size:
		return "", fmt.Errorf("%w yet: the channel holds the log up to %d leaves, the bundle's checkpoint has %d; fetch the bundle again later",
			ErrNotAnchored, anchored.Size, c.Size)
	}
	if proofs == nil {
		return "", fmt.Errorf("%w exactly: the channel holds a later checkpoint (%d leaves); pass --node URL to fetch a consistency proof", ErrNotAnchored, anchored.Size)
	}
	proof, err := proofs(ctx, c.Size, anchored.Size)
	if err != nil {
		return "", fmt.Errorf("consistency proof %d..%d: %w", c.Size, anchored.Size, err)
	}
	if err := merkle.VerifyConsistency(c.Size, anchored.Size, proof, c.Root, anchored.Root); err != nil {
		return "", fmt.Errorf("%w: the anchored log does not extend this checkpoint: %w", ErrNotAnchored, err)
	}
	return fmt.Sprintf("ANCHORED: a later checkpoint (%d leaves) that extends this one is on the channel, tx %s at %s",
		anchored.Size, a.TxID, a.Timestamp), nil
}
