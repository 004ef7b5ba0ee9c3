package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/browsertest"
)

// The ops page in a real browser (headless Chromium): it asks for a token,
// then shows the node's exact order counts, intake charts, partitions and
// ledger, and the live event feed; a new order and its payment show on the
// open page within a second (the feed from the stream, the counts from the
// summary it re-reads); a bad token gets a clear message; the page passes
// the accessibility check. Screenshots go to browsertest.ArtifactsDir.
func TestOpsPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and a browser")
	}
	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/OPS-1/stock/WH-A", map[string]any{"on_hand": 100}, 200)
	for i := 0; i < 3; i++ {
		var o order
		n.must("POST", "/v1/orders", orderBody(fmt.Sprintf("ops-%d", i), "OPS-1", 1), 201).json(t, &o)
		if i == 0 {
			n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
		}
	}

	b := browsertest.Start(t, browsertest.Viewport(1280, 900))
	if code := b.Open(t, n.http+"/ops"); code != http.StatusOK {
		t.Fatalf("GET /ops: %d", code)
	}
	// A wrong token: the page says so.
	signIn := func(token string) {
		t.Helper()
		// As a user would: type the token, press Connect.
		b.Eval(t, fmt.Sprintf(`(() => { document.getElementById("token").value = %q; document.getElementById("token-submit").click(); return true })()`, token), nil)
	}
	signIn("og_not-a-token")
	b.WaitText(t, "#message", "401", 5*time.Second)
	b.Screenshot(t, "ops-bad-token")

	signIn(testToken)
	b.WaitText(t, "#orders-total", "3", 10*time.Second)
	b.WaitText(t, `[data-count="status:paid"]`, "1", 5*time.Second)
	b.WaitText(t, `[data-count="status:pending_payment"]`, "2", 5*time.Second)
	b.WaitText(t, "#connection", "live", 10*time.Second)
	b.Screenshot(t, "ops-signed-in")

	// A new order, then its payment: the feed shows each event within a
	// second, and the counts follow.
	var o order
	start := time.Now()
	n.must("POST", "/v1/orders", orderBody("ops-live", "OPS-1", 1), 201).json(t, &o)
	b.WaitText(t, "#feed tbody", o.ID, time.Second)
	t.Logf("the new order is in the ops page's feed %s after the API call", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	n.must("POST", "/v1/orders/"+o.ID+"/pay", nil, 200)
	b.WaitText(t, `[data-count="status:paid"]`, "2", time.Second)
	t.Logf("the paid count moved %s after the payment", time.Since(start).Round(time.Millisecond))
	b.WaitText(t, "#orders-total", "4", time.Second)
	var feedRows int
	b.Eval(t, `document.querySelectorAll("#feed tbody tr").length`, &feedRows)
	if feedRows == 0 || feedRows > 50 {
		t.Fatalf("feed rows: %d", feedRows)
	}
	b.Screenshot(t, "ops-live")
	b.CheckAccessibility(t)
}
