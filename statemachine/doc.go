// Package statemachine holds ordergrid's rules for stock and orders: the
// deterministic state machine that every partition replica applies to
// committed commands, and the reads of the state it keeps.
//
// It is the judge. Grains validate against their caches to answer fast, but
// every command is checked again here against committed state: stock
// available, transition legal, idempotency key unseen. Two activations of a
// grain, or a stale cache, can therefore never commit a conflict.
//
// Stock conservation holds per SKU and warehouse after every command:
//
//	on_hand = available + pending + committed,  available >= 0
//
// where pending and committed are the sums of the quantities of the pending and
// committed reservations. Apply asserts it and panics on a violation: that is
// a bug, and a replica must stop rather than persist it.
//
// Keys, under the partition prefix (names and ids never contain 0x00):
//
//	s/{sku}                         SkuRecord: stock of every warehouse
//	r/{sku}\x00{order}              ReservationRecord
//	x/{expiry u64}{sku}\x00{order}  pending reservations by expiry (orphan sweep)
//	q/{sku}\x00{raft index u64}     stock events (EventRecord)
//	o/{order}                       OrderRecord
//	e/{order}\x00{seq u64}          order events (EventRecord)
//	y/{pay_by u64}{order}           unpaid orders by pay-by time
//	a/{order}                       orders whose reservations owe a stock action
//	w/{raft index u64}{n u32}       the ledger's outbox: each event, for the
//	                                ledger's sequencer (package ledger/outbox)
//	k/{subject}                     SubjectKeyRecord: a customer's wrapped data key
//	t/{subject}                     SubjectTombstoneRecord: an erased customer
//	c/{subject}\x00{order}          the customer's orders in this partition
package statemachine
