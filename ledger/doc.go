// Package ledger is ordergrid's verifiable audit log: one global,
// append-only RFC 6962 Merkle log of every committed change, with signed
// checkpoints that partners, auditors and courts can check without trusting
// the operator.
//
// # Data path
//
//	partition FSM ──(same batch as the change)──► outbox  w/{raft index}{n} (package outbox)
//	sequencer (on the ledger group's leader) ──► LedgerAppend{partition, from cursor, leaves}
//	ledger group FSM ──► leaves l/{i}, order index o/{order}/{i}, tiles t/…, cursor c/{partition}
//	sequencer, every checkpoint interval ──► signed checkpoint p/{size}
//	anchor worker (package anchor) ──► Fabric channel ──► AnchorRecord a/{size}
//
// A partition's state machine writes each event into its outbox (package
// outbox, which owns its format) in the batch that commits the change, so an
// event exists exactly when its change does; the sequencer reads it through
// cluster (Partition.Applied), and has the partition trim what the log holds
// with the domain's command (statemachine.TrimOutbox, wired by cmd).
// The ledger's own Raft group (cluster.Options.Groups, named GroupName)
// keeps, per partition, the cursor up to which the outbox has been appended;
// an append is applied only if it starts at that cursor. A batch read twice
// (a proposal retried, a new leader's sequencer reading again) is refused, a
// batch lost before commit is read again: every event becomes one leaf,
// once, in its partition's commit order. Acknowledgements to clients do not
// wait for the ledger; its lag is the metric ordergrid_ledger_lag_seconds,
// and ordergrid_ledger_inclusion_seconds measures commit to inclusion.
//
// # Leaves
//
// A leaf is the canonical encoding of an Event: UTF-8 JSON with no
// insignificant whitespace, the fields in this order, map keys sorted,
// strings escaped as Go's encoding/json does with HTML escaping off. v,
// partition, raft_index, n and at are always written (n may be 0); every
// other field is left out when empty (an empty string, list or map, a zero
// seq or qty). In lines, sku and qty are always written, unit_price and
// warehouse left out when empty:
//
//	v           encoding version, 1
//	partition   the partition that committed the change
//	raft_index  the Raft index of the command in that partition
//	n           the event's position among the command's events (from 0)
//	at          commit time, RFC 3339 in UTC with nanoseconds, trailing zeros cut
//	kind        "order" (lifecycle), "stock" (reservations and stock levels),
//	            "subject" (personal data erased), "access" (personal data read),
//	            "retention" (an order archived or restored) or "routing" (the
//	            routing catalog changed)
//	type        created, paid, picked, …, cancelled, expired, on_hold, merged (order);
//	            duplicate_merged, duplicate_held, duplicate_accepted,
//	            price_conflict (order: noted, the status unchanged);
//	            alert_raised (order: stuck past its stage's limit, the status
//	            unchanged; details stage, limit, since, name if configured),
//	            alert_cleared (order: it moved on, right after the moving
//	            event; details stage, open_seconds);
//	            reserved, committed, released, shipped, restocked, stock_set (stock);
//	            erased (subject: the order's personal fields are gone for good);
//	            personal_read (access: principal read the order's personal fields);
//	            archived, restored (retention; details.archive names the file);
//	            warehouse_put, strategy_put, strategy_activated (routing;
//	            details.document is the stored JSON document, details.version
//	            its version)
//	order       the order's id
//	seq         the order's version after the event (order events)
//	status      the order's status after the event
//	sku, warehouse, qty   what moved (stock events; qty is on_hand for stock_set)
//	principal   who caused it: the caller's token name, also when its item
//	            shared a batched entry with other callers' items; a
//	            "system:" name for what the node does on its own
//	            ("system:sweeper" for expiries, orphan releases and alerts raised)
//	lines       an order's lines on "created": [{sku, qty, unit_price, warehouse}]
//	details     other facts as string pairs (carrier, tracking_number, reason,
//	            routing_strategy on "created": the strategy version that routed it, …;
//	            subject_sha256, the hex SHA-256 of the subject's id, on subject
//	            and access events: the log never holds a subject id or any
//	            personal field)
//
// for example
//
//	{"v":1,"partition":2,"raft_index":5,"n":0,"at":"2026-11-22T03:22:58.277924291Z","kind":"stock","type":"reserved","order":"o_be65…","sku":"SKU-1","warehouse":"WH-1","qty":2,"principal":"anonymous"}
//
// (partition, raft_index, n) names an event uniquely. DecodeLeaf accepts
// only this form: it decodes strictly, encodes again and compares, so one
// event has one leaf. Customer fields are personal data and are not in
// leaves (the design's encrypted personal fields come with erasure). The leaf hash is SHA-256(0x00 || leaf) (package merkle).
//
// # Completeness
//
// An inclusion proof shows an entry is in the log, not that none was left
// out. Bundles and exports therefore carry a Seal: a statement signed by
// the log's key, bound to the checkpoint, of how many leaves the order (or
// the export's filters) has in the checkpoint's tree, the last one's index
// and a digest of them all. VerifyBundle and VerifyExport refuse entries
// that do not match it. An unfiltered export needs no seal: it must hold
// every index below the checkpoint's size, once and in order. Leaves are
// not changed by sealing, so every existing log still verifies.
//
// # Storage and proofs
//
// The tree is kept as tiles of 256 hashes (see tiles.go): any inclusion or
// consistency proof of a tree of n leaves costs about log2(n)/8 tile reads
// per level, and full tiles are cached. Checkpoints (package checkpoint) are
// kept for every size they were made at, so a consistency proof can always
// end at a checkpoint the caller can fetch.
//
// # Keys
//
// The log's Ed25519 key is made by the first sequencer of a new log and
// replicated in the ledger group, so every node of a cluster signs with it;
// or it is read from ledger.signing_key_file (made by `ordergrid ledger
// keygen`), and only its verifier key is replicated. The ledger state
// machine refuses a checkpoint whose signature, size or root it cannot
// confirm, so a checkpoint that does not verify is never served or anchored.
package ledger
