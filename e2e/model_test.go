package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A seeded randomized test of the batched hot path against a simple model
// of stock and orders. On a three-node cluster it sends batches of new
// orders (some retrying earlier keys), concurrent order events (pay, pick,
// pack, ship, deliver, cancel, and now and then an illegal one), and kills
// a node with SIGKILL and brings it back (its partitions' leaders move).
// After every step the grid and the model must agree on every SKU's
// on_hand, pending and committed; at the end on every order's status.
// The model follows the grid's definite answers: a created order must
// fit the model's free stock (no oversell), an order the model has room
// for together with the rest of its batch must not be refused, a retry
// must answer its first order, an event the model allows must be
// accepted and one it forbids refused. ORDERGRID_MODEL_SEED replays a run.
func TestModelRandomized(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewSource(seed))
	// Batches form on their partition's leader here (the option is off by
	// default; the other cluster tests run without it).
	c := newCluster(t, clusterArgs+" --intake-coalesce-on-leader")
	m := newModel(t, c, rng)
	for sku, onHand := range map[string]int64{"MODEL-A": 150, "MODEL-B": 80, "MODEL-C": 30} {
		m.node().eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
		m.stock[sku] = &modelStock{onHand: onHand}
	}
	const steps, killsMax = 120, 2
	kills := 0
	for step := 0; step < steps; step++ {
		switch r := rng.Intn(100); {
		case r < 3 && kills < killsMax:
			kills++
			victim := 1 + rng.Intn(3)
			t.Logf("step %d: kill -9 node%d", step, victim)
			c.kill9(victim)
			m.down = victim
			m.checkStock(step) // two nodes keep serving
			c.up()
			m.down = 0
		case r < 55:
			m.createBatch(step)
		default:
			m.events(step)
		}
		m.checkStock(step)
	}
	m.checkOrders()
	c.waitAgree(1, 60*time.Second)
	taken := 0
	for i := 1; i <= 3; i++ {
		body := c.node(i).must("GET", "/metrics", nil, 200).body
		if v := regexp.MustCompile(`ordergrid_intake_batches_taken_as_leader_total (\d+)`).FindSubmatch(body); v != nil {
			n, _ := strconv.Atoi(string(v[1]))
			taken += n
		}
	}
	if taken == 0 {
		t.Error("no node took a batch forwarded by another as its partition's leader")
	}
	t.Logf("%d orders created, %d refused, %d retries answered, %d events, %d refused events, %d kills",
		len(m.orders), m.refused, m.replays, m.eventsOK, m.eventsRefused, kills)
}

type modelStock struct{ onHand, pending, committed int64 }

type modelOrder struct {
	id     string
	key    string
	body   map[string]any
	status string
	lines  map[string]int64
}

type model struct {
	t   *testing.T
	c   *testCluster
	rng *rand.Rand // the steps: the same seed, the same steps
	// picks chooses nodes (also from concurrent senders, whose retries
	// depend on timing): apart from rng, so a seed replays its steps.
	pickMu sync.Mutex
	picks  *rand.Rand
	down   int // a node that is killed, 0 if none
	stock  map[string]*modelStock
	orders map[string]*modelOrder // by idempotency key
	keys   []string
	serial int

	refused, replays, eventsOK, eventsRefused int
}

func newModel(t *testing.T, c *testCluster, rng *rand.Rand) *model {
	return &model{t: t, c: c, rng: rng, picks: rand.New(rand.NewSource(rng.Int63())), stock: map[string]*modelStock{}, orders: map[string]*modelOrder{}}
}

// node is a random live node.
func (m *model) node() *node {
	m.pickMu.Lock()
	defer m.pickMu.Unlock()
	for {
		if i := 1 + m.picks.Intn(3); i != m.down {
			return m.c.node(i)
		}
	}
}

func (m *model) free(sku string) int64 {
	s := m.stock[sku]
	return s.onHand - s.pending - s.committed
}

