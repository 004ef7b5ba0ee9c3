package statemachine

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/ordergrid/ordergrid/lifecycle"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Result is what Apply answers the proposer, before it is marshalled.
type Result = pb.ApplyResult

// Machine is the state machine of one partition.
type Machine struct {
	id     uint32
	prefix []byte
	// purge is set when a command deleted data that must leave the disk
	// (an erasure); see PurgeRequested.
	purge atomic.Bool
	hooks *Hooks
	// present holds every key of the indexed spaces (orders, archived
	// orders, reservations, subject keys) the partition has: a command
	// learns that an order, reservation or key is new without a read that
	// misses (on a memtable that also holds the Raft log, such a read cost
	// more than the rest of the command). Rebuilt by Load on start and
	// after a snapshot is restored, kept by put and del; about 100 bytes a
	// key, so it grows with the orders the partition keeps (archived ones
	// keep a marker until restored).
	present map[string]struct{}
	// due is the pay-by time of every unpaid order (due.go).
	due dueIndex
	// subjects are the data subjects' orders (subject_index.go).
	subjects subjectIndex
}

// indexedSpaces are the key spaces Machine.present holds.
var indexedSpaces = [256]bool{'o': true, 'v': true, 'r': true, 'k': true}

// indexed reports whether k is in one of the indexed spaces.
func (m *Machine) indexed(k []byte) bool {
	return len(k) > len(m.prefix) && indexedSpaces[k[len(m.prefix)]]
}

// Hooks tell the node about applied commands whose effects it caches. They
// are set after the partitions open (the caches start later) and are safe
// for concurrent use; a nil *Hooks calls nothing.
type Hooks struct {
	erased atomic.Pointer[func(subject string)]
}

// OnErased sets the function called, on every replica, when a subject's
// erasure is applied: it must drop whatever the node caches of the
// subject's key.
func (h *Hooks) OnErased(fn func(subject string)) { h.erased.Store(&fn) }

func (h *Hooks) subjectErased(subject string) {
	if h == nil {
		return
	}
	if fn := h.erased.Load(); fn != nil {
		(*fn)(subject)
	}
}

// WithHooks returns the factory of state machines that call hooks.
func WithHooks(hooks *Hooks) cluster.StateMachineFactory {
	return func(id uint32, prefix []byte) cluster.StateMachine {
		m := New(id, prefix).(*Machine)
		m.hooks = hooks
		return m
	}
}

var _ cluster.Loading = (*Machine)(nil)

// Load rebuilds the in-memory index of the indexed key spaces from the
// partition's state. See cluster.Loading.
func (m *Machine) Load(r pebble.Reader) error {
	present := make(map[string]struct{})
	for space, on := range indexedSpaces {
		if !on {
			continue
		}
		lo := spaceStart(m.prefix, byte(space))
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return fmt.Errorf("statemachine: index %q: %w", byte(space), err)
		}
		for it.First(); it.Valid(); it.Next() {
			present[string(it.Key())] = struct{}{}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("statemachine: index %q: %w", byte(space), err)
		}
	}
	due, subjects, err := m.loadOrderIndexes(r)
	if err != nil {
		return err
	}
	m.subjects.mu.Lock()
	m.subjects.orders = subjects
	m.subjects.mu.Unlock()
	m.present = present
	m.due.mu.Lock()
	m.due.payBy = due
	m.due.mu.Unlock()
	return nil
}

var _ cluster.Purging = (*Machine)(nil)

// PurgeRequested reports, once, that an applied command erased data: the
// partition then snapshots without trailing log and compacts, so the
// deleted keys leave the Raft log, snapshots and Pebble's files.
func (m *Machine) PurgeRequested() bool { return m.purge.Swap(false) }

var _ cluster.StateMachine = (*Machine)(nil)

// New returns the state machine of the partition whose keys start with prefix.
func New(id uint32, prefix []byte) cluster.StateMachine {
	return &Machine{id: id, prefix: append([]byte{}, prefix...), present: make(map[string]struct{}), due: dueIndex{payBy: map[string]int64{}},
		subjects: subjectIndex{orders: map[string]map[string]struct{}{}}}
}

// Apply applies one committed command and answers a marshalled
// ApplyResult. See cluster.StateMachine.
func (m *Machine) Apply(b *pebble.Batch, index uint64, data []byte) []byte {
	out, err := proto.Marshal(m.apply(b, index, data))
	if err != nil {
		panic(fmt.Sprintf("statemachine: marshal result: %v", err))
	}
	return out
}

