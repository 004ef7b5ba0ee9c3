package gateway

import (
	"context"
	"io"
	"time"

	"github.com/ordergrid/ordergrid/channels"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
	"github.com/ordergrid/ordergrid/rotation"
	"github.com/ordergrid/ordergrid/routing"
)

// Backend is what the gateway serves from: the intake (every write of an
// order goes through it) and the parts of the grid the API reads and
// administers. Each part is owned by its package; cmd/ordergrid wires a
// node's. Every field is required.
type Backend struct {
	// Intake batches new orders and order events.
	Intake *intake.Pipeline
	// ChannelFlow takes pushed channel orders over Intake.
	ChannelFlow *intake.ChannelFlow
	// Grid is the node: its grains and the reads of its partitions.
	Grid Grid
	// Routing is the routing catalog's admin (catalog.Admin).
	Routing RoutingAdmin
	// PriceConflicts lists the channels' price conflicts (intake.ChannelStore).
	PriceConflicts PriceConflicts
	// KeyRotation rewraps the subject keys (rotation.Rewrapper).
	KeyRotation KeyRotation
	// Archives are the orders retention archived.
	Archives Archives
	// Fetches queues the orders a push names for fetching from the
	// platform (intake.Fetcher). nil: such pushes are refused (422).
	Fetches ChannelFetches
	// Alerts are the open stuck-order alerts. nil: none (GET /v1/alerts
	// answers no group).
	Alerts Alerts
	// Webhooks are the webhook subscriptions (webhooks.Service). nil: the
	// /v1/webhooks routes answer 503.
	Webhooks Webhooks
	// Holds is the review queue of orders held at intake; Limits the
	// purchase limits; Risk the risk model the node scores with, RiskStore
	// the grid's. nil: their routes answer 503.
	Holds     HoldQueue
	Limits    LimitRules
	Risk      RiskModels
	RiskStore RiskModelStore
	// Ops is what the ops summary reads of the node: order counts,
	// partitions, ledger lag. nil: GET /v1/ops/summary answers the
	// gateway's own observations only.
	Ops OpsSource
}

// ChannelFetches is the fetch workflow as the gateway reaches it
// (intake.Fetcher in a node).
type ChannelFetches interface {
	// Serves reports whether a connection's notices can be fetched.
	Serves(channel, connection string) bool
	// Queue records fetches of the orders notices name, durably.
	Queue(ctx context.Context, channel, connection string, notices []channels.Notice) (intake.QueueResult, error)
	// Fetches lists fetches in a state ("" all).
	Fetches(state intake.FetchState, limit int) ([]*gridpb.ChannelFetchRecord, error)
	// Cursors are the connectors' cursors.
	Cursors() ([]*gridpb.ConnectorCursorRecord, error)
}

// Grid is what the gateway asks of the grid beside the intake: its grains
// and the reads of its partitions (actors.Node in a node).
type Grid interface {
	// GetOrder asks an order's grain for the order.
	GetOrder(ctx context.Context, id string) (*gridpb.OrderGrainResponse, error)
	// OpenPersonal opens sealed personal fields through their subject's grain.
	OpenPersonal(ctx context.Context, subject string, req *gridpb.OpenPersonalRequest) (*gridpb.OpenPersonalResponse, error)
	// SetStock sets a SKU's on-hand quantity at a warehouse.
	SetStock(ctx context.Context, req *pb.SetStockRequest, principal string) (*pb.SkuStock, error)
	// GetStock reads a SKU's stock in every warehouse.
	GetStock(ctx context.Context, sku string) (*pb.SkuStock, error)
	// EraseSubject erases a data subject.
	EraseSubject(ctx context.Context, id, principal string) (*gridpb.SubjectTombstoneRecord, error)
	// ReadOrder reads an order's record as committed.
	ReadOrder(id string) (*gridpb.OrderRecord, bool, error)
	// OrderEvents are an order's events, oldest first.
	OrderEvents(id string) ([]*gridpb.EventRecord, error)
	// SkuEvents are a SKU's stock events, oldest first.
	SkuEvents(sku string) ([]*gridpb.EventRecord, error)
	// SubjectOrderIDs are a data subject's orders; found is false for a
	// subject never seen.
	SubjectOrderIDs(subject string) (ids []string, found bool, err error)
}

// RoutingAdmin changes and reads the routing catalog (catalog.Admin in a
// node). A refused document is an error wrapping catalog.ErrRoutingInput
// (the gateway answers its detail as 422), routing.Errors or a
// routing.FieldError.
type RoutingAdmin interface {
	// Catalog is the catalog as this node last read it.
	Catalog() *routing.Catalog
	// Fresh is the catalog as its partition's leader has it.
	Fresh() (*routing.Catalog, error)
	// Loads are the parcels routed to a warehouse for a ship day.
	Loads(wh string, day int32) int64
	PutWarehouse(ctx context.Context, principal string, w *routing.Warehouse, expected uint64) (*routing.Warehouse, error)
	PutStrategy(ctx context.Context, principal string, s *routing.Strategy) (*routing.Strategy, error)
	ActivateStrategy(ctx context.Context, principal string, sel *routing.Selection) (*routing.Selection, error)
	// KnowsWarehouse reports whether stock may be kept at a warehouse.
	KnowsWarehouse(id string) (bool, error)
	// OrderRouting reads an order's routing decision.
	OrderRouting(id string) (*gridpb.RoutingRecord, bool, error)
	// LoggedOrders are the orders created in [from, to) as routing inputs.
	LoggedOrders(ctx context.Context, from, to time.Time) ([]*routing.Order, error)
	// CurrentFree is a SKU's free stock per warehouse.
	CurrentFree(sku string) (map[string]int64, error)
}

// PriceConflicts lists the newest price conflicts across channels
// (intake.ChannelStore in a node).
type PriceConflicts interface {
	PriceConflicts(limit int) ([]*gridpb.PriceConflictRecord, error)
}

// KeyRotation rewraps every subject key by the active master key
// (rotation.Rewrapper in a node). Without master keys it fails with a
// failure.Internal.
type KeyRotation interface {
	Rewrap(ctx context.Context, progress func(rotation.Report)) (rotation.Report, error)
}

// Archives are the orders retention archived.
type Archives interface {
	// ReadArchived reads the marker an archived order left.
	ReadArchived(id string) (*gridpb.ArchivedOrderRecord, bool, error)
	// VerifyArchive reads an archive file (gzip'd JSON Lines) and verifies
	// every order in it against v.
	VerifyArchive(r io.Reader, v *checkpoint.Verifier) (*VerifiedArchive, error)
}

// VerifiedArchive is an archive file whose every order verified.
type VerifiedArchive struct {
	// Orders counts the archive's orders.
	Orders int
	// Statuses counts them by status.
	Statuses map[string]int
	// Restore puts the orders back into hot state, each through its
	// partition (orders restored already are skipped), and answers how
	// many it restored, also when it fails partway.
	Restore func(ctx context.Context, name, principal string) (restored int, err error)
}
