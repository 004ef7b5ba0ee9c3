package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/statemachine"
)

// subjectOrdersMax bounds the orders one erasure lists per partition.
const subjectOrdersMax = 100_000

// subjectGrain is the grain of one data subject (a customer id). It holds
// the subject's data key, unwrapped, while active: the only place the key
// exists in the clear. It seals the subject's personal fields for new
// orders, opens them for callers allowed to read them (recording each read in
// the audit log first), and erases the subject.
type subjectGrain struct {
	node      *Node
	subject   string
	partition *partitionRef
	logger    *slog.Logger
	key       *privacy.DataKey
}

func (g *subjectGrain) Init(ctx actorcluster.GrainContext) {
	g.subject = ctx.Identity()
	g.partition = g.node.subjectPartition(g.subject)
	g.logger = g.node.opts.Logger.With(slog.String("grain", "subject"))
	g.node.metrics.activations.WithLabelValues("SubjectGrain").Inc()
}

func (g *subjectGrain) Terminate(actorcluster.GrainContext) { g.key = nil }

func (g *subjectGrain) ReceiveDefault(actorcluster.GrainContext) {}

// errNoKeyring answers sealing on a node without master keys.
var errNoKeyring = internalErr(errors.New("actors: no master keys: personal data cannot be sealed"))

// dataKey returns the subject's data key; with create, making and storing
// one (wrapped) if the subject has none. nil without create: no key (never
// had one, or erased).
func (g *subjectGrain) dataKey(create bool) (*privacy.DataKey, error) {
	if g.key != nil {
		return g.key, nil
	}
	kr := g.node.opts.Keyring
	if kr == nil {
		return nil, errNoKeyring
	}
	rec, found, err := statemachine.ReadSubjectKey(g.node.reader(g.partition), g.partition.Prefix, g.subject)
	if err != nil {
		return nil, err
	}
	if !found {
		if !create {
			return nil, nil
		}
		w, err := kr.NewDataKey(g.subject)
		if err != nil {
			return nil, err
		}
		cctx, cancel := g.node.callCtx()
		defer cancel()
		res, err := g.node.propose(cctx, g.partition, "system:keys", &gridpb.Command{Kind: &gridpb.Command_PutSubjectKey{PutSubjectKey: &gridpb.PutSubjectKeyCommand{
			Key: &gridpb.SubjectKeyRecord{Subject: g.subject, MasterKeyId: w.MasterKeyID, Nonce: w.Nonce, WrappedKey: w.Ciphertext},
		}}})
		if err != nil {
			return nil, fmt.Errorf("storing the data key: %w", err)
		}
		if res.SubjectKey == nil {
			return nil, fmt.Errorf("storing the data key: %s", res.Detail)
		}
		rec = res.SubjectKey // ours, or one another activation stored first
	}
	k, err := kr.Open(g.subject, privacy.Wrapped{MasterKeyID: rec.MasterKeyId, Nonce: rec.Nonce, Ciphertext: rec.WrappedKey})
	if err != nil {
		return nil, fmt.Errorf("subject data key: %w", err)
	}
	g.key = k
	return k, nil
}

func (g *subjectGrain) Seal(req *gridpb.SealPersonalRequest, _ actorcluster.GrainContext) (*gridpb.SealPersonalResponse, error) {
	k, err := g.dataKey(true)
	if err != nil {
		return nil, err
	}
	sealed, err := sealWith(k, req.OrderId, req.Fields)
	if err != nil {
		return nil, err
	}
	return &gridpb.SealPersonalResponse{Sealed: sealed}, nil
}

