package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

const channelsFile = `connections:
  - {channel: douyin, name: main, app_key: "7012345678", secret: dy-secret}
  - {channel: shopify, secret: shp-secret}
  - {channel: pos, secret: pos-secret}
merge:
  window: 30m
  default: hold
  pairs:
    pos+shopify: %s
prices:
  rule: transaction_time
`

type channelAnswer struct {
	Order struct {
		ID            string            `json:"id"`
		Status        string            `json:"status"`
		Channel       string            `json:"channel"`
		ChannelFields map[string]string `json:"channel_fields"`
		Customer      struct {
			ID       string `json:"id"`
			Withheld bool   `json:"withheld"`
		} `json:"customer"`
		Lines []struct {
			SKU       string `json:"sku"`
			Qty       int64  `json:"qty"`
			UnitPrice string `json:"unit_price"`
		} `json:"lines"`
	} `json:"order"`
	CustomerID string `json:"customer_id"`
	Duplicate  *struct {
		Of      string `json:"of"`
		Channel string `json:"channel"`
		Policy  string `json:"policy"`
	} `json:"duplicate"`
	PriceConflicts []string `json:"price_conflicts"`
}

func shopifyOrder(id int64, sku, price string) string {
	return fmt.Sprintf(`{"id":%d,"name":"#%d","created_at":%q,"currency":"CNY","financial_status":"paid",
 "total_price":"%s","subtotal_price":"%s","total_discounts":"0.00",
 "customer":{"id":7001,"email":"li.lei@example.com","phone":"+86 138-1234-5678"},
 "shipping_address":{"name":"Li Lei","phone":"+86 138-1234-5678","address1":"浦东新区 碧波路 690号","city":"上海市","province":"上海市","country_code":"CN","zip":"201203"},
 "line_items":[{"id":%d,"variant_id":4411,"sku":%q,"quantity":1,"price":%q,"total_discount":"0.00","discount_allocations":[]}]}`,
		id, id, time.Now().Add(-time.Minute).Format(time.RFC3339), price, price, id*10, sku, price)
}

func posOrder(receipt, sku, price string) string {
	return fmt.Sprintf(`{"store_id":"SH-001","receipt_no":%q,"device_id":"POS-7","sold_at":%q,"currency":"CNY","store_region":"east",
 "member":{"id":"M0001","phone":"13812345678","name":"Li Lei"},
 "lines":[{"sku":%q,"qty":1,"price":%q}],"discounts":[{"line":-1,"amount":"2.00","kind":"member"}]}`,
		receipt, time.Now().Format(time.RFC3339), sku, price)
}

