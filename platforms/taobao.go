package platforms

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// taobao is Taobao's open platform (TOP, also Tmall), the router
// eco.taobao.com/router/rest. The signature (sorted name+value, MD5 between
// the secret, HMAC-MD5 or HMAC-SHA256 keyed by it, upper hex) and the error
// codes 7 (App Call Limited), 25 (Invalid signature), 27 (Invalid session)
// follow the brief and TOP's published error table; taobao.top.oaid.decrypt's
// query_list {tid, oaid, scene} and top_oaid_decrypt_response
// {receiver_list:{receiver:[{name, mobile, phone, address_detail, town, …}]}}
// are confirmed from TOP's API page as mirrored by juejin.cn/post/7188060360128561211
// and the bububa/opentaobao model. The sub code isv.trade-not-exist is assumed.
type taobao struct{}

var taobaoCodes = codes{
	throttled: set("7", "accesscontrol.limited-by-api-access-count", "accesscontrol.limited-by-app-access-count",
		"accesscontrol.limited-by-app-api-access-count", "isp.call-limited"),
	auth:      set("25", "26", "27", "28", "29", "11", "isv.session-expired", "isv.invalid-session"),
	notFound:  set("isv.trade-not-exist", "isv.invalid-parameter:trade-not-exist"),
	temporary: set("10", "isp.top-remote-connection-timeout", "isp.remote-service-timeout", "isp.top-remote-service-unavailable", "isp.unknown-error"),
}

// concatSorted is name+value of every parameter but sign, sorted by name.
func concatSorted(params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != "sign" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + params.Get(k))
	}
	return b.String()
}

// signTOP is Taobao's sign of params with signMethod "md5", "hmac" or
// "hmac-sha256".
func signTOP(signMethod, secret string, params url.Values) string {
	s := concatSorted(params)
	var sum []byte
	switch signMethod {
	case "hmac", "hmac-sha256":
		h := md5.New
		if signMethod == "hmac-sha256" {
			h = sha256.New
		}
		m := hmac.New(func() hash.Hash { return h() }, []byte(secret))
		m.Write([]byte(s))
		sum = m.Sum(nil)
	default:
		d := md5.Sum([]byte(secret + s + secret))
		sum = d[:]
	}
	return strings.ToUpper(hex.EncodeToString(sum))
}

