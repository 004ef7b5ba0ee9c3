package simulation

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/cluster/clustertest"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/internal/testseed"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/statemachine"
)

const (
	// seedEnv replays a run: set it to the seed the run logged.
	seedEnv = testseed.Env
	// stepsEnv sets the number of steps.
	stepsEnv = "ORDERGRID_SIM_STEPS"
	// stepsDefault keeps `go test -race ./...` on a 2-core machine within
	// its budget; a longer run is one environment variable away.
	stepsDefault = 150
	// partitionsCount is the hosts' number of partitions.
	partitionsCount = 3
	// attemptTimeout bounds one attempt of one call.
	attemptTimeout = time.Second
	// attemptsMax bounds the attempts of one call: a call still without
	// an answer after them fails the test (the cluster had a quorum
	// throughout: at most one node is faulty at a time).
	attemptsMax = 40
	// settleTimeout bounds a barrier on every partition's leader, and the
	// final convergence.
	settleTimeout = 30 * time.Second
	// payWindowNs is how long an order may be paid for: longer than any
	// run, so nothing expires.
	payWindowNs = int64(time.Hour)
)

var (
	skus       = []string{"A", "B", "C", "D"}
	warehouses = []string{"W1", "W2"}
	// events are the order events the walk tries, legal or not.
	events = []string{
		lifecycle.StatusPaid, lifecycle.StatusCancelled, lifecycle.StatusPicked, lifecycle.StatusPacked,
		lifecycle.StatusShipped, lifecycle.StatusInTransit, lifecycle.StatusDelivered, lifecycle.StatusReturnRequested,
		lifecycle.StatusReturned, lifecycle.StatusRefunded, lifecycle.StatusOnHold, lifecycle.StatusPendingPayment,
	}
)

// ---- the model ----

type stockAt struct{ sku, wh string }

type level struct{ onHand, pending, committed int64 }

type reservation struct {
	wh    string
	qty   int64
	state gridpb.ReservationState
}

type order struct {
	id, key, sku string
	qty          int64
	hash         []byte
	status       string
}

type model struct {
	stock        map[stockAt]*level
	reservations map[stockAt]*reservation // keyed by (sku, order id)
	orders       map[string]*order        // acknowledged orders by id
	ids          []string                 // acknowledged order ids, in order
	refused      []*order                 // orders refused for want of stock
}

func newModel() *model {
	return &model{stock: map[stockAt]*level{}, reservations: map[stockAt]*reservation{}, orders: map[string]*order{}}
}

func (m *model) level(sku, wh string) *level {
	l := m.stock[stockAt{sku, wh}]
	if l == nil {
		l = &level{}
		m.stock[stockAt{sku, wh}] = l
	}
	return l
}

// pick is the warehouse the state machine reserves qty of sku in: the one
// with the most available stock that holds it all, the first on a tie.
func (m *model) pick(sku string, qty int64) string {
	best, bestAvail := "", int64(-1)
	for _, wh := range warehouses {
		l, ok := m.stock[stockAt{sku, wh}]
		if !ok {
			continue
		}
		if a := l.onHand - l.pending - l.committed; a >= qty && a > bestAvail {
			best, bestAvail = wh, a
		}
	}
	return best
}

// settle is the state machine's settle, on the model.
func (m *model) settle(sku, id, action string) {
	r := m.reservations[stockAt{sku, id}]
	if r == nil {
		return
	}
	l := m.level(sku, r.wh)
	const (
		pending   = gridpb.ReservationState_RESERVATION_STATE_PENDING
		committed = gridpb.ReservationState_RESERVATION_STATE_COMMITTED
		released  = gridpb.ReservationState_RESERVATION_STATE_RELEASED
		shipped   = gridpb.ReservationState_RESERVATION_STATE_SHIPPED
		returned  = gridpb.ReservationState_RESERVATION_STATE_RETURNED
	)
	switch {
	case action == lifecycle.ActionCommit && r.state == pending:
		l.pending -= r.qty
		l.committed += r.qty
		r.state = committed
	case action == lifecycle.ActionRelease && r.state == pending:
		l.pending -= r.qty
		r.state = released
	case action == lifecycle.ActionRelease && r.state == committed:
		l.committed -= r.qty
		r.state = released
	case action == lifecycle.ActionShip && r.state == pending:
		l.pending -= r.qty
		l.onHand -= r.qty
		r.state = shipped
	case action == lifecycle.ActionShip && r.state == committed:
		l.committed -= r.qty
		l.onHand -= r.qty
		r.state = shipped
	case action == lifecycle.ActionRestock && r.state == shipped:
		l.onHand += r.qty
		r.state = returned
	}
}