// Open records the read in the audit log, then opens the orders' sealed
// fields. An erased subject answers erased, with no fields.
func (g *subjectGrain) Open(req *gridpb.OpenPersonalRequest, _ actorcluster.GrainContext) (*gridpb.OpenPersonalResponse, error) {
	if len(req.OrderIds) != len(req.Sealed) {
		return nil, internalErr(errors.New("actors: open: one sealed value per order"))
	}
	k, err := g.dataKey(false)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return &gridpb.OpenPersonalResponse{Erased: true}, nil
	}
	cctx, cancel := g.node.callCtx()
	defer cancel()
	res, err := g.node.propose(cctx, g.partition, req.Principal, &gridpb.Command{Kind: &gridpb.Command_RecordAccess{RecordAccess: &gridpb.RecordAccessCommand{
		Subject: g.subject, OrderIds: req.OrderIds, Purpose: req.Purpose}}})
	if err != nil {
		return nil, fmt.Errorf("recording the read: %w", err)
	}
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK:
	case gridpb.Outcome_OUTCOME_ERASED: // erased since this activation read the key
		g.key = nil
		return &gridpb.OpenPersonalResponse{Erased: true}, nil
	default:
		return nil, fmt.Errorf("recording the read: %s", res.Detail)
	}
	out := &gridpb.OpenPersonalResponse{Fields: make([]*gridpb.PersonalFields, len(req.OrderIds))}
	for i, id := range req.OrderIds {
		plain, err := k.Open(id, req.Sealed[i])
		if err != nil {
			return nil, fmt.Errorf("order %s: %w", id, err)
		}
		f := &gridpb.PersonalFields{}
		err = proto.Unmarshal(plain, f)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("order %s: %w", id, err)
		}
		out.Fields[i] = f
	}
	return out, nil
}

// Erase deletes the subject's data key on every replica and records a
// tombstone and the erasure of each of its orders in the audit log.
func (g *subjectGrain) Erase(req *gridpb.EraseSubjectGrainRequest, _ actorcluster.GrainContext) (*gridpb.SubjectTombstoneRecord, error) {
	orders, _, err := g.node.SubjectOrderIDs(g.subject)
	if err != nil {
		return nil, fmt.Errorf("listing the subject's orders: %w", err)
	}
	cctx, cancel := g.node.callCtx()
	defer cancel()
	// Fingerprints first: a retry after a crash between the two redoes them.
	if err := g.node.unlinkIdentities(cctx, g.subject); err != nil {
		return nil, fmt.Errorf("unlinking the subject's fingerprints: %w", err)
	}
	res, err := g.node.propose(cctx, g.partition, req.Principal, &gridpb.Command{Kind: &gridpb.Command_EraseSubject{EraseSubject: &gridpb.EraseSubjectCommand{
		Subject: g.subject, OrderIds: orders}}})
	if err != nil {
		return nil, err
	}
	g.key = nil
	g.node.keys.Forget(g.subject)
	switch res.Outcome {
	case gridpb.Outcome_OUTCOME_OK:
		g.logger.Info("subject erased", slog.String("subject_sha256", statemachine.SubjectHash(g.subject)), slog.Int("orders", len(orders)))
		return res.Tombstone, nil
	default:
		return nil, outcomeErr(res.Outcome, res.Detail)
	}
}

// subjectOrdersCall is the leader call that lists a subject's orders in a
// partition, from the leader's in-memory index.
const subjectOrdersCall = "statemachine.subject_orders"

// subjectOrders lists a subject's orders in partition p, on p's leader.
func (n *Node) subjectOrders(p *cluster.Partition, subject string) ([]string, error) {
	ctx, cancel := n.callCtx()
	defer cancel()
	raw, err := p.CallLeader(ctx, subjectOrdersCall, []byte(subject))
	if err != nil {
		return nil, fmt.Errorf("listing a subject's orders in partition %d: %w", p.ID, err)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("listing a subject's orders in partition %d: %w", p.ID, err)
	}
	return ids, nil
}

// serveSubjectOrders answers subjectOrdersCall on the partition's leader.
func serveSubjectOrders(_ context.Context, p *cluster.Partition, payload []byte) ([]byte, error) {
	m, ok := p.StateMachine().(*statemachine.Machine)
	if !ok {
		return nil, fmt.Errorf("partition %d keeps no orders", p.ID)
	}
	return json.Marshal(m.SubjectOrders(string(payload), subjectOrdersMax))
}