// topError is the error_response of TOP and Pinduoduo.
type topError struct {
	Response *struct {
		Code      text   `json:"code"`
		Msg       string `json:"msg"`
		SubCode   string `json:"sub_code"`
		SubMsg    string `json:"sub_msg"`
		ErrorCode text   `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
		ZhDesc    string `json:"zh_desc"`
		EnDesc    string `json:"en_desc"`
	} `json:"error_response"`
}

// routerCheck reads a router platform's answer: error_response is an error
// sorted by t; else the body must be a JSON object holding key.
func routerCheck(t codes, key string) func(int, []byte) *APIError {
	return func(status int, body []byte) *APIError {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			if status/100 != 2 {
				return nil
			}
			return malformed("not JSON: " + snippet(body))
		}
		if raw, ok := top["error_response"]; ok {
			var e topError
			_ = json.Unmarshal(body, &e)
			r := e.Response
			if r == nil {
				return malformed("error_response is not an object: " + snippet(raw))
			}
			code, msg := string(r.Code), r.Msg
			if code == "" {
				code, msg = string(r.ErrorCode), r.ErrorMsg
			}
			if msg == "" {
				msg = r.ZhDesc
				if msg == "" {
					msg = r.EnDesc
				}
			}
			return &APIError{Code: code, SubCode: r.SubCode, Message: joinMsg(msg, r.SubMsg), kind: t.kind(code, r.SubCode, msg+" "+r.SubMsg)}
		}
		if !isJSONObject(top[key]) {
			if status/100 != 2 {
				return nil
			}
			return malformed(key + " is missing")
		}
		return nil
	}
}

func (taobao) call(c *Client, method string, business url.Values, key string) call {
	signMethod := c.signMethod
	if signMethod != "hmac" && signMethod != "hmac-sha256" {
		signMethod = "md5"
	}
	return call{method: method,
		build: func(ctx context.Context, now time.Time) (*http.Request, error) {
			p := url.Values{"method": {method}, "app_key": {c.appKey}, "timestamp": {beijingTime(now)}, "format": {"json"},
				"v": {"2.0"}, "sign_method": {signMethod}}
			if c.token != "" {
				p.Set("session", c.token)
			}
			for k, v := range business {
				p[k] = v
			}
			p.Set("sign", signTOP(signMethod, c.appSecret, p))
			return formRequest(ctx, c.base, p)
		},
		check: routerCheck(taobaoCodes, key)}
}

func formRequest(ctx context.Context, u string, p url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(p.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	return req, nil
}

// taobaoFields are the trade fields asked of taobao.trade.fullinfo.get: what
// the tmall adapter reads.
const taobaoFields = "tid,status,created,pay_time,payment,total_fee,post_fee,discount_fee,coupon_fee,tmall_coupon_fee," +
	"buyer_open_uid,receiver_name,receiver_mobile,receiver_phone,receiver_state,receiver_city,receiver_district," +
	"receiver_town,receiver_address,oaid,orders,promotion_details"

func (t taobao) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	return c.do(ctx, t.call(c, "taobao.trade.fullinfo.get", url.Values{"tid": {orderID}, "fields": {taobaoFields}}, "trade_fullinfo_get_response"))
}

// limits: "一次请求只能查询时间跨度为一天的增量交易记录,即end_modified -
// start_modified <= 1天" (taobao.trades.sold.increment.get, TOP API page
// apiId=128, open.taobao.com docId=128). No delay behind now is documented
// for the increment API where found: lag 0.
func (taobao) limits() (span, lag time.Duration) { return 24 * time.Hour, 0 }

// changed pages taobao.trades.sold.increment.get backward, as its page
// advises ("以订单的修改时间倒序排列的,通过从后往前翻页的方式可以避免漏单问题"):
// page 1 with use_has_next=false answers total_results; the other pages
// ask use_has_next=true, which skips the count (TOP's order-sync advice).
func (t taobao) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "taobao.trades.sold.increment.get"
	return c.backward(method, page, MaxPages, func(n int, count bool) ([]string, int64, error) {
		body, err := c.do(ctx, t.call(c, method, url.Values{"start_modified": {beijingTime(from)}, "end_modified": {beijingTime(to)},
			"page_no": {strconv.Itoa(n)}, "page_size": {strconv.Itoa(c.pageSize)}, "use_has_next": {strconv.FormatBool(!count)}, "fields": {"tid"}},
			"trades_sold_increment_get_response"))
		if err != nil {
			return nil, 0, err
		}
		var r struct {
			Response struct {
				Trades *struct {
					Trade []struct {
						Tid text `json:"tid"`
					} `json:"trade"`
				} `json:"trades"`
				Total *int64 `json:"total_results"`
			} `json:"trades_sold_increment_get_response"`
		}
		if err := json.Unmarshal(body, &r); err != nil || count && r.Response.Total == nil {
			return nil, 0, c.malformedErr(method, "trades_sold_increment_get_response.total_results is required", err)
		}
		var ids []string
		if r.Response.Trades != nil { // absent when no trade changed
			for i, tr := range r.Response.Trades.Trade {
				if tr.Tid == "" {
					return nil, 0, c.malformedErr(method, "trades.trade["+strconv.Itoa(i)+"].tid is missing", nil)
				}
				ids = append(ids, string(tr.Tid))
			}
		}
		total := int64(-1)
		if r.Response.Total != nil {
			total = *r.Response.Total
		}
		return ids, total, nil
	})
}

func (t taobao) decrypt(ctx context.Context, c *Client, m *channels.Mapped) error {
	oaid := m.Ciphertexts["oaid"]
	if oaid == "" {
		return nil // nothing OAID-encrypted
	}
	tid := m.Request.ChannelOrderId
	q, err := encodeJSON([]map[string]string{{"tid": tid, "oaid": oaid, "scene": "1005"}})
	if err != nil {
		return err
	}
	const method = "taobao.top.oaid.decrypt"
	body, err := c.do(ctx, t.call(c, method, url.Values{"query_list": {q}}, "top_oaid_decrypt_response"))
	if err != nil {
		return err
	}
	var r struct {
		Response struct {
			List struct {
				Receiver []struct {
					Tid           text   `json:"tid"`
					OAID          string `json:"oaid"`
					Name          string `json:"name"`
					Mobile        string `json:"mobile"`
					Phone         string `json:"phone"`
					AddressDetail string `json:"address_detail"`
					Town          string `json:"town"`
				} `json:"receiver"`
			} `json:"receiver_list"`
		} `json:"top_oaid_decrypt_response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return c.malformedErr(method, "top_oaid_decrypt_response.receiver_list", err)
	}
	for _, rc := range r.Response.List.Receiver {
		if (rc.Tid != "" && string(rc.Tid) != tid) || (rc.OAID != "" && rc.OAID != oaid) {
			continue
		}
		phone := rc.Mobile
		if phone == "" {
			phone = rc.Phone
		}
		if rc.Name == "" || phone == "" || rc.AddressDetail == "" {
			return c.malformedErr(method, "the receiver lacks name, mobile or address_detail", nil)
		}
		return c.setReceiver(m, map[string]string{"name": rc.Name, "phone": phone, "address_detail": rc.AddressDetail}, "", rc.Town)
	}
	return c.malformedErr(method, "no receiver for tid "+tid, nil)
}