// ---- the run ----

type sim struct {
	t    *testing.T
	seed int64
	rng  *rand.Rand
	c    *clustertest.Cluster
	m    *model
	step int
	// stepStart is when the step began: the log shows what each took.
	stepStart time.Time
	nowNs     int64
	// fault is the fault in force ("" none); faulty is its node.
	fault  string
	faulty int
	// attempts counts the attempts of every call, retries included.
	calls, attempts int
}

func (s *sim) logf(format string, args ...any) {
	s.t.Logf("step %d (+%dms): %s", s.step, time.Since(s.stepStart).Milliseconds(), fmt.Sprintf(format, args...))
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d (%s=%d replays it), step %d: %s", s.seed, seedEnv, s.seed, s.step, fmt.Sprintf(format, args...))
}

// steps is how many steps a walk takes: $ORDERGRID_SIM_STEPS when set, else
// def, or short under -short.
func steps(t *testing.T, def, short int) int {
	t.Helper()
	n := def
	if v := os.Getenv(stepsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: a positive number of steps", stepsEnv, v)
		}
	} else if testing.Short() {
		n = short
	}
	t.Logf("%d steps (%s sets another number)", n, stepsEnv)
	return n
}

// TestSimulation: see the package documentation.
func TestSimulation(t *testing.T) {
	seed := testseed.Seed(t)
	stepsMax := steps(t, stepsDefault, 30)
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), m: newModel(), nowNs: 1_000_000_000, faulty: -1,
		c: clustertest.Start(t, clustertest.Options{Nodes: 3, Partitions: partitionsCount, Machine: statemachine.New, SnapshotThreshold: 64})}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	if err := s.c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Step 0 stocks every SKU in every warehouse, so most orders fit.
	s.stepStart = time.Now()
	for _, sku := range skus {
		for _, wh := range warehouses {
			s.setStockTo(sku, wh, int64(4+s.rng.Intn(12)))
		}
	}
	s.check()
	start := time.Now()
	for s.step = 1; s.step <= stepsMax; s.step++ {
		s.nowNs += int64(time.Millisecond)
		s.stepStart = time.Now()
		s.randomStep()
		s.check()
		if d := time.Since(s.stepStart); d > time.Second {
			s.logf("checked, the step took %s", d.Round(time.Millisecond))
		}
	}
	s.step++
	s.converge()
	s.check()
	t.Logf("%d steps in %s: %d orders acknowledged, %d refused for want of stock, %d calls in %d attempts",
		stepsMax, time.Since(start).Round(time.Millisecond), len(s.m.ids), len(s.m.refused), s.calls, s.attempts)
}

// randomStep takes one step, chosen by the seed.
func (s *sim) randomStep() {
	switch r := s.rng.Intn(100); {
	case r < 12:
		s.setStock()
	case r < 42:
		s.create()
	case r < 54:
		s.retry()
	case r < 80:
		s.event()
	case r < 87:
		s.transfer()
	default:
		s.faultStep()
	}
}

