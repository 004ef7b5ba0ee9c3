package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
)

// LeaderHandler runs a domain call on a partition's leader: payload in,
// payload out, both the domain's. It runs on the node that leads p when
// the call arrives (leadership may move while it runs: the handler must be
// safe wherever it ends up running, as a proposal is).
type LeaderHandler func(ctx context.Context, p *Partition, payload []byte) ([]byte, error)

// ErrNoHandler is a LeaderCall whose method no handler serves on the leader.
var ErrNoHandler = errors.New("cluster: no handler for this leader call")

// HandleLeaderCall registers the handler of method on this node: a
// LeaderCall of method for a partition this node leads runs it.
func (h *Host) HandleLeaderCall(method string, fn LeaderHandler) {
	h.leaderCalls.Store(method, fn)
}

func (h *Host) leaderHandler(method string) (LeaderHandler, bool) {
	fn, ok := h.leaderCalls.Load(method)
	if !ok {
		return nil, false
	}
	return fn.(LeaderHandler), true
}

// CallLeader runs method's handler on p's leader with payload: here when
// this node leads p, else on the leader through the partitions' internal
// RPC, following the leader as it moves (at most forwardAttemptsMax hops).
// The handler runs once per successful answer; after a failure it may
// have run (the domain's payloads are idempotent, as proposals are).
func (p *Partition) CallLeader(ctx context.Context, method string, payload []byte) ([]byte, error) {
	var lastErr error
	for attempt := 0; attempt < forwardAttemptsMax; attempt++ {
		if p.IsLeader() {
			fn, ok := p.host.leaderHandler(method)
			if !ok {
				return nil, fmt.Errorf("partition %d: %s: %w", p.ID, method, ErrNoHandler)
			}
			p.metrics.leaderCalls.WithLabelValues(method, "local").Inc()
			return fn(ctx, p, payload)
		}
		client, err := p.leaderClient(ctx)
		if errors.Is(err, ErrNotLeader) {
			continue // this node became the leader meanwhile
		}
		if err != nil {
			return nil, err
		}
		resp, err := client.LeaderCall(ctx, &clusterpb.LeaderCallRequest{Partition: p.ID, Method: method, Payload: payload})
		if err == nil {
			p.metrics.leaderCalls.WithLabelValues(method, "forwarded").Inc()
			return resp.Payload, nil
		}
		lastErr = fromStatus(err)
		if !errors.Is(lastErr, ErrNotLeader) {
			return nil, lastErr
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, fmt.Errorf("partition %d: %w (%v)", p.ID, ctx.Err(), lastErr)
		}
	}
	return nil, fmt.Errorf("partition %d: leader kept moving: %w", p.ID, lastErr)
}

// LeaderCall serves a LeaderCall: the handler runs if this node leads the
// partition, else the caller is told to find the leader.
func (s *rpcServer) LeaderCall(ctx context.Context, req *clusterpb.LeaderCallRequest) (*clusterpb.LeaderCallResponse, error) {
	p, err := s.partition(req.Partition)
	if err != nil {
		return nil, err
	}
	if !p.IsLeader() {
		return nil, notLeader(p)
	}
	fn, ok := s.h.leaderHandler(req.Method)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "no handler for leader call %q", req.Method)
	}
	out, err := fn(ctx, p, req.Payload)
	switch {
	case errors.Is(err, ErrCommandTooLarge): // no retry can commit it: the caller sees ErrCommandTooLarge again
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	case err != nil:
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &clusterpb.LeaderCallResponse{Payload: out}, nil
}
