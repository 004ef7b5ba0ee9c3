package statemachine

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
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

// readEvents decodes the EventRecords under prefix p, in key order.
func readEvents(r Reader, p []byte, limit int) ([]*gridpb.EventRecord, error) {
	var out []*gridpb.EventRecord
	err := r.Scan(p, prefixEnd(p), limit, func(_, v []byte) error {
		e := &gridpb.EventRecord{}
		if err := proto.Unmarshal(v, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}
