package channels

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// testAESKey returns an EncodingAESKey (43 characters) and its AES key.
func testAESKey(seed string) (string, []byte) {
	k := sha256.Sum256([]byte(seed))
	return base64.StdEncoding.EncodeToString(k[:])[:43], k[:]
}

// handSeal encrypts as WeChat's documentation describes it, written out
// here apart from SealWeChat and with a fixed prefix, so the test pins the
// layout rather than checking SealWeChat against its own inverse.
func handSeal(t *testing.T, key []byte, appID string, msg []byte) string {
	t.Helper()
	var plain []byte
	plain = append(plain, []byte("0123456789abcdef")...) // the 16 "random" bytes
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, appID...)
	n := 32 - len(plain)%32
	for range n {
		plain = append(plain, byte(n))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// encryptedPush is the request WeChat sends for an Encrypt field.
func encryptedPush(token, ts, nonce, encrypt string, now time.Time) *Request {
	q := url.Values{}
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", SignWeChatMsg(token, ts, nonce, encrypt))
	q.Set("signature", SignWeChat(token, ts, nonce)) // sent too; it covers no body
	body, _ := json.Marshal(weChatEnvelope{ToUserName: "gh_shop", Encrypt: encrypt})
	return &Request{Header: http.Header{}, Query: q, Body: body, Now: now}
}

func TestWeChatAESKey(t *testing.T) {
	enc, key := testAESKey("k")
	got, err := WeChatAESKey(enc)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("WeChatAESKey(%q) = %x, %v; want %x", enc, got, err, key)
	}
	for _, bad := range []string{"", enc[:42], enc + "=", strings.Repeat("!", 43)} {
		if _, err := WeChatAESKey(bad); !errors.Is(err, ErrBadWeChatKey) {
			t.Errorf("WeChatAESKey(%q): %v", bad, err)
		}
	}
}

// A push encrypted by hand opens to the order, which maps; the replay key
// is the signed timestamp and nonce.
func TestWeChatEncryptedPushOpens(t *testing.T) {
	enc, key := testAESKey("shop")
	conn := &Connection{Channel: "wechat", Token: "wx-token", EncodingAESKey: enc, AppID: "wx1234567890abcdef"}
	order, err := os.ReadFile("testdata/wechat/order.json")
	if err != nil {
		t.Fatal(err)
	}
	encrypt := handSeal(t, key, conn.AppID, order)
	raw, _ := base64.StdEncoding.DecodeString(encrypt)
	if want := (16 + 4 + len(order) + len(conn.AppID) + 32) / 32 * 32; len(raw) != want {
		t.Fatalf("the vector is %d bytes, want %d", len(raw), want)
	}
	now := time.Unix(1762826400, 0)
	o, err := Open(wechat{}, encryptedPush(conn.Token, "1762826390", "483920117", encrypt, now), conn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.Body, order) {
		t.Fatalf("opened %q", o.Body)
	}
	if o.Replay == nil || o.Replay.Key != "1762826390/483920117" || !o.Replay.Expires.Equal(time.Unix(1762826390, 0).Add(5*time.Minute)) {
		t.Fatalf("replay %+v", o.Replay)
	}
	m, err := wechat{}.Map(o.Body)
	if err != nil || m.Request.ChannelOrderId != "3705115058471208928" {
		t.Fatalf("map: %+v, %v", m, err)
	}
}

