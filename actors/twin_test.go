package actors

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/internal/testseed"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

// The twins the grains and the batches run on in this package's tests:
// partitions that apply each proposal to a real state machine over a real
// Pebble (no Raft: a proposal is applied at once, one at a time per
// partition), a placement of keys on them by the host's own rule, and
// grain calls that run the real SKU grain's code with a mutex for its
// mailbox. Proposals can fail as a partition's can: refused before they
// are applied, timed out before they are applied, or applied with the
// answer lost (the ambiguous case, which a retry must resolve).

// testSeed is the seed of a randomized test (package testseed: logged, and
// replayed by $ORDERGRID_TEST_SEED).
func testSeed(t *testing.T) int64 {
	t.Helper()
	return testseed.Seed(t)
}

// errInjected is the failure a twin partition injects.
var errInjected = errors.New("twin partition: injected failure")

// fault is how one proposal fails.
type fault int

const (
	faultNone      fault = iota
	faultRefused         // not applied, answered with an error
	faultTimeout         // not applied, answered with the deadline's error
	faultAmbiguous       // applied, and the answer lost
	faultKinds
)

func (f fault) String() string {
	return [...]string{"none", "refused", "timeout", "ambiguous"}[f]
}

// faultPlan decides whether a proposal fails, and how, from the seed, the
// command's bytes and how often the same bytes were proposed before: the
// faults of a run replay from its seed whatever the goroutines'
// interleaving (the twin clock is fixed, so a command's bytes are too).
type faultPlan struct {
	seed int64

	mu     sync.Mutex
	rate   float64 // chance of a fault per proposal
	only   func(cmd *gridpb.Command) bool
	kind   fault // the fault injected; faultNone: one of each kind at random
	seen   map[[sha256.Size]byte]uint64
	counts [faultKinds]int
}

// injected returns how many faults of each kind were injected.
func (f *faultPlan) injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k := faultRefused; k < faultKinds; k++ {
		out[k.String()] = f.counts[k]
	}
	return out
}

// set makes a fraction rate of the proposals that only selects (nil: all) fail.
func (f *faultPlan) set(rate float64, only func(cmd *gridpb.Command) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.only, f.kind = rate, only, faultNone
}

// always makes every proposal that only selects fail with kind.
func (f *faultPlan) always(kind fault, only func(cmd *gridpb.Command) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate, f.only, f.kind = 1, only, kind
}

func (f *faultPlan) decide(data []byte) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate == 0 {
		return faultNone
	}
	if f.only != nil {
		cmd := &gridpb.Command{}
		if err := proto.Unmarshal(data, cmd); err != nil || !f.only(cmd) {
			return faultNone
		}
	}
	h := sha256.Sum256(data)
	if f.seen == nil {
		f.seen = map[[sha256.Size]byte]uint64{}
	}
	attempt := f.seen[h]
	f.seen[h]++
	r := rand.New(rand.NewPCG(uint64(f.seed), binary.BigEndian.Uint64(h[:8])^attempt))
	if r.Float64() >= f.rate {
		return faultNone
	}
	k := f.kind
	if k == faultNone {
		k = fault(1 + r.IntN(int(faultKinds)-1))
	}
	f.counts[k]++
	return k
}

// twinStore is the Pebble store every twin partition keeps its state in,
// as a host's partitions share one. Once closed, it fails what comes late
// (a SKU grain's reload, a synced mark) instead of crashing the test.
type twinStore struct {
	mu     sync.RWMutex
	db     *pebble.DB
	closed bool
}

// errStoreClosed answers what reaches the twin's store after its test.
var errStoreClosed = errors.New("twin: store closed")

func (s *twinStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.db.Close()
}

func (s *twinStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, errStoreClosed
	}
	return cluster.LocalReader{R: s.db}.Get(key)
}

func (s *twinStore) Scan(lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errStoreClosed
	}
	return cluster.LocalReader{R: s.db}.Scan(lo, hi, limit, fn)
}

