package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// clusterArgs: grain calls give up sooner than the default 10s, so a client
// retries elsewhere sooner while a dead node's grains are re-placed.
const clusterArgs = "--actor-request-timeout 4s"

// kill -9 the leader of the hot SKU's partition during a flash sale that
// sells out: the cluster goes on accepting orders within seconds, nothing
// acknowledged is lost, nothing is oversold, stock is conserved, and every
// unit is sold: an order answered 503 after it reserved (its node died
// between the reservation and the record) is retried with its key by the
// load and takes its own reservation, so no stock stays held by an order
// that does not exist. The node comes back, catches up and agrees.
func TestClusterLeaderKillDuringFlashSale(t *testing.T) {
	const sku, onHand, killBeforeSoldOut = "HOT-KILL", 1200, 60
	c := newCluster(t, clusterArgs)
	c.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	stop := make(chan struct{})
	l, wg := runLoad(t, c, sku, 24, stop)
	// Killed close to the sell-out: an order answered 503 after it
	// reserved must then win against the orders still coming in.
	for start := time.Now(); l.count() < onHand-killBeforeSoldOut && time.Since(start) < 30*time.Second; {
		time.Sleep(5 * time.Millisecond)
	}
	victim := c.leaderOf("sku/"+sku, 1)
	t.Logf("hot SKU's partition is led by node%d", victim)
	before := l.count()
	killed := time.Now()
	c.kill9(victim)
	// Failover: until the first new order (a reservation on the hot SKU's
	// partition) asked for after the kill is acknowledged.
	var failover time.Duration
	for ok := false; !ok; failover, ok = l.firstCreatedAfter(killed) {
		if time.Since(killed) > 60*time.Second {
			t.Fatal("no order acknowledged within 60s of the leader's kill -9")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("failover: first order asked for after kill -9 of the leader acknowledged %s after the kill (%d acknowledged before)", failover.Round(time.Millisecond), before)
	survivor := victim%3 + 1
	// Sold out: every unit in an acknowledged order.
	for deadline := time.Now().Add(90 * time.Second); l.count() < onHand; {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			s := c.node(survivor).checkConserved(sku)
			t.Fatalf("sold %d of %d within 90s of the kill; stock %+v (%d refused): a retry did not take its own reservation", l.count(), onHand, s.Total, len(l.rejected))
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("sold out: %d orders acknowledged, %d rejected, %d requests, %d errors", l.count(), len(l.rejected), l.requests.Load(), l.errors.Load())
	l.audit(t, c, survivor, sku, onHand)

	catchUp := c.up()
	t.Logf("node%d restarted and caught up in %s", victim, catchUp.Round(time.Millisecond))
	c.waitAgree(victim, 30*time.Second)
	l.audit(t, c, victim, sku, onHand)
	clusterLedgerAudit(t, c, l)
}

// Freeze a node (SIGSTOP) for longer than the election timeout while orders
// flow, then thaw it: no split brain, nothing acknowledged lost or doubled,
// stock conserved, and the replicas agree afterwards.
func TestClusterFrozenNode(t *testing.T) {
	const sku, onHand = "HOT-FREEZE", 3000
	c := newCluster(t, clusterArgs)
	c.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	frozen := c.leaderOf("sku/"+sku, 1)
	stop := make(chan struct{})
	l, wg := runLoad(t, c, sku, 24, stop)
	time.Sleep(1500 * time.Millisecond)
	c.signal(frozen, syscall.SIGSTOP)
	t.Logf("node%d (leader of the hot SKU) frozen", frozen)
	time.Sleep(4 * time.Second) // > 8 election timeouts
	c.signal(frozen, syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d orders acknowledged, %d requests, %d errors", l.count(), l.requests.Load(), l.errors.Load())
	if l.count() == 0 {
		t.Fatal("no order acknowledged")
	}
	c.waitAgree(frozen, 30*time.Second)
	for i := 1; i <= 3; i++ {
		l.audit(t, c, i, sku, onHand)
	}
}

// Restart every node in turn (SIGTERM, start again, wait until it caught up)
// while orders flow: nothing lost, nothing doubled, stock conserved. A
// reader of the event stream follows from node to node as each goes down
// (Last-Event-ID) and sees every event of the log once, in order.
func TestClusterRollingRestart(t *testing.T) {
	const sku, onHand = "HOT-ROLL", 5000
	c := newCluster(t, clusterArgs)
	events := followStream(t, c.urls)
	c.node(1).eventually("PUT", "/v1/warehouses/WH1", `{"rates":[{"region":"*","cost":"8.00","transit_days":2}]}`, 201)
	c.node(1).eventually("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": onHand}, 200)
	stop := make(chan struct{})
	l, wg := runLoad(t, c, sku, 16, stop)
	for i := 1; i <= 3; i++ {
		time.Sleep(time.Second)
		c.stop(i)
		took := c.up()
		t.Logf("node%d restarted and caught up in %s", i, took.Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d orders acknowledged, %d requests, %d errors", l.count(), l.requests.Load(), l.errors.Load())
	c.waitAgree(1, 30*time.Second)
	l.audit(t, c, 2, sku, onHand)
	clusterLedgerAudit(t, c, l)
	events.check(t, waitLedgerStill(t, c.node(1)), 30*time.Second)
	clusterRouting(t, c)
}

// clusterRouting changes the routing catalog through one node and checks
// that orders through another follow it within a second, and that every
// node explains an order the same way.
func clusterRouting(t *testing.T, c *testCluster) {
	t.Helper()
	n1, n2, n3 := c.node(1), c.node(2), c.node(3)
	var wh1 struct {
		Version int `json:"version"`
	}
	n3.must("GET", "/v1/warehouses/WH1", nil, 200).json(t, &wh1) // made before the restarts
	n2.must("PUT", "/v1/warehouses/WH2", `{"rates":[{"region":"*","cost":"3.00","transit_days":2}]}`, 201)
	for _, wh := range []string{"WH1", "WH2"} {
		n2.must("PUT", "/v1/skus/ROUTE-1/stock/"+wh, map[string]any{"on_hand": 1000}, 200)
	}
	n2.must("PUT", "/v1/routing/strategies/cheap", `{"weights":{"cost":1}}`, 201)
	n2.must("PUT", "/v1/routing/selection", `{"strategy":"cheap"}`, 200)
	seq := 0
	routeVia := func(n *node, want string) string {
		t.Helper()
		deadline := time.Now().Add(time.Second + 500*time.Millisecond)
		for {
			seq++
			var o struct {
				ID              string `json:"id"`
				RoutingStrategy string `json:"routing_strategy"`
				Lines           []struct {
					Warehouse string `json:"warehouse"`
				} `json:"lines"`
			}
			n.must("POST", "/v1/orders", orderBody(fmt.Sprintf("route-%d", seq), "ROUTE-1", 1), 201).json(t, &o)
			if o.Lines[0].Warehouse == want && o.RoutingStrategy == "cheap@1" {
				return o.ID
			}
			if time.Now().After(deadline) {
				t.Fatalf("orders through another node still go to %s by %s, want %s by cheap@1", o.Lines[0].Warehouse, o.RoutingStrategy, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	id := routeVia(n3, "WH2")
	n1.must("PUT", "/v1/warehouses/WH2/state", `{"state":"down","reason":"flooded"}`, 200)
	routeVia(n3, "WH1")
	var e1, e2 struct {
		Strategy string `json:"strategy"`
		Winner   struct {
			Warehouses []string `json:"warehouses"`
		} `json:"winner"`
	}
	n1.must("GET", "/v1/orders/"+id+"/routing", nil, 200).json(t, &e1)
	n2.must("GET", "/v1/orders/"+id+"/routing", nil, 200).json(t, &e2)
	if e1.Strategy != "cheap@1" || e1.Winner.Warehouses[0] != "WH2" || e2.Winner.Warehouses[0] != "WH2" {
		t.Fatalf("explanations of %s: %+v / %+v", id, e1, e2)
	}
	n2.checkConserved("ROUTE-1")
}
