package channels

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestNotices(t *testing.T) {
	order, err := os.ReadFile("testdata/douyin/order.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		a       Notifier
		body    string
		ok      bool
		ids     []string
		tags    []string
		errPath string
	}{
		{name: "douyin order messages", a: douyin{}, ok: true, ids: []string{"4781320682406083640", "4781320682406083641"}, tags: []string{"100", "101"},
			body: `[{"tag":"100","msg_id":"7061459375519697165","data":"{\"p_id\":4781320682406083640,\"s_ids\":[4781320682406083640],\"shop_id\":1234,\"order_status\":1,\"create_time\":1630000000}"},` +
				`{"tag":"101","msg_id":"7061459375519697166","data":"{\"p_id\":\"4781320682406083641\",\"s_ids\":[],\"pay_amount\":100}"}]`},
		{name: "douyin test message names nothing", a: douyin{}, ok: true, body: `[{"tag":"0","msg_id":"1","data":"{\"shop_id\":1234}"}]`},
		{name: "douyin order is not a notice", a: douyin{}, body: string(order)},
		{name: "douyin bad data", a: douyin{}, ok: true, errPath: "[0].data.p_id", body: `[{"tag":"100","data":"{\"p_id\":[1]}"}]`},
		{name: "wechat json event", a: wechat{}, ok: true, ids: []string{"3705115058471208928"}, tags: []string{"channels_ec_order_new"},
			body: `{"ToUserName":"gh_*","FromUserName":"OPENID","CreateTime":1662480000,"MsgType":"event","Event":"channels_ec_order_new","order_info":{"order_id":3705115058471208928}}`},
		{name: "wechat xml event", a: wechat{}, ok: true, ids: []string{"3705115058471208928"}, tags: []string{"channels_ec_order_pay"},
			body: `<xml><ToUserName><![CDATA[gh_x]]></ToUserName><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[channels_ec_order_pay]]></Event><order_info><order_id>3705115058471208928</order_id></order_info></xml>`},
		{name: "wechat other event", a: wechat{}, ok: true, body: `{"MsgType":"event","Event":"product_spu_audit","ProductSpuAudit":{}}`},
		{name: "wechat order event without id", a: wechat{}, ok: true, errPath: "order_info.order_id", body: `{"MsgType":"event","Event":"channels_ec_order_new","order_info":{}}`},
		{name: "wechat order detail is not a notice", a: wechat{}, body: `{"errcode":0,"order":{"order_id":1}}`},
		{name: "xiaohongshu messages", a: xiaohongshu{}, ok: true, ids: []string{"P708612345678901234"}, tags: []string{"msg_fulfillment_status_change"},
			body: `[{"msgTag":"msg_fulfillment_status_change","sellerId":"5f1","data":"{\"orderId\":\"P708612345678901234\",\"orderStatus\":4,\"updateTime\":1700000000000}"},{"msgTag":"msg_item_audit","data":"{\"itemId\":\"1\"}"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, ok, err := tc.a.Notices([]byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%v)", ok, tc.ok, err)
			}
			if tc.errPath != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.errPath {
					t.Fatalf("error %v, want one naming %s", err, tc.errPath)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids, tags []string
			for _, n := range ns {
				ids, tags = append(ids, n.OrderID), append(tags, n.Tag)
			}
			if !slices.Equal(ids, tc.ids) || !slices.Equal(tags, tc.tags) {
				t.Fatalf("ids %v tags %v, want %v %v", ids, tags, tc.ids, tc.tags)
			}
		})
	}
}

func FuzzNotices(f *testing.F) {
	f.Add([]byte(`[{"tag":"100","msg_id":"1","data":"{\"p_id\":1}"}]`))
	f.Add([]byte(`{"MsgType":"event","Event":"channels_ec_order_new","order_info":{"order_id":1}}`))
	f.Add([]byte(`<xml><Event>channels_ec_order_new</Event><order_info><order_id>1</order_id></order_info></xml>`))
	f.Add([]byte(`[{"msgTag":"x","data":"{\"orderId\":\"P1\"}"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, a := range []Notifier{douyin{}, wechat{}, xiaohongshu{}} {
			ns, ok, err := a.Notices(body)
			if err == nil && len(ns) > NoticesPerPushMax {
				t.Fatalf("%s: %d notices", a.Channel(), len(ns))
			}
			if !ok && len(ns) > 0 {
				t.Fatalf("%s: notices from a body that is not a push", a.Channel())
			}
			for _, n := range ns {
				if n.OrderID == "" {
					t.Fatalf("%s: a notice without an order id", a.Channel())
				}
			}
		}
	})
}

// A connection's api settings are checked field by field.
func TestConfigAPIFields(t *testing.T) {
	for _, tc := range []struct {
		api   API
		field string
	}{
		{api: API{BaseURL: "https://openapi-fxg.jinritemai.com", Pull: &Pull{IntervalMs: 60_000}}},
		{api: API{}, field: "connections[0].api.base_url"},
		{api: API{BaseURL: "ftp://x"}, field: "connections[0].api.base_url"},
		{api: API{BaseURL: "http://x", RatePerSecond: -1}, field: "connections[0].api.rate_per_second"},
		{api: API{BaseURL: "http://x", TimeoutMs: 1_000_000}, field: "connections[0].api.timeout_ms"},
		{api: API{BaseURL: "http://x", Pull: &Pull{IntervalMs: 10}}, field: "connections[0].api.pull.interval_ms"},
		{api: API{BaseURL: "http://x", Pull: &Pull{PageSize: 1000}}, field: "connections[0].api.pull.page_size"},
		{api: API{BaseURL: "http://x", Pull: &Pull{WindowMaxMs: 1}}, field: "connections[0].api.pull.window_max_ms"},
	} {
		api := tc.api
		c := Config{Connections: []Connection{{Channel: "tmall", Secret: "s", API: &api}}}
		err := c.Validate()
		if tc.field == "" && err != nil {
			t.Errorf("%+v: %v", tc.api, err)
		}
		if tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field+":")) {
			t.Errorf("%+v: %v, want an error naming %s", tc.api, err, tc.field)
		}
	}
}
