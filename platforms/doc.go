// Package platforms calls the Chinese commerce platforms' open APIs for one
// connection: Douyin shop (抖店), Taobao/Tmall (TOP), JD (JOS), Pinduoduo,
// Xiaohongshu (ark open API) and the WeChat Channels shop (视频号小店).
//
// A Client (New, from a channels.Connection whose API is set) has three
// calls: OrderDetail returns the platform's whole success response body of
// its order-detail method, unchanged, for the channel adapters to map;
// ChangedOrders lists the ids of orders updated in a time window, one page
// at a time (page "" first, next "" after the last); Decrypt opens the
// receiver's name, phone and address detail the platform sent encrypted
// (Douyin order.batchDecrypt, Taobao taobao.top.oaid.decrypt, Pinduoduo
// pdd.open.decrypt.batch) into the mapped order's customer. WindowLimits
// tells the caller how long a window may be and how far behind now its end
// should stay.
//
// # Paging
//
// The numbered listings (Taobao taobao.trades.sold.increment.get,
// Pinduoduo pdd.order.number.list.increment.get, Douyin order.searchList,
// JD jingdong.pop.order.search, Xiaohongshu order.getOrderList) are sorted
// newest-modified first: an order modified while the pages are read leaves
// the window and moves every later order up one place, so read from the
// first page on, the first order of the next page would land on a page
// already read and never be listed. As the platforms advise, they are read
// from the last page back to the first: page "" reads page 1 asking for the
// window's count (Taobao and Pinduoduo with use_has_next=false:
// total_results, total_count; Douyin total, JD orderTotal, Xiaohongshu
// total) and returns its ids; the next token is the last page's number,
// then each one below it, down to page 1, read again last. An order that
// moves up is read twice, never skipped; the caller dedupes. Orders the
// platform indexes late, after the count, are what WindowLimits' lag and
// the caller's overlap are for. A window of more pages than MaxPages (or
// Xiaohongshu's 100) is refused at the first call with ErrWindowTooLarge,
// never cut short. WeChat's next_key cursor is followed as it is.
//
// # Signing
//
// Each platform signs its own way, computed afresh for every attempt (the
// signed timestamp changes):
//   - Douyin: hex HMAC-SHA256 keyed by the app secret (or hex MD5) of
//     secret + "app_key"… + "method"… + "param_json"… + "timestamp"… + "v"… +
//     secret; param_json is the business parameters' JSON with sorted keys,
//     also the POST body; timestamp "yyyy-MM-dd HH:mm:ss" Beijing time.
//   - Taobao: the parameters but sign sorted by name, name+value
//     concatenated: upper hex MD5 between the secret (sign_method md5, the
//     default), HMAC-MD5 ("hmac") or HMAC-SHA256 ("hmac-sha256") keyed by it.
//   - JD and Pinduoduo: upper hex MD5 of secret + sorted name+value + secret.
//   - Xiaohongshu: hex MD5 of method?appId=…&timestamp=…&version=… + secret.
//   - WeChat: no signature; an access token fetched with appid and secret,
//     kept until five minutes before it expires and fetched again (once,
//     the call retried) when WeChat answers 40001, 42001 or 40014.
//
// # Limits and retries
//
// Every call waits on the client's token bucket (the connection's
// rate_per_second and burst, default 10 and 10) with its context. Each
// attempt is bounded by timeout_ms (default 10000) and its body by
// MaxBodyBytes (8 MiB, read through an io.LimitReader: a longer body is
// ErrMalformed). A throttled answer (the platform's rate-limit codes, or
// HTTP 429) is retried with exponential backoff and full jitter (a random
// delay below 250ms·2ⁿ, at most 8s), at most DefaultAttempts times in all,
// and the context ends the wait; then ErrThrottled. Nothing else is retried
// here: ErrTemporary tells the caller to come back later. ChangedOrders
// asks at most MaxPageSize orders a page (the connection's pull page_size,
// default 50) and pages at most MaxPages deep.
//
// Windows (WindowLimits: the longest span, and the lag behind now):
// Pinduoduo 30 minutes and 3 minutes (both documented); Xiaohongshu 30
// minutes by update time (documented); Taobao a day (documented); JD 28
// days (documented as a month); WeChat 7 days (documented); Douyin a day
// (assumed: no limit found). No other lag is documented. ChangedOrders
// refuses a longer window at once with an error wrapping ErrWindow (not an
// *APIError: the caller's bug, no platform call); it does not check the lag.
//
// # Errors
//
// Every failure the platform reports (and a network failure or a response
// of the wrong shape) is an *APIError naming the channel, the method, the
// platform's code, sub code and message, and the HTTP status; it unwraps to
// one sentinel: ErrThrottled, ErrNotFound, ErrAuth, ErrTemporary,
// ErrMalformed, ErrUnsupported, ErrWindowTooLarge or ErrRejected (any
// other refusal). Check with errors.Is and errors.As. A context that ends
// is returned wrapped as it is, not as a platform error.
//
// No error or log carries a secret: a failed request is named by its
// method, host and path only (never its query, where WeChat's appsecret
// and access_token and Douyin's access_token ride), with net/http's cause
// unwrapped from the *url.Error that quotes the whole URL; the app secret
// and access token are blanked from any message that would hold them.
//
// The platforms' error codes are sorted by each platform's table (see each
// platform's type for which codes were confirmed from its documentation
// and which are assumed), then by the words of the message (频繁 and
// "limit" throttled, 不存在 not found, 签名 and token auth, 繁忙 temporary).
//
// Metrics (NewMetrics) count every attempt: ordergrid_platform_calls_total
// and ordergrid_platform_call_seconds by channel, connection, method and
// result.
package platforms
