// Package routing decides which warehouse ships each line of an order.
//
// A decision is two steps. Hard constraints first: a warehouse that is down,
// lacks a capability the order needs, has no rate to the order's region, has
// no capacity left on its ship day, or (for a one-shipment plan) cannot serve
// every line from its free stock is excluded, and the reason is kept. A
// degraded warehouse is a candidate only when no plan of warehouses that are
// up exists. Then a weighted score over seven criteria ranks the plans that
// are left; the lowest score wins:
//
//	transit      hours late against the promised delivery (0 when on time);
//	             hours to delivery when the order promises none
//	cost         shipping cost of every shipment, in minor units (fen, cents)
//	splits       shipments beyond the first
//	balance      the largest share of a warehouse's free stock one line takes
//	utilisation  the fullest ship day's load after this order, of its capacity
//	carbon       grams of CO2e of every parcel
//	tier         hours to delivery times the customer tier's priority
//
// Each criterion is normalised over the candidates (0 for the best value, 1
// for the worst), multiplied by its weight and summed. A plan is one
// warehouse whenever one can serve the whole order; only when none can are
// split plans (up to the strategy's max_shipments) enumerated, and then the
// splits criterion weighs a third parcel against a second. A tier rule (e.g.
// VIP: the fastest plan within a cost cap) overrides the score for its tiers.
//
// Every decision keeps what explains it (Record): the raw criteria of the
// best candidates, the range each was normalised over, every excluded
// warehouse with its constraint, and the smallest change of one weight that
// would have made another plan win. Explain turns a record and its strategy
// into the view GET /v1/orders/{id}/routing answers.
//
// Strategies are named, versioned documents (Strategy); a Selection names the
// active version and optionally a candidate version that routes a share of
// orders (an A/B split keyed by the order id, so a retry routes alike).
// Simulate replays orders against several strategies with a stock and
// capacity snapshot and compares them; Synthetic makes seeded order sets,
// warehouses and stock for demos, tests and benchmarks.
//
// The package is pure: no I/O, no clock; callers pass time, stock and load.
package routing