// SealWeChat's output opens; two seals of one message differ (the random prefix).
func TestSealWeChatRoundTrip(t *testing.T) {
	enc, key := testAESKey("seal")
	for _, msg := range []string{"", "x", strings.Repeat("订单", 100), strings.Repeat("a", 32-20-3)} {
		a, err := SealWeChat(enc, "wxapp", []byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := SealWeChat(enc, "wxapp", []byte(msg))
		if a == b {
			t.Fatal("two seals are equal: the prefix is not random")
		}
		got, err := openWeChat(key, "wxapp", a)
		if err != nil || string(got) != msg {
			t.Fatalf("%q opened to %q, %v", msg, got, err)
		}
	}
	if _, err := SealWeChat("short", "wxapp", nil); !errors.Is(err, ErrBadWeChatKey) {
		t.Fatalf("a bad key sealed: %v", err)
	}
}

// Every way a push can be wrong is refused, and says why.
func TestWeChatEncryptedPushRefused(t *testing.T) {
	enc, key := testAESKey("shop")
	otherEnc, otherKey := testAESKey("another shop")
	conn := &Connection{Channel: "wechat", Token: "wx-token", EncodingAESKey: enc, AppID: "wx1234567890abcdef"}
	msg := []byte(`{"order":{"order_id":1}}`)
	good := handSeal(t, key, conn.AppID, msg)
	now := time.Unix(1762826400, 0)
	ts := "1762826400"

	tampered := []byte(good)
	tampered[10] = 'A'
	if good[10] == 'A' {
		tampered[10] = 'B'
	}
	wrongKey := *conn
	wrongKey.EncodingAESKey = otherEnc
	wrongApp := *conn
	wrongApp.AppID = "wx0000000000000000"
	noKey := *conn
	noKey.EncodingAESKey, noKey.AppID = "", ""
	resigned := func(mut func(r *Request)) *Request {
		r := encryptedPush(conn.Token, ts, "1", good, now)
		mut(r)
		return r
	}
	for name, c := range map[string]struct {
		req   *Request
		conn  *Connection
		want  error
		field string
	}{
		"tampered Encrypt": {req: resigned(func(r *Request) {
			r.Body, _ = json.Marshal(weChatEnvelope{Encrypt: string(tampered)})
		}), conn: conn, want: ErrBadSignature},
		"another message under the signature": {req: resigned(func(r *Request) {
			r.Body, _ = json.Marshal(weChatEnvelope{Encrypt: handSeal(t, key, conn.AppID, []byte(`{"order":{"order_id":2}}`))})
		}), conn: conn, want: ErrBadSignature},
		"another token":      {req: encryptedPush("other-token", ts, "1", good, now), conn: conn, want: ErrBadSignature},
		"wrong key":          {req: encryptedPush(conn.Token, ts, "1", good, now), conn: &wrongKey, want: ErrBadSignature},
		"sealed for another": {req: encryptedPush(conn.Token, ts, "1", handSeal(t, otherKey, conn.AppID, msg), now), conn: conn, want: ErrBadSignature},
		"wrong appid":        {req: encryptedPush(conn.Token, ts, "1", good, now), conn: &wrongApp, want: ErrBadSignature},
		"no key configured":  {req: encryptedPush(conn.Token, ts, "1", good, now), conn: &noKey, want: ErrBadSignature},
		"stale":              {req: encryptedPush(conn.Token, "1762825000", "1", good, now), conn: conn, want: ErrBadSignature},
		"no msg_signature":   {req: resigned(func(r *Request) { r.Query.Del("msg_signature") }), conn: conn, want: ErrBadSignature},
		"encrypt_type raw":   {req: resigned(func(r *Request) { r.Query.Set("encrypt_type", "raw") }), conn: conn, want: ErrBadSignature},
		"no nonce":           {req: resigned(func(r *Request) { r.Query.Del("nonce") }), conn: conn, want: ErrBadSignature},
		"no Encrypt":         {req: resigned(func(r *Request) { r.Body = []byte(`{"ToUserName":"gh_shop"}`) }), conn: conn, field: "Encrypt"},
		"not an envelope":    {req: resigned(func(r *Request) { r.Body = msg[:5] }), conn: conn, field: "body"},
	} {
		_, err := Open(wechat{}, c.req, c.conn)
		t.Logf("%s: %v", name, err)
		var fe *FieldError
		switch {
		case err == nil:
			t.Errorf("%s: opened", name)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", name, err, c.want)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%s: %v, want a field error on %s", name, err, c.field)
		}
	}
	_, err := Open(wechat{}, encryptedPush(conn.Token, ts, "1", good, now), &wrongApp)
	if err == nil || !strings.Contains(err.Error(), `appid "wx1234567890abcdef"`) {
		t.Fatalf("wrong appid: %v", err)
	}
	if strings.Contains(err.Error(), enc) || strings.Contains(err.Error(), conn.Token) {
		t.Fatalf("an error shows a secret: %v", err)
	}
}

func TestConfigWeChatFields(t *testing.T) {
	enc, _ := testAESKey("cfg")
	for conn, field := range map[Connection]string{
		{Channel: "wechat", Token: "t", EncodingAESKey: enc[:40], AppID: "wx1"}:  "connections[0].encoding_aes_key",
		{Channel: "wechat", Token: "t", EncodingAESKey: enc}:                     "connections[0].app_id",
		{Channel: "shopify", Secret: "s", AllowPlainPush: true}:                  "connections[0]:",
		{Channel: "douyin", Secret: "s", AppKey: "k", EncodingAESKey: enc}:       "connections[0]:",
		{Channel: "wechat", Token: "t", EncodingAESKey: enc, AppID: "wx1"}:       "",
		{Channel: "wechat", Token: "t", Secret: "s", AllowPlainPush: true}:       "",
		{Channel: "wechat", Token: "t", EncodingAESKey: enc + "=", AppID: "wx1"}: "connections[0].encoding_aes_key",
	} {
		c := &Config{Connections: []Connection{conn}}
		err := c.Validate()
		if field == "" {
			if err != nil {
				t.Errorf("%+v: %v", conn, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%+v: %v, want an error on %s", conn, err, field)
		}
		if err != nil && strings.Contains(err.Error(), enc[:40]) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	c := &Config{}
	if err := c.Validate(); err != nil || c.ReplayEntriesMax != 100_000 {
		t.Fatalf("default replay_entries_max %d, %v", c.ReplayEntriesMax, err)
	}
	c = &Config{ReplayEntriesMax: -1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "replay_entries_max") {
		t.Fatalf("replay_entries_max -1: %v", err)
	}
}

// Whatever an Encrypt field holds, opening it fails or returns what it holds;
// it never panics.
func FuzzOpenWeChat(f *testing.F) {
	_, key := testAESKey("fuzz")
	for _, msg := range []string{"", "{}", strings.Repeat("x", 100)} {
		s, _ := SealWeChat(base64.StdEncoding.EncodeToString(key)[:43], "wxapp", []byte(msg))
		f.Add(s)
	}
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Fuzz(func(t *testing.T, encrypt string) {
		msg, err := openWeChat(key, "wxapp", encrypt)
		if err == nil && len(msg) > len(encrypt) {
			t.Fatalf("%d bytes out of %d", len(msg), len(encrypt))
		}
		if err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%v does not wrap ErrBadSignature", err)
		}
	})
}
