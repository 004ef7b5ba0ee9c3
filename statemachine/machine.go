package statemachine

import (
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/outbox"
)

// Result is what Apply answers the proposer, before it is marshalled.
type Result = gridpb.ApplyResult

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
	// alerts are the orders' stages and open alerts (alerts.go).
	alerts alertIndex
	// counts are the orders by status, channel, warehouse and region (counts.go).
	counts countIndex
	// holds are the orders held at intake, undecided (holds.go).
	holds holdIndex
	// history is what the risk features read of past orders (history.go).
	history historyIndex
}

// indexedSpaces are the key spaces Machine.present holds: the Indexed ones
// of keySpaces.
var indexedSpaces = func() (on [256]bool) {
	for _, s := range keySpaces {
		on[s.Byte] = s.Indexed
	}
	return on
}()

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
	stages, open := map[string]stageEntry{}, map[string]openAlert{}
	counts := &countIndex{dims: newCountDims()}
	held := map[string]heldOrder{}
	history := newHistoryIndex()
	due, subjects, err := m.loadOrderIndexes(r, func(o *gridpb.OrderRecord) {
		counts.addLocked(o, 1) // counts is not shared yet
		history.addLocked(o)
		if undecided(o) {
			held[o.Id] = heldOrder{reason: o.Hold.Reason, at: o.Hold.HeldUnixNano}
		}
		if status, since := stageOf(o); Timed(status) {
			stages[o.Id] = stageEntry{status, since}
		}
		if o.Alert != nil {
			open[o.Id] = openAlert{alert: proto.Clone(o.Alert).(*gridpb.OrderAlert), channel: o.Channel, warehouse: warehousesOf(o), carrier: o.ShipmentCarrier}
		}
	})
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
	m.alerts.mu.Lock()
	m.alerts.stages, m.alerts.open = stages, open
	m.alerts.mu.Unlock()
	m.counts.mu.Lock()
	m.counts.dims = counts.dims
	m.counts.mu.Unlock()
	m.holds.mu.Lock()
	m.holds.held = held
	m.holds.mu.Unlock()
	m.history.mu.Lock()
	m.history.customers, m.history.addresses, m.history.devices, m.history.sharers = history.customers, history.addresses, history.devices, history.sharers
	m.history.mu.Unlock()
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
		subjects: subjectIndex{orders: map[string]map[string]struct{}{}}, alerts: newAlertIndex(), counts: newCountIndex(),
		holds: holdIndex{held: map[string]heldOrder{}}, history: newHistoryIndex()}
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
	var cmd gridpb.Command
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
func (tx *txn) dispatch(cmd *gridpb.Command) *Result {
	m, b := tx.m, tx.b
	switch k := cmd.Kind.(type) {
	case *gridpb.Command_ReserveBatch:
		return tx.reserveBatch(k.ReserveBatch)
	case *gridpb.Command_Settle:
		return tx.settle(k.Settle.Sku, k.Settle.OrderId, k.Settle.Action)
	case *gridpb.Command_SetStock:
		return tx.setStock(k.SetStock)
	case *gridpb.Command_CreateOrder:
		return tx.createOrder(k.CreateOrder.Order, k.CreateOrder.Routing)
	case *gridpb.Command_CreateOrders:
		return tx.createOrders(k.CreateOrders)
	case *gridpb.Command_Transitions:
		return tx.transitions(k.Transitions)
	case *gridpb.Command_StockSyncedBatch:
		return tx.stockSyncedBatch(k.StockSyncedBatch)
	case *gridpb.Command_SettleBatch:
		return tx.settleBatch(k.SettleBatch)
	case *gridpb.Command_Transition:
		return tx.transition(k.Transition)
	case *gridpb.Command_StockSynced:
		return tx.stockSynced(k.StockSynced)
	case *gridpb.Command_ExpireOrders:
		return tx.expireOrders(k.ExpireOrders.OrderIds)
	case *gridpb.Command_ExpireReservations:
		return tx.expireReservations(k.ExpireReservations)
	case *gridpb.Command_PutSubjectKey:
		return tx.putSubjectKey(k.PutSubjectKey)
	case *gridpb.Command_PutSubjectKeys:
		return tx.putSubjectKeys(k.PutSubjectKeys)
	case *gridpb.Command_EraseSubject:
		return tx.eraseSubject(k.EraseSubject)
	case *gridpb.Command_RewrapSubjectKey:
		return tx.rewrapSubjectKey(k.RewrapSubjectKey)
	case *gridpb.Command_RecordAccess:
		return tx.recordAccess(k.RecordAccess)
	case *gridpb.Command_ArchiveOrders:
		return tx.archiveOrders(k.ArchiveOrders)
	case *gridpb.Command_RestoreOrders:
		return tx.restoreOrders(k.RestoreOrders)
	case *gridpb.Command_PutWarehouse:
		return tx.putWarehouse(k.PutWarehouse)
	case *gridpb.Command_PutStrategy:
		return tx.putStrategy(k.PutStrategy)
	case *gridpb.Command_ActivateStrategy:
		return tx.activateStrategy(k.ActivateStrategy)
	case *gridpb.Command_AnnotateOrder:
		return tx.annotateOrder(k.AnnotateOrder)
	case *gridpb.Command_LinkIdentity:
		return tx.linkIdentity(k.LinkIdentity)
	case *gridpb.Command_NotePurchase:
		return tx.notePurchase(k.NotePurchase)
	case *gridpb.Command_NotePrice:
		return tx.notePrice(k.NotePrice)
	case *gridpb.Command_RememberIdentity:
		return tx.rememberIdentity(k.RememberIdentity)
	case *gridpb.Command_UnlinkIdentity:
		return tx.unlinkIdentity(k.UnlinkIdentity)
	case *gridpb.Command_QueueFetches:
		return tx.queueFetches(k.QueueFetches)
	case *gridpb.Command_FetchOutcome:
		return tx.fetchOutcome(k.FetchOutcome)
	case *gridpb.Command_PurgeFetches:
		return tx.purgeFetches(k.PurgeFetches)
	case *gridpb.Command_SetCursor:
		return tx.setCursor(k.SetCursor)
	case *gridpb.Command_RaiseAlerts:
		return tx.raiseAlerts(k.RaiseAlerts)
	case *gridpb.Command_PutWebhook:
		return tx.putWebhook(k.PutWebhook)
	case *gridpb.Command_DeleteWebhook:
		return tx.deleteWebhook(k.DeleteWebhook)
	case *gridpb.Command_AdvanceWebhook:
		return tx.advanceWebhook(k.AdvanceWebhook)
	case *gridpb.Command_MarkDeadLetter:
		return tx.markDeadLetter(k.MarkDeadLetter)
	case *gridpb.Command_DecideHold:
		return tx.decideHold(k.DecideHold)
	case *gridpb.Command_PutLimit:
		return tx.putLimit(k.PutLimit)
	case *gridpb.Command_DeleteLimit:
		return tx.deleteLimit(k.DeleteLimit)
	case *gridpb.Command_PutRiskModel:
		return tx.putRiskModel(k.PutRiskModel)
	case *gridpb.Command_SetSkuLimit:
		return tx.setSkuLimit(k.SetSkuLimit)
	case *gridpb.Command_TrimOutbox:
		if err := outbox.Trim(b, m.prefix, k.TrimOutbox.BeforeIndex); err != nil {
			panic(fmt.Sprintf("statemachine: trim outbox: %v", err))
		}
		return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
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

func readRaw(b *pebble.Batch, k []byte) ([]byte, bool, error) {
	return cluster.LocalReader{R: b}.Get(k)
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
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Results: make([]*Result, len(items))}
	for i, it := range items {
		out.Results[i] = apply(it)
	}
	return out
}
