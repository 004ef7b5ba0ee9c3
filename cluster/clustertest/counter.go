package clustertest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordergrid/ordergrid/cluster"
)

// Counter is a state machine factory for tests of the cluster itself: a
// command is a key, and applying it adds one to the key's count and
// answers the new count (8 bytes, big-endian; Count decodes it).
func Counter(_ uint32, prefix []byte) cluster.StateMachine { return &counter{prefix: prefix} }

type counter struct{ prefix []byte }

func (c *counter) Apply(b *pebble.Batch, _ uint64, cmd []byte) []byte {
	k := append(append([]byte{}, c.prefix...), cmd...)
	var n uint64
	if v, closer, err := b.Get(k); err == nil {
		n = binary.BigEndian.Uint64(v)
		closer.Close()
	}
	n++
	_ = b.Set(k, binary.BigEndian.AppendUint64(nil, n), nil)
	return binary.BigEndian.AppendUint64(nil, n)
}

// Count decodes a Counter's answer or stored value; 0 for anything else.
func Count(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// LocalCount is key's count in partition p as host h's replica has
// applied it (no read index: what this replica holds).
func LocalCount(h *cluster.Host, p int, key string) (uint64, error) {
	part := h.Partitions()[p]
	v, closer, err := h.DB().Get(append(append([]byte{}, part.Prefix...), key...))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clustertest: read %s: %w", key, err)
	}
	defer closer.Close()
	return Count(v), nil
}