// Channel orders end to end: signatures (a wrong one 401 and counted), a
// Douyin order detail mapped and sealed, a retry answered, a payload
// lacking a field 422 naming the channel's field, one customer seen behind
// a Shopify order and a store POS sale, the duplicate merged (released,
// one shipment, the discount not granted again) or, after a restart with
// another policy, held and then lifted; price conflicts listed; metrics.
func TestChannelIntake(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "channels.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(channelsFile, "merge")), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "--channels-file", file)
	n.start()
	for _, sku := range []string{"SKU-LIPSTICK-01", "1742939920361493", "CH-TEE", "CH-MUG"} {
		n.must("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": 100}, 200)
	}
	post := func(channel, body string, want int, headers ...string) channelAnswer {
		t.Helper()
		r := n.must("POST", "/v1/channels/"+channel+"/orders", body, want, append([]string{"Authorization", ""}, headers...)...)
		var a channelAnswer
		if want < 300 {
			r.json(t, &a)
		}
		return a
	}

	// Douyin: the order detail, pushed with event-sign.
	dy, err := os.ReadFile("../channels/testdata/douyin/order.json")
	if err != nil {
		t.Fatal(err)
	}
	sign := channels.SignDouyin("7012345678", "dy-secret", "", dy)
	a := post("douyin", string(dy), 201, "event-sign", sign)
	if a.Order.Channel != "douyin" || len(a.Order.Lines) != 2 || a.Order.Lines[0].UnitPrice != "59.00" || !strings.HasPrefix(a.CustomerID, "cu_") ||
		a.Order.Customer.ID != a.CustomerID || !a.Order.Customer.Withheld || a.Order.ChannelFields["pay_amount"] != "158.00" {
		t.Fatalf("douyin order: %+v", a)
	}
	if again := post("douyin", string(dy), 200, "event-sign", sign); again.Order.ID != a.Order.ID {
		t.Fatalf("retry: %+v", again)
	}
	var p problem
	n.must("POST", "/v1/channels/douyin/orders", string(dy), 401, "Authorization", "", "event-sign", strings.Repeat("0", 32)).json(t, &p)
	if !strings.HasSuffix(p.Type, "/bad-signature") {
		t.Fatalf("wrong signature: %+v", p)
	}
	bad := `{"shop_order_detail":{"order_id":"1","create_time":1762826400}}`
	n.must("POST", "/v1/channels/douyin/orders", bad, 422, "Authorization", "", "event-sign", channels.SignDouyin("7012345678", "dy-secret", "", []byte(bad))).json(t, &p)
	if p.Errors[0].Field != "shop_order_detail.sku_order_list" {
		t.Fatalf("missing field: %+v", p)
	}
	n.must("POST", "/v1/channels/nowhere/orders", bad, 404, "Authorization", "")
	// Signed, but data after the JSON value, or a key twice: 400, nothing taken.
	for _, body := range []string{string(dy) + ` {"shop_order_detail":{}}`, `{"shop_order_detail":{"order_id":"1","order_id":"2"}}`} {
		n.must("POST", "/v1/channels/douyin/orders", body, 400, "Authorization", "", "event-sign",
			channels.SignDouyin("7012345678", "dy-secret", "", []byte(body))).json(t, &p)
		if !strings.HasSuffix(p.Type, "/malformed-request") {
			t.Fatalf("%s: %+v", body, p)
		}
	}

	// One customer behind a Shopify order and a store sale: merged.
	shop := shopifyOrder(5800000000001, "CH-TEE", "19.99")
	s := post("shopify", shop, 201, "X-Shopify-Hmac-Sha256", channels.SignShopify("shp-secret", []byte(shop)))
	pos := posOrder("R-1", "CH-TEE", "17.50")
	m := post("pos", pos, 201, channels.SignatureHeader, channels.SignConnector("pos-secret", []byte(pos)))
	if m.CustomerID != s.CustomerID || m.Duplicate == nil || m.Duplicate.Of != s.Order.ID || m.Duplicate.Policy != "merge" || m.Order.Status != "merged" {
		t.Fatalf("merge: shopify %+v, pos %+v", s, m)
	}
	if len(m.PriceConflicts) != 1 || !strings.Contains(m.PriceConflicts[0], "19.99") {
		t.Fatalf("price conflict: %v", m.PriceConflicts)
	}
	// The Shopify order is paid (financial_status "paid"): its one unit is
	// committed; the merged store sale holds none.
	tee := n.checkConserved("CH-TEE")
	if tee.Total.Committed != 1 || tee.Total.Pending != 0 || s.Order.Status != "paid" {
		t.Fatalf("the merged order still holds stock, or the paid one is not paid: %+v, %s", tee.Total, s.Order.Status)
	}
	hasEvent := func(id, typ, contains string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var evs struct {
				Events []struct {
					Type    string            `json:"type"`
					Details map[string]string `json:"details"`
				} `json:"events"`
			}
			n.must("GET", "/v1/orders/"+id+"/events", nil, 200).json(t, &evs)
			for _, e := range evs.Events {
				if e.Type == typ && strings.Contains(fmt.Sprint(e.Details), contains) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s has no %s event with %q: %+v", id, typ, contains, evs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	hasEvent(m.Order.ID, "merged", "discounts not granted twice: 2.00 shop member")
	hasEvent(s.Order.ID, "duplicate_merged", m.Order.ID)
	hasEvent(m.Order.ID, "price_conflict", "transaction time")
	var conflicts struct {
		Conflicts []struct {
			SKU string `json:"sku"`
		} `json:"conflicts"`
	}
	n.must("GET", "/v1/channels/price-conflicts", nil, 200).json(t, &conflicts)
	if len(conflicts.Conflicts) != 1 || conflicts.Conflicts[0].SKU != "CH-TEE" {
		t.Fatalf("conflicts: %+v", conflicts)
	}
	var cust struct {
		Channels []string `json:"channels"`
		Orders   []struct {
			ID string `json:"id"`
		} `json:"orders"`
	}
	n.must("GET", "/v1/customers/"+s.CustomerID, nil, 200).json(t, &cust)
	if strings.Join(cust.Channels, ",") != "pos,shopify" || len(cust.Orders) != 2 {
		t.Fatalf("customer: %+v", cust)
	}

	metrics := string(n.must("GET", "/metrics", nil, 200).body)
	for _, want := range []string{
		`ordergrid_channel_signature_failures_total{channel="douyin"} 1`,
		`ordergrid_channel_rejects_total{channel="douyin",reason="invalid"} 1`,
		`ordergrid_channel_orders_total{channel="douyin",result="replayed"} 1`,
		`ordergrid_channel_duplicates_total{channel="pos",policy="merge"} 1`,
		`ordergrid_channel_price_conflicts_total{channel="pos"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Another policy after a restart: held, not payable, then lifted.
	n.stop()
	if err := os.WriteFile(file, []byte(fmt.Sprintf(channelsFile, "hold")), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	shop = shopifyOrder(5800000000002, "CH-MUG", "39.00")
	post("shopify", shop, 201, "X-Shopify-Hmac-Sha256", channels.SignShopify("shp-secret", []byte(shop)))
	pos = posOrder("R-2", "CH-MUG", "39.00")
	h := post("pos", pos, 201, channels.SignatureHeader, channels.SignConnector("pos-secret", []byte(pos)))
	if h.Duplicate == nil || h.Duplicate.Policy != "hold" || h.Order.Status != "on_hold" || len(h.PriceConflicts) != 0 {
		t.Fatalf("hold: %+v", h)
	}
	n.must("POST", "/v1/orders/"+h.Order.ID+"/pay", nil, 409)
	n.must("POST", "/v1/orders/"+h.Order.ID+"/events", map[string]any{"type": "pending_payment", "reason": "review: two gifts, both wanted"}, 200)
	n.must("POST", "/v1/orders/"+h.Order.ID+"/pay", nil, 200)
	n.checkConserved("CH-MUG")

	metrics = string(n.must("GET", "/metrics", nil, 200).body)
	for _, want := range []string{
		`ordergrid_channel_duplicates_total{channel="pos",policy="hold"} 1`,
		`ordergrid_channel_orders_total{channel="pos",result="created"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// wechatShopKey is a test EncodingAESKey: 43 characters of base64 of 32 bytes.
const wechatShopKey = "b3JkZXJncmlkIHdlY2hhdCB0ZXN0IGtleSAzMiBieXQ"

const wechatChannelsFile = `connections:
  - {channel: wechat, name: shop, token: wx-token, encoding_aes_key: ` + wechatShopKey + `, app_id: wx1234567890abcdef}
  - {channel: wechat, name: legacy, token: wx-legacy, allow_plain_push: true}
`

// WeChat pushes end to end: an encrypted push creates the order and the
// same push sent again is refused as a replay; a plain push is refused on a
// connection that does not allow plain mode and taken (once) on one that
// does; a body swapped under a captured signature is refused; a push that
// was refused is not remembered, so the platform's retry is judged again.
func TestChannelWeChatPush(t *testing.T) {
	file := filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(file, []byte(wechatChannelsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "--channels-file", file)
	n.start()
	for _, sku := range []string{"SKU-TEA-250G", "2186734"} {
		n.must("PUT", "/v1/skus/"+sku+"/stock/WH1", map[string]any{"on_hand": 100}, 200)
	}
	order, err := os.ReadFile("../channels/testdata/wechat/order.json")
	if err != nil {
		t.Fatal(err)
	}
	nonce := 1000
	encrypted := func(msg []byte) (path, body string) {
		t.Helper()
		nonce++
		enc, err := channels.SealWeChat(wechatShopKey, "wx1234567890abcdef", msg)
		if err != nil {
			t.Fatal(err)
		}
		ts, nc := strconv.FormatInt(time.Now().Unix(), 10), strconv.Itoa(nonce)
		q := url.Values{"connection": {"shop"}, "timestamp": {ts}, "nonce": {nc}, "encrypt_type": {"aes"},
			"signature": {channels.SignWeChat("wx-token", ts, nc)}, "msg_signature": {channels.SignWeChatMsg("wx-token", ts, nc, enc)}}
		return "/v1/channels/wechat/orders?" + q.Encode(), fmt.Sprintf(`{"ToUserName":"gh_shop","Encrypt":%q}`, enc)
	}
	plain := func(connection, token string) string {
		nonce++
		ts, nc := strconv.FormatInt(time.Now().Unix(), 10), strconv.Itoa(nonce)
		q := url.Values{"connection": {connection}, "timestamp": {ts}, "nonce": {nc}, "signature": {channels.SignWeChat(token, ts, nc)}}
		return "/v1/channels/wechat/orders?" + q.Encode()
	}
	refused := func(path, body string, code int, name, field string) {
		t.Helper()
		var p problem
		n.must("POST", path, body, code, "Authorization", "").json(t, &p)
		if !strings.HasSuffix(p.Type, "/"+name) || len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Fatalf("want %d %s naming %s: %+v", code, name, field, p)
		}
	}

	path, body := encrypted(order)
	var a channelAnswer
	n.must("POST", path, body, 201, "Authorization", "").json(t, &a)
	if a.Order.Channel != "wechat" || len(a.Order.Lines) != 2 || a.Order.Lines[0].UnitPrice != "68.00" {
		t.Fatalf("wechat order: %+v", a)
	}
	refused(path, body, 409, "replayed-push", "nonce")

	// A captured signed URL with another body: the signature covers Encrypt.
	forged, _ := encrypted(bytes.Replace(order, []byte(`"sale_price": 6800`), []byte(`"sale_price": 1`), 1))
	_, other := encrypted(order)
	refused(forged, other, 401, "bad-signature", "signature")

	// Plain mode: refused where not allowed, whatever its signature says.
	refused(plain("shop", "wx-token"), string(order), 403, "plain-push-refused", "encrypt_type")
	second := bytes.Replace(order, []byte("3705115058471208928"), []byte("3705115058471208929"), 1)
	legacy := plain("legacy", "wx-legacy")
	n.must("POST", legacy, string(second), 201, "Authorization", "")
	refused(legacy, string(second), 409, "replayed-push", "nonce")

	// A push that was refused is forgotten: the platform's retry of it is
	// judged again, not called a replay.
	bad := []byte(`{"order":{"order_id":1,"create_time":1762826400}}`)
	path, body = encrypted(bad)
	refused(path, body, 422, "validation-failed", "order.order_detail.product_infos")
	refused(path, body, 422, "validation-failed", "order.order_detail.product_infos")

	// A new message about the same order (a fresh nonce): idempotency answers it.
	path, body = encrypted(order)
	var again channelAnswer
	n.must("POST", path, body, 200, "Authorization", "").json(t, &again)
	if again.Order.ID != a.Order.ID {
		t.Fatalf("the same order pushed again: %+v", again)
	}

	metrics := string(n.must("GET", "/metrics", nil, 200).body)
	for _, want := range []string{
		`ordergrid_channel_rejects_total{channel="wechat",reason="replayed-push"} 2`,
		`ordergrid_channel_rejects_total{channel="wechat",reason="plain-push-refused"} 1`,
		`ordergrid_channel_signature_failures_total{channel="wechat"} 1`,
		`ordergrid_channel_orders_total{channel="wechat",result="created"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
