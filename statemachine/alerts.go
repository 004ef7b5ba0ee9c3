package statemachine

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
)

// Stuck-order alerts. Every order record keeps the status it is in and
// when it entered it (stage_status, stage_since_unix_nano, set by
// addEventRouted when the status changes) and its open alert, if any. The
// sweeper on a partition's leader asks StuckOrders which orders stayed in
// a timed stage past its limit and proposes raise_alerts; the command
// re-checks each order against its record, so an alert is raised once
// (a retried or duplicate proposal finds it open, or the order moved on)
// and, since the timers are derived from the records, across restarts
// and failover. Moving the order clears its alert (an alert_cleared event
// right after the moving one). The stages and the open alerts are held in
// memory (alertIndex): no key is written for them beyond the record.

// Order event types of stuck-order alerts.
const (
	// EventAlertRaised is the event of an order found past its stage's limit.
	EventAlertRaised = "alert_raised"
	// EventAlertCleared is the event of an order that moved on from the
	// stage it had an alert for; it follows the moving event.
	EventAlertCleared = "alert_cleared"
)

// StageLimit is how long an order may stay in a status before it gets
// an alert.
type StageLimit struct {
	// Status is the stage: a status that is neither closed nor pending_payment.
	Status string
	// Limit is how long an order may stay in it.
	Limit time.Duration
	// Name names the limit in the alert's event (optional).
	Name string
}

// Alert grouping fields (AlertGroups).
const (
	AlertByStage     = "stage"
	AlertByWarehouse = "warehouse"
	AlertByChannel   = "channel"
	AlertByCarrier   = "carrier"
)

// AlertGroupFields are the fields alerts may be grouped by, in the order a
// group lists them.
var AlertGroupFields = []string{AlertByStage, AlertByWarehouse, AlertByChannel, AlertByCarrier}

const (
	// alertGroupsMax bounds the groups one partition's AlertGroups counts;
	// alerts of further groups are counted as ungrouped.
	alertGroupsMax = 10_000
	// alertWarehousesMax bounds the warehouses an alert is grouped under.
	alertWarehousesMax = 8
	// AlertsPerCommandMax bounds the alerts of one raise_alerts command.
	AlertsPerCommandMax = 1000
)

// Timed reports whether an order in status has stage limits
// (lifecycle.HasStageLimit): neither closed nor pending payment.
func Timed(status string) bool { return lifecycle.HasStageLimit(status) }

// stageEntry is when an order entered its status.
type stageEntry struct {
	status string
	since  int64 // unix nanos
}

// openAlert is an order's open alert with what it is grouped by.
type openAlert struct {
	alert                       *gridpb.OrderAlert
	channel, warehouse, carrier string
}

// alertIndex holds, in memory, the stage of every order in a timed status
// and the open alerts of the partition. Kept by the commands as they
// apply, rebuilt by Load from the order records.
type alertIndex struct {
	mu     sync.Mutex
	stages map[string]stageEntry // order id -> its stage
	open   map[string]openAlert  // order id -> its open alert
	// cleared counts the alerts cleared on this replica since it started.
	cleared atomic.Uint64
}

func newAlertIndex() alertIndex {
	return alertIndex{stages: map[string]stageEntry{}, open: map[string]openAlert{}}
}

// track keeps o's stage after its status changed (or it was loaded).
func (a *alertIndex) track(o *gridpb.OrderRecord) {
	status, since := stageOf(o)
	a.mu.Lock()
	defer a.mu.Unlock()
	if Timed(status) {
		a.stages[o.Id] = stageEntry{status, since}
	} else {
		delete(a.stages, o.Id)
	}
}

func (a *alertIndex) raise(o *gridpb.OrderRecord) {
	a.mu.Lock()
	a.open[o.Id] = openAlert{alert: o.Alert, channel: o.Channel, warehouse: warehousesOf(o), carrier: o.ShipmentCarrier}
	a.mu.Unlock()
}

