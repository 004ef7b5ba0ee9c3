package platforms

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The fake platforms below check requests as each platform's documentation
// describes them, written apart from the client's signers.

const (
	testKey    = "app-key-7"
	testSecret = "app-secret-7"
	testToken  = "shop-token-7"
)

var testStart = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC) // 10:00 in Beijing

// fakeClock is the clients' clock: Sleep advances it at once.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
	// onSleep, when set, runs before each sleep (a test cancels there).
	onSleep func()
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if f.onSleep != nil {
		f.onSleep()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	f.slept = append(f.slept, d)
	return nil
}

func (f *fakeClock) total() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum time.Duration
	for _, d := range f.slept {
		sum += d
	}
	return sum
}

type answer struct {
	status int
	body   string
}

// responder answers the nth call (from 0) of a method.
type responder func(method string, params map[string]any, n int) answer

type fakeServer struct {
	t     *testing.T
	tp    *testPlatform
	clock *fakeClock
	srv   *httptest.Server

	mu      sync.Mutex
	counts  map[string]int
	respond responder
	tokens  int    // WeChat access tokens issued
	current string // WeChat's valid access token
}

func (s *fakeServer) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, params, ok := s.tp.parse(s, r)
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		_, _ = io.WriteString(w, s.tp.sigError)
		return
	}
	s.mu.Lock()
	n := s.counts[method]
	s.counts[method]++
	s.mu.Unlock()
	a := s.respond(method, params, n)
	if a.status != 0 {
		w.WriteHeader(a.status)
	}
	_, _ = io.WriteString(w, a.body)
}

// checkTimestamp checks a "yyyy-MM-dd HH:mm:ss" Beijing timestamp against the clock.
func (s *fakeServer) checkTimestamp(ts string) {
	at, err := time.ParseInLocation("2006-01-02 15:04:05", ts, time.FixedZone("UTC+8", 8*3600))
	if err != nil {
		s.t.Errorf("timestamp %q: %v", ts, err)
		return
	}
	if d := at.Sub(s.clock.Now()); d > time.Second || d < -time.Second {
		s.t.Errorf("timestamp %q is %s from the clock", ts, d)
	}
}

func (s *fakeServer) checkEpoch(ts string) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec != s.clock.Now().Unix() {
		s.t.Errorf("timestamp %q, want %d", ts, s.clock.Now().Unix())
	}
}

func decodeParams(s string) map[string]any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

func formParams(v url.Values) map[string]any {
	m := map[string]any{}
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

// sortedPairs is name+value of every form value but sign, sorted by name.
func sortedPairs(v url.Values) string {
	var keys []string
	for k := range v {
		if k != "sign" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += k + v.Get(k)
	}
	return s
}

func upperMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func num(v any) int {
	switch x := v.(type) {
	case json.Number:
		n, _ := strconv.Atoi(x.String())
		return n
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return -1
}

// testPlatform is one platform as its documentation describes it.
type testPlatform struct {
	channel string
	// parse checks the request (signature, public parameters) and returns
	// its method and business parameters; ok false: the signature is wrong.
	parse                    func(s *fakeServer, r *http.Request) (method string, params map[string]any, ok bool)
	sigError                 string
	detailMethod, listMethod string
	orderID                  string
	detail                   string
	// pageIndex is the page (from 0) a list request asks for.
	pageIndex func(params map[string]any) int
	// list is page idx of a listing of total orders: ids, and whether it
	// is the last; params are the request's (some platforms count only
	// when asked).
	list               func(idx int, ids []string, last bool, total int, params map[string]any) string
	throttle, notFound string
	failure            func(msg string) string
	malformedList      string
}

var listIDs = []string{"1001", "1002", "1003", "1004", "1005"}

func pageOf(idx int) ([]string, bool) { return pageIn(listIDs, idx) }

// pageIn is page idx (from 0) of all, two a page, and whether it is the last.
func pageIn(all []string, idx int) ([]string, bool) {
	lo, hi := 2*idx, min(2*idx+2, len(all))
	if lo >= len(all) {
		return nil, true
	}
	return all[lo:hi], hi == len(all)
}

func quoted(ids []string, asNumbers bool, field string) string {
	var parts []string
	for _, id := range ids {
		v := strconv.Quote(id)
		if asNumbers {
			v = id
		}
		if field != "" {
			v = fmt.Sprintf("{%q:%s}", field, v)
		}
		parts = append(parts, v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

var douyinTP = &testPlatform{
	channel: "douyin",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		q := r.URL.Query()
		method := q.Get("method")
		if want := "/" + strings.ReplaceAll(method, ".", "/"); r.URL.Path != want || r.Method != http.MethodPost {
			s.t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, want)
		}
		body, _ := io.ReadAll(r.Body)
		if string(body) != q.Get("param_json") {
			s.t.Errorf("body %s is not param_json %s", body, q.Get("param_json"))
		}
		s.checkTimestamp(q.Get("timestamp"))
		if q.Get("v") != "2" || q.Get("sign_method") != "hmac-sha256" || q.Get("access_token") != testToken || q.Get("app_key") != testKey {
			s.t.Errorf("public parameters %v", q)
		}
		// The documented sign string, HMAC-SHA256 keyed by the app secret.
		str := testSecret + "app_key" + q.Get("app_key") + "method" + method + "param_json" + q.Get("param_json") +
			"timestamp" + q.Get("timestamp") + "v" + q.Get("v") + testSecret
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(str))
		params := decodeParams(q.Get("param_json"))
		if params == nil {
			s.t.Errorf("param_json %q is not a JSON object", q.Get("param_json"))
		}
		return method, params, q.Get("sign") == hex.EncodeToString(mac.Sum(nil))
	},
	sigError:     `{"code":40004,"msg":"参数不合法","sub_code":"isv.signature-invalid","sub_msg":"签名校验失败","data":null,"log_id":"20260301"}`,
	detailMethod: "order.orderDetail", listMethod: "order.searchList", orderID: "6920164531297438473",
	detail: `{"code":10000,"msg":"success","sub_code":"","sub_msg":"","log_id":"2026","data":{"shop_order_detail":{"order_id":"6920164531297438473","order_status":2}}}`,
	pageIndex: func(p map[string]any) int {
		if num(p["size"]) != 2 || p["update_time_start"] == nil || p["update_time_end"] == nil {
			panic(fmt.Sprintf("douyin list params %v", p))
		}
		return num(p["page"])
	},
	list: func(idx int, ids []string, last bool, total int, _ map[string]any) string {
		return fmt.Sprintf(`{"code":10000,"msg":"success","data":{"shop_order_list":%s,"total":%d,"page":%d,"size":2}}`,
			quoted(ids, false, "order_id"), total, idx)
	},
	throttle: `{"code":90000,"msg":"流量限制","sub_code":"isp.flow-limit","sub_msg":"请求过于频繁"}`,
	notFound: `{"code":50002,"msg":"业务处理失败","sub_code":"isv.business-failed:100003","sub_msg":"订单不存在"}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"code":40003,"msg":"参数错误","sub_code":"isv.parameter-invalid","sub_msg":%q}`, msg)
	},
	malformedList: `{"code":10000,"msg":"success","data":{"shop_order_list":[{"order_id":"1"}],"total":"many"}}`,
}