// twinPartition is a partition without Raft over a real state machine.
type twinPartition struct {
	id     uint32
	prefix []byte
	store  *twinStore
	faults *faultPlan
	// latency is how long a proposal takes to commit (Raft's round trip
	// and fsync); 0: at once. Tests of what queues behind a proposal in
	// flight set it, so the queue does not depend on the scheduler.
	latency time.Duration

	mu    sync.Mutex // one apply at a time, as Raft's log orders them
	m     *statemachine.Machine
	index uint64
	// applied counts the commands applied, by kind (the oneof's field name).
	applied map[string]int
}

var _ partition = (*twinPartition)(nil)

func (p *twinPartition) LeaderID() string { return "twin" }

func (p *twinPartition) Propose(ctx context.Context, command []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.latency > 0 {
		select {
		case <-time.After(p.latency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := p.faults.decide(command)
	switch f {
	case faultRefused:
		return nil, fmt.Errorf("partition %d: %w", p.id, errInjected)
	case faultTimeout:
		return nil, fmt.Errorf("partition %d: %w", p.id, context.DeadlineExceeded)
	}
	res, err := p.apply(command)
	if err != nil {
		return nil, err
	}
	if f == faultAmbiguous {
		return nil, fmt.Errorf("partition %d: committed, answer lost: %w", p.id, errInjected)
	}
	return res, nil
}

func (p *twinPartition) apply(command []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store.mu.RLock()
	defer p.store.mu.RUnlock()
	if p.store.closed {
		return nil, errStoreClosed
	}
	b := p.store.db.NewIndexedBatch()
	defer b.Close()
	p.index++
	res := p.m.Apply(b, p.index, command)
	var cmd gridpb.Command
	if err := proto.Unmarshal(command, &cmd); err == nil && cmd.Kind != nil {
		if p.applied == nil {
			p.applied = map[string]int{}
		}
		p.applied[kindOf(&cmd)]++
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("partition %d: commit: %w", p.id, err)
	}
	return res, nil
}

func (p *twinPartition) Get(_ context.Context, key []byte) ([]byte, bool, error) {
	return p.store.Get(key)
}

func (p *twinPartition) Scan(_ context.Context, lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	return p.store.Scan(lo, hi, limit, fn)
}

// kindOf names a command's kind by its oneof field ("reserve_batch").
func kindOf(cmd *gridpb.Command) string {
	f := cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("kind"))
	if f == nil {
		return ""
	}
	return string(f.Name())
}

// appliedOf returns how many commands of kind the partition applied.
func (p *twinPartition) appliedOf(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied[kind]
}

// twinPlacement places keys on twin partitions by the host's rule.
type twinPlacement struct {
	store *twinStore
	refs  []*partitionRef
}

func (t *twinPlacement) partitionOf(key string) *partitionRef {
	return t.refs[cluster.PartitionIndex(key, len(t.refs))]
}

func (t *twinPlacement) localReader() statemachine.Reader { return t.store }

func (t *twinPlacement) machines() []*statemachine.Machine {
	out := make([]*statemachine.Machine, 0, len(t.refs))
	for _, r := range t.refs {
		out = append(out, r.partition.(*twinPartition).m)
	}
	return out
}

// errTwinFallback answers an order a batch hands to its order grain: the
// twin has no order grain for a new order (its routing reads the host).
var errTwinFallback = errors.New("twin: handed to the order grain")

// twinGrains runs the real SKU grain code, one call at a time per grain
// (its mailbox), and records the orders a batch hands to their grains.
type twinGrains struct {
	n *Node

	mu   sync.Mutex
	skus map[string]*twinSkuGrain
	// handed are the orders handed to their grains, in order.
	handed []*gridpb.CreateOrderGrainRequest
	// onHand, when set, is called with an order as it is handed over.
	onHand func(req *gridpb.CreateOrderGrainRequest)
	// beforeReserve, when set, runs before a SKU grain judges reservations.
	beforeReserve func(sku string)
	// failSettles, when set, fails every settle call to a SKU grain.
	failSettles bool
}

var _ grainCalls = (*twinGrains)(nil)

type twinSkuGrain struct {
	mu sync.Mutex // the grain's mailbox: one call at a time
	g  *skuGrain
}

func (tg *twinGrains) sku(sku string) *twinSkuGrain {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	s, ok := tg.skus[sku]
	if !ok {
		s = &twinSkuGrain{g: &skuGrain{node: tg.n}}
		s.g.activate(sku)
		tg.skus[sku] = s
	}
	return s
}

// committed is the grain's message of a committed proposal, handled between calls.
func (s *twinSkuGrain) committed(m *reserveCommitted) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.g.committed(m, s.committed)
}

// ask sends a reservation call to the grain and waits for its answer, as
// a grain call does.
func (tg *twinGrains) ask(sku string, call func(g *skuGrain, send func(any), committed func(*reserveCommitted)) error) (any, error) {
	if tg.beforeReserve != nil {
		tg.beforeReserve(sku)
	}
	s := tg.sku(sku)
	answer := make(chan any, 1)
	s.mu.Lock()
	err := call(s.g, func(m any) { answer <- m }, s.committed)
	s.mu.Unlock()
	if err != nil {
		return nil, actorcluster.FromError(err)
	}
	select {
	case m := <-answer:
		if ge, ok := m.(*actorcluster.GrainErrorResponse); ok {
			return nil, ge
		}
		return m, nil
	case <-time.After(tg.n.opts.RequestTimeout):
		return nil, fmt.Errorf("twin: sku %s did not answer", sku)
	}
}

func (tg *twinGrains) reserve(req *gridpb.ReserveRequest) (*gridpb.ReserveResponse, error) {
	m, err := tg.ask(req.Sku, func(g *skuGrain, send func(any), committed func(*reserveCommitted)) error {
		return g.reserve(req, send, committed)
	})
	if err != nil {
		return nil, err
	}
	return m.(*gridpb.ReserveResponse), nil
}

func (tg *twinGrains) reserveMany(sku string, req *gridpb.ReserveManyRequest) (*gridpb.ReserveManyResponse, error) {
	if len(req.Items) == 0 {
		return &gridpb.ReserveManyResponse{}, nil
	}
	m, err := tg.ask(sku, func(g *skuGrain, send func(any), committed func(*reserveCommitted)) error {
		return g.reserveMany(req, send, committed)
	})
	if err != nil {
		return nil, err
	}
	return m.(*gridpb.ReserveManyResponse), nil
}

var errSettleRefused = errors.New("twin: settle call failed")

func (tg *twinGrains) settle(req *gridpb.SettleRequest) (*gridpb.SettleResponse, error) {
	if tg.failSettles {
		return nil, errSettleRefused
	}
	s := tg.sku(req.Sku)
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.g.Settle(req, nil)
	if err != nil {
		return nil, actorcluster.FromError(err)
	}
	return res, nil
}

func (tg *twinGrains) settleMany(sku string, req *gridpb.SettleManyRequest) (*gridpb.SettleManyResponse, error) {
	if tg.failSettles {
		return nil, errSettleRefused
	}
	s := tg.sku(sku)
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.g.SettleMany(req, nil)
	if err != nil {
		return nil, actorcluster.FromError(err)
	}
	return res, nil
}

func (tg *twinGrains) createOrder(req *gridpb.CreateOrderGrainRequest) (*gridpb.OrderGrainResponse, error) {
	tg.mu.Lock()
	tg.handed = append(tg.handed, req)
	onHand := tg.onHand
	tg.mu.Unlock()
	if onHand != nil {
		onHand(req)
	}
	return nil, errTwinFallback
}

// twinClock is the twin's fixed time: a weekday morning, UTC.
var twinClock = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// house is a node's grain side over twin partitions, with what the tests
// put into it and check it against.
type house struct {
	t      *testing.T
	n      *Node
	store  *twinStore
	parts  *twinPlacement
	grains *twinGrains
	faults *faultPlan
	// stocked is the on-hand stock set per SKU and warehouse.
	stocked map[string]map[string]int64
}

func newHouse(t *testing.T, seed int64, partitions int) *house {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	h := &house{t: t, store: &twinStore{db: db}, faults: &faultPlan{seed: seed}, stocked: map[string]map[string]int64{}}
	h.parts = &twinPlacement{store: h.store}
	for i := range uint32(partitions) {
		prefix := append(binary.BigEndian.AppendUint32([]byte("p/"), i), '/')
		tp := &twinPartition{id: i, prefix: prefix, store: h.store, faults: h.faults, m: statemachine.New(i, prefix).(*statemachine.Machine)}
		h.parts.refs = append(h.parts.refs, &partitionRef{ID: i, Prefix: prefix, partition: tp})
	}
	h.grains = &twinGrains{skus: map[string]*twinSkuGrain{}}
	h.n = newNode(Options{Logger: slog.New(slog.DiscardHandler), RequestTimeout: 5 * time.Second}, h.parts, h.grains)
	h.grains.n = h.n
	h.n.now = func() time.Time { return twinClock }
	// Routing reads each ship day's loads from the host once: the twin's
	// one day starts empty.
	h.n.routes.loads = map[int32]map[string]int64{h.n.Catalog().DayOf("", twinClock): {}}
	t.Cleanup(func() {
		h.faults.set(0, nil)
		// Let the SKU grains' last proposals and the synced marks land before the store closes.
		deadline := time.Now().Add(5 * time.Second)
		for h.n.syncedBatching.Queued() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		h.settled()
		if err := h.store.close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// settled waits until no SKU grain has a proposal in flight or queued.
func (h *house) settled() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		h.grains.mu.Lock()
		for _, s := range h.grains.skus {
			s.mu.Lock()
			busy = busy || s.g.inFlight || len(s.g.queue) > 0
			s.mu.Unlock()
		}
		h.grains.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatal("SKU grains still busy")
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// setStock sets sku's on-hand stock at warehouse wh, without faults.
func (h *house) setStock(sku, wh string, onHand int64) {
	h.t.Helper()
	p := h.n.skuPartition(sku)
	res, err := h.n.propose(context.Background(), p.partition.(*twinPartition).unfaulted(), "test",
		&gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: sku, Warehouse: wh, OnHand: onHand}}})
	if err != nil || res.Outcome != gridpb.Outcome_OUTCOME_OK {
		h.t.Fatalf("set stock %s@%s: %v %v", sku, wh, res, err)
	}
	if h.stocked[sku] == nil {
		h.stocked[sku] = map[string]int64{}
	}
	h.stocked[sku][wh] = onHand
}

// unfaulted is the partition without injected faults.
func (p *twinPartition) unfaulted() partition { return unfaultedPartition{p} }

type unfaultedPartition struct{ p *twinPartition }

func (u unfaultedPartition) LeaderID() string { return u.p.LeaderID() }
func (u unfaultedPartition) Propose(_ context.Context, command []byte) ([]byte, error) {
	return u.p.apply(command)
}
func (u unfaultedPartition) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	return u.p.Get(ctx, key)
}
func (u unfaultedPartition) Scan(ctx context.Context, lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	return u.p.Scan(ctx, lo, hi, limit, fn)
}

