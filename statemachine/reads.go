package statemachine

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// Reader reads a partition's state: on its leader (through
// cluster.Partition, which forwards from a follower) or a local store
// (cluster.LocalReader).
type Reader interface {
	Get(key []byte) (value []byte, found bool, err error)
	Scan(lo, hi []byte, limit int, fn func(k, v []byte) error) error
}

func getProto(r Reader, k []byte, msg proto.Message) (bool, error) {
	v, ok, err := r.Get(k)
	if err != nil || !ok {
		return false, err
	}
	if err := proto.Unmarshal(v, msg); err != nil {
		return false, fmt.Errorf("decode %q: %w", k, err)
	}
	return true, nil
}

// ReadStock returns sku's stock per warehouse and in total; found is false
// when no warehouse has ever stocked it.
func ReadStock(r Reader, prefix []byte, sku string) (st *pb.SkuStock, found bool, err error) {
	var rec pb.SkuRecord
	if _, err := getProto(r, stockKey(prefix, sku), &rec); err != nil {
		return nil, false, fmt.Errorf("read stock %s: %w", sku, err)
	}
	names, recs := rec.Warehouses, rec.Stock
	if len(names) != len(recs) {
		err = fmt.Errorf("sku record of %s is inconsistent", sku)
	}
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
func ReadOrder(r Reader, prefix []byte, id string) (*pb.OrderRecord, bool, error) {
	o := &pb.OrderRecord{}
	ok, err := getProto(r, orderKey(prefix, id), o)
	if err != nil {
		return nil, false, fmt.Errorf("read order %s: %w", id, err)
	}
	return o, ok, nil
}

// ReadEvents returns an order's events in order.
func ReadEvents(r Reader, prefix []byte, id string) ([]*pb.EventRecord, error) {
	evs, err := readEvents(r, eventPrefix(prefix, id), 0)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return evs, nil
}

// ReadStockEvents returns the stock events of sku (stock set, with the
// caller), oldest first, at most limit (0: all).
func ReadStockEvents(r Reader, prefix []byte, sku string, limit int) ([]*pb.EventRecord, error) {
	evs, err := readEvents(r, append(key(prefix, 'q', sku), 0), limit)
	if err != nil {
		return nil, fmt.Errorf("read stock events of %s: %w", sku, err)
	}
	return evs, nil
}

// readEvents decodes the EventRecords under prefix p, in key order.
func readEvents(r Reader, p []byte, limit int) ([]*pb.EventRecord, error) {
	var out []*pb.EventRecord
	err := r.Scan(p, prefixEnd(p), limit, func(_, v []byte) error {
		e := &pb.EventRecord{}
		if err := proto.Unmarshal(v, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// ReadReservation returns the reservation of an order on a SKU.
func ReadReservation(r Reader, prefix []byte, sku, order string) (*pb.ReservationRecord, bool, error) {
	res := &pb.ReservationRecord{}
	ok, err := getProto(r, reservationKey(prefix, sku, order), res)
	return res, ok, err
}

// ReadReservations returns every reservation on sku.
func ReadReservations(r Reader, prefix []byte, sku string) ([]*pb.ReservationRecord, error) {
	p := append(key(prefix, 'r', sku), 0)
	var out []*pb.ReservationRecord
	err := r.Scan(p, prefixEnd(p), 0, func(_, v []byte) error {
		res := &pb.ReservationRecord{}
		if err := proto.Unmarshal(v, res); err != nil {
			return err
		}
		out = append(out, res)
		return nil
	})
	return out, err
}

// DueReservation names a pending reservation past its expiry.
type DueReservation struct{ SKU, OrderID string }

// DueReservations returns up to limit pending reservations whose expiry is at or before now.
func DueReservations(r Reader, prefix []byte, now int64, limit int) ([]DueReservation, error) {
	start := spaceStart(prefix, 'x')
	end := binary.BigEndian.AppendUint64(append([]byte{}, start...), uint64(now)+1)
	var out []DueReservation
	err := r.Scan(start, end, limit, func(k, _ []byte) error {
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
func OwedStockActions(r Reader, prefix []byte, limit int) ([]string, error) {
	start := spaceStart(prefix, 'a')
	var ids []string
	err := r.Scan(start, prefixEnd(start), limit, func(k, _ []byte) error {
		ids = append(ids, string(k[len(start):]))
		return nil
	})
	return ids, err
}
