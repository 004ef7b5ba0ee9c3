package platforms

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// douyin is the Douyin shop open API (抖店开放平台, openapi-fxg.jinritemai.com).
// Confirmed from the platform's "API调用指南" (mirrored at
// maolg.com/ProductDetail/7036311.html): the public parameters method,
// app_key, access_token, param_json, timestamp ("yyyy-MM-dd HH:mm:ss",
// GMT+8), v=2, sign, sign_method (hmac-sha256); POST to the method's path.
// The sign string and its HMAC-SHA256/MD5 follow the brief. order.batchDecrypt's
// cipher_infos is confirmed from the doudian SDK's parameter class. The error
// codes below are assumed (the code table was not found): 10000 success,
// 30001/30002 authorization and access token, 20000/20001 service
// unavailable, 90000 flow limit; sub codes and messages are read too.
type douyin struct{}

var douyinCodes = codes{
	throttled: set("90000"),
	auth:      set("30001", "30002", "30003", "30004", "30005"),
	temporary: set("20000", "20001"),
}

// signDouyin is the hex HMAC-SHA256 (keyed by the app secret) or MD5 of
// secret + "app_key"… + "v"… + secret.
func signDouyin(method, secret, appKey, apiMethod, paramJSON, timestamp, v string) string {
	s := secret + "app_key" + appKey + "method" + apiMethod + "param_json" + paramJSON + "timestamp" + timestamp + "v" + v + secret
	if method == "md5" {
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

type douyinEnvelope struct {
	Code    text            `json:"code"`
	Msg     string          `json:"msg"`
	SubCode string          `json:"sub_code"`
	SubMsg  string          `json:"sub_msg"`
	Data    json.RawMessage `json:"data"`
}

func (douyin) call(c *Client, method string, params map[string]any, need string) call {
	signMethod := c.signMethod
	if signMethod != "md5" {
		signMethod = "hmac-sha256"
	}
	return call{method: method,
		build: func(ctx context.Context, now time.Time) (*http.Request, error) {
			paramJSON, err := encodeJSON(params)
			if err != nil {
				return nil, err
			}
			ts := beijingTime(now)
			q := url.Values{"app_key": {c.appKey}, "method": {method}, "param_json": {paramJSON}, "timestamp": {ts}, "v": {"2"},
				"sign_method": {signMethod}, "sign": {signDouyin(signMethod, c.appSecret, c.appKey, method, paramJSON, ts, "2")}}
			if c.token != "" {
				q.Set("access_token", c.token)
			}
			u := c.base + "/" + strings.ReplaceAll(method, ".", "/") + "?" + q.Encode()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(paramJSON))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			return req, nil
		},
		check: func(status int, body []byte) *APIError {
			var e douyinEnvelope
			if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
				if status/100 != 2 {
					return nil
				}
				return malformed("not a Douyin response (no code): " + snippet(body))
			}
			if e.Code != "10000" {
				return &APIError{Code: string(e.Code), SubCode: e.SubCode, Message: joinMsg(e.Msg, e.SubMsg),
					kind: douyinCodes.kind(string(e.Code), e.SubCode, e.Msg+" "+e.SubMsg)}
			}
			var data map[string]json.RawMessage
			if err := json.Unmarshal(e.Data, &data); err != nil || data == nil || !isJSONObject(data[need]) && !isJSONArray(data[need]) {
				return malformed("data." + need + " is missing")
			}
			return nil
		}}
}

func (d douyin) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	return c.do(ctx, d.call(c, "order.orderDetail", map[string]any{"shop_order_id": orderID}, "shop_order_detail"))
}

// limits: order.searchList's longest update-time window was not found in
// the material at hand: assumed a day. No delay behind now is documented:
// lag 0.
func (douyin) limits() (span, lag time.Duration) { return 24 * time.Hour, 0 }

// changed pages order.searchList (pages from 0 on Douyin, sorted by
// update_time, newest first) backward; every page answers total.
func (d douyin) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "order.searchList"
	return c.backward(method, page, MaxPages, func(n int, _ bool) ([]string, int64, error) {
		body, err := c.do(ctx, d.call(c, method, map[string]any{"update_time_start": from.Unix(), "update_time_end": to.Unix(),
			"page": n - 1, "size": c.pageSize, "order_by": "update_time"}, "shop_order_list"))
		if err != nil {
			return nil, 0, err
		}
		ids, total, aerr := parseDouyinPage(body)
		if aerr != nil {
			aerr.Channel, aerr.Method, aerr.HTTPStatus = c.channel, method, http.StatusOK
			return nil, 0, aerr
		}
		return ids, total, nil
	})
}

// parseDouyinPage reads a page of order.searchList: the order ids and the
// window's order count.
func parseDouyinPage(body []byte) ([]string, int64, *APIError) {
	var r struct {
		Data struct {
			List *[]struct {
				OrderID text `json:"order_id"`
			} `json:"shop_order_list"`
			Total *int64 `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Data.List == nil || r.Data.Total == nil || *r.Data.Total < 0 {
		detail := "data.shop_order_list and data.total are required"
		if err != nil {
			detail += ": " + err.Error()
		}
		return nil, 0, malformed(detail)
	}
	ids := make([]string, 0, len(*r.Data.List))
	for i, o := range *r.Data.List {
		if o.OrderID == "" {
			return nil, 0, malformed("data.shop_order_list[" + strconv.Itoa(i) + "].order_id is missing")
		}
		ids = append(ids, string(o.OrderID))
	}
	return ids, *r.Data.Total, nil
}

// douyinCipher tells Douyin's ciphertexts ("#…#", "$…$" for phones) from
// masks ("张**").
func douyinCipher(s string) bool {
	return len(s) > 2 && (s[0] == '#' || s[0] == '$') && s[len(s)-1] == s[0]
}

func (d douyin) decrypt(ctx context.Context, c *Client, m *channels.Mapped) error {
	orderID := m.Request.ChannelOrderId
	ciphers := ciphertexts(m, douyinCipher)
	if len(ciphers) == 0 {
		return nil
	}
	var infos []map[string]any
	for _, v := range uniqueValues(ciphers) {
		infos = append(infos, map[string]any{"auth_id": orderID, "cipher_text": v})
	}
	const method = "order.batchDecrypt"
	body, err := c.do(ctx, d.call(c, method, map[string]any{"cipher_infos": infos}, "decrypt_infos"))
	if err != nil {
		return err
	}
	var r struct {
		Data struct {
			Infos []struct {
				CipherText  string `json:"cipher_text"`
				DecryptText string `json:"decrypt_text"`
				ErrNo       text   `json:"err_no"`
				ErrMsg      string `json:"err_msg"`
			} `json:"decrypt_infos"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return c.malformedErr(method, "data.decrypt_infos", err)
	}
	plain := map[string]string{}
	for _, in := range r.Data.Infos {
		if in.ErrNo != "" && in.ErrNo != "0" {
			return &APIError{Channel: c.channel, Method: method, Code: string(in.ErrNo), Message: in.ErrMsg,
				HTTPStatus: http.StatusOK, kind: douyinCodes.kind(string(in.ErrNo), "", in.ErrMsg)}
		}
		plain[in.CipherText] = in.DecryptText
	}
	return c.applyOpened(method, m, ciphers, plain, "")
}