func (m *Machine) apply(b *pebble.Batch, index uint64, data []byte) *Result {
	var cmd pb.Command
	if err := proto.Unmarshal(data, &cmd); err != nil {
		// Deterministic on every replica: the entry is refused, not applied.
		return &Result{Detail: fmt.Sprintf("undecodable command: %v", err)}
	}
	tx := &txn{m: m, b: b, index: index, at: cmd.AtUnixNano, principal: cmd.Principal}
	res := tx.dispatch(&cmd)
	tx.flushLoads()
	return res
}

// dispatch applies the command's kind.
func (tx *txn) dispatch(cmd *pb.Command) *Result {
	m, b := tx.m, tx.b
	switch k := cmd.Kind.(type) {
	case *pb.Command_ReserveBatch:
		return tx.reserveBatch(k.ReserveBatch)
	case *pb.Command_Settle:
		return tx.settle(k.Settle.Sku, k.Settle.OrderId, k.Settle.Action)
	case *pb.Command_SetStock:
		return tx.setStock(k.SetStock)
	case *pb.Command_CreateOrder:
		return tx.createOrder(k.CreateOrder.Order, k.CreateOrder.Routing)
	case *pb.Command_CreateOrders:
		return tx.createOrders(k.CreateOrders)
	case *pb.Command_Transitions:
		return tx.transitions(k.Transitions)
	case *pb.Command_StockSyncedBatch:
		return tx.stockSyncedBatch(k.StockSyncedBatch)
	case *pb.Command_SettleBatch:
		return tx.settleBatch(k.SettleBatch)
	case *pb.Command_Transition:
		return tx.transition(k.Transition)
	case *pb.Command_StockSynced:
		return tx.stockSynced(k.StockSynced)
	case *pb.Command_ExpireOrders:
		return tx.expireOrders(k.ExpireOrders.OrderIds)
	case *pb.Command_ExpireReservations:
		return tx.expireReservations(k.ExpireReservations)
	case *pb.Command_PutSubjectKey:
		return tx.putSubjectKey(k.PutSubjectKey)
	case *pb.Command_PutSubjectKeys:
		return tx.putSubjectKeys(k.PutSubjectKeys)
	case *pb.Command_EraseSubject:
		return tx.eraseSubject(k.EraseSubject)
	case *pb.Command_RewrapSubjectKey:
		return tx.rewrapSubjectKey(k.RewrapSubjectKey)
	case *pb.Command_RecordAccess:
		return tx.recordAccess(k.RecordAccess)
	case *pb.Command_ArchiveOrders:
		return tx.archiveOrders(k.ArchiveOrders)
	case *pb.Command_RestoreOrders:
		return tx.restoreOrders(k.RestoreOrders)
	case *pb.Command_PutWarehouse:
		return tx.putWarehouse(k.PutWarehouse)
	case *pb.Command_PutStrategy:
		return tx.putStrategy(k.PutStrategy)
	case *pb.Command_ActivateStrategy:
		return tx.activateStrategy(k.ActivateStrategy)
	case *pb.Command_AnnotateOrder:
		return tx.annotateOrder(k.AnnotateOrder)
	case *pb.Command_LinkIdentity:
		return tx.linkIdentity(k.LinkIdentity)
	case *pb.Command_NotePurchase:
		return tx.notePurchase(k.NotePurchase)
	case *pb.Command_NotePrice:
		return tx.notePrice(k.NotePrice)
	case *pb.Command_RememberIdentity:
		return tx.rememberIdentity(k.RememberIdentity)
	case *pb.Command_UnlinkIdentity:
		return tx.unlinkIdentity(k.UnlinkIdentity)
	case *pb.Command_TrimOutbox:
		if err := outbox.Trim(b, m.prefix, k.TrimOutbox.BeforeIndex); err != nil {
			panic(fmt.Sprintf("statemachine: trim outbox: %v", err))
		}
		return &Result{Outcome: pb.Outcome_OUTCOME_OK}
	default:
		return &Result{Detail: "empty command"}
	}
}

// txn is the application of one command.
type txn struct {
	m         *Machine
	b         *pebble.Batch
	index     uint64
	at        int64
	principal string
	out       *outbox.Writer
	// loads are the parcel counts this command changes, written once at
	// its end (a batch of orders to one warehouse and day writes its load
	// key once).
	loads map[string]int64
}