// propose replicates cmd on the partition of key through one running node
// (chosen by the seed), retrying on another node until it is answered.
func (s *sim) propose(key string, cmd *gridpb.Command) *statemachine.Result {
	s.t.Helper()
	cmd.AtUnixNano = s.nowNs
	cmd.Principal = "simulation"
	data, err := proto.Marshal(cmd)
	if err != nil {
		s.fatalf("marshal: %v", err)
	}
	s.calls++
	via := s.rng.Intn(s.c.Len())
	var lastErr error
	for attempt := 0; attempt < attemptsMax; attempt++ {
		s.attempts++
		i := (via + attempt) % s.c.Len()
		h := s.c.Host(i)
		if h == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		resp, err := h.PartitionOf(key).Propose(ctx, data)
		cancel()
		if err != nil {
			lastErr = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		res := &statemachine.Result{}
		if err := proto.Unmarshal(resp, res); err != nil {
			s.fatalf("result of %s: %v", key, err)
		}
		return res
	}
	s.fatalf("no answer for %s after %d attempts: %v", key, attemptsMax, lastErr)
	return nil
}

func skuKey(sku string) string  { return "sku/" + sku }
func orderKey(id string) string { return "order/" + id }

func (s *sim) setStock() {
	sku, wh := skus[s.rng.Intn(len(skus))], warehouses[s.rng.Intn(len(warehouses))]
	l := s.m.level(sku, wh)
	onHand := int64(s.rng.Intn(12))
	if s.rng.Intn(4) > 0 {
		onHand += l.pending + l.committed // mostly at or above what is reserved
	}
	s.setStockTo(sku, wh, onHand)
}

// setStockTo sets sku's on-hand stock at wh.
func (s *sim) setStockTo(sku, wh string, onHand int64) {
	l := s.m.level(sku, wh)
	// Every attempt proposes the same command, request id included: a copy
	// that commits after a later set is recognised and changes nothing.
	id := []byte(fmt.Sprintf("set-%d-%d-%s-%s", s.seed, s.step, sku, wh))
	res := s.propose(skuKey(sku), &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: sku, Warehouse: wh, OnHand: onHand, RequestId: id}}})
	want := gridpb.Outcome_OUTCOME_OK
	if onHand < l.pending+l.committed {
		want = gridpb.Outcome_OUTCOME_BELOW_RESERVED
	}
	s.logf("set stock %s@%s %d: %s", sku, wh, onHand, res.Outcome)
	if res.Outcome == gridpb.Outcome_OUTCOME_REPLAYED && want == gridpb.Outcome_OUTCOME_OK {
		res.Outcome = want // an earlier attempt of this very set committed
	}
	if res.Outcome != want {
		s.fatalf("set stock %s@%s to %d: %s (%s), want %s", sku, wh, onHand, res.Outcome, res.Detail, want)
	}
	if want == gridpb.Outcome_OUTCOME_OK {
		l.onHand = onHand
	}
}

func requestHash(key, sku string, qty int64) []byte {
	h := sha256.Sum256([]byte(key + "\x00" + sku + "\x00" + strconv.FormatInt(qty, 10)))
	return h[:]
}

// create is a new order: its reservation on the SKU's partition, then its
// record on its own partition, acknowledged once both are committed.
func (s *sim) create() {
	key := fmt.Sprintf("key-%d-%d", s.seed, s.step)
	sku, qty := skus[s.rng.Intn(len(skus))], int64(1+s.rng.Intn(4))
	o := &order{id: intake.OrderID(&pb.CreateOrderRequest{IdempotencyKey: key}), key: key, sku: sku, qty: qty, hash: requestHash(key, sku, qty)}
	want := s.m.pick(sku, qty)
	res := s.reserve(o)
	switch {
	case want == "" && res.Outcome == gridpb.Outcome_OUTCOME_INSUFFICIENT_STOCK:
		s.logf("create %s (%s x%d): refused, no stock", o.id, sku, qty)
		s.m.refused = append(s.m.refused, o)
		return
	case res.Outcome != gridpb.Outcome_OUTCOME_OK || res.Warehouse != want:
		s.fatalf("reserve %s x%d for %s: %s at %q, the model wants %q", sku, qty, o.id, res.Outcome, res.Warehouse, want)
	}
	s.m.reservations[stockAt{sku, o.id}] = &reservation{wh: want, qty: qty, state: gridpb.ReservationState_RESERVATION_STATE_PENDING}
	s.m.level(sku, want).pending += qty
	if r := s.record(o, want); r.Outcome != gridpb.Outcome_OUTCOME_OK {
		s.fatalf("create %s: %s (%s)", o.id, r.Outcome, r.Detail)
	}
	o.status = lifecycle.StatusPendingPayment
	s.m.orders[o.id] = o
	s.m.ids = append(s.m.ids, o.id)
	s.logf("create %s (%s x%d at %s): acknowledged", o.id, sku, qty, want)
}

