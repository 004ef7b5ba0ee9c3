package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
)

// rpcGroup is the mux id of the partitions' internal RPC: it shares the Raft
// port like one more group.
const rpcGroup = 0xFFFFFFFF

// errUnreachable is returned when a peer cannot be reached.
var errUnreachable = errors.New("partition: peer unreachable")

// rpcServer serves PartitionService for every partition of the host.
type rpcServer struct {
	clusterpb.UnimplementedPartitionServiceServer
	h *Host
}

func (s *rpcServer) partition(id uint32) (*Partition, error) {
	if int(id) >= len(s.h.partitions) {
		return nil, status.Errorf(codes.InvalidArgument, "no partition %d", id)
	}
	return s.h.partitions[id], nil
}

func notLeader(p *Partition) error {
	addr, id := p.raft.LeaderWithID()
	return status.Errorf(codes.FailedPrecondition, "not the leader of partition %d (leader %s at %s)", p.ID, id, addr)
}

func (s *rpcServer) Propose(ctx context.Context, req *clusterpb.ProposeRequest) (*clusterpb.ProposeResponse, error) {
	p, err := s.partition(req.Partition)
	if err != nil {
		return nil, err
	}
	if !p.IsLeader() {
		return nil, notLeader(p)
	}
	res, err := p.proposeLocal(ctx, req.Command)
	if errors.Is(err, ErrNotLeader) {
		return nil, notLeader(p)
	}
	if errors.Is(err, ErrCommandTooLarge) {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &clusterpb.ProposeResponse{Result: res}, nil
}

func (s *rpcServer) Read(ctx context.Context, req *clusterpb.ReadRequest) (*clusterpb.ReadResponse, error) {
	p, err := s.partition(req.Partition)
	if err != nil {
		return nil, err
	}
	if !p.IsLeader() {
		return nil, notLeader(p)
	}
	// A partition's reads stay inside its key range.
	if !bytes.HasPrefix(req.Key, p.Prefix) && !req.Scan ||
		req.Scan && (!bytes.HasPrefix(req.Lo, p.Prefix) || bytes.Compare(req.Hi, prefixEnd(p.Prefix)) > 0 || len(req.Hi) == 0) {
		return nil, status.Errorf(codes.InvalidArgument, "read outside partition %d's keys", p.ID)
	}
	if err := p.readIndex(ctx); err != nil {
		if errors.Is(err, ErrNotLeader) {
			return nil, notLeader(p)
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if !req.Scan {
		v, found, err := LocalReader{s.h.db}.Get(req.Key)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		return &clusterpb.ReadResponse{Found: found, Value: v}, nil
	}
	limit := int(req.Limit)
	if limit <= 0 || limit > scanPairsMax {
		limit = scanPairsMax
	}
	resp := &clusterpb.ReadResponse{}
	err = LocalReader{s.h.db}.Scan(req.Lo, req.Hi, limit+1, func(k, v []byte) error {
		if len(resp.Pairs) == limit {
			resp.Truncated = true
			return nil
		}
		resp.Pairs = append(resp.Pairs, &clusterpb.KeyValue{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
		return nil
	})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return resp, nil
}

func (s *rpcServer) Membership(_ context.Context, req *clusterpb.MembershipRequest) (*clusterpb.MembershipResponse, error) {
	p, err := s.partition(req.Partition)
	if err != nil {
		return nil, err
	}
	if !p.IsLeader() {
		return nil, notLeader(p)
	}
	if err := p.changeMembership(req.Op, req.NodeId, req.RaftAddr); err != nil {
		if errors.Is(err, ErrNotLeader) {
			return nil, notLeader(p)
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &clusterpb.MembershipResponse{}, nil
}

func (s *rpcServer) Status(_ context.Context, req *clusterpb.StatusRequest) (*clusterpb.StatusResponse, error) {
	return s.h.LocalStatus(req.WithStateHash), nil
}

// changeMembership adds a voter or removes a server, on the leader.
func (p *Partition) changeMembership(op, id, addr string) error {
	var f raft.IndexFuture
	switch op {
	case "add_voter":
		f = p.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, membershipTimeout)
	case "remove_server":
		f = p.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout)
	default:
		return fmt.Errorf("unknown membership operation %q", op)
	}
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotLeader
		}
		return err
	}
	return nil
}

// membershipTimeout bounds one configuration change.
const membershipTimeout = 30 * time.Second

// fromStatus maps an RPC error back to the package's sentinels.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", ErrNotLeader, st.Message())
	case codes.ResourceExhausted:
		return fmt.Errorf("%w: %s", ErrCommandTooLarge, st.Message())
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return fmt.Errorf("%w: %s", errUnreachable, st.Message())
	default:
		return errors.New(st.Message())
	}
}

// peerClient returns the (cached) client of the node at raftAddr.
func (h *Host) peerClient(raftAddr string) (clusterpb.PartitionServiceClient, error) {
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	if c, ok := h.clients[raftAddr]; ok {
		return c, nil
	}
	conn, err := grpc.NewClient("passthrough:///"+raftAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := h.opts.Network.Dial(ctx, addr)
			if err != nil {
				return nil, err
			}
			if _, err := c.Write(binary.BigEndian.AppendUint32(nil, rpcGroup)); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUnreachable, raftAddr, err)
	}
	c := clusterpb.NewPartitionServiceClient(conn)
	h.clients[raftAddr] = c
	h.conns = append(h.conns, conn)
	return c, nil
}

// LocalStatus is this node's view of its partitions.
func (h *Host) LocalStatus(withHash bool) *clusterpb.StatusResponse {
	out := &clusterpb.StatusResponse{NodeId: h.opts.NodeID, RaftAddr: h.opts.RaftAddr, Meta: h.opts.Meta}
	for _, p := range h.partitions {
		st := p.Status()
		if withHash {
			st.StateHash = h.stateHash(p)
		}
		out.Partitions = append(out.Partitions, st)
	}
	return out
}

// stateHash hashes the partition's state (keys and values, the applied
// index excluded) so replicas can be compared once they are quiet.
func (h *Host) stateHash(p *Partition) []byte {
	sum := sha256.New()
	snap := h.db.NewSnapshot()
	defer snap.Close()
	_ = LocalReader{snap}.Scan(p.Prefix, prefixEnd(p.Prefix), 0, func(k, v []byte) error {
		if string(k) == string(p.fsm.appliedKey) {
			return nil
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(k)))
		sum.Write(n[:])
		sum.Write(k)
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		sum.Write(n[:])
		sum.Write(v)
		return nil
	})
	return sum.Sum(nil)
}