// as runs fn with principal as the command's principal, when one is given:
// an entry that folds several callers' items (reserve_batch, settle_batch,
// create_orders, transitions) records each item's event under the item's
// own principal, never the command's. An item without one (written before
// items carried principals) falls back to the command's; a proposer whose
// items have different principals leaves the command's empty.
func (t *txn) as(principal string, fn func() *Result) *Result {
	if principal == "" {
		return fn()
	}
	saved := t.principal
	t.principal = principal
	defer func() { t.principal = saved }()
	return fn()
}

// record hands one event of the command to the ledger, through the
// partition's outbox, in the command's batch.
func (t *txn) record(e *ledger.Event) {
	if t.out == nil {
		t.out = outbox.NewWriter(t.b, t.m.id, t.m.prefix, t.index, t.at)
	}
	e.Principal = t.principal
	t.out.Add(e)
}

func (t *txn) get(k []byte, msg proto.Message) bool {
	if t.m.indexed(k) {
		if _, ok := t.m.present[string(k)]; !ok {
			return false
		}
	}
	ok, err := getProto(cluster.LocalReader{R: t.b}, k, msg)
	if err != nil {
		panic(fmt.Sprintf("statemachine: read %q: %v", k, err))
	}
	return ok
}

func (t *txn) put(k []byte, msg proto.Message) {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		panic(fmt.Sprintf("statemachine: marshal: %v", err))
	}
	if err := t.b.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
	if t.m.indexed(k) {
		t.m.present[string(k)] = struct{}{}
	}
}

func (t *txn) del(k []byte) {
	if err := t.b.Delete(k, nil); err != nil {
		panic(fmt.Sprintf("statemachine: delete: %v", err))
	}
	if t.m.indexed(k) {
		delete(t.m.present, string(k))
	}
}

// ---- stock ----

func available(s *pb.StockRecord) int64 { return s.OnHand - s.Pending - s.Committed }

func assertStock(sku, wh string, s *pb.StockRecord) {
	if s.Pending < 0 || s.Committed < 0 || s.OnHand < 0 || available(s) < 0 {
		panic(fmt.Sprintf("statemachine: stock invariant broken for %s@%s: on_hand=%d pending=%d committed=%d",
			sku, wh, s.OnHand, s.Pending, s.Committed))
	}
}

func (t *txn) stock(sku, wh string) *pb.StockRecord {
	names, recs, err := warehouses(t.b, t.m.prefix, sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", sku, err))
	}
	if i, ok := slices.BinarySearch(names, wh); ok {
		return recs[i]
	}
	return &pb.StockRecord{}
}

// putStock writes one warehouse's stock into the SKU's record.
func (t *txn) putStock(sku, wh string, s *pb.StockRecord) {
	names, recs, err := warehouses(t.b, t.m.prefix, sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", sku, err))
	}
	i, ok := slices.BinarySearch(names, wh)
	if ok {
		recs[i] = s
	} else {
		names = slices.Insert(names, i, wh)
		recs = slices.Insert(recs, i, s)
	}
	t.putSku(sku, names, recs)
}

func (t *txn) putSku(sku string, names []string, recs []*pb.StockRecord) {
	for i, s := range recs {
		assertStock(sku, names[i], s)
	}
	t.put(stockKey(t.m.prefix, sku), &pb.SkuRecord{Warehouses: names, Stock: recs})
}

func (t *txn) setStock(c *pb.SetStockCommand) *Result {
	s := t.stock(c.Sku, c.Warehouse)
	if c.OnHand < s.Pending+s.Committed {
		return &Result{Outcome: pb.Outcome_OUTCOME_BELOW_RESERVED, Sku: c.Sku,
			Detail: fmt.Sprintf("on_hand %d is below the %d reserved at %s", c.OnHand, s.Pending+s.Committed, c.Warehouse)}
	}
	before := s.OnHand
	s.OnHand = c.OnHand
	t.putStock(c.Sku, c.Warehouse, s)
	t.put(stockEventKey(t.m.prefix, c.Sku, t.index), &pb.EventRecord{
		Seq: t.index, Type: "stock_set", AtUnixNano: t.at, Principal: t.principal,
		Details: map[string]string{"warehouse": c.Warehouse, "on_hand": strconv.FormatInt(c.OnHand, 10), "on_hand_before": strconv.FormatInt(before, 10)},
	})
	t.record(&ledger.Event{Kind: ledger.KindStock, Type: "stock_set", SKU: c.Sku, Warehouse: c.Warehouse, Qty: c.OnHand,
		Details: map[string]string{"on_hand_before": strconv.FormatInt(before, 10)}})
	return &Result{Outcome: pb.Outcome_OUTCOME_OK}
}

