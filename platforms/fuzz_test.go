package platforms

import (
	"errors"
	"testing"
)

// FuzzParseDouyinPage feeds order.searchList answers to the page parser
// and the response checks of every platform: none may panic, and a page
// read without error has only non-empty ids and a count not below zero.
func FuzzParseDouyinPage(f *testing.F) {
	for _, seed := range []string{
		`{"code":10000,"msg":"success","data":{"shop_order_list":[{"order_id":"1"},{"order_id":2}],"total":5,"page":0,"size":2}}`,
		`{"code":10000,"msg":"success","data":{"shop_order_list":[],"total":0}}`,
		`{"code":10000,"data":{"shop_order_list":[{"order_id":null}],"total":"x"}}`,
		`{"code":90000,"msg":"流量限制","sub_code":"isp.flow-limit"}`,
		`{"error_response":{"code":7,"msg":"App Call Limited"}}`,
		`{"errcode":45011,"errmsg":"limit"}`,
		`{"success":false,"error_code":-1}`,
		`[]`, `null`, `{"data":null}`, `<html>`,
	} {
		f.Add([]byte(seed))
	}
	checks := []func(int, []byte) *APIError{
		douyin{}.call(&Client{}, "order.searchList", nil, "shop_order_list").check,
		routerCheck(taobaoCodes, "trades_sold_increment_get_response"),
		jd{}.call(&Client{}, "jingdong.pop.order.search", nil).check,
		xiaohongshu{}.call(&Client{}, "order.getOrderList", nil, "orderList").check,
		wechatCheck("order_id_list"),
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, check := range checks {
			if e := check(200, body); e != nil && e.kind == nil {
				t.Fatalf("an error without a sentinel: %v", e)
			}
		}
		ids, total, aerr := parseDouyinPage(body)
		if aerr != nil {
			if !errors.Is(aerr, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", aerr)
			}
			return
		}
		for _, id := range ids {
			if id == "" {
				t.Fatal("an empty id")
			}
		}
		if total < 0 {
			t.Fatalf("total %d", total)
		}
	})
}
