package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// explanation is the part of GET /v1/orders/{id}/routing the tests read.
type explanation struct {
	Strategy string `json:"strategy"`
	Arm      string `json:"arm"`
	Lines    []struct {
		SKU       string `json:"sku"`
		Warehouse string `json:"warehouse"`
	} `json:"lines"`
	Winner   *plan  `json:"winner"`
	RunnerUp *plan  `json:"runner_up"`
	Rule     string `json:"rule"`
	Excluded []struct {
		Warehouse  string `json:"warehouse"`
		Constraint string `json:"constraint"`
		Detail     string `json:"detail"`
	} `json:"excluded"`
	Flip struct {
		Criterion  string   `json:"criterion"`
		WeightFrom float64  `json:"weight_from"`
		WeightTo   float64  `json:"weight_to"`
		Winner     []string `json:"winner"`
		Detail     string   `json:"detail"`
	} `json:"flip"`
}

type plan struct {
	Warehouses []string `json:"warehouses"`
	Score      float64  `json:"score"`
	Criteria   []struct {
		Criterion    string  `json:"criterion"`
		Raw          float64 `json:"raw"`
		Weight       float64 `json:"weight"`
		Contribution float64 `json:"contribution"`
	} `json:"criteria"`
}

const routingWarehouses = `warehouses:
  - id: sh
    region: east
    lat: 31.2
    lon: 121.5
    cutoff: "23:59"
    timezone: Asia/Shanghai
    carbon_grams_per_parcel: 500
    rates:
      - {region: east, cost: "6.00", transit_days: 1}
      - {region: "*", cost: "14.00", transit_days: 3}
  - id: gz
    region: south
    carbon_grams_per_parcel: 300
    capabilities: [cold_chain]
    rates:
      - {region: south, cost: "5.00", transit_days: 1}
      - {region: "*", cost: "9.00", transit_days: 2}
  - id: cd
    region: southwest
    capacity_per_day: 2
    carbon_grams_per_parcel: 200
    rates:
      - {region: "*", cost: "4.00", transit_days: 4}
`