// warehouses returns sku's stock per warehouse, sorted by warehouse.
func warehouses(r pebble.Reader, prefix []byte, sku string) ([]string, []*pb.StockRecord, error) {
	var rec pb.SkuRecord
	if _, err := getProto(cluster.LocalReader{R: r}, stockKey(prefix, sku), &rec); err != nil {
		return nil, nil, err
	}
	if len(rec.Warehouses) != len(rec.Stock) {
		return nil, nil, fmt.Errorf("sku record of %s: %d warehouses, %d stock records", sku, len(rec.Warehouses), len(rec.Stock))
	}
	return rec.Warehouses, rec.Stock, nil
}

func (t *txn) reserveBatch(c *pb.ReserveBatchCommand) *Result {
	// One read of the SKU's warehouses for the whole batch, one write of
	// each changed warehouse at the end: a batch of thousands costs one scan.
	names, recs, err := warehouses(t.b, t.m.prefix, c.Sku)
	if err != nil {
		panic(fmt.Sprintf("statemachine: stock of %s: %v", c.Sku, err))
	}
	changed := make([]bool, len(recs))
	out := &pb.ReserveBatchResult{Items: make([]*pb.ReserveItemResult, len(c.Items))}
	for i, it := range c.Items {
		var outcome pb.Outcome
		var wh string
		t.as(it.Principal, func() *Result { outcome, wh = t.reserve(c.Sku, it, names, recs, changed); return nil })
		out.Items[i] = &pb.ReserveItemResult{OrderId: it.OrderId, Outcome: outcome, Warehouse: wh}
	}
	if slices.Contains(changed, true) {
		t.putSku(c.Sku, names, recs)
	}
	return &Result{Outcome: pb.Outcome_OUTCOME_OK, Reserve: out}
}

// reserve takes qty of sku for an order from the warehouse with the most
// available stock that can hold the whole line (the grain's choice if it
// still can). A reservation that already exists is returned, not taken
// twice. names and recs are the SKU's warehouses, updated in place.
func (t *txn) reserve(sku string, it *pb.ReserveItem, names []string, recs []*pb.StockRecord, changed []bool) (pb.Outcome, string) {
	rk := reservationKey(t.m.prefix, sku, it.OrderId)
	var res pb.ReservationRecord
	if t.get(rk, &res) && res.State != pb.ReservationState_RESERVATION_STATE_RELEASED {
		return pb.Outcome_OUTCOME_REPLAYED, res.Warehouse
	}
	if it.Qty <= 0 {
		return pb.Outcome_OUTCOME_UNSPECIFIED, ""
	}
	best := -1
	for i, s := range recs {
		if available(s) < it.Qty || (it.Strict && names[i] != it.Warehouse) {
			continue
		}
		if names[i] == it.Warehouse {
			best = i
			break
		}
		if best < 0 || available(s) > available(recs[best]) {
			best = i
		}
	}
	if best < 0 {
		return pb.Outcome_OUTCOME_INSUFFICIENT_STOCK, it.Warehouse
	}
	recs[best].Pending += it.Qty
	assertStock(sku, names[best], recs[best])
	changed[best] = true
	t.put(rk, &pb.ReservationRecord{Sku: sku, OrderId: it.OrderId, Warehouse: names[best], Qty: it.Qty,
		State: pb.ReservationState_RESERVATION_STATE_PENDING, ExpiresUnixNano: it.ExpiresUnixNano})
	t.put(reservationExpiryKey(t.m.prefix, it.ExpiresUnixNano, sku, it.OrderId), &pb.StockSyncedCommand{})
	t.record(&ledger.Event{Kind: ledger.KindStock, Type: "reserved", Order: it.OrderId, SKU: sku, Warehouse: names[best], Qty: it.Qty})
	return pb.Outcome_OUTCOME_OK, names[best]
}

