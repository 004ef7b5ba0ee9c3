// Package gateway is ordergrid's intake: the HTTP/JSON API and the gRPC API,
// two faces of the services in proto/ordergrid/v1/api.proto over one
// implementation (Service). It parses and validates requests, derives order
// ids from idempotency keys, admits or refuses load, and answers errors as
// RFC 9457 problem details (HTTP) or gRPC statuses with details.
package gateway
