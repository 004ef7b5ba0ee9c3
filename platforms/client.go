package platforms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"golang.org/x/time/rate"
)

// Limits of every client.
const (
	// MaxBodyBytes bounds a response body read from a platform (8 MiB): a
	// longer one is refused as ErrMalformed, never read whole.
	MaxBodyBytes = 8 << 20
	// DefaultAttempts bounds the tries of a throttled call.
	DefaultAttempts = 4
	// MaxPages bounds how far ChangedOrders pages: a window of more pages
	// is refused with ErrWindowTooLarge (narrow pull.window_max_ms), and a
	// page token beyond it is not one the client handed out.
	MaxPages = 1000
	// MaxPageSize is the most orders asked per page (the platforms' own
	// limit is 100).
	MaxPageSize = 100
	// backoffBase and backoffMax shape the retry delay: attempt n waits a
	// uniformly random delay in [0, min(backoffMax, backoffBase·2ⁿ)).
	backoffBase = 250 * time.Millisecond
	backoffMax  = 8 * time.Second
	// tokenMargin is how long before its expiry a WeChat access token is
	// fetched again.
	tokenMargin = 5 * time.Minute
)

// Sentinel errors: every *APIError unwraps to one of them.
var (
	// ErrThrottled is the platform's rate-limit answer (or HTTP 429), still
	// there after the client's own retries.
	ErrThrottled = errors.New("throttled by the platform")
	// ErrNotFound is an order id the platform does not know.
	ErrNotFound = errors.New("order not found on the platform")
	// ErrAuth is credentials, an access token or a signature the platform
	// refused: retrying will not help until the connection is fixed.
	ErrAuth = errors.New("refused credentials, token or signature")
	// ErrTemporary is a 5xx, a network failure or the platform's
	// system-busy codes: worth trying again later.
	ErrTemporary = errors.New("temporary platform failure")
	// ErrMalformed is a response that is not the documented shape (not
	// JSON, fields missing, longer than MaxBodyBytes), or a page token the
	// client did not hand out.
	ErrMalformed = errors.New("malformed platform response")
	// ErrUnsupported is an operation the platform (or this client) does
	// not offer.
	ErrUnsupported = errors.New("unsupported by the platform")
	// ErrRejected is any other refusal by the platform (an invalid
	// parameter, a permission the shop did not grant): not worth retrying
	// as it is.
	ErrRejected = errors.New("rejected by the platform")
	// ErrWindowTooLarge is a changed-orders window holding more pages than
	// the client reads (MaxPages, or the platform's own page limit): the
	// window was not listed; narrow pull.window_max_ms.
	ErrWindowTooLarge = errors.New("changed-orders window too large")
)

// ErrWindow is a changed-orders window ChangedOrders refuses before asking
// the platform: longer than the span of WindowLimits (a caller's bug). It
// is a plain error, not an *APIError.
var ErrWindow = errors.New("changed-orders window outside the platform's limits")

