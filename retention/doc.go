// Package retention moves closed orders out of a node's hot state into
// archive files that prove themselves against the audit log, and back.
//
// An archive file is gzip'd JSON Lines: an ArchiveHeader line (ArchiveFormat,
// the partition, when it was made), then one ArchiveEntry per order: the
// order's record and events (an ArchivedOrder, protobuf, base64) and its
// proof bundle from the ledger. ReadArchive verifies a file offline: every
// order's bundle against the log's verifier key, and the record against
// the events the log holds. It is what `ordergrid archive verify` runs, and
// this package does not link the actor system.
//
// The Job runs on every node: every interval, for each partition the node
// leads, it writes the orders closed longer ago than the retention into a
// new file (durable before anything else happens), then proposes the
// archive_orders command that takes them out of hot state and leaves a
// marker (ReadArchived). Restore proposes restore_orders for a verified
// archive. What the job needs of the node (its partitions, their reads and
// proposals) it takes through Grid, and proofs through Proofs.
package retention
