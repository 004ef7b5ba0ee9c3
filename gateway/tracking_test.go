package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/tracking"
)

// trackingLink makes a link to order as role and returns its URL.
func (tg *testGateway) trackingLink(t *testing.T, order string, role Role, body string) string {
	t.Helper()
	rec := tg.do("POST", "/v1/orders/"+order+"/tracking-link", body, role)
	if rec.Code != http.StatusCreated {
		t.Fatalf("tracking link as %s: %d %s", role, rec.Code, rec.Body)
	}
	var v struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || !strings.HasPrefix(v.URL, "/track/"+order+"?t=") {
		t.Fatalf("tracking link: %s", rec.Body)
	}
	exp, err := time.Parse(time.RFC3339, v.ExpiresAt)
	if err != nil || exp.Before(time.Now()) {
		t.Fatalf("expires_at %q: %v", v.ExpiresAt, err)
	}
	return v.URL
}

func TestTrackingLinkAndPage(t *testing.T) {
	tg := startGateway(t)
	tg.must(t, "PUT", "/v1/skus/ACC-1/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	var o struct {
		ID string `json:"id"`
	}
	rec := tg.must(t, "POST", "/v1/orders", strings.Replace(orderBodyJSON, "acc-1", "track-personal", 1), http.StatusCreated)
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	order := o.ID // douyin, with personal fields
	link := tg.trackingLink(t, order, RoleIntake, "")
	day := tg.trackingLink(t, order, RoleOps, `{"ttl_seconds":86400}`)
	if link == day {
		t.Fatal("two lifetimes, one link")
	}

	// Bad requests change nothing and name the field.
	for _, ttl := range []string{"59", "7776001", "-1"} {
		rec := tg.do("POST", "/v1/orders/"+order+"/tracking-link", `{"ttl_seconds":`+ttl+`}`, RoleOps)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "ttl_seconds") {
			t.Errorf("ttl_seconds %s: %d %s", ttl, rec.Code, rec.Body)
		}
	}
	if rec := tg.do("POST", "/v1/orders/"+order+"/tracking-link", `{"ttl":60}`, RoleOps); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", rec.Code, rec.Body)
	}
	unknown := "o_" + strings.Repeat("0", 32)
	if rec := tg.do("POST", "/v1/orders/"+unknown+"/tracking-link", "", RoleOps); rec.Code != http.StatusNotFound {
		t.Errorf("unknown order: %d %s", rec.Code, rec.Body)
	}
	other := tg.order(t, "tmall", "track-tmall-1")
	if rec := tg.do("POST", "/v1/orders/"+other+"/tracking-link", "", RoleIntake); rec.Code != http.StatusForbidden {
		t.Errorf("another channel's order as intake: %d %s", rec.Code, rec.Body)
	}

	// The page, then its timeline: no personal field, no principal, no price.
	rec = tg.do("GET", link, "", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), `data-order="`+order+`"`) || !strings.Contains(rec.Body.String(), `<html lang="en">`) {
		t.Fatalf("page: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Referrer-Policy") != "no-referrer" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("page headers: %v", rec.Header())
	}
	path, query, _ := strings.Cut(link, "?")
	rec = tg.do("GET", path+"/timeline?"+query, "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("timeline: %d %s", rec.Code, rec.Body)
	}
	for _, secret := range []string{"Li Lei", "13800000000", "Nanjing", "u-acc", "principal", "test-", "1.00", "total", "douyin"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("the timeline shows %q: %s", secret, rec.Body)
		}
	}
	var v trackView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Order != order || v.Status != "pending_payment" ||
		len(v.Events) != 1 || v.Events[0].Type != "created" || !v.Live {
		t.Fatalf("timeline: %s", rec.Body)
	}

	// Assets.
	for _, f := range []string{"track.css", "track.js"} {
		if rec := tg.do("GET", "/assets/track/"+f, "", ""); rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("%s: %d", f, rec.Code)
		}
	}
	if rec := tg.do("GET", "/assets/track/page.html", "", ""); rec.Code != http.StatusNotFound {
		t.Errorf("page.html as an asset: %d", rec.Code)
	}
}