// APIError is one failed platform call.
type APIError struct {
	Channel string
	// Method is the platform's method ("order.orderDetail",
	// "/channels/ec/order/get").
	Method string
	// Code and SubCode are the platform's error codes ("network" for a
	// failed connection, "malformed" for a response of the wrong shape).
	Code, SubCode string
	// Message is the platform's own message (msg and sub_msg joined).
	Message    string
	HTTPStatus int
	kind       error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "platforms: %s %s: %v", e.Channel, e.Method, e.kind)
	if e.Code != "" {
		b.WriteString(": code " + e.Code)
	}
	if e.SubCode != "" {
		b.WriteString(" sub_code " + e.SubCode)
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != http.StatusOK {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel error the failure is one of.
func (e *APIError) Unwrap() error { return e.kind }

// Options are a Client's seams.
type Options struct {
	// HTTPClient sends the requests; nil: a client whose timeout is the
	// connection's timeout_ms. Each attempt is bounded by timeout_ms anyway.
	HTTPClient *http.Client
	// Now is the clock of timestamps, the token bucket and token expiry;
	// nil: time.Now.
	Now func() time.Time
	// Logger receives retries and token refreshes; nil: slog.Default().
	Logger *slog.Logger
	// Metrics counts the calls; nil: none.
	Metrics *Metrics
	// Sleep waits delay or until ctx ends (the token bucket's waits and the
	// retry backoff); nil: a timer. Tests pass one that advances a fake clock.
	Sleep func(ctx context.Context, delay time.Duration) error
	// Jitter picks the retry delay in [0, limit); nil: uniformly random.
	Jitter func(limit time.Duration) time.Duration
	// Attempts bounds the tries of a throttled call; 0: DefaultAttempts.
	Attempts int
}

// Client calls one connection's platform API. Safe for concurrent use.
type Client struct {
	conn       *channels.Connection
	channel    string
	base       string
	appKey     string
	appSecret  string
	token      string
	signMethod string
	pageSize   int
	timeout    time.Duration
	http       *http.Client
	now        func() time.Time
	log        *slog.Logger
	metrics    *Metrics
	sleep      func(context.Context, time.Duration) error
	jitter     func(time.Duration) time.Duration
	attempts   int
	limiter    *rate.Limiter
	p          platform

	// wxMu guards WeChat's cached access token.
	wxMu      sync.Mutex
	wxToken   string
	wxExpires time.Time
}

// platform is one platform's API.
type platform interface {
	detail(ctx context.Context, c *Client, orderID string) ([]byte, error)
	changed(ctx context.Context, c *Client, from, to time.Time, page string) ([]string, string, error)
	decrypt(ctx context.Context, c *Client, m *channels.Mapped) error
	// limits are the changed-orders call's longest window and how far
	// behind now its end should stay (see WindowLimits).
	limits() (span, lag time.Duration)
}

var platformsByChannel = map[string]platform{
	"douyin":      douyin{},
	"tmall":       taobao{},
	"jd":          jd{},
	"pinduoduo":   pinduoduo{},
	"xiaohongshu": xiaohongshu{},
	"wechat":      wechat{},
}

// New returns the client of conn's platform. It fails when conn has no
// API settings or its channel has no client.
func New(conn *channels.Connection, opts Options) (*Client, error) {
	if conn == nil || conn.API == nil {
		return nil, errors.New("platforms: the connection has no api settings")
	}
	p, ok := platformsByChannel[conn.Channel]
	if !ok {
		return nil, fmt.Errorf("platforms: channel %q has no API client: %w", conn.Channel, ErrUnsupported)
	}
	a := conn.API
	if a.BaseURL == "" {
		return nil, fmt.Errorf("platforms: connection %q: api.base_url is required", conn.Name)
	}
	c := &Client{conn: conn, channel: conn.Channel, base: strings.TrimRight(a.BaseURL, "/"),
		appKey: a.AppKey, appSecret: a.AppSecret, token: a.AccessToken, signMethod: strings.ToLower(a.SignMethod),
		http: opts.HTTPClient, now: opts.Now, log: opts.Logger, metrics: opts.Metrics,
		sleep: opts.Sleep, jitter: opts.Jitter, attempts: opts.Attempts, p: p}
	if c.appKey == "" {
		c.appKey = conn.AppKey
		if conn.Channel == "wechat" || conn.Channel == "xiaohongshu" {
			c.appKey = conn.AppID
		}
	}
	if c.appSecret == "" {
		c.appSecret = conn.Secret
	}
	if c.appKey == "" || c.appSecret == "" {
		return nil, fmt.Errorf("platforms: connection %q: the app key and app secret are required", conn.Name)
	}
	timeoutMs := a.TimeoutMs
	if timeoutMs <= 0 {
		timeoutMs = 10000
	}
	c.timeout = time.Duration(timeoutMs) * time.Millisecond
	ratePerSecond, burst := a.RatePerSecond, a.Burst
	if ratePerSecond <= 0 {
		ratePerSecond = 10
	}
	if burst <= 0 {
		burst = 10
	}
	c.pageSize = 50
	if a.Pull != nil && a.Pull.PageSize > 0 {
		c.pageSize = min(a.Pull.PageSize, MaxPageSize)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("channel", c.channel, "connection", conn.Name)
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.jitter == nil {
		c.jitter = func(limit time.Duration) time.Duration { return rand.N(limit) }
	}
	if c.attempts <= 0 {
		c.attempts = DefaultAttempts
	}
	c.limiter = rate.NewLimiter(rate.Limit(ratePerSecond), burst)
	return c, nil
}

// OrderDetail fetches one order from the platform's order-detail API and
// returns the platform's whole success response body, unchanged.
func (c *Client) OrderDetail(ctx context.Context, orderID string) ([]byte, error) {
	if orderID == "" {
		return nil, errors.New("platforms: an order id is required")
	}
	return c.p.detail(ctx, c, orderID)
}

// ChangedOrders lists the ids of orders changed (updated) in [from, to),
// one page at a time: page "" is the first call; next is "" after the last.
// Every order in the window is listed at least once, some twice (the
// caller dedupes): the numbered platforms are read from the last page back
// to the first (see the package doc). The platforms take whole seconds and
// most count the end in, so an order changed at to itself may also appear
// in the next window. A window longer than WindowLimits' span is refused
// (ErrWindow) without a call; one of more than MaxPages pages is an
// *APIError wrapping ErrWindowTooLarge, never a short listing.
func (c *Client) ChangedOrders(ctx context.Context, from, to time.Time, page string) (ids []string, next string, err error) {
	if !from.Before(to) {
		return nil, "", fmt.Errorf("platforms: the window [%s, %s) is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if span, _ := c.p.limits(); to.Sub(from) > span {
		return nil, "", fmt.Errorf("platforms: %s: the window [%s, %s) is %s long, longer than the %s the platform accepts: %w",
			c.channel, from.Format(time.RFC3339), to.Format(time.RFC3339), to.Sub(from), span, ErrWindow)
	}
	return c.p.changed(ctx, c, from, to, page)
}

// WindowLimits are the platform's limits on a ChangedOrders window: span
// is the longest to - from it accepts (ChangedOrders refuses a longer one)
// and lag how far behind now the window's end should stay, for orders the
// platform indexes late (0: none documented). Each platform's limits() cites
// its source or says what is assumed.
func (c *Client) WindowLimits() (span, lag time.Duration) { return c.p.limits() }

// Decrypt opens the receiver fields the platform sent encrypted (Douyin,
// Taobao/Tmall and Pinduoduo) into m.Request.Customer, clearing m.Masked
// when all are opened. Other platforms: an error wrapping ErrUnsupported.
func (c *Client) Decrypt(ctx context.Context, m *channels.Mapped) error {
	if m == nil || m.Request == nil || m.Request.Customer == nil {
		return errors.New("platforms: Decrypt needs a mapped order with a customer")
	}
	return c.p.decrypt(ctx, c, m)
}

// call is one platform method: build makes the request afresh for each
// attempt (a new timestamp, a new signature), check reads a response body
// and returns nil for the platform's success.
type call struct {
	method string
	build  func(ctx context.Context, now time.Time) (*http.Request, error)
	check  func(status int, body []byte) *APIError
}

// do runs a call through the token bucket, retrying throttled answers
// with exponential backoff and full jitter, at most c.attempts times.
func (c *Client) do(ctx context.Context, k call) ([]byte, error) {
	var last *APIError
	for attempt := range c.attempts {
		if attempt > 0 {
			limit := min(backoffMax, backoffBase<<min(attempt-1, 10))
			delay := c.jitter(limit)
			c.log.DebugContext(ctx, "platform throttled; backing off", "method", k.method, "attempt", attempt, "delay", delay, "code", last.Code)
			if err := c.sleep(ctx, delay); err != nil {
				return nil, fmt.Errorf("platforms: %s %s: waiting to retry: %w (last answer: %v)", c.channel, k.method, err, last)
			}
		}
		body, aerr, err := c.once(ctx, k)
		if err != nil {
			return nil, err
		}
		if aerr == nil {
			return body, nil
		}
		if !errors.Is(aerr, ErrThrottled) {
			return nil, aerr
		}
		last = aerr
	}
	return nil, last
}

// once sends one attempt: err is the caller's ctx ending (no platform
// answer), aerr the platform's failure.
func (c *Client) once(ctx context.Context, k call) (body []byte, aerr *APIError, err error) {
	if err := c.wait(ctx); err != nil {
		return nil, nil, fmt.Errorf("platforms: %s %s: waiting for the rate limit: %w", c.channel, k.method, err)
	}
	start := time.Now()
	defer func() {
		c.metrics.observe(c.channel, c.conn.Name, k.method, result(aerr, err), time.Since(start))
	}()
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := k.build(actx, c.now())
	if err != nil {
		return nil, nil, fmt.Errorf("platforms: %s %s: building the request: %s", c.channel, k.method, c.redact(bareError(err)))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("platforms: %s %s: %w", c.channel, k.method, ctx.Err())
		}
		return nil, c.fail(k.method, ErrTemporary, "network", c.transportError(req, err), 0), nil
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("platforms: %s %s: %w", c.channel, k.method, ctx.Err())
		}
		return nil, c.fail(k.method, ErrTemporary, "network", "reading the response: "+c.transportError(req, err), resp.StatusCode), nil
	}
	if len(body) > MaxBodyBytes {
		return nil, c.fail(k.method, ErrMalformed, "malformed", fmt.Sprintf("the response exceeds %d bytes", MaxBodyBytes), resp.StatusCode), nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, c.fail(k.method, ErrThrottled, strconv.Itoa(resp.StatusCode), snippet(body), resp.StatusCode), nil
	case resp.StatusCode >= 500:
		return nil, c.fail(k.method, ErrTemporary, strconv.Itoa(resp.StatusCode), snippet(body), resp.StatusCode), nil
	}
	if aerr := k.check(resp.StatusCode, body); aerr != nil {
		aerr.Channel, aerr.Method, aerr.HTTPStatus = c.channel, k.method, resp.StatusCode
		return nil, aerr, nil
	}
	if resp.StatusCode/100 != 2 {
		kind := ErrRejected
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			kind = ErrAuth
		case http.StatusRequestTimeout:
			kind = ErrTemporary
		}
		return nil, c.fail(k.method, kind, strconv.Itoa(resp.StatusCode), snippet(body), resp.StatusCode), nil
	}
	return body, nil, nil
}

// wait takes a token from the bucket, sleeping (with c.sleep, on c.now's
// clock) until it is there; it fails at once when ctx's deadline comes first.
func (c *Client) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("the rate limit allows no call")
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
		r.CancelAt(now)
		return fmt.Errorf("the next call is allowed in %s, after the deadline", delay)
	}
	if err := c.sleep(ctx, delay); err != nil {
		r.CancelAt(c.now())
		return err
	}
	return nil
}