var taobaoTP = &testPlatform{
	channel: "tmall",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			s.t.Errorf("%s: %v", r.Method, err)
		}
		f := r.PostForm
		s.checkTimestamp(f.Get("timestamp"))
		if f.Get("format") != "json" || f.Get("v") != "2.0" || f.Get("sign_method") != "md5" || f.Get("session") != testToken || f.Get("app_key") != testKey {
			s.t.Errorf("public parameters %v", f)
		}
		return f.Get("method"), formParams(f), f.Get("sign") == upperMD5(testSecret+sortedPairs(f)+testSecret)
	},
	sigError:     `{"error_response":{"code":25,"msg":"Invalid signature","request_id":"r1"}}`,
	detailMethod: "taobao.trade.fullinfo.get", listMethod: "taobao.trades.sold.increment.get", orderID: "4231864412907365817",
	detail: `{"trade_fullinfo_get_response":{"trade":{"tid":4231864412907365817,"status":"WAIT_SELLER_SEND_GOODS"},"request_id":"r2"}}`,
	pageIndex: func(p map[string]any) int {
		if p["use_has_next"] != "true" && p["use_has_next"] != "false" || p["page_size"] != "2" || p["start_modified"] == "" {
			panic(fmt.Sprintf("taobao list params %v", p))
		}
		return num(p["page_no"]) - 1
	},
	list: func(idx int, ids []string, last bool, total int, p map[string]any) string {
		// use_has_next=true: has_next, no total_results.
		count := fmt.Sprintf(`"has_next":%t`, !last)
		if p["use_has_next"] == "false" {
			count = fmt.Sprintf(`"total_results":%d`, total)
		}
		trades := fmt.Sprintf(`"trades":{"trade":%s},`, quoted(ids, true, "tid"))
		if len(ids) == 0 {
			trades = "" // absent when no trade changed
		}
		return fmt.Sprintf(`{"trades_sold_increment_get_response":{%s%s}}`, trades, count)
	},
	throttle: `{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-api-access-count","sub_msg":"This ban will last for 1 more seconds"}}`,
	notFound: `{"error_response":{"code":15,"msg":"Remote service error","sub_code":"isv.trade-not-exist","sub_msg":"交易不存在"}}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"error_response":{"code":40,"msg":"Missing required arguments","sub_code":"isv.missing-parameter","sub_msg":%q}}`, msg)
	},
	malformedList: `{"trades_sold_increment_get_response":{"trades":{"trade":[{"tid":1}]}}}`,
}

var jdTP = &testPlatform{
	channel: "jd",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		if err := r.ParseForm(); err != nil {
			s.t.Error(err)
		}
		f := r.Form
		s.checkTimestamp(f.Get("timestamp"))
		if f.Get("v") != "2.0" || f.Get("access_token") != testToken || f.Get("app_key") != testKey {
			s.t.Errorf("public parameters %v", f)
		}
		params := decodeParams(f.Get("360buy_param_json"))
		if params == nil {
			s.t.Errorf("360buy_param_json %q", f.Get("360buy_param_json"))
		}
		return f.Get("method"), params, f.Get("sign") == upperMD5(testSecret+sortedPairs(f)+testSecret)
	},
	sigError:     `{"error_response":{"code":"14","zh_desc":"签名无效","en_desc":"Invalid signature"}}`,
	detailMethod: "jingdong.pop.order.get", listMethod: "jingdong.pop.order.search", orderID: "230045678901",
	detail: `{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"apiResult":{"success":true},"orderInfo":{"orderId":230045678901,"orderState":"WAIT_SELLER_STOCK_OUT"}}}}`,
	pageIndex: func(p map[string]any) int {
		if p["page_size"] != "2" || p["start_date"] == nil {
			panic(fmt.Sprintf("jd list params %v", p))
		}
		return num(p["page"]) - 1
	},
	list: func(idx int, ids []string, last bool, total int, _ map[string]any) string {
		return fmt.Sprintf(`{"jingdong_pop_order_search_responce":{"code":"0","searchorderinfo_result":{"apiResult":{"success":true},"orderInfoList":%s,"orderTotal":%d}}}`,
			quoted(ids, true, "orderId"), total)
	},
	throttle: `{"error_response":{"code":"34","zh_desc":"调用次数超限","en_desc":"call limited"}}`,
	notFound: `{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"apiResult":{"success":true},"orderInfo":null}}}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"error_response":{"code":"61","zh_desc":%q,"en_desc":"bad parameter"}}`, msg)
	},
	malformedList: `{"jingdong_pop_order_search_responce":{"code":"0","searchorderinfo_result":{"orderInfoList":[{"orderId":null}],"orderTotal":3}}}`,
}

