package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// Envelopes: each platform's API wraps the order in an answer that also
// says whether the call succeeded. A connector may post that answer as it
// came or only the order object inside it; the unwrap functions here, one
// per platform, accept both, find the order object and the path that names
// it in the body (for field errors), and turn an answer that reports a
// failure into a *PlatformError.
//
//	douyin       {code, msg, sub_code, sub_msg, data: {shop_order_detail}}   success: code 10000 (0 also taken)
//	             or {shop_order_detail}
//	jd           {jingdong_pop_order_get_responce: {code, orderDetailInfo: {orderInfo, apiResult}}}   success: code "0"
//	             {error_response: {code, zh_desc, en_desc}}, or {orderInfo}
//	tmall        {trade_fullinfo_get_response: {trade}}, {error_response: {code, msg, sub_code, sub_msg}}, or {trade}
//	pinduoduo    {order_info_get_response: {order_info}}, {error_response: {error_code, error_msg, sub_code, sub_msg}},
//	             or {order_info}
//	xiaohongshu  {success, code, msg, data}   success: success true; or the bare data object (with orderId)
//	wechat       {errcode, errmsg, order}   success: errcode 0
//
// Sources: Douyin's order.orderDetail answer (open.douyin.com / op.jinritemai.com
// "订单详情"; its code 10000 "success" is documented there, the SDKs on GitHub
// model {code, msg, sub_code, sub_msg, data}); JD's jingdong.pop.order.get
// ("responce" is JD's spelling); Taobao's TOP error_response; Pinduoduo's
// error_response with error_code/error_msg; Xiaohongshu ark's {success, code,
// msg, data}; WeChat's {errcode, errmsg}.

// platformCode is an envelope's code as text: platforms send it as a
// number, a string or (rarely) a negative number.
type platformCode string

// UnmarshalJSON takes any JSON scalar.
func (c *platformCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = platformCode(s)
	case b[0] == '{' || b[0] == '[':
		return &json.UnmarshalTypeError{Value: "object or array", Type: reflect.TypeFor[string]()}
	default:
		*c = platformCode(b)
	}
	return nil
}

// present reports whether a member was sent with a value other than null.
func present(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) > 0 && string(r) != "null"
}

// decodeAt decodes the object found at path at ("data.shop_order_detail";
// "" for the body itself): a field error names the field from the body's top.
func decodeAt(body []byte, at string, v any) error {
	err := decode(body, v)
	var fe *FieldError
	if at != "" && errors.As(err, &fe) {
		if fe.Field == "body" {
			fe.Field = at
		} else {
			fe.Field = at + "." + fe.Field
		}
	}
	return err
}

// join writes the non-empty parts of a platform's message.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ": ")
}