func (c *Client) fail(method string, kind error, code, msg string, status int) *APIError {
	return &APIError{Channel: c.channel, Method: method, Code: code, Message: c.redact(msg), HTTPStatus: status, kind: kind}
}

// transportError is a failed request's text for an error message: the
// method, host and path, never the query (WeChat's secret and access
// token, Douyin's access token ride in it), and the cause without the URL
// net/http wraps it in.
func (c *Client) transportError(req *http.Request, err error) string {
	msg := bareError(err)
	if q := req.URL.RawQuery; q != "" {
		msg = strings.ReplaceAll(msg, q, "…")
	}
	return c.redact(req.Method + " " + req.URL.Host + req.URL.Path + ": " + msg)
}

// bareError is err's text without the *url.Error wrappers, which quote
// the whole URL, query and all.
func bareError(err error) string {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) || ue.Err == nil {
			return err.Error()
		}
		err = ue.Err
	}
}

// redact blanks the connection's secrets wherever a message would carry
// them (a platform echoing a parameter, a cause quoting a request).
func (c *Client) redact(msg string) string {
	for _, secret := range []string{c.appSecret, c.token} {
		if len(secret) >= 4 {
			msg = strings.ReplaceAll(msg, secret, "***")
		}
	}
	return msg
}

// malformed is a success response missing what the method documents.
func malformed(detail string) *APIError {
	return &APIError{Code: "malformed", Message: detail, kind: ErrMalformed}
}

