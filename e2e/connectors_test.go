package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/intake"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// fakePlatforms answers the Taobao TOP router (taobao.trades.sold.increment.get
// and taobao.trade.fullinfo.get) and Douyin's open API (order.orderDetail)
// in their documented shapes, from a list of changed trades.
type fakePlatforms struct {
	mu      sync.Mutex
	changes []fakeChange
	// windows are the [start_modified, end_modified] of each first page asked.
	windows [][2]time.Time
	details map[string]int
}

type fakeChange struct {
	at  time.Time
	tid string
}

var beijingZone = time.FixedZone("CST", 8*3600)

func (p *fakePlatforms) change(tid string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changes = append(p.changes, fakeChange{at: at, tid: tid})
}

func (p *fakePlatforms) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if strings.HasPrefix(r.URL.Path, "/order/batchDecrypt") {
		var param struct {
			Infos []struct {
				AuthID     string `json:"auth_id"`
				CipherText string `json:"cipher_text"`
			} `json:"cipher_infos"`
		}
		_ = json.Unmarshal([]byte(r.Form.Get("param_json")), &param)
		plain := map[string]string{"#张#QUJD==*CgkI#1##": "张三", "$138$QUJD==*CgkI$1$$": "13812345678", "#碧波路#QUJE==*CgkI#1##": "碧波路 690 号"}
		var infos []string
		for _, in := range param.Infos {
			infos = append(infos, fmt.Sprintf(`{"auth_id":%q,"cipher_text":%q,"decrypt_text":%q,"err_no":0,"err_msg":""}`, in.AuthID, in.CipherText, plain[in.CipherText]))
		}
		fmt.Fprintf(w, `{"code":10000,"msg":"success","data":{"decrypt_infos":[%s],"custom_err":{"err_code":0,"err_msg":""}}}`, strings.Join(infos, ","))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/order/orderDetail") {
		var param struct {
			ID string `json:"shop_order_id"`
		}
		_ = json.Unmarshal([]byte(r.Form.Get("param_json")), &param)
		p.details["douyin/"+param.ID]++
		fmt.Fprintf(w, `{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"%[1]s","order_status":2,"create_time":%[2]d,
 "doudian_open_id":"1@#e2e%[1]s","mask_post_receiver":"张**","mask_post_tel":"138****5678",
 "encrypt_post_receiver":"#张#QUJD==*CgkI#1##","encrypt_post_tel":"$138$QUJD==*CgkI$1$$",
 "post_addr":{"province":{"name":"上海市"},"city":{"name":"上海市"},"town":{"name":"浦东新区"},"detail":"碧波路***号","encrypt_detail":"#碧波路#QUJE==*CgkI#1##"},
 "sku_order_list":[{"order_id":"%[1]s1","sku_id":1742939920361492,"code":"E2E-CONN-1","item_num":2,"origin_amount":1990,"sum_amount":3980,"pay_amount":3980}]}}}`,
			param.ID, time.Now().Add(-time.Minute).Unix())
		return
	}
	switch r.Form.Get("method") {
	case "taobao.trades.sold.increment.get":
		from, _ := time.ParseInLocation(time.DateTime, r.Form.Get("start_modified"), beijingZone)
		to, _ := time.ParseInLocation(time.DateTime, r.Form.Get("end_modified"), beijingZone)
		pageNo, _ := strconv.Atoi(r.Form.Get("page_no"))
		size, _ := strconv.Atoi(r.Form.Get("page_size"))
		if pageNo == 1 {
			p.windows = append(p.windows, [2]time.Time{from, to})
		}
		var tids []string
		for _, c := range p.changes {
			if !c.at.Before(from) && !c.at.After(to) {
				tids = append(tids, c.tid)
			}
		}
		lo := min((pageNo-1)*size, len(tids))
		hi := min(lo+size, len(tids))
		var trades []string
		for _, tid := range tids[lo:hi] {
			trades = append(trades, `{"tid":`+tid+`}`)
		}
		fmt.Fprintf(w, `{"trades_sold_increment_get_response":{"trades":{"trade":[%s]},"has_next":%t,"total_results":%d}}`,
			strings.Join(trades, ","), hi < len(tids), len(tids))
	case "taobao.trade.fullinfo.get":
		tid := r.Form.Get("tid")
		p.details["tmall/"+tid]++
		fmt.Fprintf(w, `{"trade_fullinfo_get_response":{"trade":{"tid":%s,"status":"WAIT_SELLER_SEND_GOODS","created":%q,"pay_time":%q,
 "payment":"20.00","total_fee":"20.00","post_fee":"0.00","buyer_open_uid":"AAE2E%s","receiver_name":"李*","receiver_mobile":"138****0000",
 "receiver_state":"广东省","receiver_city":"深圳市","receiver_district":"南山区","receiver_address":"科技园***",
 "orders":{"order":[{"oid":%s,"sku_id":"5123456789012","outer_sku_id":"E2E-CONN-1","num":2,"title":"抽纸","price":"10.00","total_fee":"20.00","payment":"20.00"}]}}}}`,
			tid, time.Now().In(beijingZone).Add(-time.Minute).Format(time.DateTime), time.Now().In(beijingZone).Format(time.DateTime), tid, tid)
	default:
		fmt.Fprint(w, `{"error_response":{"code":22,"msg":"Invalid method","sub_code":"isv.invalid-method"}}`)
	}
}

