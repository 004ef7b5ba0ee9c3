package statemachine

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Reads take a pebble.Reader (the database, or a snapshot of it) and the
// partition's prefix. They see what has been applied on this replica; the
// caller reads on the partition's leader.

// ReadStock returns sku's stock per warehouse and in total; found is false
// when no warehouse has ever stocked it.
func ReadStock(r pebble.Reader, prefix []byte, sku string) (st *pb.SkuStock, found bool, err error) {
	names, recs, err := warehouses(r, prefix, sku)
	if err != nil {
		return nil, false, fmt.Errorf("read stock %s: %w", sku, err)
	}
	st = &pb.SkuStock{Sku: sku, Total: &pb.StockLevel{}}
	for i, s := range recs {
		lvl := &pb.StockLevel{Warehouse: names[i], OnHand: s.OnHand, Available: available(s), Pending: s.Pending, Committed: s.Committed}
		st.Warehouses = append(st.Warehouses, lvl)
		st.Total.OnHand += lvl.OnHand
		st.Total.Available += lvl.Available
		st.Total.Pending += lvl.Pending
		st.Total.Committed += lvl.Committed
	}
	return st, len(recs) > 0, nil
}

// ReadOrder returns an order.
func ReadOrder(r pebble.Reader, prefix []byte, id string) (*pb.OrderRecord, bool, error) {
	o := &pb.OrderRecord{}
	ok, err := readProto(r, orderKey(prefix, id), o)
	if err != nil {
		return nil, false, fmt.Errorf("read order %s: %w", id, err)
	}
	return o, ok, nil
}

// ReadEvents returns an order's events in order.
func ReadEvents(r pebble.Reader, prefix []byte, id string) ([]*pb.EventRecord, error) {
	p := eventPrefix(prefix, id)
	var out []*pb.EventRecord
	err := scan(r, p, prefixEnd(p), 0, func(_, v []byte) error {
		e := &pb.EventRecord{}
		if err := proto.Unmarshal(v, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return out, nil
}

// ReadReservation returns the reservation of an order on a SKU.
func ReadReservation(r pebble.Reader, prefix []byte, sku, order string) (*pb.ReservationRecord, bool, error) {
	res := &pb.ReservationRecord{}
	ok, err := readProto(r, reservationKey(prefix, sku, order), res)
	return res, ok, err
}

// ReadReservations returns every reservation on sku.
func ReadReservations(r pebble.Reader, prefix []byte, sku string) ([]*pb.ReservationRecord, error) {
	p := append(key(prefix, 'r', sku), 0)
	var out []*pb.ReservationRecord
	err := scan(r, p, prefixEnd(p), 0, func(_, v []byte) error {
		res := &pb.ReservationRecord{}
		if err := proto.Unmarshal(v, res); err != nil {
			return err
		}
		out = append(out, res)
		return nil
	})
	return out, err
}

// DueOrders returns up to limit unpaid orders whose pay-by time is at or before now.
func DueOrders(r pebble.Reader, prefix []byte, now int64, limit int) ([]string, error) {
	start := spaceStart(prefix, 'y')
	end := binary.BigEndian.AppendUint64(append([]byte{}, start...), uint64(now)+1)
	var ids []string
	err := scan(r, start, end, limit, func(k, _ []byte) error {
		ids = append(ids, string(k[len(start)+8:]))
		return nil
	})
	return ids, err
}

// DueReservation names a pending reservation past its expiry.
type DueReservation struct{ SKU, OrderID string }

// DueReservations returns up to limit pending reservations whose expiry is at or before now.
func DueReservations(r pebble.Reader, prefix []byte, now int64, limit int) ([]DueReservation, error) {
	start := spaceStart(prefix, 'x')
	end := binary.BigEndian.AppendUint64(append([]byte{}, start...), uint64(now)+1)
	var out []DueReservation
	err := scan(r, start, end, limit, func(k, _ []byte) error {
		rest := k[len(start)+8:]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return fmt.Errorf("bad expiry key %q", k)
		}
		out = append(out, DueReservation{SKU: string(rest[:i]), OrderID: string(rest[i+1:])})
		return nil
	})
	return out, err
}

// OwedStockActions returns up to limit orders whose reservations still owe
// the stock action of their last transition.
func OwedStockActions(r pebble.Reader, prefix []byte, limit int) ([]string, error) {
	start := spaceStart(prefix, 'a')
	var ids []string
	err := scan(r, start, prefixEnd(start), limit, func(k, _ []byte) error {
		ids = append(ids, string(k[len(start):]))
		return nil
	})
	return ids, err
}

// ForEachOrder calls fn for every order of the partition.
func ForEachOrder(r pebble.Reader, prefix []byte, fn func(*pb.OrderRecord) error) error {
	start := spaceStart(prefix, 'o')
	return scan(r, start, prefixEnd(start), 0, func(_, v []byte) error {
		o := &pb.OrderRecord{}
		if err := proto.Unmarshal(v, o); err != nil {
			return err
		}
		return fn(o)
	})
}

func scan(r pebble.Reader, lo, hi []byte, limit int, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	n := 0
	for ok := it.First(); ok && (limit <= 0 || n < limit); ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
		n++
	}
	return it.Close()
}
