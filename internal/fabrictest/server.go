// Package fabrictest is test support, not part of ordergrid's product: it
// serves Hyperledger Fabric's Gateway gRPC service (gateway.GatewayServer)
// in-process, around real chaincode, so tests can drive the real client
// (github.com/hyperledger/fabric-gateway/pkg/client) over the real wire
// format without a Fabric network. Only tests import it.
//
// A Server is one channel with one in-memory ledger. Evaluate runs the
// chaincode's Invoke against the committed world state and discards its
// writes. Endorse runs it recording a read-write set (reads see the
// committed state, not the transaction's own writes, as in Fabric) and
// returns the unsigned transaction envelope a Fabric gateway returns, so the
// client's Transaction.Result is the chaincode's payload. Submit commits the
// signed envelope at once as the next block, after Fabric's MVCC check: a
// key read at endorsement that has changed since (MVCC_READ_CONFLICT), or a
// range whose result has changed (PHANTOM_READ_CONFLICT), invalidates the
// transaction, which still takes its block but writes nothing. CommitStatus
// answers a transaction's validation code and block. Block numbers are
// Fabric's: block 0 is the channel's genesis block, so the first transaction
// commits in block 1.
//
// It is not a Fabric peer: there is no ordering service, no endorsement
// policy (one simulated peer of MSP "GatewaySimMSP" endorses everything), no
// MSP (client signatures on proposals, envelopes and commit-status requests
// are checked against the certificate the client presents, which is not
// validated against any CA), no private data, no rich queries, no block or
// chaincode event streams (ChaincodeEvents answers Unimplemented) and no
// persistence. Deploy does not call the chaincode's Init, as Fabric 2's
// lifecycle does not unless the definition requires it; a proposal with
// ChaincodeInput.IsInit set is routed to Init.
//
// Errors follow the real gateway's: a chaincode response of status 400 or
// more fails Evaluate with codes.Unknown ("evaluate call to endorser returned
// error: chaincode response 500, <message>") and Endorse with codes.Aborted
// ("failed to endorse transaction, see attached details for more info")
// carrying a gateway.ErrorDetail whose message is "chaincode response 500,
// <message>", which the client's EndorseError prints. A chaincode panic is
// caught and reported like a crashed chaincode ("chaincode stream
// terminated"). An unknown chaincode is codes.FailedPrecondition.
//
// Submit accepts only the envelope this server endorsed, byte for byte,
// signed by the proposal's creator (codes.FailedPrecondition,
// InvalidArgument or PermissionDenied otherwise), and only once: a second
// Submit of a committed transaction is codes.AlreadyExists, where Fabric
// would order the copy, invalidate it as DUPLICATE_TXID and keep answering
// the first one's status. CommitStatus for a transaction endorsed but not yet
// submitted waits for it as long as the request's context allows; for a
// transaction never endorsed it answers codes.NotFound at once.
//
// NewStub gives the same Stub without a Server, for unit tests of chaincode
// logic.
package fabrictest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/gateway"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Server is Fabric's Gateway service for one channel, with an in-memory
// world state. Its methods are safe for concurrent use.
type Server struct {
	channel  string
	endorser *endorser
	down     atomic.Bool

	// mu guards what follows. Evaluate and Endorse hold it for reading while
	// the chaincode runs, so a simulation sees one committed state.
	mu         sync.RWMutex
	chaincodes map[string]shim.Chaincode
	state      map[string]namespaceState // by chaincode name
	height     uint64
	pending    map[string]*endorsedTx  // endorsed, not yet submitted
	committed  map[string]commitRecord // by tx id
	committedC chan struct{}           // closed and replaced at each commit
}

type endorsedTx struct {
	chaincode string
	creator   []byte
	payload   []byte // Envelope.Payload as returned to the client
	rwset     *kvrwset.KVRWSet
}

type commitRecord struct {
	code  peer.TxValidationCode
	block uint64
}

