// Package actors hosts ordergrid's virtual actors: one SkuGrain per SKU and
// one OrderGrain per order, in a Proto.Actor cluster, generated from
// proto/ordergrid/v1/grains/services.proto (package grains; their messages
// are in proto/ordergrid/v1/grains.proto, a package that does not link the
// actor system).
//
// A grain is a cache and a batcher; the truth is its partition's committed
// state (package statemachine, replicated by package cluster). The SKU grain
// folds the Reserve calls that arrive while its previous proposal is in
// flight into one Raft entry, so a hot SKU commits thousands of reservations
// per fsync. The order grain reserves every line (all or nothing), then
// records the order; every later transition owes a stock action that the
// grain carries out on the SKU grains and then marks done, and that a sweeper
// finishes if a node dies in between.
package actors