// settle moves one order's reservation of sku towards the state action asks for.
// It is idempotent: settling twice changes nothing the second time.
func (t *txn) settle(sku, orderID, action string) *Result {
	rk := reservationKey(t.m.prefix, sku, orderID)
	var res pb.ReservationRecord
	if !t.get(rk, &res) {
		return &Result{Outcome: pb.Outcome_OUTCOME_NOT_FOUND, Sku: sku, Detail: "no reservation"}
	}
	s := t.stock(sku, res.Warehouse)
	const (
		pending   = pb.ReservationState_RESERVATION_STATE_PENDING
		committed = pb.ReservationState_RESERVATION_STATE_COMMITTED
		released  = pb.ReservationState_RESERVATION_STATE_RELEASED
		shipped   = pb.ReservationState_RESERVATION_STATE_SHIPPED
		returned  = pb.ReservationState_RESERVATION_STATE_RETURNED
	)
	from := res.State
	q := res.Qty
	switch action {
	case lifecycle.ActionCommit:
		switch from {
		case pending:
			s.Pending -= q
			s.Committed += q
		case released: // swept as an orphan before the payment reached it: take it again if it is there
			if available(s) < q {
				return &Result{Outcome: pb.Outcome_OUTCOME_EXPIRED, Sku: sku, Detail: "reservation expired and the stock is gone"}
			}
			s.Committed += q
		default:
			return &Result{Outcome: pb.Outcome_OUTCOME_OK}
		}
		res.State = committed
	case lifecycle.ActionRelease:
		switch from {
		case pending:
			s.Pending -= q
		case committed:
			s.Committed -= q
		case shipped:
			return &Result{Outcome: pb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Sku: sku, Detail: "reservation already shipped"}
		default:
			return &Result{Outcome: pb.Outcome_OUTCOME_OK}
		}
		res.State = released
	case lifecycle.ActionShip:
		switch from {
		case pending:
			s.Pending -= q
		case committed:
			s.Committed -= q
		case released:
			return &Result{Outcome: pb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Sku: sku, Detail: "reservation was released"}
		default:
			return &Result{Outcome: pb.Outcome_OUTCOME_OK}
		}
		s.OnHand -= q
		res.State = shipped
	case lifecycle.ActionRestock:
		if from != shipped {
			return &Result{Outcome: pb.Outcome_OUTCOME_OK}
		}
		s.OnHand += q
		res.State = returned
	default:
		return &Result{Detail: "unknown stock action " + action}
	}
	if from == pending {
		t.del(reservationExpiryKey(t.m.prefix, res.ExpiresUnixNano, sku, orderID))
	}
	t.putStock(sku, res.Warehouse, s)
	t.put(rk, &res)
	t.record(&ledger.Event{Kind: ledger.KindStock, Type: settledEvent[action], Order: orderID, SKU: sku, Warehouse: res.Warehouse, Qty: q})
	return &Result{Outcome: pb.Outcome_OUTCOME_OK}
}

// settledEvent is the ledger event type of each stock action.
var settledEvent = map[string]string{
	lifecycle.ActionCommit: "committed", lifecycle.ActionRelease: "released", lifecycle.ActionShip: "shipped", lifecycle.ActionRestock: "restocked",
}

func (t *txn) expireReservations(c *pb.ExpireReservationsCommand) *Result {
	for _, id := range c.OrderIds {
		var res pb.ReservationRecord
		if !t.get(reservationKey(t.m.prefix, c.Sku, id), &res) {
			continue
		}
		if res.State == pb.ReservationState_RESERVATION_STATE_PENDING && res.ExpiresUnixNano <= t.at {
			t.settle(c.Sku, id, lifecycle.ActionRelease)
		}
	}
	return &Result{Outcome: pb.Outcome_OUTCOME_OK}
}

// ---- orders ----

func (t *txn) order(id string) (*pb.OrderRecord, bool) {
	o := &pb.OrderRecord{}
	return o, t.get(orderKey(t.m.prefix, id), o)
}

func (t *txn) addEvent(o *pb.OrderRecord, typ string, details map[string]string) {
	t.addEventRouted(o, typ, details, nil)
}

