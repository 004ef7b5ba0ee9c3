package channels

import (
	"errors"
	"strings"
	"testing"
)

// envelopeSeeds are each platform's answers that report a failure, as
// their API documentation shows them, and small successful ones: the fuzz
// targets' seeds and TestPlatformErrors' table.
var envelopeSeeds = map[string][]string{
	"douyin": {
		`{"code":50002,"msg":"业务处理失败","sub_code":"isv.business-failed:10004","sub_msg":"订单不存在","log_id":"202511111000010102","data":{}}`,
		`{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":3,"origin_amount":333,"sum_amount":999}]}}}`,
		`{"code":0,"data":{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":1,"origin_amount":1}]}}}`,
	},
	"jd": {
		`{"error_response":{"code":"19","zh_desc":"token已过期或者不存在，请重新授权访问","en_desc":"Invalid access_token"}}`,
		`{"jingdong_pop_order_get_responce":{"code":"66","zh_desc":"平台连接后端服务不可用"}}`,
		`{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"apiResult":{"success":false,"numberCode":10100033,"chineseErrCode":"订单不存在","englishErrCode":"order not found"}}}}`,
		`{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"apiResult":{"success":true},"orderInfo":{"orderId":1,"orderStartTime":"2026-11-11 20:15:30","itemInfoList":[{"skuId":"1","jdPrice":"1.00","itemTotal":"1"}]}}}}`,
	},
	"tmall": {
		`{"error_response":{"code":27,"msg":"Invalid session","sub_code":"invalid-sessionkey","sub_msg":"SessionKey非法","request_id":"zt2z6wry5h9k"}}`,
	},
	"pinduoduo": {
		`{"error_response":{"error_code":10019,"error_msg":"access_token已过期","sub_code":"10019","sub_msg":"","request_id":"17628264001234567"}}`,
		`{"order_info":{"order_sn":"1","created_time":"2026-11-11 09:30:00","item_list":[{"sku_id":1,"goods_count":1,"goods_price":1}]}}`,
	},
	"xiaohongshu": {
		`{"success":false,"code":-1002,"msg":"订单不存在","data":null}`,
		`{"success":false,"error_code":"ORDER_NOT_FOUND","error_msg":"order not found"}`,
		`{"orderId":"P1","createdTime":1762828200123,"skuList":[{"erpcode":"A","skuQuantity":1,"skuDetailList":[{"pricePerSku":100}]}]}`,
	},
	"wechat": {
		`{"errcode":100002,"errmsg":"order not exist"}`,
		`{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`,
	},
}

// An answer that reports a failure is a *PlatformError naming the
// envelope's field, with the platform's code and message.
func TestPlatformErrors(t *testing.T) {
	for _, c := range []struct {
		channel, body, field, code, message string
	}{
		{"douyin", envelopeSeeds["douyin"][0], "code", "50002", "订单不存在"},
		{"jd", envelopeSeeds["jd"][0], "error_response.code", "19", "token已过期"},
		{"jd", envelopeSeeds["jd"][1], "jingdong_pop_order_get_responce.code", "66", "后端服务不可用"},
		{"jd", envelopeSeeds["jd"][2], "jingdong_pop_order_get_responce.orderDetailInfo.apiResult.success", "10100033", "订单不存在"},
		{"tmall", envelopeSeeds["tmall"][0], "error_response.code", "27", "Invalid session"},
		{"pinduoduo", envelopeSeeds["pinduoduo"][0], "error_response.error_code", "10019", "access_token已过期"},
		{"xiaohongshu", envelopeSeeds["xiaohongshu"][0], "success", "-1002", "订单不存在"},
		{"xiaohongshu", envelopeSeeds["xiaohongshu"][1], "success", "ORDER_NOT_FOUND", "order not found"},
		{"wechat", envelopeSeeds["wechat"][0], "errcode", "100002", "order not exist"},
	} {
		_, err := Adapters[c.channel].Map([]byte(c.body))
		var pe *PlatformError
		if !errors.As(err, &pe) || pe.Channel != c.channel || pe.Field != c.field || pe.Code != c.code || !strings.Contains(pe.Message, c.message) {
			t.Errorf("%s %s: got %#v", c.channel, c.body, err)
			continue
		}
		if !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: Error() %q does not quote the platform's message", c.channel, err)
		}
	}
}

