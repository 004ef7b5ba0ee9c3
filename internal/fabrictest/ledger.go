package fabrictest

import (
	"bytes"
	"maps"
	"slices"

	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/rwset/kvrwset"
	"github.com/hyperledger/fabric-protos-go-apiv2/peer"
)

// versionedValue is a committed value and the version Fabric gives it: the
// block and the position in the block of the transaction that wrote it
// (always 0 here: one transaction per block).
type versionedValue struct {
	value []byte
	block uint64
}

// namespaceState is one chaincode's committed world state.
type namespaceState map[string]versionedValue

func (ns namespaceState) version(key string) *kvrwset.Version {
	v, ok := ns[key]
	if !ok {
		return nil
	}
	return &kvrwset.Version{BlockNum: v.block}
}

// rangeScan returns the committed entries in [startKey, endKey) in key order.
func (ns namespaceState) rangeScan(startKey, endKey string) []string {
	var keys []string
	for k := range ns {
		if inRange(k, startKey, endKey) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// simulation is a transaction simulator in Fabric's sense: it reads the
// committed state of one namespace (the caller holds the ledger's read lock
// for its whole life) and records what it read, with versions, and what it
// would write, without changing the state.
type simulation struct {
	namespace string
	committed namespaceState
	reads     map[string]*kvrwset.Version
	ranges    []*kvrwset.RangeQueryInfo
	writes    map[string][]byte // an empty value is a delete
}

func newSimulation(namespace string, committed namespaceState) *simulation {
	return &simulation{
		namespace: namespace,
		committed: committed,
		reads:     make(map[string]*kvrwset.Version),
		writes:    make(map[string][]byte),
	}
}

func (s *simulation) get(key string) ([]byte, error) {
	if _, seen := s.reads[key]; !seen {
		s.reads[key] = s.committed.version(key)
	}
	return bytes.Clone(s.committed[key].value), nil
}

func (s *simulation) put(key string, value []byte) { s.writes[key] = value }

// scan records the whole result set as one exhausted range read, which is
// what a peer records for a range of fewer entries than its query batch;
// commit re-runs the range and compares.
func (s *simulation) scan(startKey, endKey string) []*queryresult.KV {
	var kvs []*queryresult.KV
	var reads []*kvrwset.KVRead
	for _, k := range s.committed.rangeScan(startKey, endKey) {
		kvs = append(kvs, &queryresult.KV{Namespace: s.namespace, Key: k, Value: bytes.Clone(s.committed[k].value)})
		reads = append(reads, &kvrwset.KVRead{Key: k, Version: s.committed.version(k)})
	}
	s.ranges = append(s.ranges, &kvrwset.RangeQueryInfo{
		StartKey:     startKey,
		EndKey:       endKey,
		ItrExhausted: true,
		ReadsInfo:    &kvrwset.RangeQueryInfo_RawReads{RawReads: &kvrwset.QueryReads{KvReads: reads}},
	})
	return kvs
}

// rwset returns the read-write set, reads and writes sorted by key as a
// peer sorts them.
func (s *simulation) rwset() *kvrwset.KVRWSet {
	set := &kvrwset.KVRWSet{RangeQueriesInfo: s.ranges}
	for _, k := range slices.Sorted(maps.Keys(s.reads)) {
		set.Reads = append(set.Reads, &kvrwset.KVRead{Key: k, Version: s.reads[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(s.writes)) {
		v := s.writes[k]
		set.Writes = append(set.Writes, &kvrwset.KVWrite{Key: k, IsDelete: len(v) == 0, Value: v})
	}
	return set
}

// validate is the committer's MVCC check of a read-write set against the
// current committed state: every key read must still have the version it
// had (MVCC_READ_CONFLICT otherwise) and every range must still yield the
// same keys at the same versions (PHANTOM_READ_CONFLICT otherwise).
func validate(set *kvrwset.KVRWSet, ns namespaceState) peer.TxValidationCode {
	for _, r := range set.GetReads() {
		if !sameVersion(r.GetVersion(), ns.version(r.GetKey())) {
			return peer.TxValidationCode_MVCC_READ_CONFLICT
		}
	}
	for _, q := range set.GetRangeQueriesInfo() {
		then := q.GetRawReads().GetKvReads()
		now := ns.rangeScan(q.GetStartKey(), q.GetEndKey())
		if len(then) != len(now) {
			return peer.TxValidationCode_PHANTOM_READ_CONFLICT
		}
		for i, r := range then {
			if r.GetKey() != now[i] || !sameVersion(r.GetVersion(), ns.version(now[i])) {
				return peer.TxValidationCode_PHANTOM_READ_CONFLICT
			}
		}
	}
	return peer.TxValidationCode_VALID
}

// sameVersion reports whether two versions are equal, nil meaning the key
// did not exist.
func sameVersion(a, b *kvrwset.Version) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.GetBlockNum() == b.GetBlockNum() && a.GetTxNum() == b.GetTxNum()
}

// apply writes a valid transaction's writes into the state at block.
func apply(set *kvrwset.KVRWSet, ns namespaceState, block uint64) {
	for _, w := range set.GetWrites() {
		if w.GetIsDelete() {
			delete(ns, w.GetKey())
			continue
		}
		ns[w.GetKey()] = versionedValue{value: bytes.Clone(w.GetValue()), block: block}
	}
}
