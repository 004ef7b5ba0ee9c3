package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/intake"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
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
			AmountDue     string            `json:"amount_due"`
			Adjustments   []adjustmentView  `json:"adjustments"`
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
		f["placed_at"] == "" || f["buyer_id_sha256"] == "" || f["discount[0]"] != "" || a.Order.AmountDue != "15.50" ||
		len(a.Order.Adjustments) != 1 || a.Order.Adjustments[0] != (adjustmentView{Kind: "discount", Amount: "2.00", Line: 0, FundedBy: "shop", Detail: "member"}) {
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

const (
	testDouyinAppKey = "7023456789012345678"
	testDouyinSecret = "douyin-app-secret"
)

// fakeDouyin answers order details as Douyin's order.orderDetail does, one
// SKU line of 19.90, and counts the calls per order.
type fakeDouyin struct {
	mu    sync.Mutex
	calls map[string]int
}

var douyinPlatform = &fakeDouyin{calls: map[string]int{}}

func (p *fakeDouyin) OrderDetail(_ context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	p.calls[id]++
	// Unpaid when first fetched, paid from then on.
	status, payTime := 1, int64(0)
	switch {
	case strings.HasPrefix(id, "9"), p.calls[id] > 2:
		status = 4 // cancelled
	case p.calls[id] > 1:
		status, payTime = 2, time.Now().Unix()
	}
	p.mu.Unlock()
	return []byte(fmt.Sprintf(`{"shop_order_detail":{"order_id":%q,"order_status":%d,"create_time":%d,"pay_time":%d,"doudian_open_id":"1@#b1",
 "mask_post_receiver":"张**","mask_post_tel":"138****5678","post_addr":{"province":{"name":"上海市"},"city":{"name":"上海市"},"town":{"name":"浦东新区"},"detail":"碧波路***号"},
 "sku_order_list":[{"order_id":"%s1","sku_id":1742939920361492,"code":"ACC-1","item_num":1,"origin_amount":1990,"sum_amount":1990,"pay_amount":1990}]}}`,
		id, status, time.Now().Add(-time.Minute).Unix(), payTime, id)), nil
}

func (p *fakeDouyin) ChangedOrders(context.Context, time.Time, time.Time, string) ([]string, string, error) {
	return nil, "", errors.New("not pulled in this test")
}

// A Douyin push that names orders is queued in the grid and acknowledged
// as Douyin asks; the fetch workflow then takes each order once, however
// often it is pushed. On a connection without api settings such a push is
// refused (422, so Douyin pushes it again); a test message is acknowledged.
func TestChannelPushNamingOrders(t *testing.T) {
	tg := startGateway(t)
	tg.must(t, "PUT", "/v1/skus/ACC-1/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	push := func(connection, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/channels/douyin/orders?connection="+connection, strings.NewReader(body))
		req.Header.Set("event-sign", channels.SignDouyin(testDouyinAppKey, testDouyinSecret, "", []byte(body)))
		req.Header.Set("app-id", testDouyinAppKey)
		rec := httptest.NewRecorder()
		tg.gw.ServeHTTP(rec, req)
		return rec
	}
	id := fmt.Sprint(4781320682406000000 + time.Now().UnixNano()%1_000_000)
	notice := `[{"tag":"100","msg_id":"7061459375519697165","data":"{\"p_id\":` + id + `,\"s_ids\":[` + id + `],\"shop_id\":1234}"}]`
	rec := push("live", notice)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"code":0,"msg":"success"}` {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	if again := push("live", notice); again.Code != http.StatusOK {
		t.Fatalf("again: %d %s", again.Code, again.Body)
	}
	if rec := push("noapi", notice); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "no-api") {
		t.Fatalf("no api: %d %s", rec.Code, rec.Body)
	}
	if rec := push("noapi", `[{"tag":"0","msg_id":"1","data":"{\"shop_id\":1234}"}]`); rec.Code != http.StatusOK {
		t.Fatalf("test message: %d %s", rec.Code, rec.Body)
	}
	if rec := push("live", `[{"tag":"100","data":"{\"p_id\":[1]}"}]`); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "[0].data.p_id") {
		t.Fatalf("bad notice: %d %s", rec.Code, rec.Body)
	}
	tg.fetcher.Round(context.Background())
	orderID := intake.OrderID(&pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: id})
	got := tg.must(t, "GET", "/v1/orders/"+orderID, "", http.StatusOK)
	if !strings.Contains(got.Body.String(), `"channel_order_id":"`+id+`"`) {
		t.Fatalf("order: %s", got.Body)
	}
	push("live", notice)
	tg.fetcher.Round(context.Background())
	douyinPlatform.mu.Lock()
	calls := douyinPlatform.calls[id]
	douyinPlatform.mu.Unlock()
	if calls != 1 {
		t.Fatalf("fetched %d times", calls)
	}
	// Douyin pushes the payment (tag 101): the order is fetched again and
	// taken as paid; that push sent again fetches nothing more.
	paidNotice := strings.Replace(notice, `"tag":"100"`, `"tag":"101"`, 1)
	for range 2 {
		if rec := push("live", paidNotice); rec.Code != http.StatusOK {
			t.Fatalf("paid push: %d %s", rec.Code, rec.Body)
		}
		tg.fetcher.Round(context.Background())
	}
	if got := tg.must(t, "GET", "/v1/orders/"+orderID, "", http.StatusOK); !strings.Contains(got.Body.String(), `"status":"paid"`) {
		t.Fatalf("after the payment push: %s", got.Body)
	}
	douyinPlatform.mu.Lock()
	calls = douyinPlatform.calls[id]
	douyinPlatform.mu.Unlock()
	if calls != 2 {
		t.Fatalf("fetched %d times, want 2 (taken, then paid)", calls)
	}
	// Douyin pushes the cancellation (tag 106): fetched again, cancelled in
	// the grid, its stock released.
	if rec := push("live", strings.Replace(notice, `"tag":"100"`, `"tag":"106"`, 1)); rec.Code != http.StatusOK {
		t.Fatalf("cancel push: %d %s", rec.Code, rec.Body)
	}
	tg.fetcher.Round(context.Background())
	if got := tg.must(t, "GET", "/v1/orders/"+orderID, "", http.StatusOK); !strings.Contains(got.Body.String(), `"status":"cancelled"`) {
		t.Fatalf("after the cancellation push: %s", got.Body)
	}
	// An order cancelled before the grid took it is not created.
	gone := "9" + id[1:]
	if rec := push("live", strings.ReplaceAll(notice, id, gone)); rec.Code != http.StatusOK {
		t.Fatalf("push of a cancelled order: %d %s", rec.Code, rec.Body)
	}
	tg.fetcher.Round(context.Background())
	tg.must(t, "GET", "/v1/orders/"+intake.OrderID(&pb.CreateOrderRequest{Channel: "douyin", ChannelOrderId: gone}), "", http.StatusNotFound)
	list := tg.must(t, "GET", "/v1/channels/fetches?state=done&limit=1000", "", http.StatusOK)
	if !strings.Contains(list.Body.String(), `"order_id":"`+id+`"`) || !strings.Contains(list.Body.String(), `"notices":6`) ||
		!strings.Contains(list.Body.String(), orderID) {
		t.Fatalf("fetches: %s", list.Body)
	}
	tg.must(t, "GET", "/v1/channels/fetches?state=later", "", http.StatusBadRequest)
}

// A platform's error answer posted as an order is refused with 422
// platform-error naming the envelope's code field, the platform's message
// in the detail; nothing is taken.
func TestChannelPushPlatformError(t *testing.T) {
	tg := startGateway(t)
	body := `{"code":50002,"msg":"业务处理失败","sub_code":"isv.business-failed:10004","sub_msg":"订单不存在","log_id":"2025","data":{}}`
	req := httptest.NewRequest("POST", "/v1/channels/douyin/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(channels.SignatureHeader, channels.SignConnector(testPOSSecret, []byte(body)))
	rec := httptest.NewRecorder()
	tg.gw.ServeHTTP(rec, req)
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusUnprocessableEntity ||
		!strings.HasSuffix(p.Type, "platform-error") || !strings.Contains(p.Detail, "订单不存在") || len(p.Errors) != 1 || p.Errors[0].Field != "code" {
		t.Fatalf("platform error: %d %s", rec.Code, rec.Body)
	}
}

// An order's adjustments are validated field by field, and the order as
// created shows them with what the buyer owes.
func TestOrderAdjustments(t *testing.T) {
	tg := startGateway(t)
	lines := `"lines":[{"sku":"ACC-1","qty":2,"unit_price":"10.00"},{"sku":"ACC-2","qty":1,"unit_price":"5.00"}]`
	order := func(id, adjustments string) string {
		return `{"channel":"douyin","channel_order_id":"` + id + `","currency":"CNY","customer":{"id":"u-adj"},` + lines + `,"adjustments":[` + adjustments + `]}`
	}
	for _, c := range []struct{ adjustments, field string }{
		{`{"kind":"fee","amount":"1.00"}`, "adjustments[0].kind"},
		{`{"kind":"tax","amount":"-1.00"}`, "adjustments[0].amount"},
		{`{"kind":"tax","amount":"1.00"},{"kind":"tax","amount":"1.0.0"}`, "adjustments[1].amount"},
		{`{"kind":"discount","amount":"1.00","line":3,"funded_by":"shop"}`, "adjustments[0].line"},
		{`{"kind":"discount","amount":"1.00"}`, "adjustments[0].funded_by"},
		{`{"kind":"shipping","amount":"1.00","funded_by":"shop"}`, "adjustments[0].funded_by"},
		{`{"kind":"discount","amount":"4.00","line":2,"funded_by":"shop"},{"kind":"discount","amount":"1.01","line":2,"funded_by":"platform"}`, "adjustments[1].amount"},
		{`{"kind":"discount","amount":"26.00","funded_by":"shop"},{"kind":"shipping","amount":"0.99"}`, "adjustments"},
		{strings.Repeat(`{"kind":"tax","amount":"0.01"},`, 64) + `{"kind":"tax","amount":"0.01"}`, "adjustments"},
	} {
		rec := tg.do("POST", "/v1/orders", order("adj-bad", c.adjustments), RoleIntake)
		var p struct {
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("%s: %d %s, want a violation of %s", c.adjustments, rec.Code, rec.Body, c.field)
		}
	}
	tg.must(t, "PUT", "/v1/skus/ACC-1/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	tg.must(t, "PUT", "/v1/skus/ACC-2/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	body := order("adj-1", `{"kind":"discount","amount":"3.00","line":1,"funded_by":"shop","detail":"coupon"},`+
		`{"kind":"discount","amount":"1.50","funded_by":"platform","detail":"red_packet"},{"kind":"tax","amount":"0.75","line":2,"detail":"VAT"},`+
		`{"kind":"shipping","amount":"8.00","detail":"post_fee"}`)
	rec := tg.must(t, "POST", "/v1/orders", body, http.StatusCreated)
	var o struct {
		ID          string           `json:"id"`
		Total       string           `json:"total"`
		AmountDue   string           `json:"amount_due"`
		Adjustments []adjustmentView `json:"adjustments"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil || o.Total != "25.00" || o.AmountDue != "29.25" || len(o.Adjustments) != 4 ||
		o.Adjustments[2] != (adjustmentView{Kind: "tax", Amount: "0.75", Line: 2, Detail: "VAT"}) {
		t.Fatalf("created: %s", rec.Body)
	}
	got := tg.must(t, "GET", "/v1/orders/"+o.ID, "", http.StatusOK)
	if !strings.Contains(got.Body.String(), `"amount_due":"29.25"`) || !strings.Contains(got.Body.String(), `{"kind":"shipping","amount":"8.00","line":0,"detail":"post_fee"}`) {
		t.Fatalf("read: %s", got.Body)
	}
	// The same key with other adjustments is a different request.
	other := strings.Replace(body, `"amount":"8.00"`, `"amount":"9.00"`, 1)
	if rec := tg.do("POST", "/v1/orders", other, RoleIntake); rec.Code != http.StatusConflict {
		t.Fatalf("a retry with other adjustments: %d %s", rec.Code, rec.Body)
	}
}

