// Package anchorcc is the Fabric chaincode that anchors the ledger's
// checkpoints on a channel, per log origin, so that the channel itself
// guarantees a log's history only grows.
//
// Anchor accepts a signed checkpoint with a consistency proof from the last
// anchored one. Inside the chaincode it checks the checkpoint's Ed25519
// signature against the log's key, and the proof (RFC 6962) against both
// roots, and refuses anything that is not an append-only extension: a
// smaller tree, a second root for an anchored size, a proof that does not
// verify. Every endorsing peer runs the same checks, so a fork of the log can
// never be anchored. The first anchor of an origin registers the log's
// verifier key (trust on first use, under the channel's endorsement policy);
// later anchors must carry the same key.
//
// Latest and Get read anchors back. State keys are composite keys:
//
//	logkey~{origin}            verifier key
//	anchor~{origin}~{size:020} Anchor (JSON)
//	latest~{origin}            Anchor (JSON), the largest anchored tree
//
// The contract is served as chaincode-as-a-service by cmd/anchorcc.
package anchorcc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// Contract is the anchoring contract.
type Contract struct {
	contractapi.Contract
}

// Anchor is one anchored checkpoint.
type Anchor struct {
	Origin     string `json:"origin"`
	Size       uint64 `json:"size"`
	RootHash   string `json:"root_hash"`
	Checkpoint string `json:"checkpoint"`
	TxID       string `json:"tx_id"`
	Timestamp  string `json:"timestamp"`
}

// ErrNotExtension is in the message of a refused anchor that would not
// extend the anchored history.
var ErrNotExtension = errors.New("not an append-only extension of the anchored log")

// New returns the chaincode.
func New() (*contractapi.ContractChaincode, error) {
	cc, err := contractapi.NewChaincode(&Contract{})
	if err != nil {
		return nil, err
	}
	cc.Info.Title = "ordergrid anchors"
	cc.Info.Version = "1.0"
	return cc, nil
}

// Anchor records signedCheckpoint, signed by the log whose verifier key is
// verifierKey, after checking that it extends the last anchored checkpoint of
// that log by consistencyProof (base64 hashes, RFC 6962 order; empty for the
// first anchor, or for the same checkpoint again, which is answered with the
// existing anchor).
func (c *Contract) Anchor(ctx contractapi.TransactionContextInterface, verifierKey string, signedCheckpoint string, consistencyProof []string) (*Anchor, error) {
	stub := ctx.GetStub()
	verifierKey = strings.TrimSpace(verifierKey)
	v, err := checkpoint.NewVerifier(verifierKey)
	if err != nil {
		return nil, err
	}
	origin := v.Origin()
	keyKey, err := stub.CreateCompositeKey("logkey", []string{origin})
	if err != nil {
		return nil, err
	}
	registered, err := stub.GetState(keyKey)
	if err != nil {
		return nil, err
	}
	if registered != nil && string(registered) != verifierKey {
		return nil, fmt.Errorf("log %s is anchored with the key %s, not %s", origin, registered, verifierKey)
	}
	cp, err := v.Open([]byte(signedCheckpoint))
	if err != nil {
		return nil, err
	}
	if cp.Size == 0 {
		return nil, errors.New("an empty tree is not anchored")
	}
	latest, err := c.Latest(ctx, origin)
	if err != nil {
		return nil, err
	}
	if latest.Size > 0 {
		oldRoot, err := merkle.ParseHash(latest.RootHash)
		if err != nil {
			return nil, err
		}
		switch {
		case cp.Size < latest.Size:
			return nil, fmt.Errorf("%w: tree of %d leaves, %d are anchored", ErrNotExtension, cp.Size, latest.Size)
		case cp.Size == latest.Size && cp.Root == oldRoot:
			return latest, nil
		case cp.Size == latest.Size:
			return nil, fmt.Errorf("%w: a second root for the tree of %d leaves", ErrNotExtension, cp.Size)
		}
		proof, err := merkle.DecodeProof(consistencyProof)
		if err != nil {
			return nil, err
		}
		if err := merkle.VerifyConsistency(latest.Size, cp.Size, proof, oldRoot, cp.Root); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotExtension, err)
		}
	}
	ts, err := stub.GetTxTimestamp()
	if err != nil {
		return nil, err
	}
	a := &Anchor{Origin: origin, Size: cp.Size, RootHash: cp.Root.String(), Checkpoint: signedCheckpoint,
		TxID: stub.GetTxID(), Timestamp: ts.AsTime().UTC().Format(time.RFC3339Nano)}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	anchorKey, err := stub.CreateCompositeKey("anchor", []string{origin, fmt.Sprintf("%020d", cp.Size)})
	if err != nil {
		return nil, err
	}
	latestKey, err := stub.CreateCompositeKey("latest", []string{origin})
	if err != nil {
		return nil, err
	}
	if registered == nil {
		if err := stub.PutState(keyKey, []byte(verifierKey)); err != nil {
			return nil, err
		}
	}
	if err := stub.PutState(anchorKey, raw); err != nil {
		return nil, err
	}
	if err := stub.PutState(latestKey, raw); err != nil {
		return nil, err
	}
	return a, nil
}

// Latest is the largest anchored checkpoint of origin; Size 0 when none is.
func (c *Contract) Latest(ctx contractapi.TransactionContextInterface, origin string) (*Anchor, error) {
	k, err := ctx.GetStub().CreateCompositeKey("latest", []string{origin})
	if err != nil {
		return nil, err
	}
	return readAnchor(ctx, k, origin)
}

// Get is the anchored checkpoint of origin with size leaves; Size 0 when
// that size was not anchored.
func (c *Contract) Get(ctx contractapi.TransactionContextInterface, origin string, size uint64) (*Anchor, error) {
	k, err := ctx.GetStub().CreateCompositeKey("anchor", []string{origin, fmt.Sprintf("%020d", size)})
	if err != nil {
		return nil, err
	}
	return readAnchor(ctx, k, origin)
}

// Key is the verifier key the log of origin is anchored with; empty when
// it has no anchor.
func (c *Contract) Key(ctx contractapi.TransactionContextInterface, origin string) (string, error) {
	k, err := ctx.GetStub().CreateCompositeKey("logkey", []string{origin})
	if err != nil {
		return "", err
	}
	v, err := ctx.GetStub().GetState(k)
	return string(v), err
}

func readAnchor(ctx contractapi.TransactionContextInterface, key, origin string) (*Anchor, error) {
	raw, err := ctx.GetStub().GetState(key)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return &Anchor{Origin: origin}, nil
	}
	var a Anchor
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("anchor %q: %w", key, err)
	}
	return &a, nil
}