// New returns a Server for channel with an empty ledger holding only the
// genesis block (Height 1) and no chaincode.
func New(channel string) *Server {
	return &Server{
		channel:    channel,
		endorser:   newEndorser(),
		chaincodes: make(map[string]shim.Chaincode),
		state:      make(map[string]namespaceState),
		height:     1,
		pending:    make(map[string]*endorsedTx),
		committed:  make(map[string]commitRecord),
		committedC: make(chan struct{}),
	}
}

// Deploy makes cc callable as chaincodeName (its world-state namespace) on
// the channel. Init is not called. Deploying again under the same name
// replaces the code and keeps the state, like an upgrade.
func (s *Server) Deploy(chaincodeName string, cc shim.Chaincode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaincodes[chaincodeName] = cc
	if s.state[chaincodeName] == nil {
		s.state[chaincodeName] = make(namespaceState)
	}
}

// Register registers the Gateway service on r (a *grpc.Server).
func (s *Server) Register(r grpc.ServiceRegistrar) {
	gateway.RegisterGatewayServer(r, &service{s: s})
}

// Serve serves the Gateway service on a new gRPC server listening on addr
// ("127.0.0.1:0" for a free port) until stop is called, and returns the
// address it listens on.
func (s *Server) Serve(addr string) (listening string, stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	g := grpc.NewServer()
	s.Register(g)
	var served sync.WaitGroup
	served.Add(1)
	go func() { defer served.Done(); _ = g.Serve(lis) }()
	return lis.Addr().String(), func() { g.Stop(); served.Wait() }, nil
}

// SetUnavailable makes every RPC answer codes.Unavailable while down is
// true, as an unreachable peer would; the ledger is untouched.
func (s *Server) SetUnavailable(down bool) { s.down.Store(down) }

// Height returns the number of blocks in the ledger, the genesis block
// included: 1 + the number of transactions submitted.
func (s *Server) Height() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.height
}

// GetState returns the committed value of key in chaincodeName's world
// state, nil if absent.
func (s *Server) GetState(chaincodeName, key string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.state[chaincodeName][key].value)
}

// service implements gateway.GatewayServer for a Server.
type service struct {
	gateway.UnimplementedGatewayServer
	s *Server
}

func (s *Server) checkUp() error {
	if s.down.Load() {
		return status.Error(codes.Unavailable, "fabrictest: gateway unavailable")
	}
	return nil
}

func (s *Server) checkChannel(channel string) error {
	if channel != s.channel {
		return status.Errorf(codes.NotFound, "channel %q not found", channel)
	}
	return nil
}

// proposal unpacks and checks the proposal of an Evaluate or Endorse
// request; what when names the call in errors ("evaluate", "endorse").
func (s *Server) proposal(sp *peer.SignedProposal, txID, channel, what string) (*invocation, error) {
	if err := s.checkChannel(channel); err != nil {
		return nil, err
	}
	inv, err := parseProposal(sp)
	switch {
	case errors.Is(err, errAccessDenied):
		msg := "error validating proposal: " + err.Error()
		if what == "evaluate" {
			return nil, detailedError(codes.FailedPrecondition, "evaluate call to endorser returned error: "+msg, msg)
		}
		return nil, detailedError(codes.Aborted, "failed to "+what+" transaction, see attached details for more info", msg)
	case err != nil:
		return nil, status.Errorf(codes.InvalidArgument, "invalid proposal: %v", err)
	}
	if err := s.checkChannel(inv.channelHeader.GetChannelId()); err != nil {
		return nil, err
	}
	if txID != inv.channelHeader.GetTxId() {
		return nil, status.Errorf(codes.InvalidArgument, "request transaction id %q differs from the proposal's %q", txID, inv.channelHeader.GetTxId())
	}
	return inv, nil
}

