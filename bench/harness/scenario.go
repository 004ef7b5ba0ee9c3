package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Scenario is one kind of load: what it sets up, what it sends, at which
// rate, and what the audit expects.
type Scenario struct {
	Name string
	// SKUs and their stock per warehouse, set before the run.
	Stock map[string]map[string]int64
	Work  Work
	// Rate is the open-loop arrival rate; nil for closed loop.
	Rate Rate
	// Final is the status an accepted order should end in ("" for
	// pending_payment), per order id; set by lifecycle flows.
	mu    sync.Mutex
	final map[string]string
	// Note describes the scenario in the report.
	Note string
}

// expect records the status an order should end in.
func (s *Scenario) expect(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final == nil {
		s.final = map[string]string{}
	}
	s.final[id] = status
}

func (s *Scenario) expected(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.final[id]; ok {
		return st
	}
	return "pending_payment"
}

func order(run string, i int64, lines ...*pb.OrderLineInput) *pb.CreateOrderRequest {
	key := run + "-" + strconv.FormatInt(i, 10)
	return &pb.CreateOrderRequest{Channel: "bench", ChannelOrderId: key, IdempotencyKey: key, Currency: "CNY",
		Customer: &pb.Customer{Id: "c" + strconv.FormatInt(i%100_000, 10), Name: "Bench Buyer", Phone: "13800000000",
			Address: "浙江省 杭州市 西湖区 文三路 " + strconv.FormatInt(i%100_000, 10) + "号"},
		DeviceId: "bench-device-" + strconv.FormatInt(i%100_000, 10), Lines: lines}
}

func line(sku string, qty int64) *pb.OrderLineInput {
	return &pb.OrderLineInput{Sku: sku, Qty: qty, UnitPrice: "9.90"}
}

// retrying wraps next so that a share of sends repeat an earlier order
// (same key, same body): a client retrying after a lost answer.
func retrying(next func(i int64) *pb.CreateOrderRequest, share float64, seed uint64) func(i int64) *pb.CreateOrderRequest {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 1))
	var past []*pb.CreateOrderRequest
	return func(i int64) *pb.CreateOrderRequest {
		mu.Lock()
		defer mu.Unlock()
		if len(past) > 0 && rng.Float64() < share {
			return past[rng.IntN(len(past))]
		}
		req := next(i)
		if len(past) < 1_000_000 {
			past = append(past, req)
		}
		return req
	}
}

func batching(next func(i int64) *pb.CreateOrderRequest, batch int) func(i int64) []*pb.CreateOrderRequest {
	if batch <= 1 {
		return func(i int64) []*pb.CreateOrderRequest { return []*pb.CreateOrderRequest{next(i)} }
	}
	return func(i int64) []*pb.CreateOrderRequest {
		out := make([]*pb.CreateOrderRequest, batch)
		for k := range out {
			out[k] = next(i*int64(batch) + int64(k))
		}
		return out
	}
}

// hotSKU is a live-stream sell-out: one SKU, far more buyers than stock,
// a share of client retries.
func hotSKU(o *Options) *Scenario {
	sku := "HOT-" + o.Run
	next := retrying(func(i int64) *pb.CreateOrderRequest { return order(o.Run, i, line(sku, 1)) }, o.RetryShare, o.Seed)
	return &Scenario{Name: "hot-sku", Stock: map[string]map[string]int64{sku: {"WH-1": o.Stock}},
		Work: Work{Next: batching(next, o.Batch)},
		Note: fmt.Sprintf("one SKU with %d on hand, one unit per order, %.0f%% of sends retry an earlier order", o.Stock, o.RetryShare*100)}
}