var pddTP = &testPlatform{
	channel: "pinduoduo",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			s.t.Errorf("%s: %v", r.Method, err)
		}
		f := r.PostForm
		s.checkEpoch(f.Get("timestamp"))
		if f.Get("data_type") != "JSON" || f.Get("version") != "V1" || f.Get("access_token") != testToken || f.Get("client_id") != testKey {
			s.t.Errorf("public parameters %v", f)
		}
		return f.Get("type"), formParams(f), f.Get("sign") == upperMD5(testSecret+sortedPairs(f)+testSecret)
	},
	sigError:     `{"error_response":{"error_code":20004,"error_msg":"签名错误","request_id":"r"}}`,
	detailMethod: "pdd.order.information.get", listMethod: "pdd.order.number.list.increment.get", orderID: "261111-583920174655321",
	detail: `{"order_info_get_response":{"order_info":{"order_sn":"261111-583920174655321","order_status":1},"request_id":"r"}}`,
	pageIndex: func(p map[string]any) int {
		if p["use_has_next"] != "true" && p["use_has_next"] != "false" || p["page_size"] != "2" || p["is_lucky_flag"] != "0" || p["order_status"] != "5" {
			panic(fmt.Sprintf("pdd list params %v", p))
		}
		return num(p["page"]) - 1
	},
	list: func(idx int, ids []string, last bool, total int, p map[string]any) string {
		// use_has_next=true: has_next, no total_count.
		count := fmt.Sprintf(`"has_next":%t`, !last)
		if p["use_has_next"] == "false" {
			count = fmt.Sprintf(`"total_count":%d`, total)
		}
		return fmt.Sprintf(`{"order_sn_increment_get_response":{"order_sn_list":%s,%s}}`, quoted(ids, false, "order_sn"), count)
	},
	throttle: `{"error_response":{"error_code":70031,"error_msg":"调用过于频繁,请调整调用频率","request_id":"r"}}`,
	notFound: `{"error_response":{"error_code":10000,"error_msg":"参数错误","sub_code":"order.not.exist","sub_msg":"订单不存在"}}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"error_response":{"error_code":10000,"error_msg":%q,"request_id":"r"}}`, msg)
	},
	malformedList: `{"order_sn_increment_get_response":{"order_sn_list":"none","has_next":true}}`,
}

var xhsTP = &testPlatform{
	channel: "xiaohongshu",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		body, _ := io.ReadAll(r.Body)
		p := decodeParams(string(body))
		if p == nil || r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			s.t.Errorf("%s %s %s", r.Method, r.Header.Get("Content-Type"), body)
			return "", nil, false
		}
		str := func(k string) string { v, _ := p[k].(string); return v }
		s.checkEpoch(str("timestamp"))
		if str("version") != "2.0" || str("accessToken") != testToken || str("appId") != testKey {
			s.t.Errorf("public parameters %v", p)
		}
		// The documented sign: md5(method?appId=…&timestamp=…&version=… + appSecret).
		sum := md5.Sum([]byte(str("method") + "?appId=" + str("appId") + "&timestamp=" + str("timestamp") + "&version=" + str("version") + testSecret))
		return str("method"), p, str("sign") == hex.EncodeToString(sum[:])
	},
	sigError:     `{"success":false,"error_code":-100,"error_msg":"签名错误"}`,
	detailMethod: "order.getOrderDetail", listMethod: "order.getOrderList", orderID: "P712345678901234",
	detail: `{"success":true,"code":0,"msg":"成功","data":{"orderId":"P712345678901234","orderStatus":4}}`,
	pageIndex: func(p map[string]any) int {
		if num(p["timeType"]) != 2 || num(p["pageSize"]) != 2 || p["startTime"] == nil {
			panic(fmt.Sprintf("xhs list params %v", p))
		}
		return num(p["pageNo"]) - 1
	},
	list: func(idx int, ids []string, last bool, total int, _ map[string]any) string {
		return fmt.Sprintf(`{"success":true,"code":0,"data":{"orderList":%s,"total":%d,"pageNo":%d,"maxPageNo":%d}}`,
			quoted(ids, false, "orderId"), total, idx+1, (total+1)/2)
	},
	throttle: `{"success":false,"error_code":-1,"error_msg":"请求过于频繁,请稍后再试"}`,
	notFound: `{"success":false,"code":-1,"msg":"订单不存在"}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"success":false,"error_code":-2,"error_msg":%q}`, msg)
	},
	malformedList: `{"success":true,"data":{"orderList":[{"orderId":""}],"maxPageNo":2}}`,
}