func (a *alertIndex) clear(id string) {
	a.mu.Lock()
	delete(a.open, id)
	a.mu.Unlock()
	a.cleared.Add(1)
}

// stageOf is the status o is in and when it entered it. A record written
// before stages were kept reads as its status since its last change.
func stageOf(o *gridpb.OrderRecord) (string, int64) {
	if o.StageStatus == "" {
		return o.Status, o.UpdatedUnixNano
	}
	return o.StageStatus, o.StageSinceUnixNano
}

// warehousesOf are the distinct warehouses of o's lines, sorted, joined by
// "," (at most alertWarehousesMax, then "+").
func warehousesOf(o *gridpb.OrderRecord) string {
	var whs []string
	for _, l := range o.Lines {
		if l.Warehouse != "" && !slices.Contains(whs, l.Warehouse) {
			whs = append(whs, l.Warehouse)
		}
	}
	slices.Sort(whs)
	if len(whs) > alertWarehousesMax {
		return strings.Join(whs[:alertWarehousesMax], ",") + ",+"
	}
	return strings.Join(whs, ",")
}

// noteStage is addEventRouted's part: o's status changed when it differs
// from its stage. Then the stage starts now; the index follows, and an
// open alert clears with an alert_cleared event after the moving one.
func (t *txn) noteStage(o *gridpb.OrderRecord) (moved bool) {
	if o.StageStatus == o.Status {
		return false
	}
	prev := o.StageStatus
	o.StageStatus, o.StageSinceUnixNano = o.Status, t.at
	if Timed(prev) || Timed(o.Status) {
		// A new order (pending payment) leaves the index alone.
		t.m.alerts.track(o)
	}
	return true
}

// clearAlert records that o's open alert cleared: o moved on from its stage.
func (t *txn) clearAlert(o *gridpb.OrderRecord) {
	a := o.Alert
	o.Alert = nil
	t.addEvent(o, EventAlertCleared, map[string]string{"stage": a.Stage, "open_seconds": strconv.FormatInt(max(t.at-a.RaisedUnixNano, 0)/int64(time.Second), 10)})
	t.m.alerts.clear(o.Id)
}

// raiseAlerts raises the alerts the sweeper found due. Each order must
// still be in the stage it entered at since (it did not move), have no
// open alert, and be past the limit at the command's time; any other is
// skipped. The result lists the orders that got an alert.
func (t *txn) raiseAlerts(c *gridpb.RaiseAlertsCommand) *Result {
	if len(c.Alerts) > AlertsPerCommandMax {
		return &Result{Detail: fmt.Sprintf("raise_alerts: %d alerts, at most %d", len(c.Alerts), AlertsPerCommandMax)}
	}
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
	for _, d := range c.Alerts {
		if d.LimitMs <= 0 || !Timed(d.Stage) {
			continue
		}
		o, ok := t.order(d.OrderId)
		if !ok || o.Alert != nil || o.Status != d.Stage {
			continue
		}
		status, since := stageOf(o)
		if status != d.Stage || since != d.SinceUnixNano || t.at < since+d.LimitMs*int64(time.Millisecond) {
			continue
		}
		o.Alert = &gridpb.OrderAlert{Stage: d.Stage, LimitMs: d.LimitMs, SinceUnixNano: since, RaisedUnixNano: t.at, Name: d.Name}
		details := map[string]string{"stage": d.Stage, "limit": (time.Duration(d.LimitMs) * time.Millisecond).String(),
			"since": time.Unix(0, since).UTC().Format(time.RFC3339Nano)}
		if d.Name != "" {
			details["name"] = d.Name
		}
		t.addEvent(o, EventAlertRaised, details)
		t.m.alerts.raise(o)
		out.OrderIds = append(out.OrderIds, o.Id)
	}
	return out
}