func (h *house) local() statemachine.Reader { return h.store }

// checkStock checks every stocked SKU's conservation, per warehouse:
// on_hand is what was set (nothing ships in these tests), on_hand =
// available + pending + committed, nothing negative, and pending and
// committed are the sums of the reservations in those states.
func (h *house) checkStock(step string) {
	h.t.Helper()
	for sku, set := range h.stocked {
		p := h.n.skuPartition(sku)
		st, _, err := statemachine.ReadStock(h.local(), p.Prefix, sku)
		if err != nil {
			h.t.Fatalf("%s: %v", step, err)
		}
		rs, err := statemachine.ReadReservations(h.local(), p.Prefix, sku)
		if err != nil {
			h.t.Fatalf("%s: %v", step, err)
		}
		pending, committed := map[string]int64{}, map[string]int64{}
		for _, r := range rs {
			switch r.State {
			case gridpb.ReservationState_RESERVATION_STATE_PENDING:
				pending[r.Warehouse] += r.Qty
			case gridpb.ReservationState_RESERVATION_STATE_COMMITTED:
				committed[r.Warehouse] += r.Qty
			}
		}
		if len(st.Warehouses) != len(set) {
			h.t.Fatalf("%s: %s has %d warehouses, %d were stocked", step, sku, len(st.Warehouses), len(set))
		}
		for _, w := range st.Warehouses {
			switch {
			case w.OnHand != set[w.Warehouse]:
				h.t.Fatalf("%s: %s@%s on hand %d, set %d", step, sku, w.Warehouse, w.OnHand, set[w.Warehouse])
			case w.OnHand != w.Available+w.Pending+w.Committed:
				h.t.Fatalf("%s: %s@%s on hand %d != available %d + pending %d + committed %d", step, sku, w.Warehouse, w.OnHand, w.Available, w.Pending, w.Committed)
			case w.Available < 0 || w.Pending < 0 || w.Committed < 0:
				h.t.Fatalf("%s: %s@%s negative: %v", step, sku, w.Warehouse, w)
			case w.Pending != pending[w.Warehouse] || w.Committed != committed[w.Warehouse]:
				h.t.Fatalf("%s: %s@%s pending %d committed %d, reservations hold %d and %d", step, sku, w.Warehouse,
					w.Pending, w.Committed, pending[w.Warehouse], committed[w.Warehouse])
			}
		}
	}
}