// addEventRouted adds an event that carries a routing decision (the
// "created" event).
func (t *txn) addEventRouted(o *pb.OrderRecord, typ string, details map[string]string, routed *pb.RoutingRecord) {
	o.Version++
	o.UpdatedUnixNano = t.at
	t.put(orderKey(t.m.prefix, o.Id), o)
	t.put(eventKey(t.m.prefix, o.Id, o.Version), &pb.EventRecord{
		Seq: o.Version, Type: typ, AtUnixNano: t.at, Principal: t.principal, Status: o.Status, Details: details, Routing: routed,
	})
	e := &ledger.Event{Kind: ledger.KindOrder, Type: typ, Order: o.Id, Seq: o.Version, Status: o.Status, Details: details}
	if typ == "created" {
		// Customer fields are personal data and stay out of the permanent
		// log until they can enter it encrypted.
		e.Details = map[string]string{"channel": o.Channel, "channel_order_id": o.ChannelOrderId, "currency": o.Currency, "total": o.Total,
			"routing_strategy": o.RoutingStrategy}
		for k, v := range e.Details {
			if v == "" {
				delete(e.Details, k)
			}
		}
		for _, l := range o.Lines {
			e.Lines = append(e.Lines, ledger.Line{SKU: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice, Warehouse: l.Warehouse})
		}
	}
	t.record(e)
}

func (t *txn) createOrder(o *pb.OrderRecord, routed *pb.RoutingRecord) *Result {
	if c := o.GetCustomer(); c.GetName() != "" || c.GetPhone() != "" || c.GetAddress() != "" || c.GetIdNumber() != "" || c.GetEmail() != "" {
		// Personal fields enter the log sealed (OrderRecord.personal), never plain.
		return &Result{Detail: "create_order: personal fields must be sealed, not plain"}
	}
	var archived pb.ArchivedOrderRecord
	if t.get(archivedKey(t.m.prefix, o.Id), &archived) {
		// Recorded long ago and archived: a retry is answered with what is left.
		prev := &pb.OrderRecord{Id: archived.Id, Status: archived.Status, Channel: archived.Channel, RequestHash: archived.RequestHash}
		if string(archived.RequestHash) == string(o.RequestHash) {
			return &Result{Outcome: pb.Outcome_OUTCOME_REPLAYED, Order: prev}
		}
		return &Result{Outcome: pb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: prev}
	}
	if prev, ok := t.order(o.Id); ok {
		if string(prev.RequestHash) == string(o.RequestHash) {
			return &Result{Outcome: pb.Outcome_OUTCOME_REPLAYED, Order: prev}
		}
		return &Result{Outcome: pb.Outcome_OUTCOME_IDEMPOTENCY_CONFLICT, Order: prev}
	}
	o.Status = lifecycle.StatusPendingPayment
	o.Version = 0
	o.CreatedUnixNano = t.at
	o.StockAction = ""
	t.addEventRouted(o, "created", nil, routed)
	t.addLoad(o.Shipments, 1)
	t.m.due.set(o.Id, o.PayByUnixNano)
	t.m.subjects.add(o.GetCustomer().GetId(), o.Id)
	return &Result{Outcome: pb.Outcome_OUTCOME_OK, Order: o}
}

// batchItemsMax bounds the items of one batch command (create_orders,
// transitions, stock_synced_batch, settle_batch).
const batchItemsMax = 4096

// each applies the items of one batch command in order, each judged on
// its own (a later item sees what an earlier one did), and answers one
// result per item; a command of more than batchItemsMax items is refused
// whole.
func each[T any](kind string, items []T, apply func(T) *Result) *Result {
	if len(items) > batchItemsMax {
		return &Result{Detail: fmt.Sprintf("%s: %d items, at most %d", kind, len(items), batchItemsMax)}
	}
	out := &Result{Outcome: pb.Outcome_OUTCOME_OK, Results: make([]*Result, len(items))}
	for i, it := range items {
		out.Results[i] = apply(it)
	}
	return out
}

// createOrders records the new orders of one intake batch, each judged as
// a create_order of its own (a retry answered with the order it has, an
// idempotency conflict refused), with its caller as principal.
func (t *txn) createOrders(c *pb.CreateOrdersCommand) *Result {
	return each("create_orders", c.Orders, func(o *pb.CreateOrderCommand) *Result {
		if o.GetOrder().GetId() == "" {
			return &Result{Detail: "create_order: no order id"}
		}
		return t.as(o.Principal, func() *Result { return t.createOrder(o.Order, o.Routing) })
	})
}

