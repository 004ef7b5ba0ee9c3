package statemachine

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// BenchmarkApply measures the state machine's apply of the two commands of
// every order, on an in-memory Pebble (no fsync: what the apply itself
// costs, per order):
//
//	go test ./statemachine -run '^$' -bench Apply -benchmem
func BenchmarkApply(b *testing.B) {
	for _, batch := range []int{1, 64} {
		// limits=1: a purchase limit per customer on the SKU (never
		// reached): each reservation reads and writes its buyer's counter.
		for _, rules := range []int{0, 1} {
			b.Run(fmt.Sprintf("reserve/batch=%d/limits=%d", batch, rules), func(b *testing.B) {
				db, m := benchMachine(b)
				apply(b, db, m, 1, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "HOT", Warehouse: "W1", OnHand: 1 << 40}}})
				if rules > 0 {
					apply(b, db, m, 2, &gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: &gridpb.SetSkuLimitCommand{Sku: "HOT",
						Rule: &gridpb.SkuLimitRule{Rule: "bench", Version: 1, Per: "customer", MaxQty: 1 << 20}}}})
				}
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					cmd := &gridpb.ReserveBatchCommand{Sku: "HOT"}
					for j := 0; j < batch; j++ {
						cmd.Items = append(cmd.Items, &gridpb.ReserveItem{OrderId: fmt.Sprintf("o_%032d", i+j), Qty: 1, ExpiresUnixNano: 1 << 60,
							Buyer: &gridpb.LimitBuyer{Customer: fmt.Sprintf("c%d", (i+j)%100_000), Channel: "douyin"}})
					}
					apply(b, db, m, uint64(i+3), &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: cmd}})
				}
			})
		}
	}
	b.Run("create_order", func(b *testing.B) {
		db, m := benchMachine(b)
		for i := 0; i < b.N; i++ {
			o := &gridpb.OrderRecord{Id: fmt.Sprintf("o_%032d", i), Channel: "douyin", ChannelOrderId: fmt.Sprint(i),
				Customer: &pb.Customer{Id: "c", Name: "Li Lei"}, Currency: "CNY", Total: "9.90", RequestHash: make([]byte, 32),
				PayByUnixNano: 1 << 60, Lines: []*gridpb.OrderLineRecord{{Sku: "HOT", Qty: 1, UnitPrice: "9.90", Warehouse: "W1"}}}
			apply(b, db, m, uint64(i+1), &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: o}}})
		}
	})
}

func benchMachine(b *testing.B) (*pebble.DB, *Machine) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db, New(0, []byte("p/\x00\x00\x00\x00/")).(*Machine)
}

func apply(b *testing.B, db *pebble.DB, m *Machine, index uint64, cmd *gridpb.Command) {
	data, _ := proto.Marshal(cmd)
	batch := db.NewIndexedBatch()
	m.Apply(batch, index, data)
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	batch.Close()
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
