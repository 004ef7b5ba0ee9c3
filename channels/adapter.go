package channels

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Adapter is one sales channel.
type Adapter interface {
	// Channel is the channel's name in URLs, configuration and orders.
	Channel() string
	// Verify checks the request's signature with the connection's secrets;
	// an error wraps ErrBadSignature.
	Verify(req *Request, conn *Connection) error
	// Map reads the channel's order payload; a *FieldError names the
	// channel's field at fault.
	Map(body []byte) (*Mapped, error)
}

// Opener is an Adapter whose push scheme wraps the payload (WeChat's
// encrypted mode) or signs a timestamp a replay cache must see. Open checks
// the request as Verify does and returns what the request carries.
type Opener interface {
	Adapter
	Open(req *Request, conn *Connection) (*Opened, error)
}

// Opened is a request whose signature verified.
type Opened struct {
	// Body is the channel payload to Map: the request body, or the message
	// an encrypted envelope held.
	Body []byte
	// Replay names the signed message for a replay cache; nil when the
	// scheme signs no timestamp (then only the channel order id's
	// idempotency stops a replay).
	Replay *Replay
}

// Replay identifies one signed push within its timestamp window.
type Replay struct {
	// Field is the request field the key comes from ("nonce"), for problems.
	Field string
	// Key is the same for a request sent again: the signed timestamp and
	// nonce, or the signature of a scheme without a nonce.
	Key string
	// Expires is when the signed timestamp leaves the window: from then on
	// the request is refused anyway, so a cache may forget it.
	Expires time.Time
}

// Open verifies req with the adapter's scheme and returns the payload to
// map: through Opener when the adapter has it, else Verify and the body as
// it came.
func Open(a Adapter, req *Request, conn *Connection) (*Opened, error) {
	if o, ok := a.(Opener); ok {
		return o.Open(req, conn)
	}
	if err := a.Verify(req, conn); err != nil {
		return nil, err
	}
	return &Opened{Body: req.Body}, nil
}

// Request is what a signature covers.
type Request struct {
	Header http.Header
	Query  url.Values
	Body   []byte
	// Now is when the request arrived, for schemes with a timestamp window.
	Now time.Time
}

// Connection is one shop of one channel: its name and secrets, from the
// configuration's connections file.
type Connection struct {
	Channel string `yaml:"channel"`
	// Name tells connections of one channel apart (?connection= in the URL).
	Name string `yaml:"name"`
	// Secret signs requests: the shop's app secret or webhook secret, or
	// the connector's HMAC key.
	Secret string `yaml:"secret"`
	// AppKey is the app key of schemes that sign it in (Douyin).
	AppKey string `yaml:"app_key,omitempty"`
	// Token is WeChat's message-push token.
	Token string `yaml:"token,omitempty"`
	// EncodingAESKey is WeChat's 43-character message key (base64 of the
	// AES-256 key without its "="): it opens encrypted (safe-mode) pushes.
	EncodingAESKey string `yaml:"encoding_aes_key,omitempty"`
	// AppID is the WeChat appid an encrypted push must be addressed to: the
	// decrypted message ends with it.
	AppID string `yaml:"app_id,omitempty"`
	// AllowPlainPush accepts WeChat's plain-mode push, whose signature
	// covers token, timestamp and nonce but not the body. Default false:
	// plain pushes are refused, so a captured signed URL cannot carry
	// another body.
	AllowPlainPush bool `yaml:"allow_plain_push,omitempty"`
	// Currency is the shop's currency where payloads do not say. Default CNY.
	Currency string `yaml:"currency,omitempty"`
	// API calls the shop's platform; nil: pushed orders only.
	API *API `yaml:"api,omitempty"`
}

