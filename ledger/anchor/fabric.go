// Package anchor anchors the ledger's signed checkpoints on a Hyperledger
// Fabric channel, through the anchorcc chaincode, with Fabric's Gateway
// client (github.com/hyperledger/fabric-gateway).
//
// The Worker runs on every node and acts while its node leads the ledger's
// Raft group: every few seconds, when the log has grown, it submits the
// newest checkpoint with a consistency proof from the last anchored one
// (one transaction however far behind it is), and records the transaction
// id and block number in the ledger group. Fabric unreachable: intake is not
// affected, the worker backs off and catches up later with one transaction;
// the backlog and the last anchor's age are metrics.
package anchor

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/hyperledger/fabric-gateway/pkg/client"
	"github.com/hyperledger/fabric-gateway/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordergrid/ordergrid/ledger/anchorcc"
)

// Chain is where checkpoints are anchored: the seam between the worker (and
// the verifier) and Fabric.
type Chain interface {
	// Anchor submits a signed checkpoint with a consistency proof from the
	// last anchored one and waits for its commit.
	Anchor(ctx context.Context, verifierKey string, signed []byte, proof []string) (*Receipt, error)
	// Latest is the largest anchored checkpoint of origin (Size 0: none).
	Latest(ctx context.Context, origin string) (*anchorcc.Anchor, error)
	// Get is the anchored checkpoint of origin with size leaves (Size 0: none).
	Get(ctx context.Context, origin string, size uint64) (*anchorcc.Anchor, error)
	// Key is the verifier key origin's anchors are checked with ("": none).
	Key(ctx context.Context, origin string) (string, error)
}

// Receipt is a committed anchoring transaction.
type Receipt struct {
	Anchor        anchorcc.Anchor
	TransactionID string
	BlockNumber   uint64
}

// FabricOptions say how to reach the anchoring chaincode.
type FabricOptions struct {
	// Endpoint is the peer's Gateway host:port.
	Endpoint string
	// HostOverride is the TLS server name, when not the endpoint's host.
	HostOverride string
	// TLSCAFile is the PEM CA of the peer's TLS certificate; empty: no TLS.
	TLSCAFile string
	// MSPID, CertFile and KeyFile are the client identity.
	MSPID, CertFile, KeyFile string
	// Channel and Chaincode name the anchoring contract.
	Channel, Chaincode string
}

// Fabric is the Chain of a Fabric channel.
type Fabric struct {
	conn     *grpc.ClientConn
	gw       *client.Gateway
	contract *client.Contract
	opts     FabricOptions
}

var _ Chain = (*Fabric)(nil)

// DialFabric connects to the peer. The connection is made lazily: an
// unreachable peer shows up as errors of the calls, not here.
func DialFabric(o FabricOptions) (*Fabric, error) {
	creds := insecure.NewCredentials()
	if o.TLSCAFile != "" {
		pemCA, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("fabric tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCA) {
			return nil, fmt.Errorf("fabric tls ca %s: no PEM certificate", o.TLSCAFile)
		}
		creds = credentials.NewClientTLSFromCert(pool, o.HostOverride)
	}
	conn, err := grpc.NewClient(o.Endpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("fabric peer %s: %w", o.Endpoint, err)
	}
	f, err := NewFabric(conn, o)
	if err != nil {
		conn.Close()
		return nil, err
	}
	f.conn = conn
	return f, nil
}

// NewFabric uses an existing connection to a peer's Gateway service.
func NewFabric(conn grpc.ClientConnInterface, o FabricOptions) (*Fabric, error) {
	certPEM, err := os.ReadFile(o.CertFile)
	if err != nil {
		return nil, fmt.Errorf("fabric identity certificate: %w", err)
	}
	cert, err := identity.CertificateFromPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("fabric identity certificate %s: %w", o.CertFile, err)
	}
	id, err := identity.NewX509Identity(o.MSPID, cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("fabric identity key: %w", err)
	}
	key, err := identity.PrivateKeyFromPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("fabric identity key %s: %w", o.KeyFile, err)
	}
	sign, err := identity.NewPrivateKeySign(key)
	if err != nil {
		return nil, err
	}
	gw, err := client.Connect(id, client.WithSign(sign), client.WithClientConnection(conn))
	if err != nil {
		return nil, fmt.Errorf("fabric gateway: %w", err)
	}
	return &Fabric{gw: gw, contract: gw.GetNetwork(o.Channel).GetContract(o.Chaincode), opts: o}, nil
}

// Close releases the connection.
func (f *Fabric) Close() error {
	err := f.gw.Close()
	if f.conn != nil {
		err = errors.Join(err, f.conn.Close())
	}
	return err
}

// Anchor implements Chain.
func (f *Fabric) Anchor(ctx context.Context, verifierKey string, signed []byte, proof []string) (*Receipt, error) {
	if proof == nil {
		proof = []string{}
	}
	proofJSON, err := json.Marshal(proof)
	if err != nil {
		return nil, err
	}
	prop, err := f.contract.NewProposal("Anchor", client.WithArguments(verifierKey, string(signed), string(proofJSON)))
	if err != nil {
		return nil, err
	}
	tx, err := prop.EndorseWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("endorse: %w", err)
	}
	commit, err := tx.SubmitWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	st, err := commit.StatusWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit status: %w", err)
	}
	if !st.Successful {
		return nil, fmt.Errorf("transaction %s invalid: %s", st.TransactionID, st.Code)
	}
	r := &Receipt{TransactionID: st.TransactionID, BlockNumber: st.BlockNumber}
	if err := json.Unmarshal(tx.Result(), &r.Anchor); err != nil {
		return nil, fmt.Errorf("anchor result: %w", err)
	}
	return r, nil
}

// Latest implements Chain.
func (f *Fabric) Latest(ctx context.Context, origin string) (*anchorcc.Anchor, error) {
	return f.evaluate(ctx, "Latest", origin)
}

// Get implements Chain.
func (f *Fabric) Get(ctx context.Context, origin string, size uint64) (*anchorcc.Anchor, error) {
	return f.evaluate(ctx, "Get", origin, strconv.FormatUint(size, 10))
}

// Key implements Chain.
func (f *Fabric) Key(ctx context.Context, origin string) (string, error) {
	out, err := f.contract.EvaluateWithContext(ctx, "Key", client.WithArguments(origin))
	if err != nil {
		return "", fmt.Errorf("Key: %w", err)
	}
	return string(out), nil
}

func (f *Fabric) evaluate(ctx context.Context, fn string, args ...string) (*anchorcc.Anchor, error) {
	out, err := f.contract.EvaluateWithContext(ctx, fn, client.WithArguments(args...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	var a anchorcc.Anchor
	if err := json.Unmarshal(out, &a); err != nil {
		return nil, fmt.Errorf("%s result: %w", fn, err)
	}
	return &a, nil
}
