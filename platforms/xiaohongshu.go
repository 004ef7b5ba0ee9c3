package platforms

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// xiaohongshu is Xiaohongshu's ark open API (one endpoint,
// /ark/open_api/v3/common_controller). Confirmed from the platform's
// "签名算法" page (xiaohongshu.apifox.cn/doc-2810932): a JSON POST whose body
// carries appId, timestamp (epoch seconds), version "2.0", method, sign and
// accessToken (not signed) beside the method's parameters; sign is the hex
// MD5 of method + "?appId=" + appId + "&timestamp=" + timestamp +
// "&version=" + version + appSecret. The answer {success, code, msg, data}
// (errors also as error_code/error_msg) follows the brief; the error codes
// are not published where found, so errors are sorted by their message.
type xiaohongshu struct{}

var xhsCodes = codes{}

func signXHS(method, appID, timestamp, version, secret string) string {
	sum := md5.Sum([]byte(method + "?appId=" + appID + "&timestamp=" + timestamp + "&version=" + version + secret))
	return hex.EncodeToString(sum[:])
}

func (xiaohongshu) call(c *Client, method string, business map[string]any, need string) call {
	return call{method: method,
		build: func(ctx context.Context, now time.Time) (*http.Request, error) {
			ts := strconv.FormatInt(now.Unix(), 10)
			body := map[string]any{"appId": c.appKey, "timestamp": ts, "version": "2.0", "method": method,
				"sign": signXHS(method, c.appKey, ts, "2.0", c.appSecret)}
			if c.token != "" {
				body["accessToken"] = c.token
			}
			for k, v := range business {
				body[k] = v
			}
			b, err := encodeJSON(body)
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base, bytes.NewReader([]byte(b)))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json;charset=utf-8")
			return req, nil
		},
		check: func(status int, body []byte) *APIError {
			var r struct {
				Success   *bool           `json:"success"`
				Code      text            `json:"code"`
				Msg       string          `json:"msg"`
				ErrorCode text            `json:"error_code"`
				ErrorMsg  string          `json:"error_msg"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(body, &r); err != nil || r.Success == nil {
				if status/100 != 2 {
					return nil
				}
				return malformed("not a Xiaohongshu answer (no success): " + snippet(body))
			}
			if !*r.Success {
				code, msg := string(r.ErrorCode), r.ErrorMsg
				if code == "" {
					code = string(r.Code)
				}
				if msg == "" {
					msg = r.Msg
				}
				return &APIError{Code: code, Message: msg, kind: xhsCodes.kind(code, "", msg)}
			}
			if !isJSONObject(r.Data) {
				return malformed("data is missing")
			}
			if need != "" {
				var d map[string]json.RawMessage
				_ = json.Unmarshal(r.Data, &d)
				if _, ok := d[need]; !ok {
					return malformed("data." + need + " is missing")
				}
			}
			return nil
		}}
}

func (x xiaohongshu) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	return c.do(ctx, x.call(c, "order.getOrderDetail", map[string]any{"orderId": orderID}, "orderId"))
}

// limits: order.getOrderList's timeType "2 更新时间 限制 end-start<=30min 倒序
// 拉取 最后一页到第一页" (the ark API's parameter table, as mirrored at
// blog.csdn.net/Andyfu2019/article/details/131856264). No delay behind now
// is documented: lag 0.
func (xiaohongshu) limits() (span, lag time.Duration) { return 30 * time.Minute, 0 }

// xhsMaxPageNo is order.getOrderList's deepest page ("pageNo 页码,默认1,限制100").
const xhsMaxPageNo = 100

// changed pages order.getOrderList by update time backward, as its table
// asks; every page answers total (else maxPageNo, read as that many full
// pages).
func (x xiaohongshu) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "order.getOrderList"
	return c.backward(method, page, xhsMaxPageNo, func(n int, _ bool) ([]string, int64, error) {
		body, err := c.do(ctx, x.call(c, method, map[string]any{"startTime": from.Unix(), "endTime": to.Unix(), "timeType": 2,
			"pageNo": n, "pageSize": c.pageSize}, "orderList"))
		if err != nil {
			return nil, 0, err
		}
		var r struct {
			Data struct {
				List []struct {
					OrderID string `json:"orderId"`
				} `json:"orderList"`
				Total     *int64 `json:"total"`
				MaxPageNo *int64 `json:"maxPageNo"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Data.Total == nil && r.Data.MaxPageNo == nil {
			return nil, 0, c.malformedErr(method, "data.orderList and data.total (or data.maxPageNo) are required", err)
		}
		ids := make([]string, 0, len(r.Data.List))
		for i, o := range r.Data.List {
			if o.OrderID == "" {
				return nil, 0, c.malformedErr(method, "data.orderList["+strconv.Itoa(i)+"].orderId is missing", nil)
			}
			ids = append(ids, o.OrderID)
		}
		total := int64(-1)
		switch {
		case r.Data.Total != nil:
			total = *r.Data.Total
		case r.Data.MaxPageNo != nil:
			total = *r.Data.MaxPageNo * int64(c.pageSize)
		}
		return ids, total, nil
	})
}

func (xiaohongshu) decrypt(context.Context, *Client, *channels.Mapped) error {
	return unsupported("xiaohongshu", "receiver decryption")
}