// simulate runs the proposal's chaincode against the committed state.
func (s *Server) simulate(inv *invocation) (*peer.Response, *simulation, *Stub, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cc, ok := s.chaincodes[inv.chaincode]
	if !ok {
		return nil, nil, nil, status.Errorf(codes.FailedPrecondition,
			"no combination of peers can be derived which satisfy the endorsement policy: No metadata was found for chaincode %s in channel %s",
			inv.chaincode, s.channel)
	}
	sim := newSimulation(inv.chaincode, s.state[inv.chaincode])
	stub := inv.stub(sim)
	resp, panicked := invoke(cc, stub, inv.input.GetIsInit())
	if panicked != nil {
		return nil, nil, nil, panicked
	}
	return resp, sim, stub, nil
}

// chaincodePanic is a chaincode that panicked, which a peer sees as its
// chaincode process dying.
type chaincodePanic struct{ value any }

func (p *chaincodePanic) Error() string {
	return fmt.Sprintf("chaincode stream terminated (chaincode panicked: %v)", p.value)
}

func invoke(cc shim.Chaincode, stub *Stub, init bool) (resp *peer.Response, panicked error) {
	defer func() {
		if v := recover(); v != nil {
			resp, panicked = nil, &chaincodePanic{v}
		}
	}()
	if init {
		resp = cc.Init(stub)
	} else {
		resp = cc.Invoke(stub)
	}
	if resp == nil {
		resp = shim.Error("chaincode returned no response")
	}
	return resp, nil
}

func failed(resp *peer.Response) bool {
	return resp.GetStatus() < shim.OK || resp.GetStatus() >= shim.ERRORTHRESHOLD
}

func (v *service) Evaluate(ctx context.Context, req *gateway.EvaluateRequest) (*gateway.EvaluateResponse, error) {
	s := v.s
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	inv, err := s.proposal(req.GetProposedTransaction(), req.GetTransactionId(), req.GetChannelId(), "evaluate")
	if err != nil {
		return nil, err
	}
	resp, _, _, err := s.simulate(inv)
	if p := (*chaincodePanic)(nil); errors.As(err, &p) {
		return nil, detailedError(codes.Aborted, "failed to evaluate transaction, see attached details for more info", p.Error())
	}
	if err != nil {
		return nil, err
	}
	if failed(resp) {
		msg := fmt.Sprintf("chaincode response %d, %s", resp.GetStatus(), resp.GetMessage())
		return nil, detailedError(codes.Unknown, "evaluate call to endorser returned error: "+msg, msg)
	}
	return &gateway.EvaluateResponse{Result: resp}, nil
}

