package gateway

import pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"

// JSON views of the API messages. encoding/json on the generated structs
// would drop zero values (their tags say omitempty): a client must see
// "available": 0. Field names are the proto field names.

type customerView struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Phone    string `json:"phone,omitempty"`
	Address  string `json:"address,omitempty"`
	IDNumber string `json:"id_number,omitempty"`
	Email    string `json:"email,omitempty"`
	// Erased: the subject was erased, its personal fields are gone.
	Erased bool `json:"erased,omitempty"`
	// Withheld: personal fields exist; ask with ?include_personal=true.
	Withheld bool `json:"withheld,omitempty"`
}

type lineView struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice string `json:"unit_price"`
	Warehouse string `json:"warehouse"`
}

type orderV struct {
	ID             string        `json:"id"`
	Status         string        `json:"status"`
	Channel        string        `json:"channel"`
	ChannelOrderID string        `json:"channel_order_id"`
	Customer       *customerView `json:"customer"`
	Lines          []lineView    `json:"lines"`
	Currency       string        `json:"currency"`
	Total          string        `json:"total"`
	// AmountDue is total - discounts + tax + shipping.
	AmountDue        string   `json:"amount_due,omitempty"`
	Version          uint64   `json:"version"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
	PayBy            string   `json:"pay_by"`
	IdempotencyKey   string   `json:"idempotency_key,omitempty"`
	ShipmentCarrier  string   `json:"shipment_carrier,omitempty"`
	ShipmentTracking string   `json:"shipment_tracking,omitempty"`
	DeliveryRegion   string   `json:"delivery_region,omitempty"`
	CustomerTier     string   `json:"customer_tier,omitempty"`
	PromisedBy       string   `json:"promised_by,omitempty"`
	Capabilities     []string `json:"required_capabilities,omitempty"`
	// RoutingStrategy is the strategy version that chose the warehouses;
	// GET /v1/orders/{id}/routing explains the choice.
	RoutingStrategy string `json:"routing_strategy,omitempty"`
	// ChannelFields are the channel's own fields (from a channel adapter).
	ChannelFields map[string]string `json:"channel_fields,omitempty"`
	// Adjustments are the order's discounts, tax and shipping.
	Adjustments []adjustmentView `json:"adjustments,omitempty"`
	// Hold is why the order is or was held, and the reviewer's decision.
	Hold *holdView `json:"hold,omitempty"`
	// RiskScore and RiskVerdict are its risk score at intake.
	RiskScore   *float64 `json:"risk_score,omitempty"`
	RiskVerdict string   `json:"risk_verdict,omitempty"`
}

// holdView is an order's hold.
type holdView struct {
	Reason         string        `json:"reason"`
	Findings       []findingView `json:"findings"`
	HeldAt         string        `json:"held_at"`
	Until          string        `json:"until"`
	Decision       string        `json:"decision,omitempty"`
	DecidedBy      string        `json:"decided_by,omitempty"`
	DecisionReason string        `json:"decision_reason,omitempty"`
	DecidedAt      string        `json:"decided_at,omitempty"`
}

// findingView is one reason an order was held.
type findingView struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// adjustmentView is one discount, tax or shipping amount; line is 1-based,
// 0 the whole order.
type adjustmentView struct {
	Kind     string `json:"kind"`
	Amount   string `json:"amount"`
	Line     int32  `json:"line"`
	FundedBy string `json:"funded_by,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

func orderJSON(o *pb.Order) orderV {
	v := orderV{ID: o.Id, Status: o.Status, Channel: o.Channel, ChannelOrderID: o.ChannelOrderId, Currency: o.Currency,
		Total: o.Total, AmountDue: o.AmountDue, Version: o.Version, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, PayBy: o.PayBy,
		IdempotencyKey: o.IdempotencyKey, ShipmentCarrier: o.ShipmentCarrier, ShipmentTracking: o.ShipmentTracking,
		DeliveryRegion: o.DeliveryRegion, CustomerTier: o.CustomerTier, PromisedBy: o.PromisedBy, Capabilities: o.RequiredCapabilities,
		RoutingStrategy: o.RoutingStrategy, ChannelFields: o.ChannelFields, Lines: make([]lineView, 0, len(o.Lines))}
	if c := o.Customer; c != nil {
		v.Customer = &customerView{ID: c.Id, Name: c.Name, Phone: c.Phone, Address: c.Address, IDNumber: c.IdNumber, Email: c.Email,
			Erased: c.Erased, Withheld: c.Withheld}
	}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, lineView{SKU: l.Sku, Qty: l.Qty, UnitPrice: l.UnitPrice, Warehouse: l.Warehouse})
	}
	for _, a := range o.Adjustments {
		v.Adjustments = append(v.Adjustments, adjustmentView{Kind: a.Kind, Amount: a.Amount, Line: a.Line, FundedBy: a.FundedBy, Detail: a.Detail})
	}
	if h := o.Hold; h != nil {
		v.Hold = &holdView{Reason: h.Reason, Findings: make([]findingView, 0, len(h.Findings)), HeldAt: h.HeldAt, Until: h.Until,
			Decision: h.Decision, DecidedBy: h.DecidedBy, DecisionReason: h.DecisionReason, DecidedAt: h.DecidedAt}
		for _, f := range h.Findings {
			v.Hold.Findings = append(v.Hold.Findings, findingView{Code: f.Code, Detail: f.Detail})
		}
	}
	if o.RiskVerdict != "" {
		score := o.RiskScore
		v.RiskScore, v.RiskVerdict = &score, o.RiskVerdict
	}
	return v
}