// reservation reads an order's reservation of sku.
func (h *house) reservation(sku, order string) (*gridpb.ReservationRecord, bool) {
	h.t.Helper()
	p := h.n.skuPartition(sku)
	r, ok, err := statemachine.ReadReservation(h.local(), p.Prefix, sku, order)
	if err != nil {
		h.t.Fatal(err)
	}
	return r, ok
}

// order reads a recorded order.
func (h *house) order(id string) (*gridpb.OrderRecord, bool) {
	h.t.Helper()
	p := h.n.orderPartition(id)
	o, ok, err := statemachine.ReadOrder(h.local(), p.Prefix, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return o, ok
}

// checkOrder checks that a recorded order holds its stock: one
// reservation per SKU, of the SKU's quantity, at its lines' warehouse, in
// the state its status says (unless its stock action is still owed: then
// in the state before or after it).
func (h *house) checkOrder(step string, o *gridpb.OrderRecord) {
	h.t.Helper()
	qty, where := map[string]int64{}, map[string]string{}
	for _, l := range o.Lines {
		qty[l.Sku] += l.Qty
		where[l.Sku] = l.Warehouse
	}
	for sku, q := range qty {
		r, ok := h.reservation(sku, o.Id)
		if !ok {
			h.t.Fatalf("%s: order %s (%s) holds no reservation of %s", step, o.Id, o.Status, sku)
		}
		if r.Qty != q || r.Warehouse != where[sku] {
			h.t.Fatalf("%s: order %s holds %d of %s at %s, its lines %d at %s", step, o.Id, r.Qty, sku, r.Warehouse, q, where[sku])
		}
		want := map[string]gridpb.ReservationState{
			"pending_payment": gridpb.ReservationState_RESERVATION_STATE_PENDING,
			"on_hold":         gridpb.ReservationState_RESERVATION_STATE_PENDING,
			"paid":            gridpb.ReservationState_RESERVATION_STATE_COMMITTED,
			"cancelled":       gridpb.ReservationState_RESERVATION_STATE_RELEASED,
		}[o.Status]
		if r.State == want {
			continue
		}
		if o.StockAction != "" && (r.State == gridpb.ReservationState_RESERVATION_STATE_PENDING ||
			(r.State == gridpb.ReservationState_RESERVATION_STATE_COMMITTED && o.Status == "cancelled")) {
			continue // owed: the sweeper carries it out
		}
		h.t.Fatalf("%s: order %s is %s (owes %q) and its reservation of %s is %s", step, o.Id, o.Status, o.StockAction, sku, r.State)
	}
}

// orderGrain is the grain of order id, as Init makes it.
func (h *house) orderGrain(id string) *orderGrain {
	return &orderGrain{node: h.n, id: id, partition: h.n.orderPartition(id), logger: h.n.opts.Logger}
}

// idsOf returns count order ids of order partition part.
func (h *house) idsOf(part uint32, prefix string, count int) []string {
	var ids []string
	for i := 0; len(ids) < count; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if h.n.OrderPartition(id) == part {
			ids = append(ids, id)
		}
	}
	return ids
}

// newOrder is a create request for order id with one line per SKU.
func newOrder(id string, lines ...*pb.OrderLineInput) *gridpb.CreateOrderGrainRequest {
	return &gridpb.CreateOrderGrainRequest{OrderId: id, Principal: "test", Request: &pb.CreateOrderRequest{
		IdempotencyKey: id, Currency: "EUR", Customer: &pb.Customer{Id: "cu-" + id}, Lines: lines}}
}

func line(sku string, qty int64) *pb.OrderLineInput {
	return &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: "2.50"}
}
