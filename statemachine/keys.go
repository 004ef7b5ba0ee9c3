package statemachine

import "encoding/binary"

// Retired key spaces, written by versions before 2026-11-28 and left in
// place: 'y' (an index of unpaid orders by pay-by time, now kept in memory:
// due.go) is ignored; 'c' (a subject's orders, now kept in memory:
// subject_index.go) is read once by Load; 'd' (an order's routing decision,
// now kept on its "created" event) is still read for orders recorded then.

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

func stockKey(prefix []byte, sku string) []byte { return key(prefix, 's', sku) }

func reservationKey(prefix []byte, sku, order string) []byte { return key(prefix, 'r', sku, order) }

func orderKey(prefix []byte, order string) []byte { return key(prefix, 'o', order) }

func eventKey(prefix []byte, order string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(prefix, 'e', order), 0), seq)
}

func eventPrefix(prefix []byte, order string) []byte { return append(key(prefix, 'e', order), 0) }

func stockEventKey(prefix []byte, sku string, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(prefix, 'q', sku), 0), index)
}

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

func reservationExpiryKey(prefix []byte, at int64, sku, order string) []byte {
	return timedKey(prefix, 'x', at, sku, order)
}

func stockActionKey(prefix []byte, order string) []byte { return key(prefix, 'a', order) }

func spaceStart(prefix []byte, space byte) []byte { return key(prefix, space) }

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