// reserve proposes o's reservation; the answer is the item's, with
// REPLAYED on a retry of the call taken as the OK it was.
func (s *sim) reserve(o *order) *gridpb.ReserveItemResult {
	item := &gridpb.ReserveItem{OrderId: o.id, Qty: o.qty, ExpiresUnixNano: s.nowNs + payWindowNs}
	res := s.propose(skuKey(o.sku), &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: o.sku, Items: []*gridpb.ReserveItem{item}}}})
	if res.Reserve == nil || len(res.Reserve.Items) != 1 {
		s.fatalf("reserve for %s: %v", o.id, res)
	}
	it := res.Reserve.Items[0]
	if it.Outcome == gridpb.Outcome_OUTCOME_REPLAYED && s.m.reservations[stockAt{o.sku, o.id}] == nil {
		it.Outcome = gridpb.Outcome_OUTCOME_OK // our own earlier attempt, committed but unanswered
	}
	return it
}

func (s *sim) record(o *order, wh string) *statemachine.Result {
	rec := &gridpb.OrderRecord{Id: o.id, RequestHash: o.hash, PayByUnixNano: s.nowNs + payWindowNs,
		Lines: []*gridpb.OrderLineRecord{{Sku: o.sku, Qty: o.qty, UnitPrice: "1", Warehouse: wh}}}
	res := s.propose(orderKey(o.id), &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: rec}}})
	if res.Outcome == gridpb.Outcome_OUTCOME_REPLAYED && s.m.orders[o.id] == nil {
		res.Outcome = gridpb.Outcome_OUTCOME_OK // our own earlier attempt
	}
	return res
}

// retry sends an earlier order's request again under its key: the same
// request is answered with the order and takes nothing more; another
// request under the key is an idempotency conflict and takes nothing.
func (s *sim) retry() {
	if len(s.m.ids) == 0 {
		s.create()
		return
	}
	o := s.m.orders[s.m.ids[s.rng.Intn(len(s.m.ids))]]
	same := s.rng.Intn(4) > 0
	again := &order{id: o.id, key: o.key, sku: o.sku, qty: o.qty, hash: o.hash}
	if !same {
		again.qty = o.qty + 1
		again.hash = requestHash(o.key, o.sku, again.qty)
	}
	r := s.m.reservations[stockAt{o.sku, o.id}]
	if r.state != gridpb.ReservationState_RESERVATION_STATE_RELEASED {
		// The grains reserve first; the reservation, held or spent, is found.
		if it := s.reserve(again); it.Outcome != gridpb.Outcome_OUTCOME_REPLAYED || it.Warehouse != r.wh {
			s.fatalf("retry of %s: reservation %s at %q, want REPLAYED at %q", o.id, it.Outcome, it.Warehouse, r.wh)
		}
	}
	res := s.record(again, r.wh)
	want := gridpb.Outcome_OUTCOME_REPLAYED
	if !same {
		want = gridpb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT
	}
	s.logf("retry %s (same request %v, %s): %s", o.id, same, o.status, res.Outcome)
	if res.Outcome != want || res.Order.GetId() != o.id || res.Order.GetStatus() != o.status {
		s.fatalf("retry of %s: %s with order %s in %s, want %s with the order in %s", o.id, res.Outcome,
			res.Order.GetId(), res.Order.GetStatus(), want, o.status)
	}
}