func (v *service) Endorse(ctx context.Context, req *gateway.EndorseRequest) (*gateway.EndorseResponse, error) {
	s := v.s
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	const failure = "failed to endorse transaction, see attached details for more info"
	inv, err := s.proposal(req.GetProposedTransaction(), req.GetTransactionId(), req.GetChannelId(), "endorse")
	if err != nil {
		return nil, err
	}
	txID := inv.channelHeader.GetTxId()
	if err := s.checkNotCommitted(txID, inv); err != nil {
		return nil, err
	}
	resp, sim, stub, err := s.simulate(inv)
	if p := (*chaincodePanic)(nil); errors.As(err, &p) {
		return nil, detailedError(codes.Aborted, failure, p.Error())
	}
	if err != nil {
		return nil, err
	}
	if failed(resp) {
		return nil, detailedError(codes.Aborted, failure, fmt.Sprintf("chaincode response %d, %s", resp.GetStatus(), resp.GetMessage()))
	}
	set := sim.rwset()
	env, err := s.endorser.prepareTransaction(inv, resp, set, stub.event)
	if err != nil {
		return nil, detailedError(codes.Aborted, failure, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.committed[txID]; dup {
		return nil, detailedError(codes.Aborted, failure, duplicateMessage(txID, inv))
	}
	// Endorsing the same proposal again replaces the earlier endorsement.
	s.pending[txID] = &endorsedTx{chaincode: inv.chaincode, creator: inv.sigHeader.GetCreator(), payload: env.GetPayload(), rwset: set}
	return &gateway.EndorseResponse{PreparedTransaction: env}, nil
}

func (s *Server) checkNotCommitted(txID string, inv *invocation) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, dup := s.committed[txID]; dup {
		return detailedError(codes.Aborted, "failed to endorse transaction, see attached details for more info", duplicateMessage(txID, inv))
	}
	return nil
}

func duplicateMessage(txID string, inv *invocation) string {
	return fmt.Sprintf("error validating proposal: duplicate transaction found [%s]. Creator [%s]", txID, inv.mspID)
}

func (v *service) Submit(ctx context.Context, req *gateway.SubmitRequest) (*gateway.SubmitResponse, error) {
	s := v.s
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	if err := s.checkChannel(req.GetChannelId()); err != nil {
		return nil, err
	}
	txID := req.GetTransactionId()
	env := req.GetPreparedTransaction()

	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.pending[txID]
	if !ok {
		if _, done := s.committed[txID]; done {
			return nil, status.Errorf(codes.AlreadyExists, "transaction %s has already been submitted", txID)
		}
		return nil, status.Errorf(codes.FailedPrecondition, "transaction %s was not endorsed by this gateway", txID)
	}
	if !bytes.Equal(env.GetPayload(), tx.payload) {
		return nil, status.Errorf(codes.InvalidArgument, "transaction %s differs from the one endorsed", txID)
	}
	if _, err := verifySignature(tx.creator, env.GetPayload(), env.GetSignature()); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "transaction %s: envelope signature: %v", txID, err)
	}

	// Order and commit at once: the transaction is alone in the next block.
	block := s.height
	ns := s.state[tx.chaincode]
	code := validate(tx.rwset, ns)
	if code == peer.TxValidationCode_VALID {
		apply(tx.rwset, ns, block)
	}
	s.height++
	s.committed[txID] = commitRecord{code: code, block: block}
	delete(s.pending, txID)
	close(s.committedC)
	s.committedC = make(chan struct{})
	return &gateway.SubmitResponse{}, nil
}

func (v *service) CommitStatus(ctx context.Context, signed *gateway.SignedCommitStatusRequest) (*gateway.CommitStatusResponse, error) {
	s := v.s
	if err := s.checkUp(); err != nil {
		return nil, err
	}
	req := &gateway.CommitStatusRequest{}
	if err := proto.Unmarshal(signed.GetRequest(), req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid commit status request: %v", err)
	}
	if err := s.checkChannel(req.GetChannelId()); err != nil {
		return nil, err
	}
	if _, err := verifySignature(req.GetIdentity(), signed.GetRequest(), signed.GetSignature()); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "commit status request: %v", err)
	}
	txID := req.GetTransactionId()
	for {
		s.mu.RLock()
		rec, done := s.committed[txID]
		_, endorsed := s.pending[txID]
		wait := s.committedC
		s.mu.RUnlock()
		if done {
			return &gateway.CommitStatusResponse{Result: rec.code, BlockNumber: rec.block}, nil
		}
		if !endorsed {
			return nil, status.Errorf(codes.NotFound, "transaction %s not found", txID)
		}
		// Endorsed but not submitted: wait for it, as a gateway waits for
		// a block, for as long as the caller does.
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (v *service) ChaincodeEvents(req *gateway.SignedChaincodeEventsRequest, stream grpc.ServerStreamingServer[gateway.ChaincodeEventsResponse]) error {
	if err := v.s.checkUp(); err != nil {
		return err
	}
	return status.Error(codes.Unimplemented, "fabrictest: chaincode events are not implemented")
}

// detailedError is a gRPC status error carrying one gateway.ErrorDetail from
// the simulated peer, as the real gateway reports endorser failures.
func detailedError(code codes.Code, msg, detail string) error {
	st := status.New(code, msg)
	withDetail, err := st.WithDetails(protoadapt.MessageV1Of(&gateway.ErrorDetail{Address: peerAddress, MspId: peerMSPID, Message: detail}))
	if err != nil {
		return st.Err()
	}
	return withDetail.Err()
}