// Mapped is a channel order in the grid's terms.
type Mapped struct {
	// Request is the canonical order: channel, channel_order_id, lines,
	// currency, delivery_region; customer.id is left for identity
	// resolution; the customer's personal fields are as received.
	Request *pb.CreateOrderRequest
	// PlacedAt is when the buyer placed the order, as the channel says.
	PlacedAt time.Time
	// PaidAt is when the buyer paid, as the channel says; zero when the
	// channel does not say the order is paid. A paid order is taken as
	// paid (its stock committed), never left to expire unpaid in the grid.
	PaidAt time.Time
	// Cancelled is true when the platform says the order is cancelled or
	// closed, never to ship (Douyin order_status 4, Taobao TRADE_CLOSED*,
	// JD TRADE_CANCELED, Xiaohongshu 8/9, WeChat 200/250, Shopify
	// cancelled_at): an order not taken yet is not created, one taken is
	// cancelled where its status still allows.
	Cancelled bool
	// BuyerID is the platform's id of the buyer ("" when it sends none).
	BuyerID string
	// DeviceID is the buyer's device, when the channel sends one.
	DeviceID string
	// Masked is true when the receiver's name, phone or address arrived
	// masked or encrypted (the Chinese platforms'): then they identify no one.
	Masked bool
	// Province, City and District of the delivery address, as received.
	Province, City, District string
	// Discounts on the order and its lines, by who funds them.
	Discounts []Discount
	// Charges are what the buyer pays besides the lines: tax and shipping.
	Charges []Charge
	// Extra are the channel's own fields the canonical order has no place
	// for (status codes, coupon ids, platform timestamps): never personal data.
	Extra map[string]string
	// Ciphertexts are what the platform's decrypt call needs that Request
	// does not keep apart: "name", "phone" and "address_detail" as the
	// platform encrypted them (Douyin's encrypt_post_*, Pinduoduo's "~…~"),
	// and Taobao's "oaid". Nil when the receiver arrived in plain text.
	Ciphertexts map[string]string
}

// Discount is a price reduction the order got.
type Discount struct {
	// Line is the index of the line it belongs to, -1 for the whole order.
	Line int `json:"line"`
	// Amount is a decimal string in the order's currency.
	Amount string `json:"amount"`
	// FundedBy is "platform" or "shop".
	FundedBy string `json:"funded_by"`
	// Kind says what it is: coupon, promotion, gift, points, …
	Kind string `json:"kind"`
}

// Charge is an amount the buyer pays on top of the lines.
type Charge struct {
	// Kind is "tax" or "shipping".
	Kind string `json:"kind"`
	// Amount is a decimal string in the order's currency.
	Amount string `json:"amount"`
	// Line is the index of the line it belongs to, -1 for the whole order.
	Line int `json:"line"`
	// Title names it as the channel does ("VAT 20%", "Standard Shipping",
	// or the channel's field, "post_amount").
	Title string `json:"title"`
}

// PlatformError is a platform's API answer that reports a failure (Douyin
// code other than 10000, JD error_response, Taobao's and Pinduoduo's
// error_response, Xiaohongshu success:false, WeChat errcode other than 0)
// rather than carrying an order: the connector posted the platform's error.
type PlatformError struct {
	Channel string
	// Field is the envelope's field that says it failed ("code",
	// "error_response.code", "errcode").
	Field string
	// Code and Message are the platform's own.
	Code, Message string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("%s answered %s %s: %q", e.Channel, e.Field, e.Code, e.Message)
}