// The full answer and the order object inside it map to the same order;
// the fields are named from the body's top.
func TestEnvelopesMapAlike(t *testing.T) {
	for _, c := range []struct {
		channel, full, inner, innerField string
	}{
		{"douyin", envelopeSeeds["douyin"][1], `{"shop_order_detail":{"order_id":"1","create_time":1762826400,"sku_order_list":[{"code":"A","item_num":3,"origin_amount":333,"sum_amount":999}]}}`, ""},
		{"jd", envelopeSeeds["jd"][3], `{"orderInfo":{"orderId":1,"orderStartTime":"2026-11-11 20:15:30","itemInfoList":[{"skuId":"1","jdPrice":"1.00","itemTotal":"1"}]}}`, ""},
		{"pinduoduo", `{"order_info_get_response":` + envelopeSeeds["pinduoduo"][1] + `}`, envelopeSeeds["pinduoduo"][1], ""},
		{"tmall", `{"trade_fullinfo_get_response":{"trade":{"tid":1,"created":"2026-11-11 00:00:08","orders":{"order":[{"oid":1,"sku_id":"2","num":1,"price":"1.00"}]}}}}`,
			`{"trade":{"tid":1,"created":"2026-11-11 00:00:08","orders":{"order":[{"oid":1,"sku_id":"2","num":1,"price":"1.00"}]}}}`, ""},
		{"xiaohongshu", `{"success":true,"code":0,"msg":"成功","data":` + envelopeSeeds["xiaohongshu"][2] + `}`, envelopeSeeds["xiaohongshu"][2], ""},
		{"wechat", `{"errcode":0,"errmsg":"ok","order":{"order_id":1,"create_time":1762826400,"order_detail":{"product_infos":[{"sku_id":2,"sku_cnt":1,"sale_price":100}]}}}`, "", ""},
	} {
		full, err := Adapters[c.channel].Map([]byte(c.full))
		if err != nil {
			t.Fatalf("%s full answer: %v", c.channel, err)
		}
		if c.inner == "" {
			continue
		}
		inner, err := Adapters[c.channel].Map([]byte(c.inner))
		if err != nil {
			t.Fatalf("%s inner object: %v", c.channel, err)
		}
		if full.Request.ChannelOrderId != inner.Request.ChannelOrderId || full.Request.Lines[0].UnitPrice != inner.Request.Lines[0].UnitPrice {
			t.Fatalf("%s: %v and %v", c.channel, full.Request, inner.Request)
		}
	}
	for channel, bodies := range map[string]map[string]string{
		"douyin": {`{"code":10000,"data":{"shop_order_detail":{"order_id":"1","create_time":"x"}}}`: "data.shop_order_detail.create_time"},
		"jd": {`{"jingdong_pop_order_get_responce":{"code":"0","orderDetailInfo":{"orderInfo":{"orderId":1}}}}`: "jingdong_pop_order_get_responce.orderDetailInfo.orderInfo.orderStartTime",
			`{"jingdong_pop_order_get_responce":{"code":"0"}}`: "jingdong_pop_order_get_responce.orderDetailInfo"},
		"pinduoduo":   {`{"order_info":{"created_time":"2026-11-11 09:30:00"}}`: "order_info.order_sn", `{}`: "order_info_get_response.order_info"},
		"tmall":       {`{"trade_fullinfo_get_response":{}}`: "trade_fullinfo_get_response.trade"},
		"wechat":      {`{"errcode":0,"errmsg":"ok"}`: "order", `{"errcode":0,"order":{"order_id":1,"create_time":5}}`: "order.create_time"},
		"xiaohongshu": {`{"success":true,"data":{"orderId":"P1","createdTime":1}}`: "data.createdTime"},
	} {
		for body, field := range bodies {
			_, err := Adapters[channel].Map([]byte(body))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("%s %s: got %v, want a field error on %s", channel, body, err, field)
			}
		}
	}
}