// Routing end to end on one node: warehouses from the configuration file and
// the API, strategies as versions in the audit log, live activation, the
// explanation and its flip point checked by making the flip, constraints
// (state, capability, capacity), splits, a VIP rule, an A/B split, a
// restart, bad input, and the sandbox over the API and the CLI.
func TestRoutingEndToEnd(t *testing.T) {
	dir := t.TempDir()
	whFile := filepath.Join(dir, "warehouses.yaml")
	if err := os.WriteFile(whFile, []byte(routingWarehouses), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "--routing-warehouses-file", whFile, "--ledger-checkpoint-interval", "100ms")
	n.start()
	var whs struct {
		Warehouses []struct {
			ID string `json:"id"`
		} `json:"warehouses"`
	}
	n.must("GET", "/v1/warehouses", nil, 200).json(t, &whs)
	if len(whs.Warehouses) != 3 {
		t.Fatalf("warehouses from the file: %+v", whs)
	}
	for _, sku := range []string{"RT-A", "RT-B"} {
		for _, wh := range []string{"sh", "gz", "cd"} {
			n.must("PUT", "/v1/skus/"+sku+"/stock/"+wh, map[string]any{"on_hand": 50}, 200)
		}
	}
	n.must("PUT", "/v1/skus/RT-ONLY-SH/stock/sh", map[string]any{"on_hand": 50}, 200)
	var unknown problem
	n.must("PUT", "/v1/skus/RT-A/stock/nowhere", map[string]any{"on_hand": 50}, 422).json(t, &unknown)
	if unknown.Errors[0].Field != "warehouse" || !strings.Contains(unknown.Errors[0].Detail, "unknown warehouse") {
		t.Fatalf("stock at an unknown warehouse: %+v", unknown)
	}
	n.must("PUT", "/v1/skus/RT-ONLY-GZ/stock/gz", map[string]any{"on_hand": 50}, 200)

	seq := 0
	create := func(want int, region string, extra map[string]any, lines ...string) (order, response) {
		t.Helper()
		seq++
		body := map[string]any{"channel": "tmall", "channel_order_id": fmt.Sprintf("rt-%d", seq), "currency": "CNY",
			"customer": map[string]any{"id": "rt-cust"}, "delivery_region": region}
		var ls []map[string]any
		for _, sku := range lines {
			ls = append(ls, map[string]any{"sku": sku, "qty": 1, "unit_price": "10.00"})
		}
		body["lines"] = ls
		for k, v := range extra {
			body[k] = v
		}
		r := n.must("POST", "/v1/orders", body, want)
		var o order
		if want == 201 {
			r.json(t, &o)
		}
		return o, r
	}
	explain := func(id string) explanation {
		t.Helper()
		var e explanation
		n.must("GET", "/v1/orders/"+id+"/routing", nil, 200).json(t, &e)
		return e
	}

	// The built-in default routes first: one shipment, most free stock.
	o, _ := create(201, "east", nil, "RT-A")
	if e := explain(o.ID); e.Strategy != "default@1" || e.Winner == nil {
		t.Fatalf("default strategy explanation: %+v", e)
	}

	// A strategy by cost; bad documents are refused naming the field (an
	// unknown field is not JSON of the document's shape: 400, as everywhere).
	for doc, field := range map[string]string{
		`{"weights":{"speed":1}}`:                                                "weights.speed",
		`{"weights":{"cost":-2}}`:                                                "weights.cost",
		`{"weights":{"cost":1},"max_shipments":7}`:                               "max_shipments",
		`{"weights":{"cost":1},"colour":"red"}`:                                  "colour",
		`{"weights":{"cost":1},"tier_rules":[{"tier":"vip","rule":"whatever"}]}`: "tier_rules[0].rule",
	} {
		var p problem
		code := 422
		if field == "colour" {
			code = 400
		}
		n.must("PUT", "/v1/routing/strategies/cheap", doc, code).json(t, &p)
		if len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Fatalf("%s: want field %s, got %+v", doc, field, p)
		}
	}
	n.must("PUT", "/v1/routing/strategies/cheap", `{"weights":{"cost":1,"transit":0.2},"max_shipments":2,
		"tier_rules":[{"tier":"vip","rule":"fastest_within_cost_cap","cost_cap":"10.00"}]}`, 201)
	var p problem
	n.must("PUT", "/v1/routing/selection", `{"strategy":"nope"}`, 422).json(t, &p)
	if len(p.Errors) == 0 || !strings.Contains(p.Detail+p.Errors[0].Detail, "nope") {
		t.Fatalf("unknown strategy: %+v", p)
	}
	n.must("PUT", "/v1/routing/selection", `{"strategy":"cheap"}`, 200)

	// Cheapest to the east: cd (4.00) beats sh (6.00) and gz (9.00).
	o, _ = create(201, "east", nil, "RT-A")
	e := explain(o.ID)
	if e.Strategy != "cheap@1" || o.Lines[0].Warehouse != "cd" || e.Winner.Warehouses[0] != "cd" || e.RunnerUp.Warehouses[0] != "sh" {
		t.Fatalf("cheap routing: order %+v explanation %+v", o, e)
	}
	if e.Flip.Criterion == "" || e.Flip.WeightTo == e.Flip.WeightFrom || len(e.Flip.Winner) != 1 {
		t.Fatalf("flip: %+v", e.Flip)
	}
	// Make the flip: a new version with that weight just past the point
	// routes the same order to the warehouse the explanation named.
	weights := map[string]float64{"cost": 1, "transit": 0.2}
	step := 0.01
	if e.Flip.WeightTo < e.Flip.WeightFrom {
		step = -0.01
	}
	weights[e.Flip.Criterion] = e.Flip.WeightTo + step
	doc, _ := json.Marshal(map[string]any{"weights": weights})
	var v2 struct {
		Version int `json:"version"`
	}
	n.must("PUT", "/v1/routing/strategies/cheap", doc, 201).json(t, &v2)
	if v2.Version != 2 {
		t.Fatalf("second version is %d", v2.Version)
	}
	n.must("PUT", "/v1/routing/selection", `{"strategy":"cheap","version":2}`, 200)
	o2, _ := create(201, "east", nil, "RT-A")
	if o2.Lines[0].Warehouse != e.Flip.Winner[0] {
		t.Fatalf("past the flip point (%s %g -> %g) the order went to %s, the explanation said %v",
			e.Flip.Criterion, e.Flip.WeightFrom, weights[e.Flip.Criterion], o2.Lines[0].Warehouse, e.Flip.Winner)
	}
	n.must("PUT", "/v1/routing/selection", `{"strategy":"cheap","version":1}`, 200)

	// Capacity: cd ships 2 parcels a day and has one: fill it and see it excluded.
	for i := 0; i < 3; i++ {
		create(201, "east", nil, "RT-B")
	}
	o, _ = create(201, "east", nil, "RT-B")
	e = explain(o.ID)
	if o.Lines[0].Warehouse == "cd" || !excludedAs(e, "cd", "capacity") {
		t.Fatalf("cd full: order at %s, excluded %+v", o.Lines[0].Warehouse, e.Excluded)
	}
	var cd struct {
		Today struct {
			Parcels      int64  `json:"parcels"`
			CapacityLeft *int64 `json:"capacity_left"`
		} `json:"today"`
	}
	n.must("GET", "/v1/warehouses/cd", nil, 200).json(t, &cd)
	if cd.Today.Parcels < 2 || cd.Today.CapacityLeft == nil || *cd.Today.CapacityLeft != 0 {
		t.Fatalf("cd today: %+v", cd.Today)
	}

	// A state change takes effect for the next order: sh down.
	n.must("PUT", "/v1/warehouses/sh/state", `{"state":"down","reason":"cold chain failure"}`, 200)
	o, _ = create(201, "east", nil, "RT-A")
	e = explain(o.ID)
	if o.Lines[0].Warehouse != "gz" || !excludedAs(e, "sh", "down") {
		t.Fatalf("sh down: order at %s, excluded %+v", o.Lines[0].Warehouse, e.Excluded)
	}
	// A SKU only sh holds is now unroutable (not out of stock), naming why.
	_, r := create(409, "east", nil, "RT-ONLY-SH")
	r.json(t, &p)
	if !strings.HasSuffix(p.Type, "/unroutable") || !strings.Contains(p.Detail, "cold chain failure") {
		t.Fatalf("unroutable: %+v", p)
	}
	n.must("PUT", "/v1/warehouses/sh/state", `{"state":"up"}`, 200)
	n.must("PUT", "/v1/warehouses/nowhere/state", `{"state":"up"}`, 404)
	n.must("PUT", "/v1/warehouses/sh", `{"rates":[{"region":"*","cost":"1,50"}]}`, 422).json(t, &p)
	if p.Errors[0].Field != "rates[0].cost" {
		t.Fatalf("bad rate: %+v", p)
	}

	// A capability only gz has; a split when no one warehouse has both SKUs.
	o, _ = create(201, "east", map[string]any{"required_capabilities": []string{"cold_chain"}}, "RT-A")
	if o.Lines[0].Warehouse != "gz" {
		t.Fatalf("cold chain: %+v", o)
	}
	o, _ = create(201, "east", nil, "RT-ONLY-SH", "RT-ONLY-GZ")
	if e = explain(o.ID); len(e.Winner.Warehouses) != 2 || o.Lines[0].Warehouse != "sh" || o.Lines[1].Warehouse != "gz" {
		t.Fatalf("split: %+v / %+v", o, e.Winner)
	}

	// VIP: the fastest within 10.00 (sh, 1 day, 6.00), not the cheapest.
	o, _ = create(201, "east", map[string]any{"customer_tier": "vip", "promised_by": time.Now().Add(72 * time.Hour).Format(time.RFC3339)}, "RT-A")
	if e = explain(o.ID); o.Lines[0].Warehouse != "sh" || e.Rule == "" {
		t.Fatalf("vip: %+v rule %q", o, e.Rule)
	}

	// A/B: half the orders go to a candidate, each records its version.
	n.must("PUT", "/v1/routing/strategies/green", `{"weights":{"carbon":1}}`, 201)
	n.must("PUT", "/v1/routing/selection", `{"strategy":"cheap","version":1,"candidate":{"strategy":"green","share_percent":50}}`, 200)
	arms := map[string]int{}
	for i := 0; i < 16; i++ {
		o, _ = create(201, "south", nil, "RT-A")
		var full struct {
			RoutingStrategy string `json:"routing_strategy"`
		}
		n.must("GET", "/v1/orders/"+o.ID, nil, 200).json(t, &full)
		e = explain(o.ID)
		if full.RoutingStrategy != e.Strategy {
			t.Fatalf("order says %s, explanation %s", full.RoutingStrategy, e.Strategy)
		}
		arms[e.Arm+" "+e.Strategy]++
	}
	if arms["active cheap@1"] == 0 || arms["candidate green@1"] == 0 || len(arms) != 2 {
		t.Fatalf("A/B arms: %v", arms)
	}
	n.must("PUT", "/v1/routing/selection", `{"strategy":"cheap","version":1}`, 200)

	// Every catalog change is in the audit log.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := n.must("GET", "/v1/audit/export", nil, 200)
		if c := bytes.Count(r.body, []byte(`"kind":"routing"`)); c >= 5+3+5 {
			break // 3 warehouses and 2 state changes, 3 strategy versions, 5 activations
		} else if time.Now().After(deadline) {
			t.Fatalf("routing events in the audit log: %d", c)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Stock is conserved; a kill -9 keeps the catalog and the decisions.
	for _, sku := range []string{"RT-A", "RT-B", "RT-ONLY-SH", "RT-ONLY-GZ"} {
		n.checkConserved(sku)
	}
	n.kill()
	n.start()
	if e2 := explain(o.ID); e2.Strategy != e.Strategy || e2.Winner.Warehouses[0] != e.Winner.Warehouses[0] {
		t.Fatalf("after restart: %+v, before %+v", e2, e)
	}
	var sel struct {
		Strategy string `json:"strategy"`
		Version  int    `json:"version"`
	}
	n.must("GET", "/v1/routing/selection", nil, 200).json(t, &sel)
	if sel.Strategy != "cheap" || sel.Version != 1 {
		t.Fatalf("selection after restart: %+v", sel)
	}
	o, _ = create(201, "east", nil, "RT-A")
	if explain(o.ID).Strategy != "cheap@1" {
		t.Fatal("the restarted node routes by another strategy")
	}

	// The sandbox: the log replayed against two strategies and a draft.
	var rep struct {
		Orders     int `json:"orders"`
		Strategies []struct {
			Strategy string `json:"strategy"`
			Routed   int    `json:"routed"`
		} `json:"strategies"`
		Differences int `json:"differences"`
	}
	sim := map[string]any{"strategies": []string{"cheap@1", "green"}, "drafts": []any{map[string]any{"name": "fast", "weights": map[string]any{"transit": 1}}},
		"source": map[string]any{"log": map[string]any{"from": time.Now().Add(-time.Hour).Format(time.RFC3339), "to": time.Now().Add(time.Minute).Format(time.RFC3339)}}}
	n.must("POST", "/v1/routing/simulations", sim, 200).json(t, &rep)
	if rep.Orders < 25 || len(rep.Strategies) != 3 || rep.Strategies[2].Strategy != "fast@draft" || rep.Differences == 0 {
		t.Fatalf("log simulation: %+v", rep)
	}
	// A file with a broken line: 422 naming it.
	body := `{"strategies":["cheap"]}` + "\n" +
		`{"id":"f1","at":"2026-11-11T10:00:00Z","region":"east","lines":[{"sku":"RT-A","qty":1}]}` + "\n" +
		`{"id":"f2","at":"yesterday","lines":[{"sku":"RT-A","qty":1}]}` + "\n"
	n.must("POST", "/v1/routing/simulations", body, 422, "Content-Type", "application/x-ndjson").json(t, &p)
	if p.Errors[0].Field != "line 3: at" {
		t.Fatalf("broken line: %+v", p)
	}
	n.must("POST", "/v1/routing/simulations", map[string]any{"strategies": []string{"nope"}, "source": map[string]any{"synthetic": map[string]any{"orders": 10}}}, 422).json(t, &p)
	if p.Errors[0].Field != "strategies[0]" {
		t.Fatalf("unknown strategy: %+v", p)
	}

	// The CLI: a seeded synthetic file over five SKUs the grid stocks,
	// simulated against two strategies: the table, then the JSON report.
	for i := 1; i <= 5; i++ {
		for _, wh := range []string{"sh", "gz", "cd"} {
			n.must("PUT", fmt.Sprintf("/v1/skus/SKU-%05d/stock/%s", i, wh), map[string]any{"on_hand": 10000}, 200)
		}
	}
	ordersFile := filepath.Join(dir, "orders.jsonl")
	out, err := exec.Command(binary(t), "routing", "synth", "--orders", "2000", "--seed", "7", "--skus", "5", "--out", ordersFile).CombinedOutput()
	if err != nil {
		t.Fatalf("synth: %v\n%s", err, out)
	}
	simulate := func(extra ...string) []byte {
		t.Helper()
		cmd := exec.Command(binary(t), append([]string{"routing", "simulate", "--node", n.http, "--token", testToken,
			"--strategy", "cheap@1", "--strategy", "green", "--orders", ordersFile}, extra...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("simulate: %v\n%s%s", err, out, stderr.String())
		}
		return out
	}
	out = simulate()
	for _, want := range []string{"cheap@1", "green@1", "shipping cost", "promise hit rate", "2000 orders"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("simulate output lacks %q:\n%s", want, out)
		}
	}
	if err := json.Unmarshal(simulate("--json"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Orders != 2000 || rep.Strategies[0].Routed < 1000 || rep.Strategies[1].Routed < 1000 {
		t.Fatalf("file simulation: %+v", rep)
	}
}

func excludedAs(e explanation, wh, constraint string) bool {
	for _, x := range e.Excluded {
		if x.Warehouse == wh && x.Constraint == constraint {
			return true
		}
	}
	return false
}