// FieldError names the channel's field that is missing or wrong.
type FieldError struct {
	Field  string
	Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// ErrBadSignature is a request whose signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// ErrPlainPush is a plain-mode push (a signature that does not cover the
// body) to a connection that does not allow it.
var ErrPlainPush = errors.New("plain-mode push refused")

// ErrUnknownChannel is a channel no adapter serves.
var ErrUnknownChannel = errors.New("unknown channel")

// Adapters are every channel ordergrid speaks, by name.
var Adapters = map[string]Adapter{}

func register(a Adapter) {
	if _, dup := Adapters[a.Channel()]; dup {
		panic("channels: two adapters for " + a.Channel())
	}
	Adapters[a.Channel()] = a
}

// Names lists the channels, sorted.
func Names() []string {
	out := make([]string, 0, len(Adapters))
	for n := range Adapters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Notifier is an adapter whose platform pushes notices that name orders
// rather than carry them (Douyin's message push, WeChat's order events,
// Xiaohongshu's): the grid acknowledges such a push as the platform
// requires, then fetches each order from the platform's order-detail API.
type Notifier interface {
	Adapter
	// Notices reads a push that names orders; ok is false when the body is
	// an order itself (then Map reads it). An error is a push that is
	// neither.
	Notices(body []byte) (notices []Notice, ok bool, err error)
	// Ack is the answer the platform wants for a push it must not resend.
	Ack() (contentType string, body []byte)
}

// Notice is one order a push names.
type Notice struct {
	// OrderID is the platform's order id (the parent order on Douyin).
	OrderID string
	// Tag is the platform's message type ("100" order created on Douyin,
	// "channels_ec_order_new" on WeChat), for logs and metrics.
	Tag string
	// MsgID is the platform's id of the message, when it sends one.
	MsgID string
}

// API is how ordergrid calls a shop's platform API: the order-detail call
// behind pushes that name orders, the connector's incremental pulls and the
// receiver decryption. A connection without it takes pushed orders only.
type API struct {
	// BaseURL is the platform's API endpoint
	// ("https://openapi-fxg.jinritemai.com", "https://eco.taobao.com/router/rest",
	// "https://api.jd.com/routerjson", "https://gw-api.pinduoduo.com/api/router",
	// "https://ark.xiaohongshu.com/ark/open_api/v3/common_controller",
	// "https://api.weixin.qq.com"); tests point it at a local server.
	BaseURL string `yaml:"base_url"`
	// AppKey and AppSecret sign the calls (Pinduoduo's client_id and
	// client_secret, Xiaohongshu's appId and appSecret, WeChat's appid and
	// appsecret). Default: the connection's app_key (or app_id) and secret.
	AppKey    string `yaml:"app_key,omitempty"`
	AppSecret string `yaml:"app_secret,omitempty"`
	// AccessToken is the shop's authorization (Taobao's session); WeChat's
	// is fetched with the appid and appsecret and kept until it expires.
	AccessToken string `yaml:"access_token,omitempty"`
	// SignMethod picks among a platform's documented methods: "md5"
	// (default for Taobao) or "hmac-sha256" (default for Douyin; Taobao
	// also "hmac").
	SignMethod string `yaml:"sign_method,omitempty"`
	// RatePerSecond and Burst bound the calls on this connection (a token
	// bucket). Default 10 per second, burst 10.
	RatePerSecond float64 `yaml:"rate_per_second,omitempty"`
	Burst         int     `yaml:"burst,omitempty"`
	// TimeoutMs bounds one call. Default 10000.
	TimeoutMs int `yaml:"timeout_ms,omitempty"`
	// Pull, when set, runs a connector: orders changed on the platform are
	// pulled in time windows from a cursor kept in the grid.
	Pull *Pull `yaml:"pull,omitempty"`
}

// Pull configures a connection's connector.
type Pull struct {
	// IntervalMs is how often the connector asks for changed orders.
	// Default 60000.
	IntervalMs int `yaml:"interval_ms,omitempty"`
	// OverlapMs is how far each window reaches back before the cursor, for
	// orders the platform indexes late; orders seen twice are taken once.
	// Default 300000 (5 minutes).
	OverlapMs int `yaml:"overlap_ms,omitempty"`
	// StartLookbackMs is where a new connector starts: this far before its
	// first run. Default 86400000 (a day).
	StartLookbackMs int64 `yaml:"start_lookback_ms,omitempty"`
	// WindowMaxMs bounds one window. Default 1800000. Whatever it says, the
	// connector keeps each window, overlap included, within the platform's
	// own limit (Pinduoduo and Xiaohongshu 30 minutes, Taobao a day, WeChat
	// a week: platforms.Client.WindowLimits).
	WindowMaxMs int64 `yaml:"window_max_ms,omitempty"`
	// PageSize is the orders asked per page. Default 50.
	PageSize int `yaml:"page_size,omitempty"`
}
