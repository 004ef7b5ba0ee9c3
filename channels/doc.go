// Package channels takes orders in each sales channel's own format.
//
// An Adapter is one channel: it checks the request's signature with the
// channel connection's secret (the channel's own push scheme, or, for an
// order a connector pulled from the channel's API, an HMAC-SHA256 of the
// raw body in X-Ordergrid-Signature) and maps the channel's payload, as its
// open-platform documentation describes it, to a Mapped order: the
// canonical CreateOrderRequest plus what identity resolution and
// cross-channel merging need (buyer id, receiver fields, device, discounts)
// and the raw channel fields the canonical order has no place for.
//
// Money arrives as each channel sends it (integer fen, yuan strings, yuan
// JSON numbers, decimals with a currency) and leaves as a decimal string;
// times likewise (epoch seconds or milliseconds, "yyyy-MM-dd HH:mm:ss" in
// Beijing time, ISO 8601) leave as time.Time. Order ids are read as JSON
// numbers' text, so ids beyond 2^53 stay exact.
//
// Adding a channel is one file with a type implementing Adapter, registered
// in Adapters, plus fixtures under testdata/<channel>/ and a table test that
// checks the mapped order field by field.
package channels