// definite sends a request until it gets an answer other than 503 or a
// transport error (a node died, a leader moved), to random live nodes,
// as a client would with the same idempotency keys.
func (m *model) definite(method, path string, body any, headers ...string) response {
	m.t.Helper()
	for attempt := 0; ; attempt++ {
		n := m.node()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := do(ctx, method, n.http+path, body, headers...)
		cancel()
		if err == nil && r.code != http.StatusServiceUnavailable {
			return r
		}
		if attempt >= 120 {
			m.t.Fatalf("%s %s: no definite answer after %d attempts (last: %v %d %s)", method, path, attempt, err, r.code, r.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (m *model) newOrderBody(key string) (map[string]any, map[string]int64) {
	skus := []string{"MODEL-A", "MODEL-B", "MODEL-C"}
	lines := map[string]int64{}
	var body []map[string]any
	for _, i := range m.rng.Perm(3)[:1+m.rng.Intn(2)] {
		qty := int64(1 + m.rng.Intn(3))
		lines[skus[i]] = qty
		body = append(body, map[string]any{"sku": skus[i], "qty": qty, "unit_price": "10.00"})
	}
	return map[string]any{
		"channel": "douyin", "channel_order_id": key, "idempotency_key": key, "currency": "CNY",
		"customer": map[string]any{"id": "cu-" + strconv.Itoa(m.rng.Intn(20)), "name": "Li Lei", "phone": "13900000000"},
		"lines":    body,
	}, lines
}

// createBatch sends 1 to 8 orders in one batch request, some of them
// retries of earlier keys.
func (m *model) createBatch(step int) {
	m.t.Helper()
	n := 1 + m.rng.Intn(8)
	var bodies []map[string]any
	var keys []string
	fresh := map[string]map[string]int64{}
	for range n {
		if len(m.keys) > 0 && m.rng.Intn(100) < 15 {
			k := m.keys[m.rng.Intn(len(m.keys))]
			bodies, keys = append(bodies, m.orders[k].body), append(keys, k)
			continue
		}
		m.serial++
		k := fmt.Sprintf("model-%d", m.serial)
		b, lines := m.newOrderBody(k)
		bodies, keys = append(bodies, b), append(keys, k)
		fresh[k] = lines
	}
	// Whether the model has room for every new order of the batch at once:
	// then none may be refused, whatever order the grid judged them in.
	demand := map[string]int64{}
	for _, lines := range fresh {
		for sku, q := range lines {
			demand[sku] += q
		}
	}
	roomForAll := true
	for sku, q := range demand {
		roomForAll = roomForAll && q <= m.free(sku)
	}
	type result struct {
		Status  int             `json:"status"`
		Order   *order          `json:"order"`
		Problem json.RawMessage `json:"problem"`
	}
	pending := slices.Clone(keys)
	pendingBodies := slices.Clone(bodies)
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 60 {
			m.t.Fatalf("step %d: orders %v never answered definitely", step, pending)
		}
		r := m.definite("POST", "/v1/orders:batch", map[string]any{"orders": pendingBodies})
		if r.code != http.StatusOK {
			m.t.Fatalf("step %d: batch: %d %s", step, r.code, r.body)
		}
		var out struct {
			Results []result `json:"results"`
		}
		r.json(m.t, &out)
		var again []string
		var againBodies []map[string]any
		for i, res := range out.Results {
			k := pending[i]
			prev := m.orders[k]
			switch {
			case res.Status == http.StatusServiceUnavailable:
				again, againBodies = append(again, k), append(againBodies, pendingBodies[i])
			case res.Status == http.StatusCreated || res.Status == http.StatusOK:
				if prev != nil {
					if res.Order.ID != prev.id {
						m.t.Fatalf("step %d: key %s answered order %s, first %s", step, k, res.Order.ID, prev.id)
					}
					if res.Status == http.StatusCreated {
						m.t.Fatalf("step %d: key %s created twice", step, k)
					}
					m.replays++
					continue
				}
				lines := fresh[k]
				for sku, q := range lines {
					if q > m.free(sku) {
						m.t.Fatalf("step %d: order %s took %d of %s with %d free: oversold", step, k, q, sku, m.free(sku))
					}
				}
				for sku, q := range lines {
					m.stock[sku].pending += q
				}
				m.orders[k] = &modelOrder{id: res.Order.ID, key: k, body: pendingBodies[i], status: "pending_payment", lines: lines}
				m.keys = append(m.keys, k)
			case res.Status == http.StatusConflict && prev == nil:
				var p problem
				if err := json.Unmarshal(res.Problem, &p); err != nil || p.Type != "https://ordergrid.dev/problems/insufficient-stock" {
					m.t.Fatalf("step %d: order %s refused: %s", step, k, res.Problem)
				}
				if roomForAll {
					m.t.Fatalf("step %d: order %s refused for stock though the model has room for its whole batch: %s", step, k, res.Problem)
				}
				m.refused++
			default:
				m.t.Fatalf("step %d: key %s answered %d %s (known: %v)", step, k, res.Status, res.Problem, prev != nil)
			}
		}
		pending, pendingBodies = again, againBodies
	}
}

// next is a legal event of an order's status, or "" for none.
var next = map[string][]string{
	"pending_payment": {"paid", "cancelled"},
	"paid":            {"picked", "cancelled"},
	"picked":          {"packed", "cancelled"},
	"packed":          {"shipped", "cancelled"},
	"shipped":         {"delivered"},
}

// events sends one event to each of 1 to 4 orders at once.
func (m *model) events(step int) {
	m.t.Helper()
	var live []*modelOrder
	for _, k := range m.keys {
		if o := m.orders[k]; len(next[o.status]) > 0 || o.status == "delivered" {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	m.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	live = live[:min(len(live), 1+m.rng.Intn(4))]
	types := make([]string, len(live))
	for i, o := range live {
		if opts := next[o.status]; len(opts) > 0 && m.rng.Intn(10) > 0 {
			types[i] = opts[m.rng.Intn(len(opts))]
		} else {
			types[i] = "packed" // illegal from most statuses: refused, changes nothing
			if slices.Contains(next[o.status], "packed") {
				types[i] = "paid"
			}
		}
	}
	answers := make([]response, len(live))
	var wg sync.WaitGroup
	for i, o := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = m.definite("POST", "/v1/orders/"+o.id+"/events", map[string]any{"type": types[i], "carrier": "SF", "tracking_number": "SF1"})
		}()
	}
	wg.Wait()
	for i, o := range live {
		r, typ := answers[i], types[i]
		legal := slices.Contains(next[o.status], typ)
		switch {
		case legal && r.code == http.StatusOK:
			m.apply(o, typ)
			m.eventsOK++
		case !legal && r.code == http.StatusConflict:
			m.eventsRefused++
		case r.code == http.StatusOK && o.status == typ:
			// A retried event after a lost answer: already there.
		default:
			m.t.Fatalf("step %d: %s on order %s (%s): %d %s", step, typ, o.id, o.status, r.code, r.body)
		}
	}
}

// apply moves a model order and its stock as the grid's stock actions do.
func (m *model) apply(o *modelOrder, typ string) {
	for sku, q := range o.lines {
		s := m.stock[sku]
		switch {
		case typ == "paid":
			s.pending -= q
			s.committed += q
		case typ == "cancelled" && o.status == "pending_payment":
			s.pending -= q
		case typ == "cancelled":
			s.committed -= q
		case typ == "shipped":
			s.committed -= q
			s.onHand -= q
		}
	}
	o.status = typ
}

// checkStock waits (a stock action owed after a node died is finished by
// the sweeper within seconds) until every SKU's stock equals the model's.
func (m *model) checkStock(step int) {
	m.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		diff := ""
		for sku, want := range m.stock {
			r := m.definite("GET", "/v1/skus/"+sku, nil)
			var got skuStock
			r.json(m.t, &got)
			tot := got.Total
			if tot.OnHand != tot.Available+tot.Pending+tot.Committed || tot.Available < 0 {
				m.t.Fatalf("step %d: %s not conserved: %+v", step, sku, tot)
			}
			if tot.OnHand != want.onHand || tot.Pending != want.pending || tot.Committed != want.committed {
				diff += fmt.Sprintf(" %s: grid on_hand %d pending %d committed %d, model %d %d %d;", sku,
					tot.OnHand, tot.Pending, tot.Committed, want.onHand, want.pending, want.committed)
			}
		}
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("step %d: grid and model disagree:%s", step, diff)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkOrders reads every order the model knows and compares its status.
func (m *model) checkOrders() {
	m.t.Helper()
	for _, k := range m.keys {
		o := m.orders[k]
		var got order
		m.definite("GET", "/v1/orders/"+o.id, nil).json(m.t, &got)
		if got.Status != o.status {
			m.t.Errorf("order %s (%s): grid says %s, model %s", o.id, k, got.Status, o.status)
		}
	}
}