// event sends an order event, legal (mostly) or not, and carries out the
// stock action a legal one owes.
func (s *sim) event() {
	if len(s.m.ids) == 0 {
		s.create()
		return
	}
	o := s.m.orders[s.m.ids[s.rng.Intn(len(s.m.ids))]]
	typ := events[s.rng.Intn(len(events))]
	if s.rng.Intn(3) > 0 { // prefer a legal one, when there is one
		var legal []string
		for _, e := range events {
			if lifecycle.CanTransition(o.status, e) {
				legal = append(legal, e)
			}
		}
		if len(legal) > 0 {
			typ = legal[s.rng.Intn(len(legal))]
		}
	}
	ok := lifecycle.CanTransition(o.status, typ)
	res := s.propose(orderKey(o.id), &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: o.id, Type: typ}}})
	got := res.Outcome
	if ok && got == gridpb.Outcome_OUTCOME_REPLAYED && res.Order.GetStatus() == typ {
		got = gridpb.Outcome_OUTCOME_OK // our own earlier attempt
	}
	s.logf("event %s %s -> %s: %s", o.id, o.status, typ, res.Outcome)
	switch {
	case typ == o.status && got != gridpb.Outcome_OUTCOME_REPLAYED:
		s.fatalf("event %s on %s, already there: %s", typ, o.id, got)
	case typ == o.status:
		return
	case ok && got != gridpb.Outcome_OUTCOME_OK:
		s.fatalf("legal event %s on %s in %s: %s (%s)", typ, o.id, o.status, got, res.Detail)
	case !ok && got != gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION:
		s.fatalf("illegal event %s on %s in %s: %s", typ, o.id, o.status, got)
	case !ok:
		return
	}
	o.status = typ
	action := lifecycle.StockAction(typ)
	if res.Order.GetStockAction() != action {
		s.fatalf("event %s on %s owes %q, want %q", typ, o.id, res.Order.GetStockAction(), action)
	}
	if action == "" {
		return
	}
	set := s.propose(skuKey(o.sku), &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: o.sku, OrderId: o.id, Action: action}}})
	if set.Outcome != gridpb.Outcome_OUTCOME_OK {
		s.fatalf("settle %s of %s: %s (%s)", action, o.id, set.Outcome, set.Detail)
	}
	s.m.settle(o.sku, o.id, action)
	synced := s.propose(orderKey(o.id), &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: o.id, Version: res.Order.Version}}})
	if synced.Order.GetStockAction() != "" {
		s.fatalf("stock synced on %s: still owes %q", o.id, synced.Order.GetStockAction())
	}
}

// transfer asks partition p's leader, whichever node it is, to hand its
// leadership to node to.
func (s *sim) transfer() {
	p, to := s.rng.Intn(partitionsCount), s.rng.Intn(s.c.Len())
	if to == s.faulty {
		s.logf("transfer p%d to node %d: skipped, the node is faulty (%s)", p, to, s.fault)
		return
	}
	for _, i := range s.c.Running() {
		h := s.c.Host(i)
		if i == to || !h.Partitions()[p].IsLeader() {
			continue
		}
		err := h.Partitions()[p].TransferLeadership(s.c.ID(to))
		s.logf("transfer p%d from node %d to node %d: %v", p, i, to, err)
		return
	}
	s.logf("transfer p%d to node %d: it leads already or no leader", p, to)
}

// faultStep ends the fault in force, or starts one: at most one node is
// faulty at a time, so a quorum always remains.
func (s *sim) faultStep() {
	if s.fault != "" {
		s.heal()
		return
	}
	n := s.rng.Intn(s.c.Len())
	other := (n + 1 + s.rng.Intn(s.c.Len()-1)) % s.c.Len()
	s.inject(n, other)
}

// inject makes one fault of node n, drawn from the seed: its link to other
// cut one way or both, n isolated, or n crashed.
func (s *sim) inject(n, other int) {
	switch s.rng.Intn(4) {
	case 0:
		s.c.Cut(n, other)
		s.fault = fmt.Sprintf("cut %d->%d", n, other)
	case 1:
		s.c.Partition(n, other)
		s.fault = fmt.Sprintf("partition %d<->%d", n, other)
	case 2:
		s.c.Isolate(n)
		s.fault = fmt.Sprintf("isolate %d", n)
	case 3:
		if err := s.c.Stop(n); err != nil {
			s.fatalf("stop node %d: %v", n, err)
		}
		s.fault = fmt.Sprintf("stop %d", n)
	}
	s.faulty = n
	s.logf("fault: %s", s.fault)
}

func (s *sim) heal() {
	if strings.HasPrefix(s.fault, "stop") {
		if err := s.c.Restart(s.faulty); err != nil {
			s.fatalf("restart node %d: %v", s.faulty, err)
		}
	} else {
		s.c.HealAll()
	}
	s.logf("heal: %s", s.fault)
	s.fault, s.faulty = "", -1
}