// A push of an order taken before with another body is refused (409),
// unless the platform moved the order on in a way the grid follows: a
// Douyin order pushed unpaid, then cancelled, is that order, cancelled
// (200); a till sale pushed again with another quantity is a conflict.
func TestChannelPushOfAChangedOrder(t *testing.T) {
	tg := startGateway(t)
	tg.must(t, "PUT", "/v1/skus/ACC-2/stock/WH-ACC", `{"on_hand":100}`, http.StatusOK)
	push := func(ch, body string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/channels/"+ch+"/orders", strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		tg.gw.ServeHTTP(rec, req)
		return rec
	}
	pos := func(body string) *httptest.ResponseRecorder {
		return push("pos", body, channels.SignatureHeader, channels.SignConnector(testPOSSecret, []byte(body)))
	}
	sale := posSale("R-GW-CHG", "ACC-2", 1)
	if rec := pos(sale); rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"status":"paid"`) {
		t.Fatalf("a till sale is taken paid: %d %s", rec.Code, rec.Body)
	}
	if rec := pos(posSale("R-GW-CHG", "ACC-2", 2)); rec.Code != http.StatusConflict {
		t.Fatalf("a changed till sale: %d %s", rec.Code, rec.Body)
	}

	id := fmt.Sprint(4781320682408000000 + time.Now().UnixNano()%1_000_000)
	douyin := func(status int) *httptest.ResponseRecorder {
		body := fmt.Sprintf(`{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":%q,"order_status":%d,"create_time":%d,"pay_time":0,
 "doudian_open_id":"1@#chg","post_addr":{"province":{"name":"上海市"},"city":{"name":"上海市"},"town":{"name":"浦东新区"},"detail":"碧波路 1 号"},
 "sku_order_list":[{"order_id":"%s1","code":"ACC-2","item_num":1,"origin_amount":1990,"sum_amount":1990}]}}}`, id, status, time.Now().Add(-time.Minute).Unix(), id)
		return push("douyin", body, "event-sign", channels.SignDouyin("7012345678", testPOSSecret, "", []byte(body)))
	}
	if rec := douyin(1); rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"status":"pending_payment"`) {
		t.Fatalf("unpaid douyin order: %d %s", rec.Code, rec.Body)
	}
	if rec := douyin(4); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"cancelled"`) {
		t.Fatalf("the same order cancelled at the platform: %d %s", rec.Code, rec.Body)
	}
	if rec := douyin(4); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"cancelled"`) {
		t.Fatalf("the cancellation pushed again: %d %s", rec.Code, rec.Body)
	}
}