func TestTrackingRefusals(t *testing.T) {
	tg := startGateway(t)
	order := tg.fixtureOrder(t)
	link := tg.trackingLink(t, order, RoleOps, "")
	path, query, _ := strings.Cut(link, "?")
	tok := strings.TrimPrefix(query, "t=")
	flip := "A"
	if tok[5] == 'A' {
		flip = "B"
	}
	tampered := tok[:5] + flip + tok[6:]
	expired, err := tracking.Sign(tg.trackingKey, order, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	unknown := "o_" + strings.Repeat("1", 32)
	unknownTok, _ := tracking.Sign(tg.trackingKey, unknown, time.Now().Add(time.Hour))
	other := tg.order(t, "douyin", "track-other-1")
	cases := []struct {
		name, path string
		code       int
		says       string
	}{
		{"tampered", path + "?t=" + tampered, 403, "invalid signature"},
		{"another order's link", "/track/" + other + "?t=" + tok, 403, "invalid signature"},
		{"expired", path + "?t=" + expired, 403, "expired at 2026-01-02T03:04:05Z"},
		{"no token", path, 403, "no token"},
		{"garbage", path + "?t=%3Cscript%3E", 403, "invalid signature"},
		{"unknown order", "/track/" + unknown + "?t=" + unknownTok, 404, "no order"},
		{"not an order id", "/track/nope?t=" + tok, 404, "no order"},
	}
	for _, c := range cases {
		for _, suffix := range []string{"", "/timeline", "/stream"} {
			p, q, _ := strings.Cut(c.path, "?")
			if q != "" {
				q = "?" + q
			}
			// The page: HTML for a browser, problem+json for a JSON client.
			req := httptest.NewRequest("GET", p+suffix+q, nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
			rec := httptest.NewRecorder()
			tg.gw.ServeHTTP(rec, req)
			wantType := "application/problem+json"
			if suffix == "" {
				wantType = "text/html; charset=utf-8"
			}
			if rec.Code != c.code || rec.Header().Get("Content-Type") != wantType || !strings.Contains(rec.Body.String(), c.says) ||
				strings.Contains(rec.Body.String(), "<script>") {
				t.Errorf("%s%s: %d %s %s, want %d %s saying %q", c.name, suffix, rec.Code, rec.Header().Get("Content-Type"), rec.Body, c.code, wantType, c.says)
			}
			if suffix != "" {
				continue
			}
			req = httptest.NewRequest("GET", p+q, nil)
			req.Header.Set("Accept", "application/json")
			rec = httptest.NewRecorder()
			tg.gw.ServeHTTP(rec, req)
			if rec.Code != c.code || rec.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(rec.Body.String(), c.says) {
				t.Errorf("%s as JSON: %d %s", c.name, rec.Code, rec.Body)
			}
		}
	}
}

// The stream: only the order's page events, reduced to what the page
// shows, from stream_from; Last-Event-ID resumes.
func TestTrackingStream(t *testing.T) {
	tg := startGateway(t)
	srv := httptest.NewServer(tg.gw)
	t.Cleanup(srv.Close)
	order := tg.order(t, "douyin", "track-stream-1")
	noise := tg.order(t, "douyin", "track-stream-noise")
	link := tg.trackingLink(t, order, RoleOps, "")
	path, query, _ := strings.Cut(link, "?")
	var v trackView
	if err := json.Unmarshal(tg.do("GET", path+"/timeline?"+query, "", "").Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	resp, evs := openSSE(t, srv, tg, path+"/stream?"+query+"&from="+strconv.FormatUint(v.StreamFrom, 10), "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	tg.must(t, "POST", "/v1/orders/"+noise+"/pay", "", http.StatusOK)
	tg.must(t, "POST", "/v1/orders/"+order+"/pay", "", http.StatusOK)
	for _, typ := range []string{"picked", "packed"} {
		tg.must(t, "POST", "/v1/orders/"+order+"/events", `{"type":"`+typ+`"}`, http.StatusOK)
	}
	tg.must(t, "POST", "/v1/orders/"+order+"/events", `{"type":"shipped","carrier":"SF Express","tracking_number":"SF42"}`, http.StatusOK)
	paid := nextEvent(t, evs, `"paid"`)
	shipped := nextEvent(t, evs, `"shipped"`)
	var e map[string]any
	if err := json.Unmarshal([]byte(shipped.data), &e); err != nil {
		t.Fatal(err)
	}
	if e["carrier"] != "SF Express" || e["tracking_number"] != "SF42" || e["status"] != "shipped" || e["seq"] != float64(5) {
		t.Errorf("shipped event: %s", shipped.data)
	}
	for _, ev := range []sseEvent{paid, shipped} {
		if strings.Contains(ev.data, noise) || strings.Contains(ev.data, "principal") || strings.Contains(ev.data, "partition") ||
			strings.Contains(ev.data, "order") {
			t.Errorf("event shows more than the page needs: %s", ev.data)
		}
	}
	// Reconnecting with the last id seen before paid gets paid again.
	id, _ := strconv.ParseUint(paid.id, 10, 64)
	_, again := openSSE(t, srv, tg, path+"/stream?"+query, "", strconv.FormatUint(id-1, 10))
	if ev := nextEvent(t, again, `"paid"`); ev.id != paid.id {
		t.Errorf("resumed at %s, want %s", ev.id, paid.id)
	}
}