var wechatTP = &testPlatform{
	channel: "wechat",
	parse: func(s *fakeServer, r *http.Request) (string, map[string]any, bool) {
		q := r.URL.Query()
		if r.URL.Path == "/cgi-bin/token" {
			if r.Method != http.MethodGet || q.Get("grant_type") != "client_credential" || q.Get("appid") != testKey {
				s.t.Errorf("token request %s %v", r.Method, q)
			}
			return r.URL.Path, nil, q.Get("secret") == testSecret
		}
		s.mu.Lock()
		current := s.current
		s.mu.Unlock()
		if q.Get("access_token") != current || r.Method != http.MethodPost {
			s.t.Errorf("%s access_token %q, want %q", r.Method, q.Get("access_token"), current)
		}
		body, _ := io.ReadAll(r.Body)
		p := decodeParams(string(body))
		if r.URL.Path == "/channels/ec/order/get" {
			// order_id is sent as a JSON number written from its text.
			if n, ok := p["order_id"].(json.Number); !ok || n.String() != "3705115058471208928" && n.String() != "1" {
				s.t.Errorf("order_id in %s", body)
			}
		}
		return r.URL.Path, p, true
	},
	sigError:     `{"errcode":40125,"errmsg":"invalid appsecret"}`,
	detailMethod: "/channels/ec/order/get", listMethod: "/channels/ec/order/list/get", orderID: "3705115058471208928",
	detail: `{"errcode":0,"errmsg":"ok","order":{"order_id":3705115058471208928,"status":20,"create_time":1772330400}}`,
	pageIndex: func(p map[string]any) int {
		r, _ := p["update_time_range"].(map[string]any)
		if r == nil || r["start_time"] == nil || num(p["page_size"]) != 2 {
			panic(fmt.Sprintf("wechat list params %v", p))
		}
		key, _ := p["next_key"].(string)
		if key == "" {
			return 0
		}
		return num(strings.TrimPrefix(key, "k"))
	},
	list: func(idx int, ids []string, last bool, _ int, _ map[string]any) string {
		return fmt.Sprintf(`{"errcode":0,"errmsg":"ok","order_id_list":%s,"next_key":"k%d","has_more":%t}`, quoted(ids, true, ""), idx+1, !last)
	},
	throttle: `{"errcode":45011,"errmsg":"api minute-quota reach limit  mustslower  retry next minute"}`,
	notFound: `{"errcode":100002,"errmsg":"order not exist"}`,
	failure: func(msg string) string {
		return fmt.Sprintf(`{"errcode":47001,"errmsg":%q}`, msg)
	},
	malformedList: `{"errcode":0,"errmsg":"ok","order_id_list":[1,2],"has_more":true}`,
}

var allTP = []*testPlatform{douyinTP, taobaoTP, jdTP, pddTP, xhsTP, wechatTP}

