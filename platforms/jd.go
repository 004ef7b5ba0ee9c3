package platforms

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// jd is JD's open platform (JOS, api.jd.com/routerjson). The parameters
// (method, app_key, access_token, timestamp, v=2.0, 360buy_param_json) and
// the signature (upper hex MD5 of secret + sorted name+value + secret)
// follow the brief; the method's answer is "<method with _>_responce"
// (JD's spelling) with its own code "0". The error codes are assumed (the
// table was not found): 19 invalid access_token, 14 invalid signature, 1
// and 66/67 system errors; messages are read too.
type jd struct{}

var jdCodes = codes{
	throttled: set("34", "40", "80"),
	auth:      set("12", "14", "15", "16", "18", "19"),
	temporary: set("1", "66", "67"),
}

func signJD(secret string, params url.Values) string {
	sum := md5.Sum([]byte(secret + concatSorted(params) + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// jdInner is the code a JD method's own answer carries.
type jdInner struct {
	Code    text   `json:"code"`
	ZhDesc  string `json:"zh_desc"`
	EnDesc  string `json:"en_desc"`
	Message string `json:"errorMessage"`
}

func (jd) call(c *Client, method string, business map[string]any) call {
	key := strings.ReplaceAll(method, ".", "_") + "_responce"
	outer := routerCheck(jdCodes, key)
	return call{method: method,
		build: func(ctx context.Context, now time.Time) (*http.Request, error) {
			pj, err := encodeJSON(business)
			if err != nil {
				return nil, err
			}
			p := url.Values{"method": {method}, "app_key": {c.appKey}, "timestamp": {beijingTime(now)}, "v": {"2.0"},
				"360buy_param_json": {pj}}
			if c.token != "" {
				p.Set("access_token", c.token)
			}
			p.Set("sign", signJD(c.appSecret, p))
			return formRequest(ctx, c.base, p)
		},
		check: func(status int, body []byte) *APIError {
			if e := outer(status, body); e != nil {
				return e
			}
			var r map[string]jdInner
			if err := json.Unmarshal(body, &r); err != nil {
				return malformed(key + ": " + err.Error())
			}
			in := r[key]
			if in.Code != "0" {
				msg := in.ZhDesc
				if msg == "" {
					msg = joinMsg(in.EnDesc, in.Message)
				}
				return &APIError{Code: string(in.Code), Message: msg, kind: jdCodes.kind(string(in.Code), "", msg+" "+in.EnDesc)}
			}
			return nil
		}}
}

func (j jd) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	const method = "jingdong.pop.order.get"
	body, err := c.do(ctx, j.call(c, method, map[string]any{"order_id": orderID,
		"optional_fields": "orderId,orderState,orderStartTime,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,sellerDiscount," +
			"open_id_buyer,pin,consigneeInfo,itemInfoList,couponDetailList"}))
	if err != nil {
		return nil, err
	}
	var r struct {
		Resp struct {
			Detail *struct {
				Info json.RawMessage `json:"orderInfo"`
			} `json:"orderDetailInfo"`
		} `json:"jingdong_pop_order_get_responce"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Resp.Detail == nil {
		return nil, c.malformedErr(method, "jingdong_pop_order_get_responce.orderDetailInfo is required", err)
	}
	// An order id JD does not know comes back with code "0" and no orderInfo.
	if !isJSONObject(r.Resp.Detail.Info) {
		return nil, &APIError{Channel: c.channel, Method: method, Code: "0", Message: "no orderInfo for order " + orderID,
			HTTPStatus: http.StatusOK, kind: ErrNotFound}
	}
	return body, nil
}

// jdStates are the order states a changed-orders search asks for: all of
// a POP order's life.
const jdStates = "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,WAIT_SELLER_DELIVERY,PAUSE,FINISHED_L,TRADE_CANCELED,LOCKED,POP_ORDER_PAUSE"

// limits: jingdong.pop.order.search's start_date and end_date "不得相差超过1个
// 月" (JOS's parameter table as mirrored by ERP gateways' docs, e.g.
// doc.yunyingtool.com/platformErp/jdordersearch): a calendar month, so 28
// days, the shortest. No delay behind now is documented: lag 0.
func (jd) limits() (span, lag time.Duration) { return 28 * 24 * time.Hour, 0 }

// changed pages jingdong.pop.order.search (date_type 0: by modified time)
// backward; every page answers orderTotal.
func (j jd) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "jingdong.pop.order.search"
	return c.backward(method, page, MaxPages, func(n int, _ bool) ([]string, int64, error) {
		body, err := c.do(ctx, j.call(c, method, map[string]any{"start_date": beijingTime(from), "end_date": beijingTime(to),
			"date_type": "0", "order_state": jdStates, "optional_fields": "orderId", "page": strconv.Itoa(n), "page_size": strconv.Itoa(c.pageSize)}))
		if err != nil {
			return nil, 0, err
		}
		var r struct {
			Resp struct {
				Result *struct {
					List []struct {
						OrderID text `json:"orderId"`
					} `json:"orderInfoList"`
					Total *int64 `json:"orderTotal"`
				} `json:"searchorderinfo_result"`
			} `json:"jingdong_pop_order_search_responce"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Resp.Result == nil || r.Resp.Result.Total == nil {
			return nil, 0, c.malformedErr(method, "searchorderinfo_result.orderTotal is required", err)
		}
		ids := make([]string, 0, len(r.Resp.Result.List))
		for i, o := range r.Resp.Result.List {
			if o.OrderID == "" {
				return nil, 0, c.malformedErr(method, "orderInfoList["+strconv.Itoa(i)+"].orderId is missing", nil)
			}
			ids = append(ids, string(o.OrderID))
		}
		return ids, *r.Resp.Result.Total, nil
	})
}

func (jd) decrypt(context.Context, *Client, *channels.Mapped) error {
	return unsupported("jd", "receiver decryption (JD sends the consignee masked)")
}

func unsupported(channel, what string) error {
	return &APIError{Channel: channel, Code: "unsupported", Message: what, kind: ErrUnsupported}
}