func (p *fakePlatforms) detailCalls(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.details[key]
}

// waitOrder waits until an order exists.
func waitOrder(t *testing.T, n *node, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := do(t.Context(), "GET", n.http+"/v1/orders/"+id, nil)
		if err == nil && r.code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s not taken within %s; fetches: %s", id, within, n.must("GET", "/v1/channels/fetches", nil, 200).body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A connector pulls a Taobao shop's changed trades in windows from a cursor
// kept in the grid: every trade becomes one order; after kill -9 the node
// resumes from its cursor (less the overlap), not from its start lookback,
// and takes what changed meanwhile, each trade once. A Douyin push naming
// an order is acknowledged as Douyin asks and the order fetched from
// order.orderDetail.
func TestConnectorPullsAcrossRestartAndPushFetches(t *testing.T) {
	plat := &fakePlatforms{details: map[string]int{}}
	srv := httptest.NewServer(plat)
	defer srv.Close()
	start := time.Now()
	for i := range 3 {
		plat.change(fmt.Sprint(3712209845566100000+i), start.Add(-time.Duration(40-10*i)*time.Minute))
	}
	file := filepath.Join(t.TempDir(), "channels.yaml")
	conf := fmt.Sprintf(`connections:
  - channel: tmall
    name: flagship
    secret: tb-app-secret
    api:
      base_url: %[1]s/router/rest
      app_key: "12345678"
      access_token: tb-session
      pull: {interval_ms: 1000, overlap_ms: 60000, start_lookback_ms: 3600000, window_max_ms: 1800000, page_size: 2}
  - channel: douyin
    name: live
    app_key: "7012345678"
    secret: dy-secret
    api:
      base_url: %[1]s
      access_token: dy-token
`, srv.URL)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "--channels-file", file)
	n.start()
	n.must("PUT", "/v1/skus/E2E-CONN-1/stock/WH-CONN", map[string]any{"on_hand": 1000}, 200)
	orderOf := func(channel, id string) string {
		return intake.OrderID(&pb.CreateOrderRequest{Channel: channel, ChannelOrderId: id})
	}
	for i := range 3 {
		waitOrder(t, n, orderOf("tmall", fmt.Sprint(3712209845566100000+i)), 60*time.Second)
	}
	var cs struct {
		Connectors []struct {
			Channel    string `json:"channel"`
			Connection string `json:"connection"`
			Cursor     string `json:"cursor"`
			OrdersSeen uint64 `json:"orders_seen"`
		} `json:"connectors"`
	}
	n.must("GET", "/v1/channels/connectors", nil, 200).json(t, &cs)
	if len(cs.Connectors) != 1 || cs.Connectors[0].Channel != "tmall" || cs.Connectors[0].OrdersSeen < 3 {
		t.Fatalf("connectors: %+v", cs)
	}
	cursor, err := time.Parse(time.RFC3339Nano, cs.Connectors[0].Cursor)
	if err != nil {
		t.Fatalf("cursor %q: %v", cs.Connectors[0].Cursor, err)
	}

	// Douyin pushes an order by id: acknowledged, fetched, taken.
	dyID := fmt.Sprint(4781320682406000000 + time.Now().UnixNano()%1_000_000)
	notice := []byte(`[{"tag":"100","msg_id":"7061459375519697165","data":"{\"p_id\":` + dyID + `,\"s_ids\":[` + dyID + `],\"shop_id\":1234}"}]`)
	push := func() response {
		r, err := do(t.Context(), "POST", n.http+"/v1/channels/douyin/orders?connection=live", json.RawMessage(notice),
			"event-sign", channels.SignDouyin("7012345678", "dy-secret", "", notice), "app-id", "7012345678")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := push(); r.code != 200 || string(r.body) != `{"code":0,"msg":"success"}` {
		t.Fatalf("douyin push: %d %s", r.code, r.body)
	}
	waitOrder(t, n, orderOf("douyin", dyID), 30*time.Second)
	var o struct {
		Lines []struct {
			Qty       int64  `json:"qty"`
			UnitPrice string `json:"unit_price"`
		} `json:"lines"`
	}
	n.must("GET", "/v1/orders/"+orderOf("douyin", dyID), nil, 200).json(t, &o)
	if len(o.Lines) != 1 || o.Lines[0].Qty != 2 || o.Lines[0].UnitPrice != "19.90" {
		t.Fatalf("douyin order as fetched: %+v", o)
	}

	// The receiver was opened through order.batchDecrypt: the customer is
	// identified by phone, so a second order under another buyer id is the
	// same customer.
	var full struct {
		Customer struct {
			ID    string `json:"id"`
			Phone string `json:"phone"`
		} `json:"customer"`
	}
	n.must("GET", "/v1/orders/"+orderOf("douyin", dyID)+"?include_personal=true", nil, 200).json(t, &full)
	if full.Customer.Phone != "13812345678" {
		t.Fatalf("receiver not decrypted: %+v", full.Customer)
	}
	dyID2 := fmt.Sprint(4781320682407000000 + time.Now().UnixNano()%1_000_000)
	notice2 := []byte(`[{"tag":"100","msg_id":"7061459375519697166","data":"{\"p_id\":` + dyID2 + `}"}]`)
	if r, err := do(t.Context(), "POST", n.http+"/v1/channels/douyin/orders?connection=live", json.RawMessage(notice2),
		"event-sign", channels.SignDouyin("7012345678", "dy-secret", "", notice2)); err != nil || r.code != 200 {
		t.Fatalf("second douyin push: %v %+v", err, r)
	}
	waitOrder(t, n, orderOf("douyin", dyID2), 30*time.Second)
	var second struct {
		Customer struct {
			ID string `json:"id"`
		} `json:"customer"`
	}
	n.must("GET", "/v1/orders/"+orderOf("douyin", dyID2), nil, 200).json(t, &second)
	if second.Customer.ID != full.Customer.ID {
		t.Fatalf("two buyer ids with one decrypted phone are customers %s and %s", full.Customer.ID, second.Customer.ID)
	}

	// kill -9; trades change meanwhile; the node resumes from its cursor.
	n.kill()
	plat.mu.Lock()
	asked := len(plat.windows)
	plat.mu.Unlock()
	for i := 3; i < 5; i++ {
		plat.change(fmt.Sprint(3712209845566100000+i), time.Now())
	}
	plat.change(fmt.Sprint(3712209845566100000), time.Now()) // changed again: taken once
	n.start()
	for i := 3; i < 5; i++ {
		waitOrder(t, n, orderOf("tmall", fmt.Sprint(3712209845566100000+i)), 60*time.Second)
	}
	plat.mu.Lock()
	resumed := plat.windows[asked]
	plat.mu.Unlock()
	if resumed[0].Before(cursor.Add(-time.Minute - time.Second)) {
		t.Fatalf("after the restart the connector asked from %s, before its cursor %s less the overlap", resumed[0], cursor)
	}
	if again := push(); again.code != 200 {
		t.Fatalf("douyin push again: %d %s", again.code, again.body)
	}
	time.Sleep(1500 * time.Millisecond) // a worker round and a pull
	var fs struct {
		Fetches []struct {
			Channel     string `json:"channel"`
			OrderID     string `json:"order_id"`
			State       string `json:"state"`
			Notices     int    `json:"notices"`
			GridOrderID string `json:"grid_order_id"`
		} `json:"fetches"`
	}
	n.must("GET", "/v1/channels/fetches", nil, 200).json(t, &fs)
	var done []string
	for _, f := range fs.Fetches {
		if f.State != "done" {
			t.Fatalf("fetch not done: %+v", f)
		}
		done = append(done, f.Channel+"/"+f.OrderID)
		if f.GridOrderID != orderOf(f.Channel, f.OrderID) {
			t.Fatalf("fetch became %s, want %s", f.GridOrderID, orderOf(f.Channel, f.OrderID))
		}
	}
	slices.Sort(done)
	if len(done) != 7 || len(slices.Compact(slices.Clone(done))) != 7 {
		t.Fatalf("fetches %v, want 5 trades and 2 douyin orders, each once", done)
	}
	if calls := plat.detailCalls("douyin/" + dyID); calls != 1 {
		t.Fatalf("douyin order fetched %d times", calls)
	}
	q := url.Values{"state": {"failed"}}
	if body := n.must("GET", "/v1/channels/fetches?"+q.Encode(), nil, 200).body; !strings.Contains(string(body), `"fetches":[]`) {
		t.Fatalf("failed fetches: %s", body)
	}
}
