package channels

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// Every channel says in its own field whether and when the buyer paid:
// Douyin pay_time, Taobao pay_time, JD paymentConfirmTime, Pinduoduo
// confirm_time, Xiaohongshu paidTime, WeChat pay_info.pay_time (or a
// status after payment), Shopify financial_status "paid" (processed_at),
// a POS sale at the till.
func TestCancelled(t *testing.T) {
	for _, tc := range []struct {
		file    string
		replace [2]string
	}{
		{file: "douyin/order.json", replace: [2]string{`"order_status": 2`, `"order_status": 4`}},
		{file: "tmall/trade.json", replace: [2]string{`"status": "WAIT_SELLER_SEND_GOODS"`, `"status": "TRADE_CLOSED"`}},
		{file: "xiaohongshu/order.json", replace: [2]string{`"orderStatus": 4`, `"orderStatus": 9`}},
		{file: "wechat/order.json", replace: [2]string{`"status": 20`, `"status": 250`}},
		{file: "shopify/orders-create.json", replace: [2]string{`"financial_status": "paid"`, `"financial_status": "voided", "cancelled_at": "2026-11-11T16:00:00+08:00"`}},
	} {
		body, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		ch, _, _ := bytes.Cut([]byte(tc.file), []byte("/"))
		if m, err := Adapters[string(ch)].Map(body); err != nil || m.Cancelled {
			t.Fatalf("%s as is: cancelled %v, %v", tc.file, m != nil && m.Cancelled, err)
		}
		if !bytes.Contains(body, []byte(tc.replace[0])) {
			t.Fatalf("%s has no %s", tc.file, tc.replace[0])
		}
		body = bytes.Replace(body, []byte(tc.replace[0]), []byte(tc.replace[1]), 1)
		if m, err := Adapters[string(ch)].Map(body); err != nil || !m.Cancelled {
			t.Errorf("%s with %s: cancelled %v, %v", tc.file, tc.replace[1], m != nil && m.Cancelled, err)
		}
	}
}

func TestPaidAt(t *testing.T) {
	for _, tc := range []struct {
		file    string
		paid    string // RFC 3339; "" unpaid
		replace [2]string
	}{
		{file: "douyin/order.json", paid: "2025-11-11T02:01:00Z"},
		{file: "douyin/order.json", replace: [2]string{`"pay_time": 1762826460`, `"pay_time": 0`}},
		{file: "tmall/trade.json", paid: "2026-11-10T16:00:15Z"},
		{file: "jd/order.json", paid: "2026-11-11T12:15:52Z"},
		{file: "pinduoduo/order.json", paid: "2026-11-11T01:30:12Z"},
		{file: "xiaohongshu/order.json", paid: "2025-11-11T02:30:30Z"},
		{file: "wechat/order.json", paid: "2025-11-11T02:00:00Z"},
		{file: "wechat/order.json", replace: [2]string{`"status": 20`, `"status": 10`}},
		{file: "shopify/orders-create.json", paid: "2026-11-11T15:00:00Z"},
		{file: "shopify/orders-create.json", replace: [2]string{`"financial_status": "paid"`, `"financial_status": "pending"`}},
		{file: "pos/sale.json", paid: "2026-11-11T11:42:05Z"},
	} {
		body, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if tc.replace[0] != "" {
			if !bytes.Contains(body, []byte(tc.replace[0])) {
				t.Fatalf("%s has no %s", tc.file, tc.replace[0])
			}
			body = bytes.Replace(body, []byte(tc.replace[0]), []byte(tc.replace[1]), 1)
		}
		ch, _, _ := bytes.Cut([]byte(tc.file), []byte("/"))
		m, err := Adapters[string(ch)].Map(body)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		got := ""
		if !m.PaidAt.IsZero() {
			got = m.PaidAt.UTC().Format(time.RFC3339)
		}
		if got != tc.paid {
			t.Errorf("%s %v: paid at %q, want %q", tc.file, tc.replace, got, tc.paid)
		}
	}
}