// ---- the checks ----

// replica is what one node holds of one partition, read from one Pebble
// snapshot: its applied index and a hash of its state.
type replica struct {
	node    int
	applied uint64
	hash    [32]byte
}

// check runs the checks of every replica, and of every leader against
// the model.
func (s *sim) check() {
	s.t.Helper()
	for p := 0; p < partitionsCount; p++ {
		var reps []replica
		for _, i := range s.c.Running() {
			reps = append(reps, s.checkReplica(i, p))
		}
		for a := range reps {
			for b := a + 1; b < len(reps); b++ {
				if reps[a].applied == reps[b].applied && reps[a].hash != reps[b].hash {
					s.fatalf("partition %d: nodes %d and %d applied %d and differ", p, reps[a].node, reps[b].node, reps[a].applied)
				}
			}
		}
		s.checkLeader(p)
	}
}

// checkReplica checks node i's replica of partition p on its own: stock
// conserved, reservations add up. It returns the replica's index and hash.
func (s *sim) checkReplica(i, p int) replica {
	h := s.c.Host(i)
	part := h.Partitions()[p]
	snap := h.DB().NewSnapshot()
	defer snap.Close()
	r := cluster.LocalReader{R: snap}
	out := replica{node: i}
	appliedKey := string(part.Prefix) + "\x00applied"
	sum := sha256.New()
	err := r.Scan(part.Prefix, prefixEnd(part.Prefix), 0, func(k, v []byte) error {
		if string(k) == appliedKey {
			out.applied = binary.BigEndian.Uint64(v)
			return nil
		}
		_ = binary.Write(sum, binary.BigEndian, uint64(len(k)))
		sum.Write(k)
		_ = binary.Write(sum, binary.BigEndian, uint64(len(v)))
		sum.Write(v)
		return nil
	})
	if err != nil {
		s.fatalf("node %d partition %d: scan: %v", i, p, err)
	}
	copy(out.hash[:], sum.Sum(nil))
	for _, sku := range skus {
		if h.PartitionOf(skuKey(sku)) != part {
			continue
		}
		st, _, err := statemachine.ReadStock(r, part.Prefix, sku)
		if err != nil {
			s.fatalf("node %d: stock of %s: %v", i, sku, err)
		}
		res, err := statemachine.ReadReservations(r, part.Prefix, sku)
		if err != nil {
			s.fatalf("node %d: reservations of %s: %v", i, sku, err)
		}
		held := map[stockAt]int64{}
		for _, rv := range res {
			held[stockAt{rv.Warehouse, rv.State.String()}] += rv.Qty
		}
		for _, w := range st.Warehouses {
			pending := held[stockAt{w.Warehouse, gridpb.ReservationState_RESERVATION_STATE_PENDING.String()}]
			committed := held[stockAt{w.Warehouse, gridpb.ReservationState_RESERVATION_STATE_COMMITTED.String()}]
			if w.Available < 0 || w.OnHand != w.Available+w.Pending+w.Committed || w.Pending != pending || w.Committed != committed {
				s.fatalf("node %d (applied %d): %s@%s not conserved: on_hand %d available %d pending %d committed %d; reservations pending %d committed %d",
					i, out.applied, sku, w.Warehouse, w.OnHand, w.Available, w.Pending, w.Committed, pending, committed)
			}
		}
	}
	return out
}