func unwrapDouyin(body []byte) (json.RawMessage, string, error) {
	var e struct {
		Code    *platformCode   `json:"code"`
		Msg     string          `json:"msg"`
		SubCode string          `json:"sub_code"`
		SubMsg  string          `json:"sub_msg"`
		Data    json.RawMessage `json:"data"`
		Detail  json.RawMessage `json:"shop_order_detail"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Code != nil && *e.Code != "" && *e.Code != "10000" && *e.Code != "0" {
		return nil, "", &PlatformError{Channel: "douyin", Field: "code", Code: string(*e.Code), Message: join(e.Msg, e.SubCode, e.SubMsg)}
	}
	if present(e.Data) {
		var d struct {
			Detail json.RawMessage `json:"shop_order_detail"`
		}
		if err := decodeAt(e.Data, "data", &d); err != nil {
			return nil, "", err
		}
		if !present(d.Detail) {
			return nil, "", fieldErr("data.shop_order_detail", "required")
		}
		return d.Detail, "data.shop_order_detail", nil
	}
	if !present(e.Detail) {
		return nil, "", fieldErr("shop_order_detail", "required")
	}
	return e.Detail, "shop_order_detail", nil
}

func unwrapJD(body []byte) (json.RawMessage, string, error) {
	type jdError struct {
		Code   platformCode `json:"code"`
		ZhDesc string       `json:"zh_desc"`
		EnDesc string       `json:"en_desc"`
	}
	var e struct {
		Resp *struct {
			jdError
			Detail *struct {
				OrderInfo json.RawMessage `json:"orderInfo"`
				Result    *struct {
					Success        *bool        `json:"success"`
					NumberCode     platformCode `json:"numberCode"`
					ChineseErrCode string       `json:"chineseErrCode"`
					EnglishErrCode string       `json:"englishErrCode"`
				} `json:"apiResult"`
			} `json:"orderDetailInfo"`
		} `json:"jingdong_pop_order_get_responce"`
		Err       *jdError        `json:"error_response"`
		OrderInfo json.RawMessage `json:"orderInfo"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.Err != nil {
		return nil, "", &PlatformError{Channel: "jd", Field: "error_response.code", Code: string(e.Err.Code), Message: join(e.Err.ZhDesc, e.Err.EnDesc)}
	}
	if r := e.Resp; r != nil {
		const at = "jingdong_pop_order_get_responce"
		if r.Code != "" && r.Code != "0" {
			return nil, "", &PlatformError{Channel: "jd", Field: at + ".code", Code: string(r.Code), Message: join(r.ZhDesc, r.EnDesc)}
		}
		if r.Detail == nil {
			return nil, "", fieldErr(at+".orderDetailInfo", "required")
		}
		if res := r.Detail.Result; res != nil && res.Success != nil && !*res.Success {
			return nil, "", &PlatformError{Channel: "jd", Field: at + ".orderDetailInfo.apiResult.success", Code: string(res.NumberCode),
				Message: join(res.ChineseErrCode, res.EnglishErrCode)}
		}
		if !present(r.Detail.OrderInfo) {
			return nil, "", fieldErr(at+".orderDetailInfo.orderInfo", "required")
		}
		return r.Detail.OrderInfo, at + ".orderDetailInfo.orderInfo", nil
	}
	if !present(e.OrderInfo) {
		return nil, "", fieldErr("orderInfo", "required")
	}
	return e.OrderInfo, "orderInfo", nil
}

// topError is the error_response of Taobao's TOP and Pinduoduo's gateway.
type topError struct {
	Code      platformCode `json:"code"`
	Msg       string       `json:"msg"`
	ErrorCode platformCode `json:"error_code"`
	ErrorMsg  string       `json:"error_msg"`
	SubCode   string       `json:"sub_code"`
	SubMsg    string       `json:"sub_msg"`
}

func (e *topError) platformError(channel string) *PlatformError {
	if e.ErrorCode != "" || e.Code == "" {
		return &PlatformError{Channel: channel, Field: "error_response.error_code", Code: string(e.ErrorCode), Message: join(e.ErrorMsg, e.SubCode, e.SubMsg)}
	}
	return &PlatformError{Channel: channel, Field: "error_response.code", Code: string(e.Code), Message: join(e.Msg, e.SubCode, e.SubMsg)}
}

func unwrapTmall(body []byte) (json.RawMessage, string, error) {
	var e struct {
		Resp *struct {
			Trade json.RawMessage `json:"trade"`
		} `json:"trade_fullinfo_get_response"`
		Err   *topError       `json:"error_response"`
		Trade json.RawMessage `json:"trade"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.Err != nil:
		return nil, "", e.Err.platformError("tmall")
	case e.Resp != nil && present(e.Resp.Trade):
		return e.Resp.Trade, "trade_fullinfo_get_response.trade", nil
	case e.Resp != nil:
		return nil, "", fieldErr("trade_fullinfo_get_response.trade", "required")
	case present(e.Trade):
		return e.Trade, "trade", nil
	}
	return nil, "", fieldErr("trade", "required")
}

func unwrapPinduoduo(body []byte) (json.RawMessage, string, error) {
	var e struct {
		Resp *struct {
			Info json.RawMessage `json:"order_info"`
		} `json:"order_info_get_response"`
		Err  *topError       `json:"error_response"`
		Info json.RawMessage `json:"order_info"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.Err != nil:
		return nil, "", e.Err.platformError("pinduoduo")
	case e.Resp != nil && present(e.Resp.Info):
		return e.Resp.Info, "order_info_get_response.order_info", nil
	case present(e.Info):
		return e.Info, "order_info", nil
	}
	return nil, "", fieldErr("order_info_get_response.order_info", "required")
}

func unwrapXiaohongshu(body []byte) (json.RawMessage, string, error) {
	var e struct {
		Success   *bool           `json:"success"`
		Code      platformCode    `json:"code"`
		Msg       string          `json:"msg"`
		ErrorCode platformCode    `json:"error_code"`
		ErrorMsg  string          `json:"error_msg"`
		Data      json.RawMessage `json:"data"`
		OrderID   json.RawMessage `json:"orderId"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	switch {
	case e.Success != nil && !*e.Success:
		code := e.Code
		if code == "" {
			code = e.ErrorCode
		}
		return nil, "", &PlatformError{Channel: "xiaohongshu", Field: "success", Code: string(code), Message: join(e.Msg, e.ErrorMsg)}
	case present(e.Data):
		return e.Data, "data", nil
	case e.Success == nil && present(e.OrderID):
		return body, "", nil // the bare data object
	}
	return nil, "", fieldErr("data", "required")
}

func unwrapWeChat(body []byte) (json.RawMessage, string, error) {
	var e struct {
		ErrCode platformCode    `json:"errcode"`
		ErrMsg  string          `json:"errmsg"`
		Order   json.RawMessage `json:"order"`
	}
	if err := decode(body, &e); err != nil {
		return nil, "", err
	}
	if e.ErrCode != "" && e.ErrCode != "0" {
		return nil, "", &PlatformError{Channel: "wechat", Field: "errcode", Code: string(e.ErrCode), Message: e.ErrMsg}
	}
	if !present(e.Order) {
		return nil, "", fieldErr("order", "required")
	}
	return e.Order, "order", nil
}
