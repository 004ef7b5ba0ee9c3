package statemachine

import "encoding/binary"

// A key space is the byte after the partition prefix: every key of the
// partition is {prefix}{space}/{rest}. The spaces are declared here, and
// nowhere else: key builders take their space from these constants, and
// keySpaces below registers each one (doc.go's table is a copy of it that
// a test keeps exact).
const (
	spaceStock             byte = 's'
	spaceReservation       byte = 'r'
	spaceReservationExpiry byte = 'x'
	spaceStockEvent        byte = 'q'
	spaceOrder             byte = 'o'
	spaceOrderEvent        byte = 'e'
	spaceStockAction       byte = 'a'
	spaceOutbox            byte = 'w'
	spaceSubjectKey        byte = 'k'
	spaceTombstone         byte = 't'
	spaceIdentity          byte = 'i'
	spaceIdentityList      byte = 'j'
	spacePurchases         byte = 'm'
	spacePrices            byte = 'p'
	spacePriceConflict     byte = 'f'
	spaceAnnotation        byte = 'n'
	spaceFetch             byte = 'h'
	spaceCursor            byte = 'u'
	spaceFetchIndex        byte = 'b'
	spaceClosed            byte = 'z'
	spaceArchived          byte = 'v'
	spaceCatalog           byte = 'g'
	spaceLoad              byte = 'l'
	spaceWebhook           byte = 'W'
	spaceDeadLetter        byte = 'D'
	spaceStockSets         byte = 'S'
	spaceLimitCounter      byte = 'L'
	spaceSkuLimits         byte = 'R'

	// Retired: written by versions before 2026-11-28 and left in place.

	// spacePayBy indexed unpaid orders by pay-by time, now kept in memory
	// (due.go); its keys are ignored.
	spacePayBy byte = 'y'
	// spaceSubjectOrder held a subject's orders, now kept in memory
	// (subject_index.go); Load still reads it.
	spaceSubjectOrder byte = 'c'
	// spaceDecision held an order's routing decision, now kept on its
	// "created" event; ReadRouting still reads it for orders recorded
	// then, and archiving deletes it.
	spaceDecision byte = 'd'
)

// keySpace is one entry of the registry of key spaces.
type keySpace struct {
	Byte   byte
	Layout string // the key after "{space}/", parts in braces ({x u64}: big-endian)
	Value  string // what a key holds: a record type, or "empty"
	Owner  string // who writes it: the aggregate (and its file), or a package
	Name   string // what the space is, in a few words
	// Indexed spaces have every key in Machine.present.
	Indexed bool
	// Retired spaces are no longer written (see the constants).
	Retired bool
}

