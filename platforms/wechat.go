package platforms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ordergrid/ordergrid/channels"
)

// wechat is the WeChat Channels shop (视频号小店) API on api.weixin.qq.com.
// Confirmed from developers.weixin.qq.com (channels-shop-order
// api_getorderlist): POST /channels/ec/order/list/get?access_token= with
// update_time_range {start_time, end_time} (epoch seconds, at most 7 days
// apart), page_size (at most 100) and next_key, answering order_id_list,
// next_key and has_more. The access token (GET /cgi-bin/token), errcode
// 40001/42001/40014 (token invalid, expired, illegal), 45009/45011 (quota
// limits) and -1 (system busy) are WeChat's long-published global codes.
// The code of an unknown order is not known here: it is read from errmsg.
type wechat struct{}

var wechatCodes = codes{
	throttled: set("45009", "45011", "45033"),
	auth:      set("40001", "42001", "40014", "40013", "40125", "40164", "41001", "41002", "41004", "48001"),
	temporary: set("-1"),
}

// wechatTokenCodes are the errcodes after which the access token is fetched
// again and the call retried once.
var wechatTokenCodes = set("40001", "42001", "40014")

func wechatCheck(need string) func(int, []byte) *APIError {
	return func(status int, body []byte) *APIError {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(body, &r); err != nil {
			if status/100 != 2 {
				return nil
			}
			return malformed("not JSON: " + snippet(body))
		}
		var code text
		var msg string
		_ = json.Unmarshal(r["errcode"], &code)
		_ = json.Unmarshal(r["errmsg"], &msg)
		if code != "" && code != "0" {
			return &APIError{Code: string(code), Message: msg, kind: wechatCodes.kind(string(code), "", msg)}
		}
		if _, ok := r[need]; !ok {
			if status/100 != 2 {
				return nil
			}
			return malformed(need + " is missing")
		}
		return nil
	}
}

// accessToken is WeChat's access token: the cached one while it is fresh,
// unless stale names the token a call was refused with (then a new one).
func (c *Client) accessToken(ctx context.Context, stale string) (string, error) {
	c.wxMu.Lock()
	defer c.wxMu.Unlock()
	if c.wxToken != "" && c.wxToken != stale && c.now().Before(c.wxExpires) {
		return c.wxToken, nil
	}
	const method = "/cgi-bin/token"
	q := url.Values{"grant_type": {"client_credential"}, "appid": {c.appKey}, "secret": {c.appSecret}}
	body, err := c.do(ctx, call{method: method,
		build: func(ctx context.Context, _ time.Time) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, c.base+method+"?"+q.Encode(), nil)
		},
		check: wechatCheck("access_token")})
	if err != nil {
		return "", err
	}
	var r struct {
		Token     string `json:"access_token"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Token == "" || r.ExpiresIn <= 0 {
		return "", c.malformedErr(method, "access_token and expires_in are required", err)
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	if life > 2*tokenMargin {
		life -= tokenMargin
	} else {
		life /= 2
	}
	c.wxToken, c.wxExpires = r.Token, c.now().Add(life)
	c.log.InfoContext(ctx, "wechat access token fetched", "expires_in_s", r.ExpiresIn)
	return c.wxToken, nil
}

// post calls a WeChat API with the access token, fetching a new token and
// retrying once when the platform refuses the token.
func (wechat) post(ctx context.Context, c *Client, path string, body []byte, need string) ([]byte, error) {
	stale := ""
	for try := 0; ; try++ {
		tok, err := c.accessToken(ctx, stale)
		if err != nil {
			return nil, err
		}
		out, err := c.do(ctx, call{method: path,
			build: func(ctx context.Context, _ time.Time) (*http.Request, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path+"?access_token="+url.QueryEscape(tok), bytes.NewReader(body))
				if err != nil {
					return nil, err
				}
				req.Header.Set("Content-Type", "application/json")
				return req, nil
			},
			check: wechatCheck(need)})
		var ae *APIError
		if try == 0 && errors.As(err, &ae) && wechatTokenCodes[ae.Code] {
			c.log.InfoContext(ctx, "wechat refused the access token; fetching a new one", "errcode", ae.Code)
			stale = tok
			continue
		}
		return out, err
	}
}

func (w wechat) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	const method = "/channels/ec/order/get"
	// order_id is a uint64 beyond 2^53: written as a JSON number from its text.
	if _, err := strconv.ParseUint(orderID, 10, 64); err != nil {
		return nil, &APIError{Channel: c.channel, Method: method, Code: "order_id", Message: fmt.Sprintf("%q is not a WeChat order id (a number)", orderID), kind: ErrNotFound}
	}
	body, err := w.post(ctx, c, method, []byte(`{"order_id":`+orderID+`}`), "order")
	if err != nil {
		return nil, err
	}
	var r struct {
		Order json.RawMessage `json:"order"`
	}
	if err := json.Unmarshal(body, &r); err != nil || !isJSONObject(r.Order) {
		return nil, c.malformedErr(method, "order is required", err)
	}
	return body, nil
}

// limits: update_time_range's start_time and end_time "不可超过7天" apart
// (developers.weixin.qq.com, getorderlist). No delay behind now is
// documented: lag 0.
func (wechat) limits() (span, lag time.Duration) { return 7 * 24 * time.Hour, 0 }

// changed follows WeChat's own next_key cursor, which does not shift.
func (w wechat) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "/channels/ec/order/list/get"
	req, err := encodeJSON(map[string]any{"update_time_range": map[string]int64{"start_time": from.Unix(), "end_time": to.Unix()},
		"page_size": c.pageSize, "next_key": page})
	if err != nil {
		return nil, "", err
	}
	body, err := w.post(ctx, c, method, []byte(req), "order_id_list")
	if err != nil {
		return nil, "", err
	}
	var r struct {
		IDs     *[]text `json:"order_id_list"`
		NextKey string  `json:"next_key"`
		HasMore *bool   `json:"has_more"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.IDs == nil || r.HasMore == nil {
		return nil, "", c.malformedErr(method, "order_id_list and has_more are required", err)
	}
	ids := make([]string, 0, len(*r.IDs))
	for i, id := range *r.IDs {
		if id == "" {
			return nil, "", c.malformedErr(method, "order_id_list["+strconv.Itoa(i)+"] is empty", nil)
		}
		ids = append(ids, string(id))
	}
	if !*r.HasMore {
		return ids, "", nil
	}
	if r.NextKey == "" || r.NextKey == page {
		return nil, "", c.malformedErr(method, "has_more without a new next_key", nil)
	}
	return ids, r.NextKey, nil
}

func (wechat) decrypt(context.Context, *Client, *channels.Mapped) error {
	return unsupported("wechat", "receiver decryption")
}