func sleepCtx(ctx context.Context, delay time.Duration) error {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// snippet is the start of a body, for an error's message.
func snippet(body []byte) string {
	const limit = 200
	if len(body) > limit {
		return string(body[:limit]) + "…"
	}
	return string(body)
}

// beijing is China Standard Time (UTC+8, no daylight saving): a fixed zone,
// so the binary needs no time zone database.
var beijing = time.FixedZone("CST", 8*3600)

func beijingTime(t time.Time) string { return t.In(beijing).Format(time.DateTime) }

// pageNumber reads a page token of a numbered platform: the 1-based page
// to read next, going down (see backward).
func pageNumber(page string, limit int) (int, error) {
	n, err := strconv.Atoi(page)
	if err != nil || n < 1 || n > limit {
		return 0, fmt.Errorf("platforms: page %q is not a page this client handed out (1 to %d): %w", page, limit, ErrMalformed)
	}
	return n, nil
}

// readPage reads page n (1-based) of a numbered listing; count asks it to
// learn the window's order count as well (total, else -1).
type readPage func(n int, count bool) (ids []string, total int64, err error)

// backward pages a listing sorted newest-modified first from its last page
// back to its first, as the platforms advise: an order modified while the
// pages are read leaves the window and moves the later orders up one
// place, so reading forward would skip the first order of the next page;
// read backward, an order moved up is read again on the page before. Page
// "" reads page 1 to learn the count (its ids are returned: one page
// suffices when it is all); then the token is the page to read next, from
// the last down to 1, which is read again last (an order leaving page 1
// moves page 2's first order onto it). limit is the deepest page the
// platform serves.
func (c *Client) backward(method, page string, limit int, read readPage) ([]string, string, error) {
	limit = min(limit, MaxPages)
	if page != "" {
		n, err := pageNumber(page, limit)
		if err != nil {
			return nil, "", err
		}
		ids, _, err := read(n, false)
		if err != nil || n == 1 {
			return ids, "", err
		}
		return ids, strconv.Itoa(n - 1), nil
	}
	ids, total, err := read(1, true)
	if err != nil {
		return nil, "", err
	}
	if total < 0 {
		return nil, "", c.malformedErr(method, "the order count is missing", nil)
	}
	last := (total + int64(c.pageSize) - 1) / int64(c.pageSize)
	if last <= 1 {
		return ids, "", nil
	}
	if last > int64(limit) {
		return nil, "", &APIError{Channel: c.channel, Method: method, Code: "window",
			Message: fmt.Sprintf("%d orders changed in the window: %d pages of %d, more than the %d read; narrow pull.window_max_ms",
				total, last, c.pageSize, limit),
			kind: ErrWindowTooLarge}
	}
	return ids, strconv.FormatInt(last, 10), nil
}

// openAddress is the customer address once its detail is decrypted: the
// ciphertext replaced where the adapter wrote it at the end (keeping the
// street or town it put before), else rebuilt from the province, city,
// district, town and detail.
func openAddress(m *channels.Mapped, cipherDetail, town, detail string) string {
	addr := m.Request.Customer.Address
	if cipherDetail != "" && strings.HasSuffix(addr, cipherDetail) {
		return strings.TrimSpace(strings.TrimSuffix(addr, cipherDetail) + detail)
	}
	return channels.JoinAddress(m.Province, m.City, m.District, town, detail)
}