// keySpaces is the registry of the key spaces of a partition, in the order
// of doc.go's table.
var keySpaces = []keySpace{
	{Byte: spaceStock, Layout: "{sku}", Value: "SkuRecord", Owner: "stock", Name: "a SKU's stock in every warehouse"},
	{Byte: spaceReservation, Layout: `{sku}\x00{order}`, Value: "ReservationRecord", Owner: "stock", Name: "an order's reservation of a SKU", Indexed: true},
	{Byte: spaceReservationExpiry, Layout: `{expiry u64}{sku}\x00{order}`, Value: "empty", Owner: "stock", Name: "pending reservations by expiry (orphan sweep)"},
	{Byte: spaceStockEvent, Layout: `{sku}\x00{raft index u64}`, Value: "EventRecord", Owner: "stock", Name: "a SKU's stock events"},
	{Byte: spaceOrder, Layout: "{order}", Value: "OrderRecord", Owner: "orders", Name: "orders", Indexed: true},
	{Byte: spaceOrderEvent, Layout: `{order}\x00{seq u64}`, Value: "EventRecord", Owner: "orders", Name: "an order's events"},
	{Byte: spaceStockAction, Layout: "{order}", Value: "StockSyncedCommand", Owner: "orders", Name: "orders whose reservations owe a stock action"},
	{Byte: spacePayBy, Layout: "{pay_by u64}{order}", Value: "empty", Owner: "orders", Name: "unpaid orders by pay-by time", Retired: true},
	{Byte: spaceOutbox, Layout: "{raft index u64}{n u32}", Value: "outbox entry", Owner: "ledger", Name: "every event, for the ledger's sequencer"},
	{Byte: spaceSubjectKey, Layout: "{subject}", Value: "SubjectKeyRecord", Owner: "subjects", Name: "a customer's wrapped data key", Indexed: true},
	{Byte: spaceTombstone, Layout: "{subject}", Value: "SubjectTombstoneRecord", Owner: "subjects", Name: "an erased customer"},
	{Byte: spaceSubjectOrder, Layout: `{subject}\x00{order}`, Value: "empty", Owner: "subjects", Name: "a customer's orders", Retired: true},
	{Byte: spaceIdentity, Layout: "{key hash}", Value: "customer id", Owner: "channels", Name: "the customer a fingerprint is linked to"},
	{Byte: spaceIdentityList, Layout: `{customer}\x00{key hash}`, Value: "empty", Owner: "channels", Name: "the fingerprints linked to a customer"},
	{Byte: spacePurchases, Layout: "{customer}", Value: "RecentPurchases", Owner: "channels", Name: "a customer's recent purchases"},
	{Byte: spacePrices, Layout: "{sku}", Value: "RecentPrices", Owner: "channels", Name: "a SKU's recent channel prices"},
	{Byte: spacePriceConflict, Layout: "{at u64}{sku}", Value: "PriceConflictRecord", Owner: "channels", Name: "price conflicts by time"},
	{Byte: spaceAnnotation, Layout: `{order}\x00{dedupe}`, Value: "empty", Owner: "channels", Name: "annotations applied, by dedupe key"},
	{Byte: spaceFetch, Layout: `{channel}\x00{conn}\x00{id}`, Value: "ChannelFetchRecord", Owner: "channels", Name: "platform orders to fetch (and fetched)"},
	{Byte: spaceFetchIndex, Layout: "{P|S}{at u64}{fetch key}", Value: "empty", Owner: "channels", Name: "fetches by due (P) or settled (S) time"},
	{Byte: spaceCursor, Layout: `{channel}\x00{conn}`, Value: "ConnectorCursorRecord", Owner: "channels", Name: "a connector's cursor"},
	{Byte: spaceClosed, Layout: "{closed_at u64}{order}", Value: "empty", Owner: "archives", Name: "closed orders by the time they closed"},
	{Byte: spaceArchived, Layout: "{order}", Value: "ArchivedOrderRecord", Owner: "archives", Name: "an order moved to an archive", Indexed: true},
	{Byte: spaceCatalog, Layout: "{w|s|a|n|l|m}...", Value: "JSON, u64", Owner: "catalog", Name: "the routing catalog (see catalog.go)"},
	{Byte: spaceDecision, Layout: "{order}", Value: "RoutingRecord", Owner: "routing", Name: "an order's routing decision", Retired: true},
	{Byte: spaceLoad, Layout: "{ship day u32}{warehouse}", Value: "u64", Owner: "routing", Name: "parcels routed per ship day and warehouse"},
	{Byte: spaceWebhook, Layout: "{webhook}", Value: "WebhookRecord", Owner: "webhooks", Name: "a webhook subscription and its cursor"},
	{Byte: spaceDeadLetter, Layout: `{webhook}\x00{from u64}`, Value: "WebhookDeadLetterRecord", Owner: "webhooks", Name: "a webhook's dead-lettered log ranges"},
	{Byte: spaceStockSets, Layout: "{sku}", Value: "StockSetsRecord", Owner: "stock", Name: "a SKU's recent stock sets, by request id"},
	{Byte: spaceSkuLimits, Layout: "{sku}", Value: "SkuLimitsRecord", Owner: "limits", Name: "a SKU's purchase-limit rules"},
	{Byte: spaceLimitCounter, Layout: `{sku}\x00{rule}\x00{window from}\x00{scope}\x00{buyer}`, Value: "LimitCounterRecord", Owner: "limits", Name: "a buyer's qty of a SKU under a purchase limit", Indexed: true},
}

// key returns {prefix}{space}/ and parts, separated by 0x00.
func key(prefix []byte, space byte, parts ...string) []byte {
	n := len(prefix) + 2
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	k = append(k, space, '/')
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// timedKey returns {prefix}{space}/{at u64} and parts, separated by 0x00:
// the space's keys sort by time.
func timedKey(prefix []byte, space byte, at int64, parts ...string) []byte {
	k := binary.BigEndian.AppendUint64(key(prefix, space), uint64(at))
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// spaceStart returns the first key of a space.
func spaceStart(prefix []byte, space byte) []byte { return key(prefix, space) }

// prefixEnd returns the first key after every key that starts with p
// (nil when there is none).
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