// setup starts tp's fake platform and a client for it.
func setup(t *testing.T, tp *testPlatform, secret string, tweak func(*channels.API, *Options)) (*Client, *fakeServer) {
	t.Helper()
	clock := &fakeClock{t: testStart}
	s := &fakeServer{t: t, tp: tp, clock: clock, counts: map[string]int{}}
	s.respond = s.documented
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	api := &channels.API{BaseURL: s.srv.URL, AccessToken: testToken, Pull: &channels.Pull{PageSize: 2}}
	opts := Options{Logger: slog.New(slog.DiscardHandler), Now: clock.Now, Sleep: clock.Sleep, Jitter: func(limit time.Duration) time.Duration { return limit / 2 }}
	if tweak != nil {
		tweak(api, &opts)
	}
	conn := &channels.Connection{Channel: tp.channel, Name: "shop-1", Secret: secret, AppKey: testKey, AppID: testKey, API: api}
	c, err := New(conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// documented answers as the platform does when all is well.
func (s *fakeServer) documented(method string, params map[string]any, n int) answer {
	switch method {
	case "/cgi-bin/token":
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tokens++
		s.current = fmt.Sprintf("wx-token-%d", s.tokens)
		return answer{body: fmt.Sprintf(`{"access_token":%q,"expires_in":7200}`, s.current)}
	case s.tp.detailMethod:
		return answer{body: s.tp.detail}
	case s.tp.listMethod:
		idx := s.tp.pageIndex(params)
		ids, last := pageOf(idx)
		return answer{body: s.tp.list(idx, ids, last, len(listIDs), params)}
	}
	s.t.Errorf("unexpected method %q", method)
	return answer{status: 404}
}

// override answers method with f, the rest as documented.
func (s *fakeServer) override(method string, f func(n int) answer) {
	s.respond = func(m string, p map[string]any, n int) answer {
		if m == method {
			return f(n)
		}
		return s.documented(m, p, n)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(&channels.Connection{Channel: "douyin"}, Options{}); err == nil {
		t.Error("a connection without api settings: no error")
	}
	_, err := New(&channels.Connection{Channel: "shopify", Secret: "s", AppKey: "k", API: &channels.API{BaseURL: "http://x"}}, Options{})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("shopify: %v, want ErrUnsupported", err)
	}
	for _, tp := range allTP {
		if _, err := New(&channels.Connection{Channel: tp.channel, Secret: "s", AppKey: "k", AppID: "k", API: &channels.API{BaseURL: "http://x"}}, Options{}); err != nil {
			t.Errorf("%s: %v", tp.channel, err)
		}
	}
}

func TestPlatforms(t *testing.T) {
	ctx := context.Background()
	for _, tp := range allTP {
		t.Run(tp.channel, func(t *testing.T) {
			t.Run("signature refused", func(t *testing.T) {
				c, _ := setup(t, tp, "wrong-secret", nil)
				_, err := c.OrderDetail(ctx, tp.orderID)
				var ae *APIError
				if !errors.Is(err, ErrAuth) || !errors.As(err, &ae) || ae.Channel != tp.channel {
					t.Fatalf("err %v, want an *APIError wrapping ErrAuth", err)
				}
			})
			t.Run("detail", func(t *testing.T) {
				reg := prometheus.NewRegistry()
				c, s := setup(t, tp, testSecret, func(_ *channels.API, o *Options) { o.Metrics = NewMetrics(reg) })
				for range 2 {
					body, err := c.OrderDetail(ctx, tp.orderID)
					if err != nil {
						t.Fatal(err)
					}
					if string(body) != tp.detail {
						t.Fatalf("body %s, want the platform's whole body %s", body, tp.detail)
					}
				}
				if tp.channel == "wechat" && s.tokens != 1 {
					t.Errorf("%d access tokens fetched for two calls, want 1 (cached)", s.tokens)
				}
				if n := testutil.ToFloat64(c.metrics.calls.WithLabelValues(tp.channel, "shop-1", tp.detailMethod, "ok")); n != 2 {
					t.Errorf("ok calls counted %v, want 2", n)
				}
			})
			t.Run("list walks the pages", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				var got []string
				page := ""
				for i := 0; ; i++ {
					if i > 10 {
						t.Fatal("more than 10 pages")
					}
					ids, next, err := c.ChangedOrders(ctx, testStart.Add(-30*time.Minute), testStart, page)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ids...)
					if next == "" {
						break
					}
					page = next
				}
				// Numbered platforms: page 1 for the count, then 3, 2 and 1
				// again (backward); WeChat follows its cursor.
				want, calls := []string{"1001", "1002", "1005", "1003", "1004", "1001", "1002"}, 4
				if tp.channel == "wechat" {
					want, calls = listIDs, 3
				}
				if !slices.Equal(got, want) {
					t.Errorf("ids %v, want %v", got, want)
				}
				if n := s.count(tp.listMethod); n != calls {
					t.Errorf("%d list calls, want %d", n, calls)
				}
			})
			t.Run("throttled then ok", func(t *testing.T) {
				reg := prometheus.NewRegistry()
				c, s := setup(t, tp, testSecret, func(_ *channels.API, o *Options) { o.Metrics = NewMetrics(reg) })
				s.override(tp.detailMethod, func(n int) answer {
					if n < 2 {
						return answer{body: tp.throttle}
					}
					return answer{body: tp.detail}
				})
				if _, err := c.OrderDetail(ctx, tp.orderID); err != nil {
					t.Fatal(err)
				}
				if n := s.count(tp.detailMethod); n != 3 {
					t.Errorf("%d calls, want 3", n)
				}
				if n := testutil.ToFloat64(c.metrics.calls.WithLabelValues(tp.channel, "shop-1", tp.detailMethod, "throttled")); n != 2 {
					t.Errorf("throttled calls counted %v, want 2", n)
				}
			})
			t.Run("throttled forever", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.detailMethod, func(int) answer { return answer{body: tp.throttle} })
				_, err := c.OrderDetail(ctx, tp.orderID)
				if !errors.Is(err, ErrThrottled) {
					t.Fatalf("err %v, want ErrThrottled", err)
				}
				if n := s.count(tp.detailMethod); n != DefaultAttempts {
					t.Errorf("%d calls, want %d", n, DefaultAttempts)
				}
				// Backoff doubles: the jitter here takes half of each bound.
				want := []time.Duration{backoffBase / 2, backoffBase, 2 * backoffBase}
				if !slices.Equal(s.clock.slept, want) {
					t.Errorf("slept %v, want %v", s.clock.slept, want)
				}
			})
			t.Run("HTTP 429 is throttling", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.detailMethod, func(n int) answer {
					if n == 0 {
						return answer{status: http.StatusTooManyRequests, body: "slow down"}
					}
					return answer{body: tp.detail}
				})
				if _, err := c.OrderDetail(ctx, tp.orderID); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("unknown order", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.detailMethod, func(int) answer { return answer{body: tp.notFound} })
				id := tp.orderID
				if tp.channel == "wechat" {
					id = "1"
				}
				if _, err := c.OrderDetail(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Fatalf("err %v, want ErrNotFound", err)
				}
				if n := s.count(tp.detailMethod); n != 1 {
					t.Errorf("%d calls, want 1 (not found is not retried)", n)
				}
			})
			t.Run("error message", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				const msg = "page_size out of range X-7731"
				s.override(tp.listMethod, func(int) answer { return answer{body: tp.failure(msg)} })
				_, _, err := c.ChangedOrders(ctx, testStart.Add(-20*time.Minute), testStart, "")
				var ae *APIError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), msg) || !errors.Is(err, ErrRejected) {
					t.Fatalf("err %v, want an *APIError quoting %q", err, msg)
				}
			})
			t.Run("malformed page", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.listMethod, func(int) answer { return answer{body: tp.malformedList} })
				if _, _, err := c.ChangedOrders(ctx, testStart.Add(-20*time.Minute), testStart, ""); !errors.Is(err, ErrMalformed) {
					t.Fatalf("err %v, want ErrMalformed", err)
				}
			})
			t.Run("not JSON", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.detailMethod, func(int) answer { return answer{body: "<html>gateway</html>"} })
				if _, err := c.OrderDetail(ctx, tp.orderID); !errors.Is(err, ErrMalformed) {
					t.Fatalf("err %v, want ErrMalformed", err)
				}
			})
			t.Run("5xx is temporary", func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				s.override(tp.detailMethod, func(int) answer { return answer{status: 502, body: "bad gateway"} })
				if _, err := c.OrderDetail(ctx, tp.orderID); !errors.Is(err, ErrTemporary) {
					t.Fatalf("err %v, want ErrTemporary", err)
				}
			})
			t.Run("a page token not handed out", func(t *testing.T) {
				if tp.channel == "wechat" {
					t.Skip("WeChat's next_key is the platform's own")
				}
				c, _ := setup(t, tp, testSecret, nil)
				if _, _, err := c.ChangedOrders(ctx, testStart.Add(-20*time.Minute), testStart, "page-two"); !errors.Is(err, ErrMalformed) {
					t.Fatalf("err %v, want ErrMalformed", err)
				}
			})
		})
	}
}

func TestBodyBounded(t *testing.T) {
	c, s := setup(t, douyinTP, testSecret, nil)
	s.override(douyinTP.detailMethod, func(int) answer {
		return answer{body: `{"code":10000,"data":{"shop_order_detail":{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}}}`}
	})
	if _, err := c.OrderDetail(context.Background(), "1"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed for a body over %d bytes", err, MaxBodyBytes)
	}
}