type eventView struct {
	Seq       uint64            `json:"seq"`
	Type      string            `json:"type"`
	At        string            `json:"at"`
	Principal string            `json:"principal"`
	Status    string            `json:"status"`
	Details   map[string]string `json:"details,omitempty"`
}

type eventsView struct {
	OrderID string      `json:"order_id"`
	Events  []eventView `json:"events"`
}

func eventsJSON(r *pb.ListOrderEventsResponse) eventsView {
	v := eventsView{OrderID: r.OrderId, Events: make([]eventView, 0, len(r.Events))}
	for _, e := range r.Events {
		v.Events = append(v.Events, eventView{Seq: e.Seq, Type: e.Type, At: e.At, Principal: e.Principal, Status: e.Status, Details: e.Details})
	}
	return v
}

type stockLevelView struct {
	Warehouse string `json:"warehouse,omitempty"`
	OnHand    int64  `json:"on_hand"`
	Available int64  `json:"available"`
	Pending   int64  `json:"pending"`
	Committed int64  `json:"committed"`
}

type stockView struct {
	SKU        string           `json:"sku"`
	Warehouses []stockLevelView `json:"warehouses"`
	Total      stockLevelView   `json:"total"`
}

func levelJSON(l *pb.StockLevel) stockLevelView {
	if l == nil {
		return stockLevelView{}
	}
	return stockLevelView{Warehouse: l.Warehouse, OnHand: l.OnHand, Available: l.Available, Pending: l.Pending, Committed: l.Committed}
}

func stockJSON(s *pb.SkuStock) stockView {
	v := stockView{SKU: s.Sku, Total: levelJSON(s.Total), Warehouses: make([]stockLevelView, 0, len(s.Warehouses))}
	for _, w := range s.Warehouses {
		v.Warehouses = append(v.Warehouses, levelJSON(w))
	}
	return v
}

type violationView struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

type problemView struct {
	Type          string          `json:"type"`
	Title         string          `json:"title"`
	Status        int             `json:"status"`
	Detail        string          `json:"detail"`
	Errors        []violationView `json:"errors,omitempty"`
	SKU           string          `json:"sku,omitempty"`
	CurrentStatus string          `json:"current_status,omitempty"`
}

func problemProtoJSON(p *pb.Problem) problemView {
	v := problemView{Type: p.Type, Title: p.Title, Status: int(p.Status), Detail: p.Detail, SKU: p.Sku, CurrentStatus: p.CurrentStatus}
	for _, e := range p.Errors {
		v.Errors = append(v.Errors, violationView{Field: e.Field, Detail: e.Detail})
	}
	return v
}

func problemJSON(p *Problem) problemView { return problemProtoJSON(p.Proto()) }

type batchResultJSON struct {
	Status  int          `json:"status"`
	Order   *orderV      `json:"order,omitempty"`
	Problem *problemView `json:"problem,omitempty"`
}

type batchJSON struct {
	Results []batchResultJSON `json:"results"`
}