// surge ramps arrivals from a base rate to factor times it and back, as a
// live-stream drop does.
func surge(o *Options) *Scenario {
	s := hotSKU(o)
	s.Name = "surge"
	base, peak := o.BaseRate, o.BaseRate*o.SurgeFactor
	ramp := o.Ramp
	quiet := o.Duration / 4
	hold := max(0, o.Duration-2*quiet-2*ramp)
	s.Rate = func(at time.Duration) float64 {
		switch {
		case at < quiet:
			return base
		case at < quiet+ramp:
			return base + (peak-base)*float64(at-quiet)/float64(ramp)
		case at < quiet+ramp+hold:
			return peak
		case at < quiet+2*ramp+hold:
			return peak - (peak-base)*float64(at-quiet-ramp-hold)/float64(ramp)
		default:
			return base
		}
	}
	s.Note = fmt.Sprintf("arrivals %.0f/s, ramping in %s to %.0f/s (x%.0f), held %s, back to %.0f/s; one SKU with %d on hand",
		base, ramp, peak, o.SurgeFactor, hold, base, o.Stock)
	return s
}

// spread is many SKUs over several warehouses, chosen uniformly or
// Zipf-skewed.
func spread(o *Options) *Scenario {
	stock := make(map[string]map[string]int64, o.SKUs)
	for i := 0; i < o.SKUs; i++ {
		whs := map[string]int64{}
		for w := 0; w < o.Warehouses; w++ {
			whs["WH-"+strconv.Itoa(w+1)] = o.Stock
		}
		stock[fmt.Sprintf("SP-%s-%d", o.Run, i)] = whs
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	var zipf *rand.Zipf
	if o.Dist == "zipf" {
		zipf = rand.NewZipf(rng, 1.1, 1, uint64(o.SKUs-1))
	}
	pick := func() int {
		mu.Lock()
		defer mu.Unlock()
		if zipf != nil {
			return int(zipf.Uint64())
		}
		return rng.IntN(o.SKUs)
	}
	next := retrying(func(i int64) *pb.CreateOrderRequest {
		return order(o.Run, i, line(fmt.Sprintf("SP-%s-%d", o.Run, pick()), 1))
	}, o.RetryShare, o.Seed)
	return &Scenario{Name: "spread", Stock: stock, Work: Work{Next: batching(next, o.Batch)},
		Note: fmt.Sprintf("%d SKUs x %d warehouses with %d each, %s choice, one unit per order", o.SKUs, o.Warehouses, o.Stock, o.Dist)}
}

// lifecycle takes accepted orders on through payment and fulfilment; a
// tenth cancel, a twentieth are returned.
func lifecycle(o *Options, h *httpTransport) *Scenario {
	s := hotSKU(o)
	s.Name = "lifecycle"
	s.Work.Next = batching(func(i int64) *pb.CreateOrderRequest { return order(o.Run, i, line("HOT-"+o.Run, 1)) }, 1)
	s.Work.After = func(ctx context.Context, req *pb.CreateOrderRequest, out Outcome) {
		n, _ := strconv.ParseInt(req.ChannelOrderId[len(o.Run)+1:], 10, 64)
		var path []string
		switch {
		case n%10 == 0:
			path = []string{"cancelled"}
		case n%20 == 1:
			path = []string{"paid", "picked", "packed", "shipped", "delivered", "return_requested", "returned"}
		default:
			path = []string{"paid", "picked", "packed", "shipped", "in_transit", "delivered"}
		}
		final := "pending_payment"
		for _, ev := range path {
			body := fmt.Sprintf(`{"type":%q}`, ev)
			if ev == "shipped" {
				body = `{"type":"shipped","carrier":"SF Express","tracking_number":"SF` + strconv.FormatInt(n, 10) + `"}`
			}
			code, _, _, err := h.do(ctx, "POST", "/v1/orders/"+out.ID+"/events", []byte(body))
			if err != nil || code != 200 {
				break
			}
			final = ev
		}
		s.expect(out.ID, final)
	}
	s.Note = fmt.Sprintf("each accepted order goes on: paid, picked, packed, shipped, in_transit, delivered; 1 in 10 cancelled, 1 in 20 returned; one SKU with %d on hand", o.Stock)
	return s
}

// zipfCheck guards the Zipf parameters rand.NewZipf panics on.
func zipfCheck(skus int) error {
	if skus < 2 {
		return fmt.Errorf("-skus must be at least 2 for a Zipf choice")
	}
	return nil
}