func TestRateLimit(t *testing.T) {
	const n, perSecond = 6, 5.0
	c, s := setup(t, douyinTP, testSecret, func(a *channels.API, _ *Options) { a.RatePerSecond, a.Burst = perSecond, 1 })
	for range n {
		if _, err := c.OrderDetail(context.Background(), douyinTP.orderID); err != nil {
			t.Fatal(err)
		}
	}
	// Burst 1 at 5 a second: n calls need (n-1)/5 seconds of the clock.
	want := time.Duration(float64(n-1) / perSecond * float64(time.Second))
	if got := s.clock.total(); got < want-time.Millisecond {
		t.Errorf("%d calls waited %s, want at least %s", n, got, want)
	}
	if got := s.clock.Now().Sub(testStart); got > want+time.Second/perSecond {
		t.Errorf("%d calls took %s of the clock, want about %s", n, got, want)
	}
}

func TestRateLimitDeadline(t *testing.T) {
	c, s := setup(t, douyinTP, testSecret, func(a *channels.API, _ *Options) { a.RatePerSecond, a.Burst = 0.001, 1 })
	if _, err := c.OrderDetail(context.Background(), douyinTP.orderID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.OrderDetail(ctx, douyinTP.orderID); err == nil {
		t.Fatal("a call beyond the deadline's rate: no error")
	}
	if n := s.count(douyinTP.detailMethod); n != 1 || len(s.clock.slept) != 0 {
		t.Errorf("%d calls, slept %v: want the second refused without waiting", n, s.clock.slept)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, s := setup(t, taobaoTP, testSecret, nil)
	s.clock.onSleep = cancel
	s.override(taobaoTP.detailMethod, func(int) answer { return answer{body: taobaoTP.throttle} })
	_, err := c.OrderDetail(ctx, taobaoTP.orderID)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrThrottled) {
		t.Fatalf("err %v, want context.Canceled (not ErrThrottled)", err)
	}
	if n := s.count(taobaoTP.detailMethod); n != 1 {
		t.Errorf("%d calls after the cancel, want 1", n)
	}
}

func TestWeChatTokenRefresh(t *testing.T) {
	c, s := setup(t, wechatTP, testSecret, nil)
	s.override(wechatTP.detailMethod, func(n int) answer {
		if n == 0 {
			return answer{body: `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`}
		}
		return answer{body: wechatTP.detail}
	})
	body, err := c.OrderDetail(context.Background(), wechatTP.orderID)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != wechatTP.detail || s.tokens != 2 || s.count(wechatTP.detailMethod) != 2 {
		t.Errorf("tokens %d, calls %d: want the token fetched again and the call retried once", s.tokens, s.count(wechatTP.detailMethod))
	}
	// Refused again after the refresh: no loop, ErrAuth.
	s.override(wechatTP.detailMethod, func(int) answer { return answer{body: `{"errcode":42001,"errmsg":"access_token expired"}`} })
	if _, err := c.OrderDetail(context.Background(), wechatTP.orderID); !errors.Is(err, ErrAuth) {
		t.Fatalf("err %v, want ErrAuth", err)
	}
	if s.tokens != 3 {
		t.Errorf("%d tokens, want 3 (one refresh per call)", s.tokens)
	}
	// An expired token is fetched again before the call.
	s.override(wechatTP.detailMethod, func(int) answer { return answer{body: wechatTP.detail} })
	s.clock.mu.Lock()
	s.clock.t = s.clock.t.Add(2 * time.Hour)
	s.clock.mu.Unlock()
	if _, err := c.OrderDetail(context.Background(), wechatTP.orderID); err != nil || s.tokens != 4 {
		t.Errorf("err %v, tokens %d: want a new token after expiry", err, s.tokens)
	}
}

func mapTestdata(t *testing.T, channel, file string) *channels.Mapped {
	t.Helper()
	body, err := os.ReadFile("../channels/testdata/" + channel + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := channels.Adapters[channel].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Masked {
		t.Fatalf("%s testdata is not masked", channel)
	}
	return m
}

func TestDecrypt(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		tp                   *testPlatform
		file, method         string
		answer               func(t *testing.T, params map[string]any, orderID string) string
		name, phone, address string
	}{
		{douyinTP, "order.json", "order.batchDecrypt", func(t *testing.T, p map[string]any, orderID string) string {
			plain := map[string]string{"#张#ABCDEF0123==*CgkIARCtHCABKAESPgo8#1##": "张三", "$138$QUJDREVGMDEyMw==*CgkIARCtHCABKAESPgo8$1$$": "13812345678",
				"#碧波路#QUJDRA==*CgkIARCtHCABKAESPgo8#1##": "碧波路690号"}
			infos, _ := p["cipher_infos"].([]any)
			var out []string
			for _, in := range infos {
				in := in.(map[string]any)
				if in["auth_id"] != orderID {
					t.Errorf("auth_id %v, want %s", in["auth_id"], orderID)
				}
				ct := in["cipher_text"].(string)
				out = append(out, fmt.Sprintf(`{"auth_id":%q,"cipher_text":%q,"decrypt_text":%q,"err_no":0,"err_msg":""}`, orderID, ct, plain[ct]))
			}
			if len(out) != 3 {
				t.Errorf("%d cipher_infos, want 3", len(out))
			}
			return `{"code":10000,"msg":"success","data":{"decrypt_infos":[` + strings.Join(out, ",") + `],"custom_err":{"err_code":0,"err_msg":""}}}`
		}, "张三", "13812345678", "上海市 上海市 浦东新区 张江镇 碧波路690号"},
		{taobaoTP, "trade.json", "taobao.top.oaid.decrypt", func(t *testing.T, p map[string]any, orderID string) string {
			var q []map[string]any
			if err := json.Unmarshal([]byte(p["query_list"].(string)), &q); err != nil || len(q) != 1 ||
				q[0]["tid"] != orderID || q[0]["oaid"] != "1LyAQpNfJDexRLjBh4rf1zjGMiaUf1k5BDxXwQxtwjDECrfg" || q[0]["scene"] != "1005" {
				t.Errorf("query_list %v", p["query_list"])
			}
			return `{"top_oaid_decrypt_response":{"receiver_list":{"receiver":[{"name":"赵六","mobile":"13900005678","phone":"","address_detail":"望京SOHO T1 1201",
				"oaid":"1LyAQpNfJDexRLjBh4rf1zjGMiaUf1k5BDxXwQxtwjDECrfg","tid":"` + orderID + `","town":"望京街道","district":"朝阳区","city":"北京市","state":"北京","matched":true}]},"request_id":"r"}}`
		}, "赵六", "13900005678", "北京 北京市 朝阳区 望京街道 望京SOHO T1 1201"},
		{pddTP, "order.json", "pdd.open.decrypt.batch", func(t *testing.T, p map[string]any, orderID string) string {
			plain := map[string]string{"~AgAAAAFsZ2VuZDJuY2U5Tm9oZ2J0VQ==~": "王五", "~AgAAAAFr5t6DBDcfhQkUM/EH0w==~": "13700001234", "~AgAAAAG6e8sMEKfhgQ==~": "麓山南路1号"}
			var list []map[string]string
			if err := json.Unmarshal([]byte(p["data_list"].(string)), &list); err != nil || len(list) != 3 {
				t.Errorf("data_list %v", p["data_list"])
			}
			var out []string
			for _, d := range list {
				if d["data_tag"] != orderID {
					t.Errorf("data_tag %q, want %s", d["data_tag"], orderID)
				}
				out = append(out, fmt.Sprintf(`{"data_tag":%q,"encrypted_data":%q,"decrypted_data":%q,"error_code":0,"error_msg":""}`, orderID, d["encrypted_data"], plain[d["encrypted_data"]]))
			}
			return `{"open_decrypt_batch_response":{"data_decrypt_list":[` + strings.Join(out, ",") + `]}}`
		}, "王五", "13700001234", "湖南省 长沙市 岳麓区 麓山南路1号"},
	} {
		t.Run(c.tp.channel, func(t *testing.T) {
			m := mapTestdata(t, c.tp.channel, c.file)
			cl, s := setup(t, c.tp, testSecret, nil)
			s.respond = func(method string, p map[string]any, n int) answer {
				if method != c.method {
					t.Errorf("method %s, want %s", method, c.method)
				}
				return answer{body: c.answer(t, p, m.Request.ChannelOrderId)}
			}
			if err := cl.Decrypt(ctx, m); err != nil {
				t.Fatal(err)
			}
			cu := m.Request.Customer
			if cu.Name != c.name || cu.Phone != c.phone || cu.Address != c.address || m.Masked {
				t.Errorf("customer %q %q %q masked %v, want %q %q %q unmasked", cu.Name, cu.Phone, cu.Address, m.Masked, c.name, c.phone, c.address)
			}
		})
	}
	for _, tp := range []*testPlatform{jdTP, xhsTP, wechatTP} {
		cl, _ := setup(t, tp, testSecret, nil)
		m := &channels.Mapped{Request: mapTestdata(t, "pinduoduo", "order.json").Request}
		if err := cl.Decrypt(ctx, m); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", tp.channel, err)
		}
	}
}

