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
// Every key of a partition is the partition prefix, the byte of its key
// space, '/' and the rest of the key (names and ids never contain 0x00;
// {x u64} is x big-endian). The spaces are registered in keySpaces
// (keys.go): this table is a copy of it, kept exact by a test. Its owner
// is the aggregate that writes the space (stock.go, orders.go ...), or the
// package; a retired space is no longer written, and is kept for the keys
// older versions wrote. The prefix followed by 0x00 is package cluster's.
//
//	key                                                       value                    owner     what
//	s/{sku}                                                   SkuRecord                stock     a SKU's stock in every warehouse
//	r/{sku}\x00{order}                                        ReservationRecord        stock     an order's reservation of a SKU
//	x/{expiry u64}{sku}\x00{order}                            empty                    stock     pending reservations by expiry (orphan sweep)
//	q/{sku}\x00{raft index u64}                               EventRecord              stock     a SKU's stock events
//	o/{order}                                                 OrderRecord              orders    orders
//	e/{order}\x00{seq u64}                                    EventRecord              orders    an order's events
//	a/{order}                                                 StockSyncedCommand       orders    orders whose reservations owe a stock action
//	y/{pay_by u64}{order}                                     empty                    orders    retired: unpaid orders by pay-by time
//	w/{raft index u64}{n u32}                                 outbox entry             ledger    every event, for the ledger's sequencer
//	k/{subject}                                               SubjectKeyRecord         subjects  a customer's wrapped data key
//	t/{subject}                                               SubjectTombstoneRecord   subjects  an erased customer
//	c/{subject}\x00{order}                                    empty                    subjects  retired: a customer's orders
//	i/{key hash}                                              customer id              channels  the customer a fingerprint is linked to
//	j/{customer}\x00{key hash}                                empty                    channels  the fingerprints linked to a customer
//	m/{customer}                                              RecentPurchases          channels  a customer's recent purchases
//	p/{sku}                                                   RecentPrices             channels  a SKU's recent channel prices
//	f/{at u64}{sku}                                           PriceConflictRecord      channels  price conflicts by time
//	n/{order}\x00{dedupe}                                     empty                    channels  annotations applied, by dedupe key
//	h/{channel}\x00{conn}\x00{id}                             ChannelFetchRecord       channels  platform orders to fetch (and fetched)
//	b/{P|S}{at u64}{fetch key}                                empty                    channels  fetches by due (P) or settled (S) time
//	u/{channel}\x00{conn}                                     ConnectorCursorRecord    channels  a connector's cursor
//	z/{closed_at u64}{order}                                  empty                    archives  closed orders by the time they closed
//	v/{order}                                                 ArchivedOrderRecord      archives  an order moved to an archive
//	g/{w|s|a|n|l|m}...                                        JSON, u64                catalog   the routing catalog (see catalog.go)
//	d/{order}                                                 RoutingRecord            routing   retired: an order's routing decision
//	l/{ship day u32}{warehouse}                               u64                      routing   parcels routed per ship day and warehouse
//	W/{webhook}                                               WebhookRecord            webhooks  a webhook subscription and its cursor
//	D/{webhook}\x00{from u64}                                 WebhookDeadLetterRecord  webhooks  a webhook's dead-lettered log ranges
//	S/{sku}                                                   StockSetsRecord          stock     a SKU's recent stock sets, by request id
//	R/{sku}                                                   SkuLimitsRecord          limits    a SKU's purchase-limit rules
//	L/{sku}\x00{rule}\x00{window from}\x00{scope}\x00{buyer}  LimitCounterRecord       limits    a buyer's qty of a SKU under a purchase limit
package statemachine
