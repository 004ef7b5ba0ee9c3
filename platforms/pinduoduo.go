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

// pinduoduo is Pinduoduo's open platform (gw-api.pinduoduo.com/api/router).
// The parameters (type, client_id, access_token, timestamp in epoch
// seconds, data_type=JSON, version=V1, sign) and the signature (upper hex
// MD5 of client_secret + sorted name+value + client_secret) follow the
// brief. pdd.open.decrypt.batch's data_list {data_tag, encrypted_data} and
// open_decrypt_batch_response.data_decrypt_list {data_tag, encrypted_data,
// decrypted_data, error_code, error_msg} are confirmed from the Pinduoduo
// SDKs' generated models (Cherrs/pdd-rs, niltor/open-pdd-net-sdk). The error
// codes are assumed (the table was not found): 70031/70032 call frequency,
// 10019/10035/20004 access token and signature; messages are read too.
type pinduoduo struct{}

var pddCodes = codes{
	throttled: set("70031", "70032", "70033", "70034"),
	auth:      set("10019", "10035", "20004", "20005", "20031"),
	temporary: set("50000", "50001", "52101", "52102"),
}

func signPDD(secret string, params url.Values) string {
	sum := md5.Sum([]byte(secret + concatSorted(params) + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (pinduoduo) call(c *Client, method string, business url.Values, key string) call {
	return call{method: method,
		build: func(ctx context.Context, now time.Time) (*http.Request, error) {
			p := url.Values{"type": {method}, "client_id": {c.appKey}, "timestamp": {strconv.FormatInt(now.Unix(), 10)},
				"data_type": {"JSON"}, "version": {"V1"}}
			if c.token != "" {
				p.Set("access_token", c.token)
			}
			for k, v := range business {
				p[k] = v
			}
			p.Set("sign", signPDD(c.appSecret, p))
			return formRequest(ctx, c.base, p)
		},
		check: routerCheck(pddCodes, key)}
}

func (p pinduoduo) detail(ctx context.Context, c *Client, orderID string) ([]byte, error) {
	const method = "pdd.order.information.get"
	body, err := c.do(ctx, p.call(c, method, url.Values{"order_sn": {orderID}}, "order_info_get_response"))
	if err != nil {
		return nil, err
	}
	var r struct {
		Resp struct {
			Info json.RawMessage `json:"order_info"`
		} `json:"order_info_get_response"`
	}
	if err := json.Unmarshal(body, &r); err != nil || !isJSONObject(r.Resp.Info) {
		return nil, c.malformedErr(method, "order_info_get_response.order_info is required", err)
	}
	return body, nil
}

// limits: pdd.order.number.list.increment.get "一次请求只能查询时间跨度为30分钟
// 的增量交易记录,即end_updated_at - start_updated_at<= 30min" and "通过从后往前
// 翻页的方式以及结束时间不小于拼多多系统时间前3min可以避免漏单问题" (the method's
// description, as mirrored by the pdd crate's generated docs on docs.rs):
// the end at least 3 minutes before Pinduoduo's time.
func (pinduoduo) limits() (span, lag time.Duration) { return 30 * time.Minute, 3 * time.Minute }

// changed pages pdd.order.number.list.increment.get backward ("必须采用倒序的
// 分页方式(从最后一页往回取)才能避免漏单问题"): page 1 with use_has_next=false
// answers total_count, the others ask use_has_next=true.
func (p pinduoduo) changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error) {
	const method = "pdd.order.number.list.increment.get"
	return c.backward(method, page, MaxPages, func(n int, count bool) ([]string, int64, error) {
		body, err := c.do(ctx, p.call(c, method, url.Values{"is_lucky_flag": {"0"}, "order_status": {"5"},
			"start_updated_at": {strconv.FormatInt(from.Unix(), 10)}, "end_updated_at": {strconv.FormatInt(to.Unix(), 10)},
			"page": {strconv.Itoa(n)}, "page_size": {strconv.Itoa(c.pageSize)}, "use_has_next": {strconv.FormatBool(!count)}},
			"order_sn_increment_get_response"))
		if err != nil {
			return nil, 0, err
		}
		var r struct {
			Resp struct {
				List *[]struct {
					OrderSn string `json:"order_sn"`
				} `json:"order_sn_list"`
				Total *int64 `json:"total_count"`
			} `json:"order_sn_increment_get_response"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Resp.List == nil || count && r.Resp.Total == nil {
			return nil, 0, c.malformedErr(method, "order_sn_list and total_count are required", err)
		}
		ids := make([]string, 0, len(*r.Resp.List))
		for i, o := range *r.Resp.List {
			if o.OrderSn == "" {
				return nil, 0, c.malformedErr(method, "order_sn_list["+strconv.Itoa(i)+"].order_sn is missing", nil)
			}
			ids = append(ids, o.OrderSn)
		}
		total := int64(-1)
		if r.Resp.Total != nil {
			total = *r.Resp.Total
		}
		return ids, total, nil
	})
}

// pddCipher tells Pinduoduo's ciphertexts ("~…~") from masks ("张**").
func pddCipher(s string) bool {
	return len(s) > 2 && strings.HasPrefix(s, "~") && strings.HasSuffix(s, "~")
}

func (p pinduoduo) decrypt(ctx context.Context, c *Client, m *channels.Mapped) error {
	ciphers := ciphertexts(m, pddCipher)
	if len(ciphers) == 0 {
		return nil
	}
	sn := m.Request.ChannelOrderId
	var list []map[string]string
	for _, v := range uniqueValues(ciphers) {
		list = append(list, map[string]string{"data_tag": sn, "encrypted_data": v})
	}
	dl, err := encodeJSON(list)
	if err != nil {
		return err
	}
	const method = "pdd.open.decrypt.batch"
	body, err := c.do(ctx, p.call(c, method, url.Values{"data_list": {dl}}, "open_decrypt_batch_response"))
	if err != nil {
		return err
	}
	var r struct {
		Resp struct {
			List []struct {
				Encrypted string `json:"encrypted_data"`
				Decrypted string `json:"decrypted_data"`
				ErrorCode text   `json:"error_code"`
				ErrorMsg  string `json:"error_msg"`
			} `json:"data_decrypt_list"`
		} `json:"open_decrypt_batch_response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return c.malformedErr(method, "open_decrypt_batch_response.data_decrypt_list", err)
	}
	plain := map[string]string{}
	for _, d := range r.Resp.List {
		if d.ErrorCode != "" && d.ErrorCode != "0" {
			return &APIError{Channel: c.channel, Method: method, Code: string(d.ErrorCode), Message: d.ErrorMsg,
				HTTPStatus: http.StatusOK, kind: pddCodes.kind(string(d.ErrorCode), "", d.ErrorMsg)}
		}
		plain[d.Encrypted] = d.Decrypted
	}
	return c.applyOpened(method, m, ciphers, plain, "")
}
