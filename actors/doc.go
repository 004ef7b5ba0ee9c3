// Package actors hosts ordergrid's virtual actors: one SkuGrain per SKU,
// one OrderGrain per order and one SubjectGrain per data subject, in a
// Proto.Actor cluster (the grain services and their generated code are in
// package grains, apart from the messages, which do not link the actor
// system), and places each grain next to its partition's leader.
//
// A grain is a cache and a batcher; the truth is its partition's committed
// state (package statemachine, replicated by package cluster). The SKU grain
// folds the Reserve calls that arrive while its previous proposal is in
// flight into one Raft entry, so a hot SKU commits thousands of reservations
// per fsync. The order grain reserves every line (all or nothing), then
// records the order; every later transition owes a stock action that the
// grain carries out on the SKU grains and then marks done, and that a sweeper
// finishes if a node dies in between. A Node runs the intake's batches
// (CreateBatch, TransitionBatch; package intake forms them), routing each
// new order with the routing catalog it caches.
//
// Code that needs a partition but no grain reaches it through the
// placement API: Node.PartitionOf names the partition that owns a key
// (OrderKey, SkuKey, SubjectKey, IdentityKey, statemachine.CatalogKey) and
// Node.Partitions every one; a Partition takes proposals and reads on its
// leader. The catalog's admin (package catalog), the channel workflow's
// records (intake.ChannelStore) and key rotation (package rotation) are
// built on it. Errors crossing a grain call carry their outcome or failure
// kind (package failure).
package actors
