package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// testPOSSecret signs the test gateway's POS connection.
const testPOSSecret = "pos-secret"

func posSale(receipt, sku string, qty int64) string {
	return fmt.Sprintf(`{"store_id":"SH-001","receipt_no":%q,"device_id":"POS-7","sold_at":%q,"currency":"CNY","store_region":"east",
 "member":{"id":"M0001","phone":"13812345678","name":"Li Lei"},
 "lines":[{"sku":%q,"qty":%d,"price":"17.50"}],"discounts":[{"line":-1,"amount":"2.00","kind":"member"}]}`,
		receipt, time.Now().Add(-time.Minute).Format(time.RFC3339), sku, qty)
}

// A signed push is taken by the channel workflow (the gateway only reads,
// verifies and answers): 201 with the order as intake shaped it (the
// channel's fields, the resolved customer), 200 for the platform's retry,
// 401 for a bad signature, 422 naming the mapped field for an order that
// fails validation, before anything is written.
func TestChannelPush(t *testing.T) {
	tg := startGateway(t)
	tg.must(t, "PUT", "/v1/skus/ACC-1/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	push := func(body, signature string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/channels/pos/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(channels.SignatureHeader, signature)
		rec := httptest.NewRecorder()
		tg.gw.ServeHTTP(rec, req)
		return rec
	}
	sale := posSale("R-GW-1", "ACC-1", 1)
	rec := push(sale, channels.SignConnector(testPOSSecret, []byte(sale)))
	if rec.Code != http.StatusCreated {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	var a struct {
		Order struct {
			ID            string            `json:"id"`
			Channel       string            `json:"channel"`
			ChannelFields map[string]string `json:"channel_fields"`
			Customer      struct {
				ID string `json:"id"`
			} `json:"customer"`
		} `json:"order"`
		CustomerID string `json:"customer_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	f := a.Order.ChannelFields
	if a.Order.Channel != "pos" || a.CustomerID == "" || a.Order.Customer.ID != a.CustomerID || f["store_id"] != "SH-001" ||
		!strings.HasPrefix(f["discount[0]"], "2.00 ") || f["placed_at"] == "" || f["buyer_id_sha256"] == "" {
		t.Fatalf("order as taken: %s", rec.Body)
	}
	if again := push(sale, channels.SignConnector(testPOSSecret, []byte(sale))); again.Code != http.StatusOK || !strings.Contains(again.Body.String(), a.Order.ID) {
		t.Fatalf("retry: %d %s", again.Code, again.Body)
	}
	if bad := push(sale, channels.SignConnector("another secret", []byte(sale))); bad.Code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d %s", bad.Code, bad.Body)
	}
	huge := posSale("R-GW-2", "ACC-1", 1_000_000_000)
	rec = push(huge, channels.SignConnector(testPOSSecret, []byte(huge)))
	var p struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusUnprocessableEntity || len(p.Errors) != 1 ||
		p.Errors[0].Field != "mapped lines[0].qty" {
		t.Fatalf("invalid as mapped: %d %s", rec.Code, rec.Body)
	}
}
