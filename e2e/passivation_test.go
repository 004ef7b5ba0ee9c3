package e2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

func activations(t *testing.T, n *node, kind string) int {
	t.Helper()
	body := n.must("GET", "/metrics", nil, 200).body
	m := regexp.MustCompile(`ordergrid_grain_activations_total\{kind="` + kind + `"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}

// Idle grains passivate; the next call activates them again and they rebuild
// from their partition: the order and the SKU's stock are as they were.
func TestGrainsPassivateAndRebuild(t *testing.T) {
	n := newNode(t, "--actor-grain-idle-timeout", "1s", "--actor-order-grain-idle-timeout", "1s")
	n.start()
	n.must("PUT", "/v1/skus/PASSIVE-1/stock/WH1", map[string]any{"on_hand": 7}, 200)
	var o order
	n.must("POST", "/v1/orders", orderBody("p-1", "PASSIVE-1", 2), 201).json(t, &o)
	skuBefore, orderBefore := activations(t, n, "SkuGrain"), activations(t, n, "OrderGrain")
	time.Sleep(2500 * time.Millisecond)
	n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
	if s := n.checkConserved("PASSIVE-1"); s.Total.Committed != 2 || s.Total.Available != 5 {
		t.Fatalf("stock after reactivation: %+v", s.Total)
	}
	// The SKU grain rebuilt its cache: it still refuses what is not there.
	n.must("POST", "/v1/orders", orderBody("p-2", "PASSIVE-1", 6), 409)
	n.must("POST", "/v1/orders", orderBody("p-3", "PASSIVE-1", 5), 201)
	if a := activations(t, n, "SkuGrain"); a <= skuBefore {
		t.Fatalf("SKU grain did not passivate: %d activations before, %d after", skuBefore, a)
	}
	if a := activations(t, n, "OrderGrain"); a <= orderBefore {
		t.Fatalf("order grain did not passivate: %d activations before, %d after", orderBefore, a)
	}
}