func TestDecryptItemFailure(t *testing.T) {
	m := mapTestdata(t, "pinduoduo", "order.json")
	before := m.Request.Customer.Name
	cl, s := setup(t, pddTP, testSecret, nil)
	s.respond = func(string, map[string]any, int) answer {
		return answer{body: `{"open_decrypt_batch_response":{"data_decrypt_list":[{"data_tag":"x","encrypted_data":"~AgAAAAG6e8sMEKfhgQ==~","decrypted_data":"","error_code":40001,"error_msg":"解密次数超限"}]}}`}
	}
	err := cl.Decrypt(context.Background(), m)
	if !errors.Is(err, ErrThrottled) || !strings.Contains(err.Error(), "解密次数超限") {
		t.Fatalf("err %v, want the item's error", err)
	}
	if m.Request.Customer.Name != before || !m.Masked {
		t.Error("a failed decrypt changed the customer")
	}
}

// listAll walks ChangedOrders over the test window and returns every id
// listed, or the first error.
func listAll(t *testing.T, c *Client, from, to time.Time) ([]string, error) {
	t.Helper()
	var got []string
	page := ""
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("more than 20 pages")
		}
		ids, next, err := c.ChangedOrders(context.Background(), from, to, page)
		if err != nil {
			return got, err
		}
		got = append(got, ids...)
		if next == "" {
			return got, nil
		}
		if next == page {
			t.Fatalf("page %q again", page)
		}
		page = next
	}
}

// TestChangedOrdersShift: an order modified while the pages are read
// leaves the window (the listing is newest-modified first) and the later
// orders move up one place; none of them may be skipped.
func TestChangedOrdersShift(t *testing.T) {
	for _, tp := range allTP {
		if tp.channel == "wechat" {
			continue // next_key is WeChat's cursor: it does not shift
		}
		for _, leave := range []string{"1001", "1002", "1003"} {
			t.Run(tp.channel+"/"+leave, func(t *testing.T) {
				c, s := setup(t, tp, testSecret, nil)
				all := slices.Clone(listIDs)
				s.respond = func(method string, params map[string]any, n int) answer {
					if method != tp.listMethod {
						return s.documented(method, params, n)
					}
					if n == 1 { // after the first page was read
						all = slices.DeleteFunc(all, func(id string) bool { return id == leave })
					}
					idx := tp.pageIndex(params)
					ids, last := pageIn(all, idx)
					return answer{body: tp.list(idx, ids, last, len(all), params)}
				}
				got, err := listAll(t, c, testStart.Add(-20*time.Minute), testStart)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range listIDs {
					if id != leave && !slices.Contains(got, id) {
						t.Errorf("%s skipped: listed %v", id, got)
					}
				}
			})
		}
	}
}

