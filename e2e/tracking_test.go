package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/internal/browsertest"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/tracking"
)

// The buyer's tracking page in a real browser (headless Chromium at a
// phone's 360×740): a link made through the API opens the order's page;
// each move of the order (paid, picked, packed, shipped with carrier and
// tracking number) shows on the open page within a second, by its live
// stream; the page passes the accessibility check and shows no personal
// field; a tampered, an expired link and an unknown order get clear error
// pages. Screenshots go to browsertest.ArtifactsDir.
func TestTrackingPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and a browser")
	}
	// The node's master keys are known here, so the test can sign an
	// expired link with the key every node derives.
	t.Setenv("ORDERGRID_MASTER_KEYS", clusterMasterKeys())
	keyring, err := privacy.ParseKeyring(clusterMasterKeys())
	if err != nil {
		t.Fatal(err)
	}
	key := keyring.Derive(tracking.KeyLabel)

	n := newNode(t)
	n.start()
	n.must("PUT", "/v1/skus/TRK-1/stock/WH-A", map[string]any{"on_hand": 10}, 200)
	var o order
	n.must("POST", "/v1/orders", orderBody("trk-1", "TRK-1", 1), 201).json(t, &o)
	var link struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	n.must("POST", "/v1/orders/"+o.ID+"/tracking-link", map[string]any{"ttl_seconds": 3600}, 201).json(t, &link)
	if !strings.HasPrefix(link.URL, "/track/"+o.ID+"?t=") {
		t.Fatalf("link %+v", link)
	}

	b := browsertest.Start(t, browsertest.Viewport(360, 740))
	if code := b.Open(t, n.http+link.URL); code != http.StatusOK {
		t.Fatalf("page: %d", code)
	}
	b.WaitText(t, "#status", "Awaiting payment", 10*time.Second)
	b.WaitText(t, "#live", "Live", 10*time.Second) // the stream is open
	b.Screenshot(t, "tracking-created")

	// Each move shows within a second of the API call that makes it.
	var worst time.Duration
	for _, step := range []struct {
		path  string
		body  map[string]any
		shows string
	}{
		{"/pay", nil, "Paid"},
		{"/events", map[string]any{"type": "picked"}, "Picked"},
		{"/events", map[string]any{"type": "packed"}, "Packed"},
		{"/events", map[string]any{"type": "shipped", "carrier": "SF Express", "tracking_number": "SF7788990011"}, "Shipped"},
	} {
		start := time.Now()
		n.must("POST", "/v1/orders/"+o.ID+step.path, step.body, 200)
		b.WaitText(t, "#status", step.shows, time.Second)
		took := time.Since(start)
		t.Logf("%s shows on the page %s after the API call", step.shows, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s took %s to show, want under 1s", step.shows, took)
		}
		worst = max(worst, took)
	}
	t.Logf("slowest page update: %s", worst.Round(time.Millisecond))
	b.WaitText(t, "#carrier", "SF Express", time.Second)
	b.WaitText(t, "#tracking-number", "SF7788990011", time.Second)
	b.WaitText(t, `#timeline li[data-type="shipped"]`, "SF7788990011", time.Second)
	var steps []string
	b.Eval(t, `Array.from(document.querySelectorAll("#timeline li")).map(function(li){return li.getAttribute("data-type")+":"+li.className})`, &steps)
	want := []string{"created:done", "paid:done", "picked:done", "packed:done", "shipped:current", "in_transit:todo", "out_for_delivery:todo", "delivered:todo"}
	if strings.Join(steps, " ") != strings.Join(want, " ") {
		t.Errorf("timeline %v, want %v", steps, want)
	}
	var text string
	b.Eval(t, "document.documentElement.outerHTML + document.body.innerText", &text)
	for _, personal := range []string{"Zhang San", "13800000000", "Nanjing", "c-trk-1", "bootstrap", "99.00"} {
		if strings.Contains(text, personal) {
			t.Errorf("the page shows %q", personal)
		}
	}
	var width int
	b.Eval(t, "document.documentElement.scrollWidth", &width)
	if width > 360 {
		t.Errorf("the page is %d px wide on a 360 px screen", width)
	}
	b.Screenshot(t, "tracking-shipped")
	a := b.Accessibility(t)
	if p := a.Problems(); len(p) > 0 || a.Tabbable == 0 {
		t.Errorf("accessibility (%d tabbable): %v", a.Tabbable, p)
	}

	// Refused links: a page saying what is wrong, 403.
	path, query, _ := strings.Cut(link.URL, "?")
	tok := strings.TrimPrefix(query, "t=")
	flip := "A"
	if tok[8] == 'A' {
		flip = "B"
	}
	tampered := path + "?t=" + tok[:8] + flip + tok[9:]
	expiredTok, err := tracking.Sign(key, o.ID, time.Now().Add(-time.Hour).Truncate(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	unknown := "o_" + strings.Repeat("ab", 16)
	unknownTok, _ := tracking.Sign(key, unknown, time.Now().Add(time.Hour))
	for _, c := range []struct {
		name, url string
		code      int
		says      string
	}{
		{"tampered", tampered, 403, "invalid signature"},
		{"expired", path + "?t=" + expiredTok, 403, "expired at " + time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15")},
		{"unknown", "/track/" + unknown + "?t=" + unknownTok, 404, "no order"},
	} {
		if code := b.Open(t, n.http+c.url); code != c.code {
			t.Errorf("%s link: %d, want %d", c.name, code, c.code)
		}
		if got := b.Text(t, "#problem-detail"); !strings.Contains(got, c.says) {
			t.Errorf("%s link: the page says %q, want %q", c.name, got, c.says)
		}
		b.Screenshot(t, "tracking-"+c.name)
		if p := b.Accessibility(t).Problems(); len(p) > 0 {
			t.Errorf("%s page accessibility: %v", c.name, p)
		}
		var pr problem
		n.must("GET", c.url, nil, c.code, "Accept", "application/json").json(t, &pr)
		if !strings.Contains(pr.Detail, c.says) {
			t.Errorf("%s link as JSON: %+v", c.name, pr)
		}
	}
}
