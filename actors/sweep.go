package actors

import (
	"log/slog"
	"sync"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

const (
	// sweepBatchMax bounds the orders or reservations one sweep of one
	// partition handles; the rest wait for the next sweep.
	sweepBatchMax = 1000
	// sweepCallsMax bounds the grain calls a sweep has in flight.
	sweepCallsMax = 16
	// SweeperPrincipal is the principal of every event the sweeper causes:
	// orders expired past their pay-by time, orphan reservations released
	// past their expiry, owed stock actions it finishes (their committed,
	// released or shipped stock events), and stuck-order alerts raised.
	SweeperPrincipal = "system:sweeper"
)

// sweeper finishes on a node's led partitions what no caller is waiting
// for: expiries, orphan reservations, owed stock actions, and retention's
// archiving. It runs from Start until Stop.
type sweeper struct {
	n *Node
}

func (s sweeper) loop() {
	n := s.n
	defer n.swept.Done()
	t := time.NewTicker(n.opts.SweepInterval)
	defer t.Stop()
	// The first sweep after start finishes every owed stock action, young or
	// old: no grain of this node is at work on one yet.
	first := true
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			for _, p := range n.host.Partitions() {
				if p.IsLeader() {
					s.partition(p, first)
				}
			}
			first = false
		}
	}
}

// partition expires unpaid orders past their pay-by time, raises alerts
// for orders stuck in a stage past its limit, releases
// orphan reservations past their expiry, and finishes stock actions that a
// grain owes but did not carry out (its node died, or a call failed).
func (s sweeper) partition(p *cluster.Partition, all bool) {
	n := s.n
	db := n.reader(p)
	now := n.now()
	log := n.opts.Logger.With(slog.Uint64("partition", uint64(p.ID)))

	var ids []string
	if m, ok := p.StateMachine().(*statemachine.Machine); ok {
		ids = m.DueOrders(now.UnixNano(), sweepBatchMax) // this node leads p: its replica is the leader's
	}
	if m, ok := p.StateMachine().(*statemachine.Machine); ok {
		s.raiseAlerts(p, m, now, log)
	}
	if len(ids) > 0 {
		ctx, cancel := n.callCtx()
		_, err := n.propose(ctx, p, SweeperPrincipal, &gridpb.Command{Kind: &gridpb.Command_ExpireOrders{ExpireOrders: &gridpb.ExpireOrdersCommand{OrderIds: ids}}})
		cancel()
		if err != nil {
			log.Warn("sweep: expiring orders", slog.Any("error", err))
			return
		}
		n.metrics.expired.Add(float64(len(ids)))
		fanOut(len(ids), sweepCallsMax, func(i int) { s.syncOrder(ids[i], log) })
	}

	due, err := statemachine.DueReservations(db, p.Prefix, now.UnixNano(), sweepBatchMax)
	if err != nil {
		log.Error("sweep: due reservations", slog.Any("error", err))
		return
	}
	fanOut(len(due), sweepCallsMax, func(i int) {
		_, err := n.skuClient(due[i].SKU).Settle(&gridpb.SettleRequest{Sku: due[i].SKU, OrderId: due[i].OrderID, Action: "expire", Principal: SweeperPrincipal}, n.callOptions()...)
		if err != nil {
			log.Warn("sweep: releasing orphan reservation", slog.String("sku", due[i].SKU), slog.Any("error", err))
		}
	})

	owed, err := statemachine.OwedStockActions(db, p.Prefix, sweepBatchMax)
	if err != nil {
		log.Error("sweep: owed stock actions", slog.Any("error", err))
		return
	}
	cutoff := now.Add(-n.opts.ReconcileAfter).UnixNano()
	if all {
		cutoff = now.UnixNano()
	}
	fanOut(len(owed), sweepCallsMax, func(i int) {
		o, ok, err := statemachine.ReadOrder(db, p.Prefix, owed[i])
		if err != nil || !ok || o.UpdatedUnixNano > cutoff {
			return // young: its grain is most likely still at it
		}
		n.metrics.reconciled.Inc()
		s.syncOrder(owed[i], log)
	})
}

// raiseAlerts proposes alerts for the orders that stayed in a stage past
// its limit (Options.StageLimits), as m (the leader's replica of p) sees
// them: up to sweepBatchMax a sweep, AlertsPerCommandMax a command. The
// judge raises each once: a proposal that failed, or that another leader
// made too, is harmless to repeat.
func (s sweeper) raiseAlerts(p partition, m *statemachine.Machine, now time.Time, log *slog.Logger) {
	n := s.n
	due := m.StuckOrders(now.UnixNano(), n.opts.StageLimits, sweepBatchMax)
	for len(due) > 0 {
		chunk := due[:min(len(due), statemachine.AlertsPerCommandMax)]
		due = due[len(chunk):]
		ctx, cancel := n.callCtx()
		res, err := n.propose(ctx, p, SweeperPrincipal, &gridpb.Command{Kind: &gridpb.Command_RaiseAlerts{RaiseAlerts: &gridpb.RaiseAlertsCommand{Alerts: chunk}}})
		cancel()
		if err != nil {
			log.Warn("sweep: raising alerts", slog.Int("orders", len(chunk)), slog.Any("error", err))
			return
		}
		n.metrics.alertsRaised.Add(float64(len(res.OrderIds)))
		if len(res.OrderIds) > 0 {
			log.Info("sweep: stuck-order alerts raised", slog.Int("orders", len(res.OrderIds)), slog.String("first", res.OrderIds[0]))
		}
	}
}

func (s sweeper) syncOrder(id string, log *slog.Logger) {
	n := s.n
	if _, err := n.orderClient(id).SyncStock(&gridpb.SyncStockRequest{OrderId: id}, n.callOptions()...); err != nil {
		log.Warn("sweep: stock action", slog.String("order", id), slog.Any("error", err))
	}
}

// fanOut runs fn for 0..count-1, at most limit at once, and returns when all
// have; one call runs inline.
func fanOut(count, limit int, fn func(i int)) {
	if count == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// linesFanOutMax bounds the SKU grain calls one order has in flight.
const linesFanOutMax = 32