// TestChangedOrdersTooManyPages: a window of more pages than the client
// reads is an error, not a listing that looks complete.
func TestChangedOrdersTooManyPages(t *testing.T) {
	for _, tp := range allTP {
		if tp.channel == "wechat" {
			continue
		}
		t.Run(tp.channel, func(t *testing.T) {
			c, s := setup(t, tp, testSecret, nil)
			total := 2*MaxPages + 1
			s.override(tp.listMethod, func(int) answer {
				return answer{body: tp.list(0, listIDs[:2], false, total, map[string]any{"use_has_next": "false"})}
			})
			got, err := listAll(t, c, testStart.Add(-20*time.Minute), testStart)
			var ae *APIError
			if !errors.Is(err, ErrWindowTooLarge) || !errors.As(err, &ae) || !strings.Contains(err.Error(), "window_max_ms") {
				t.Fatalf("ids %v, err %v: want an *APIError wrapping ErrWindowTooLarge", got, err)
			}
			if n := s.count(tp.listMethod); n != 1 {
				t.Errorf("%d list calls, want 1", n)
			}
		})
	}
	// Xiaohongshu serves at most 100 pages.
	c, s := setup(t, xhsTP, testSecret, nil)
	s.override(xhsTP.listMethod, func(int) answer { return answer{body: xhsTP.list(0, listIDs[:2], false, 2*xhsMaxPageNo+1, nil)} })
	if _, _, err := c.ChangedOrders(context.Background(), testStart.Add(-20*time.Minute), testStart, ""); !errors.Is(err, ErrWindowTooLarge) {
		t.Fatalf("xiaohongshu, %d pages: %v, want ErrWindowTooLarge", xhsMaxPageNo+1, err)
	}
}

func TestWindowLimits(t *testing.T) {
	want := map[string][2]time.Duration{
		"douyin":      {24 * time.Hour, 0},
		"tmall":       {24 * time.Hour, 0},
		"jd":          {28 * 24 * time.Hour, 0},
		"pinduoduo":   {30 * time.Minute, 3 * time.Minute},
		"xiaohongshu": {30 * time.Minute, 0},
		"wechat":      {7 * 24 * time.Hour, 0},
	}
	for _, tp := range allTP {
		t.Run(tp.channel, func(t *testing.T) {
			c, s := setup(t, tp, testSecret, nil)
			span, lag := c.WindowLimits()
			if w := want[tp.channel]; span != w[0] || lag != w[1] {
				t.Fatalf("limits %s, %s; want %s, %s", span, lag, w[0], w[1])
			}
			if _, err := listAll(t, c, testStart.Add(-span), testStart); err != nil {
				t.Fatalf("a window of exactly %s: %v", span, err)
			}
			calls := s.count(tp.listMethod)
			_, _, err := c.ChangedOrders(context.Background(), testStart.Add(-span-time.Second), testStart, "")
			var ae *APIError
			if !errors.Is(err, ErrWindow) || errors.As(err, &ae) || errors.Is(err, ErrMalformed) {
				t.Fatalf("a window of %s: %v, want a plain error wrapping ErrWindow", span+time.Second, err)
			}
			if n := s.count(tp.listMethod); n != calls {
				t.Errorf("the platform was called for a window too long")
			}
		})
	}
}

// TestNoSecretsInErrors: a failed request's error (and the log) names the
// method, host and path but never the query, the app secret or a token.
func TestNoSecretsInErrors(t *testing.T) {
	const wxToken = "wx-token-s3cr3t"
	hijack := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	servers := map[string]func(t *testing.T) string{
		"refused": func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return srv.URL
		},
		"connection dropped": func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hijack(w) }))
			t.Cleanup(srv.Close)
			return srv.URL
		},
		"dropped after the token": func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/cgi-bin/token" {
					_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, wxToken)
					return
				}
				hijack(w)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		},
	}
	for name, start := range servers {
		for _, tp := range allTP {
			t.Run(name+"/"+tp.channel, func(t *testing.T) {
				var logs strings.Builder
				var mu sync.Mutex
				base := start(t)
				c, _ := setup(t, tp, testSecret, func(a *channels.API, o *Options) {
					a.BaseURL = base
					o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
				})
				_, err1 := c.OrderDetail(context.Background(), tp.orderID)
				_, _, err2 := c.ChangedOrders(context.Background(), testStart.Add(-time.Minute), testStart, "")
				for _, err := range []error{err1, err2} {
					if !errors.Is(err, ErrTemporary) {
						t.Fatalf("err %v, want ErrTemporary", err)
					}
					msg := err.Error()
					for _, secret := range []string{testSecret, testToken, wxToken, "secret=", "access_token=", "session="} {
						if strings.Contains(msg, secret) {
							t.Errorf("error %q holds %q", msg, secret)
						}
					}
					if u, _ := url.Parse(base); !strings.Contains(msg, u.Host) {
						t.Errorf("error %q does not name the host %s", msg, u.Host)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				for _, secret := range []string{testSecret, testToken, wxToken} {
					if strings.Contains(logs.String(), secret) {
						t.Errorf("the log holds %q: %s", secret, logs.String())
					}
				}
			})
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
