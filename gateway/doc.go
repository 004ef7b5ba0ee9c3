// Package gateway is ordergrid's transport: the HTTP/JSON API and the gRPC
// API, two faces of the services in proto/ordergrid/v1/api.proto over one
// implementation (Service). It parses and validates requests, derives order
// ids from idempotency keys, authenticates callers (bearer tokens, channel
// signatures and replay windows), admits or refuses load, and answers
// errors as RFC 9457 problem details (HTTP) or gRPC statuses with details,
// both from one Problem.
//
// It holds no workflow: every write of an order goes through package
// intake (the batches, the channel-order workflow), and the rest of what
// it serves comes from a Backend of small interfaces it owns (the node's
// grains and reads, the routing catalog's admin, key rotation, the
// archives), wired by cmd/ordergrid. It reads a failed call's outcome and
// kind from package failure and the order vocabulary from package
// lifecycle, and imports neither actors nor statemachine.
package gateway