// transitions applies the events of one batch (an order's later event sees
// its earlier one).
func (t *txn) transitions(c *pb.TransitionsCommand) *Result {
	return each("transitions", c.Transitions, func(tr *pb.TransitionCommand) *Result {
		return t.as(tr.Principal, func() *Result { return t.transition(tr) })
	})
}

// stockSyncedBatch records stock actions as carried out.
func (t *txn) stockSyncedBatch(c *pb.StockSyncedBatchCommand) *Result {
	return each("stock_synced_batch", c.Orders, t.stockSynced)
}

// settleBatch moves the reservations of one batch's orders on one SKU.
func (t *txn) settleBatch(c *pb.SettleBatchCommand) *Result {
	return each("settle_batch", c.Items, func(it *pb.SettleItem) *Result {
		return t.as(it.Principal, func() *Result { return t.settle(c.Sku, it.OrderId, it.Action) })
	})
}

func (t *txn) transition(c *pb.TransitionCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: pb.Outcome_OUTCOME_NOT_FOUND}
	}
	if o.Status == c.Type {
		return &Result{Outcome: pb.Outcome_OUTCOME_REPLAYED, Order: o}
	}
	if !lifecycle.CanTransition(o.Status, c.Type) {
		return &Result{Outcome: pb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o,
			Detail: fmt.Sprintf("cannot go from %s to %s", o.Status, c.Type)}
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != o.Version {
		return &Result{Outcome: pb.Outcome_OUTCOME_ILLEGAL_TRANSITION, Order: o, Detail: "order changed concurrently"}
	}
	if c.Type == lifecycle.StatusPaid && t.at >= o.PayByUnixNano {
		return &Result{Outcome: pb.Outcome_OUTCOME_EXPIRED, Order: o, Detail: "the payment window has closed"}
	}
	t.moveTo(o, c.Type, c.Details)
	return &Result{Outcome: pb.Outcome_OUTCOME_OK, Order: o}
}

func (t *txn) moveTo(o *pb.OrderRecord, status string, details map[string]string) {
	oldStatus, oldAt := o.Status, o.UpdatedUnixNano
	defer t.indexClosed(o, oldStatus, oldAt)
	o.Status = status
	// The pay-by deadline holds while the order is unpaid: pending or on hold.
	if unpaid(status) {
		t.m.due.set(o.Id, o.PayByUnixNano)
	} else {
		t.m.due.remove(o.Id)
	}
	if status == lifecycle.StatusShipped {
		o.ShipmentCarrier = details["carrier"]
		o.ShipmentTracking = details["tracking_number"]
	}
	if status == lifecycle.StatusCancelled || status == lifecycle.StatusExpired || status == lifecycle.StatusMerged {
		// Not shipping after all: its parcels leave the ship days' load.
		t.addLoad(o.Shipments, -1)
	}
	if a := lifecycle.StockAction(status); a != "" {
		o.StockAction = a
		t.put(stockActionKey(t.m.prefix, o.Id), &pb.StockSyncedCommand{OrderId: o.Id})
	}
	t.addEvent(o, status, details)
}

func (t *txn) stockSynced(c *pb.StockSyncedCommand) *Result {
	o, ok := t.order(c.OrderId)
	if !ok {
		return &Result{Outcome: pb.Outcome_OUTCOME_NOT_FOUND}
	}
	done := o.Version == c.Version
	if c.Action != "" {
		done = o.StockAction == c.Action
	}
	if !done || o.StockAction == "" {
		// A later transition owes another action: keep it owed.
		return &Result{Outcome: pb.Outcome_OUTCOME_REPLAYED, Order: o}
	}
	o.StockAction = ""
	t.put(orderKey(t.m.prefix, o.Id), o)
	t.del(stockActionKey(t.m.prefix, o.Id))
	return &Result{Outcome: pb.Outcome_OUTCOME_OK, Order: o}
}

func (t *txn) expireOrders(ids []string) *Result {
	for _, id := range ids {
		o, ok := t.order(id)
		if !ok || (o.Status != lifecycle.StatusPendingPayment && o.Status != lifecycle.StatusOnHold) || o.PayByUnixNano > t.at {
			continue
		}
		t.moveTo(o, lifecycle.StatusExpired, map[string]string{"reason": "payment window closed"})
	}
	return &Result{Outcome: pb.Outcome_OUTCOME_OK}
}