// StuckOrders returns up to limit orders that stayed in a stage of limits
// past its limit at now and have no open alert, the longest overdue first
// (ties by id). It reads this replica's in-memory index: ask the
// partition's leader's machine.
func (m *Machine) StuckOrders(now int64, limits []StageLimit, limit int) []*gridpb.AlertDue {
	if len(limits) == 0 || limit <= 0 {
		return nil
	}
	byStatus := make(map[string]StageLimit, len(limits))
	for _, l := range limits {
		if l.Limit > 0 {
			byStatus[l.Status] = l
		}
	}
	type due struct {
		d  *gridpb.AlertDue
		at int64
	}
	var out []due
	m.alerts.mu.Lock()
	for id, s := range m.alerts.stages {
		l, ok := byStatus[s.status]
		if !ok || s.since+l.Limit.Nanoseconds() > now {
			continue
		}
		if _, open := m.alerts.open[id]; open {
			continue
		}
		out = append(out, due{&gridpb.AlertDue{OrderId: id, Stage: s.status, SinceUnixNano: s.since, LimitMs: l.Limit.Milliseconds(), Name: l.Name},
			s.since + l.Limit.Nanoseconds()})
	}
	m.alerts.mu.Unlock()
	slices.SortFunc(out, func(a, b due) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.d.OrderId, b.d.OrderId)) })
	res := make([]*gridpb.AlertDue, 0, min(len(out), limit))
	for _, d := range out[:min(len(out), limit)] {
		res = append(res, d.d)
	}
	return res
}

// OpenAlerts is the number of open alerts of the partition.
func (m *Machine) OpenAlerts() int {
	m.alerts.mu.Lock()
	defer m.alerts.mu.Unlock()
	return len(m.alerts.open)
}

// AlertsCleared is the number of alerts this replica cleared since it started.
func (m *Machine) AlertsCleared() uint64 { return m.alerts.cleared.Load() }

// AlertGroups counts the partition's open alerts grouped by the fields by
// names (of AlertGroupFields; none: one group of all), in no order; a
// group's oldest is the alert whose stage began first (ties by order id).
// At most alertGroupsMax groups: the alerts of others are counted as
// ungrouped. It reads this replica's in-memory index.
func (m *Machine) AlertGroups(by []string) (*gridpb.AlertGroups, error) {
	var stage, wh, ch, carrier bool
	for _, f := range by {
		switch f {
		case AlertByStage:
			stage = true
		case AlertByWarehouse:
			wh = true
		case AlertByChannel:
			ch = true
		case AlertByCarrier:
			carrier = true
		default:
			return nil, fmt.Errorf("statemachine: alerts cannot be grouped by %q", f)
		}
	}
	type groupKey struct{ stage, warehouse, channel, carrier string }
	groups := map[groupKey]*gridpb.AlertGroup{}
	out := &gridpb.AlertGroups{}
	m.alerts.mu.Lock()
	defer m.alerts.mu.Unlock()
	for id, a := range m.alerts.open {
		out.Open++
		var k groupKey
		if stage {
			k.stage = a.alert.Stage
		}
		if wh {
			k.warehouse = a.warehouse
		}
		if ch {
			k.channel = a.channel
		}
		if carrier {
			k.carrier = a.carrier
		}
		g := groups[k]
		if g == nil {
			if len(groups) >= alertGroupsMax {
				out.Ungrouped++
				continue
			}
			g = &gridpb.AlertGroup{Stage: k.stage, Warehouse: k.warehouse, Channel: k.channel, Carrier: k.carrier}
			groups[k] = g
			out.Groups = append(out.Groups, g)
		}
		g.Count++
		since := a.alert.SinceUnixNano
		if g.OldestOrder == "" || since < g.OldestSinceUnixNano || (since == g.OldestSinceUnixNano && id < g.OldestOrder) {
			g.OldestSinceUnixNano, g.OldestOrder = since, id
		}
	}
	return out, nil
}