// checkLeader checks partition p's leader, after a barrier (it has applied
// everything committed), against the model.
func (s *sim) checkLeader(p int) {
	h := s.leaderAfterBarrier(p)
	part := h.Partitions()[p]
	r := cluster.LocalReader{R: h.DB()}
	for _, sku := range skus {
		if h.PartitionOf(skuKey(sku)) != part {
			continue
		}
		st, _, err := statemachine.ReadStock(r, part.Prefix, sku)
		if err != nil {
			s.fatalf("leader of p%d: stock of %s: %v", p, sku, err)
		}
		got := map[string]level{}
		for _, w := range st.Warehouses {
			got[w.Warehouse] = level{onHand: w.OnHand, pending: w.Pending, committed: w.Committed}
		}
		for _, wh := range warehouses {
			want := level{}
			if l := s.m.stock[stockAt{sku, wh}]; l != nil {
				want = *l
			}
			if got[wh] != want {
				s.fatalf("leader %s of p%d: %s@%s is %+v, the model %+v", h.NodeID(), p, sku, wh, got[wh], want)
			}
		}
		res, err := statemachine.ReadReservations(r, part.Prefix, sku)
		if err != nil {
			s.fatalf("leader of p%d: reservations of %s: %v", p, sku, err)
		}
		n := 0
		for _, id := range s.m.ids {
			if s.m.orders[id].sku == sku {
				n++
			}
		}
		if len(res) != n {
			s.fatalf("leader %s of p%d: %d reservations of %s, the model %d", h.NodeID(), p, len(res), sku, n)
		}
		for _, rv := range res {
			want := s.m.reservations[stockAt{sku, rv.OrderId}]
			if want == nil || want.qty != rv.Qty || want.wh != rv.Warehouse || want.state != rv.State {
				s.fatalf("leader %s of p%d: reservation %s/%s is %s x%d at %s, the model %+v", h.NodeID(), p, sku, rv.OrderId, rv.State, rv.Qty, rv.Warehouse, want)
			}
		}
	}
	for _, id := range s.m.ids {
		if h.PartitionOf(orderKey(id)) != part {
			continue
		}
		o, found, err := statemachine.ReadOrder(r, part.Prefix, id)
		if err != nil {
			s.fatalf("leader of p%d: order %s: %v", p, id, err)
		}
		want := s.m.orders[id]
		if !found {
			s.fatalf("leader %s of p%d: acknowledged order %s is lost", h.NodeID(), p, id)
		}
		if o.Status != want.status || o.StockAction != "" || string(o.RequestHash) != string(want.hash) {
			s.fatalf("leader %s of p%d: order %s is %s (owes %q), the model %s", h.NodeID(), p, id, o.Status, o.StockAction, want.status)
		}
	}
	for _, o := range s.m.refused {
		if h.PartitionOf(orderKey(o.id)) != part {
			continue
		}
		if _, found, _ := statemachine.ReadOrder(r, part.Prefix, o.id); found {
			s.fatalf("leader of p%d: order %s was refused for want of stock, yet it exists", p, o.id)
		}
	}
}

// leaderAfterBarrier returns the host that leads partition p and has
// applied everything committed before the call.
func (s *sim) leaderAfterBarrier(p int) *cluster.Host {
	deadline := time.Now().Add(settleTimeout)
	for time.Now().Before(deadline) {
		for _, i := range s.c.Running() {
			h := s.c.Host(i)
			if !h.Partitions()[p].IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			t0 := time.Now()
			err := h.Partitions()[p].Barrier(ctx)
			cancel()
			if d := time.Since(t0); d > 300*time.Millisecond {
				s.logf("barrier on node %d p%d took %s: %v", i, p, d.Round(time.Millisecond), err)
			}
			if err == nil && h.Partitions()[p].IsLeader() {
				return h
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.fatalf("partition %d: no leader could take a barrier within %s", p, settleTimeout)
	return nil
}

// converge heals every link, restarts every stopped node, and waits until
// every replica of every partition has applied the same index and holds
// the same state as the others.
func (s *sim) converge() {
	if s.fault != "" {
		s.heal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := s.c.WaitReady(ctx); err != nil {
		s.fatalf("converge: %v", err)
	}
	for p := 0; p < partitionsCount; p++ {
		for {
			s.leaderAfterBarrier(p)
			var reps []replica
			for i := 0; i < s.c.Len(); i++ {
				reps = append(reps, s.checkReplica(i, p))
			}
			same := slices.IndexFunc(reps, func(r replica) bool { return r.applied != reps[0].applied || r.hash != reps[0].hash }) < 0
			if same {
				break
			}
			if ctx.Err() != nil {
				s.fatalf("partition %d: replicas never converged: %+v", p, reps)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// prefixEnd is the first key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
