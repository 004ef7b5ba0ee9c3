package channels

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestWechatMapsTheOrder(t *testing.T) {
	body, err := os.ReadFile("testdata/wechat/order.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Adapters["wechat"].Map(body)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Request
	for _, c := range []struct{ field, got, want string }{
		{"channel_order_id", r.ChannelOrderId, "3705115058471208928"}, // beyond 2^53, exact
		{"delivery_region", r.DeliveryRegion, "south"},
		{"customer.phone", r.Customer.Phone, "139****0000"},
		{"lines[0].sku", r.Lines[0].Sku, "SKU-TEA-250G"},
		{"lines[0].unit_price", r.Lines[0].UnitPrice, "68.00"},
		{"lines[1].sku", r.Lines[1].Sku, "2186734"},
		{"lines[1].unit_price", r.Lines[1].UnitPrice, "19.90"},
		{"buyer", m.BuyerID, "oA1B2c3D4e5F6g7H8i9J0kLmNoPq"},
		{"extra.order_price", m.Extra["order_price"], "145.90"},
		{"district", m.District, "南山区"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if r.Lines[0].Qty != 2 || !m.Masked || len(m.Discounts) != 2 || m.Discounts[0] != (Discount{Line: -1, Amount: "6.00", FundedBy: "shop", Kind: "discount"}) ||
		m.Discounts[1].FundedBy != "platform" || m.PlacedAt.Unix() != 1762826400 {
		t.Fatalf("lines %v masked %v discounts %+v", r.Lines, m.Masked, m.Discounts)
	}
}

func TestWechatRefusesNamingTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{"errcode":0}`:                                     "order",
		`{"order":{"create_time":1762826400}}`:              "order.order_id",
		`{"order":{"order_id":1,"create_time":"x"}}`:        "order.create_time",
		`{"order":{"order_id":1,"create_time":1762826400}}`: "order.order_detail.product_infos",
		`{"order":{"order_id":1,"create_time":1762826400,"order_detail":{"product_infos":[{"sku_code":"A","sku_cnt":0,"sale_price":1}]}}}`:   "order.order_detail.product_infos[0].sku_cnt",
		`{"order":{"order_id":1,"create_time":1762826400,"order_detail":{"product_infos":[{"sku_code":"A","sku_cnt":1,"sale_price":"x"}]}}}`: "order.order_detail.product_infos[0].sale_price",
		`{"order":{"order_id":1,"create_time":1762826400,"order_detail":{"product_infos":[{"sku_cnt":1,"sale_price":1}]}}}`:                  "order.order_detail.product_infos[0].sku_code",
	} {
		_, err := Adapters["wechat"].Map([]byte(body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != field {
			t.Errorf("%s: got %v, want a field error on %s", body, err, field)
		}
	}
}

// Plain mode: refused unless the connection allows it; allowed, the
// signature over token, timestamp and nonce and the window still hold.
func TestWechatPlainPush(t *testing.T) {
	conn := &Connection{Channel: "wechat", Token: "wx-token", Secret: "wx-secret"}
	now := time.Unix(1762826400, 0)
	q := func(ts int64, sig string) url.Values {
		v := url.Values{}
		v.Set("timestamp", strconv.FormatInt(ts, 10))
		v.Set("nonce", "n0nce")
		v.Set("signature", sig)
		return v
	}
	good := SignWeChat(conn.Token, "1762826400", "n0nce")
	if err := (wechat{}).Verify(&Request{Header: http.Header{}, Query: q(1762826400, good), Now: now}, conn); !errors.Is(err, ErrPlainPush) {
		t.Fatalf("plain push to a connection without allow_plain_push: %v", err)
	}
	conn.AllowPlainPush = true
	o, err := (wechat{}).Open(&Request{Header: http.Header{}, Query: q(1762826400, good), Body: []byte(`{"order":{}}`), Now: now}, conn)
	if err != nil {
		t.Fatal(err)
	}
	if string(o.Body) != `{"order":{}}` || o.Replay == nil || o.Replay.Key != "1762826400/n0nce" || o.Replay.Field != "nonce" ||
		!o.Replay.Expires.Equal(now.Add(wechatWindow)) {
		t.Fatalf("opened %+v replay %+v", o, o.Replay)
	}
	if err := (wechat{}).Verify(&Request{Header: http.Header{}, Query: q(1762826400, SignWeChat("other", "1762826400", "n0nce")), Now: now}, conn); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another token's signature: %v", err)
	}
	stale := SignWeChat(conn.Token, "1762825000", "n0nce")
	if err := (wechat{}).Verify(&Request{Header: http.Header{}, Query: q(1762825000, stale), Now: now}, conn); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a 23-minute-old push: %v", err)
	}
}

// A connector's post covers the body with its HMAC: no plain mode, no
// timestamp, so no replay key (the channel order id's idempotency holds).
func TestWechatConnector(t *testing.T) {
	conn := &Connection{Channel: "wechat", Token: "wx-token", Secret: "wx-secret"}
	body := []byte(`{"order":{}}`)
	h := http.Header{}
	h.Set(SignatureHeader, SignConnector(conn.Secret, body))
	o, err := Open(wechat{}, &Request{Header: h, Query: url.Values{}, Body: body, Now: time.Unix(1762826400, 0)}, conn)
	if err != nil || string(o.Body) != string(body) || o.Replay != nil {
		t.Fatalf("connector: %+v, %v", o, err)
	}
	if _, err := Open(wechat{}, &Request{Header: h, Query: url.Values{}, Body: []byte(`{"order":{"x":1}}`)}, conn); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("connector with another body: %v", err)
	}
}

func FuzzMapWechat(f *testing.F) {
	body, _ := os.ReadFile("testdata/wechat/order.json")
	f.Add(body)
	for _, env := range envelopeSeeds["wechat"] {
		f.Add([]byte(env))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMapped(t, "wechat", data) })
}
