package statemachine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
)

// Data subjects (customers) have their wrapped data key (spaceSubjectKey,
// deleted by erasure) and, once erased, a tombstone (spaceTombstone); their
// orders are kept in memory (subject_index.go). Key layouts: keySpaces
// (keys.go).

func subjectKeyKey(prefix []byte, subject string) []byte {
	return key(prefix, spaceSubjectKey, subject)
}

func tombstoneKey(prefix []byte, subject string) []byte { return key(prefix, spaceTombstone, subject) }

// SubjectHash is how the audit log names a subject: the hex SHA-256 of its
// id, so the permanent log never holds the id itself.
func SubjectHash(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(h[:])
}

// putSubjectKey stores a subject's wrapped key unless it has one.
func (t *txn) putSubjectKey(c *gridpb.PutSubjectKeyCommand) *Result {
	k := c.GetKey()
	if k.GetSubject() == "" || len(k.WrappedKey) == 0 || k.MasterKeyId == "" {
		return &Result{Detail: "put_subject_key: subject, master key id and wrapped key are required"}
	}
	var prev gridpb.SubjectKeyRecord
	if t.get(subjectKeyKey(t.m.prefix, k.Subject), &prev) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, SubjectKey: &prev}
	}
	rec := proto.Clone(k).(*gridpb.SubjectKeyRecord)
	rec.CreatedUnixNano = t.at
	t.put(subjectKeyKey(t.m.prefix, k.Subject), rec)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, SubjectKey: rec}
}

// subjectKeysMax bounds the keys of one put_subject_keys command.
const subjectKeysMax = 4096

// putSubjectKeys stores the new subjects' keys of one intake batch, each
// unless its subject has one; the result lists the key that won, per subject.
func (t *txn) putSubjectKeys(c *gridpb.PutSubjectKeysCommand) *Result {
	if len(c.Keys) > subjectKeysMax {
		return &Result{Detail: fmt.Sprintf("put_subject_keys: %d keys, at most %d", len(c.Keys), subjectKeysMax)}
	}
	out := &Result{Outcome: gridpb.Outcome_OUTCOME_OK, SubjectKeys: make([]*gridpb.SubjectKeyRecord, len(c.Keys))}
	for i, k := range c.Keys {
		res := t.putSubjectKey(&gridpb.PutSubjectKeyCommand{Key: k})
		if res.SubjectKey == nil {
			return &Result{Detail: fmt.Sprintf("keys[%d]: %s", i, res.Detail)}
		}
		out.SubjectKeys[i] = res.SubjectKey
	}
	return out
}

// rewrapSubjectKey replaces a wrapped key by the same key under another
// master key, if it is still under from_master_key_id.
func (t *txn) rewrapSubjectKey(c *gridpb.RewrapSubjectKeyCommand) *Result {
	k := c.GetKey()
	var cur gridpb.SubjectKeyRecord
	if !t.get(subjectKeyKey(t.m.prefix, k.GetSubject()), &cur) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: "no key (erased?)"}
	}
	if cur.MasterKeyId != c.FromMasterKeyId {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_REPLAYED, SubjectKey: &cur}
	}
	rec := proto.Clone(k).(*gridpb.SubjectKeyRecord)
	rec.CreatedUnixNano = cur.CreatedUnixNano
	t.put(subjectKeyKey(t.m.prefix, k.Subject), rec)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, SubjectKey: rec}
}

// eraseSubject deletes a subject's data key: every order's sealed personal
// fields become unreadable for good. It keeps a tombstone, and records one
// "erased" event per order (or one for the subject alone) in the audit log.
// A subject with neither a key nor a tombstone is unknown; one whose key is
// already gone is answered with its tombstone (OUTCOME_ERASED).
func (t *txn) eraseSubject(c *gridpb.EraseSubjectCommand) *Result {
	kk := subjectKeyKey(t.m.prefix, c.Subject)
	var key gridpb.SubjectKeyRecord
	hasKey := t.get(kk, &key)
	var ts gridpb.SubjectTombstoneRecord
	hasTomb := t.get(tombstoneKey(t.m.prefix, c.Subject), &ts)
	switch {
	case !hasKey && hasTomb:
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ERASED, Tombstone: &ts, Detail: "already erased"}
	case !hasKey:
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: "unknown subject"}
	}
	t.del(kk)
	// The customer's fingerprints (unlinked by the grain before this
	// command) and recent purchases go with the key.
	jp := identityListPrefix(t.m.prefix, c.Subject)
	if err := t.b.DeleteRange(jp, prefixEnd(jp), nil); err != nil {
		panic(fmt.Sprintf("statemachine: delete range: %v", err))
	}
	t.del(purchasesKey(t.m.prefix, c.Subject))
	orders := slices.Clone(c.OrderIds)
	slices.Sort(orders)
	orders = slices.Compact(orders)
	ts = gridpb.SubjectTombstoneRecord{Subject: c.Subject, ErasedUnixNano: t.at, Principal: t.principal,
		OrderIds: mergeSorted(ts.OrderIds, orders)}
	t.put(tombstoneKey(t.m.prefix, c.Subject), &ts)
	details := map[string]string{"subject_sha256": SubjectHash(c.Subject), "orders": strconv.Itoa(len(orders))}
	if len(orders) == 0 {
		t.record(&ledger.Event{Kind: ledger.KindSubject, Type: "erased", Details: details})
	}
	for _, o := range orders {
		t.record(&ledger.Event{Kind: ledger.KindSubject, Type: "erased", Order: o, Details: details})
	}
	t.m.purge.Store(true)
	t.m.hooks.subjectErased(c.Subject)
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Tombstone: &ts}
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// recordAccess records reads of orders' personal fields in the audit log.
// It is also the authority on whether the read may happen: a subject whose
// key is gone (erased, perhaps after the reading grain cached it) answers
// ERASED, and nothing is recorded.
func (t *txn) recordAccess(c *gridpb.RecordAccessCommand) *Result {
	var key gridpb.SubjectKeyRecord
	if !t.get(subjectKeyKey(t.m.prefix, c.Subject), &key) {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ERASED, Detail: "the subject has no key"}
	}
	details := map[string]string{"subject_sha256": SubjectHash(c.Subject)}
	if c.Purpose != "" {
		details["purpose"] = c.Purpose
	}
	for _, o := range c.OrderIds {
		t.record(&ledger.Event{Kind: ledger.KindAccess, Type: "personal_read", Order: o, Details: details})
	}
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
}

// ReadSubjectKey returns a subject's wrapped data key.
func ReadSubjectKey(r Reader, prefix []byte, subject string) (*gridpb.SubjectKeyRecord, bool, error) {
	k := &gridpb.SubjectKeyRecord{}
	ok, err := getProto(r, subjectKeyKey(prefix, subject), k)
	return k, ok, err
}

// ReadTombstone returns an erased subject's tombstone.
func ReadTombstone(r Reader, prefix []byte, subject string) (*gridpb.SubjectTombstoneRecord, bool, error) {
	ts := &gridpb.SubjectTombstoneRecord{}
	ok, err := getProto(r, tombstoneKey(prefix, subject), ts)
	return ts, ok, err
}

// SubjectKeys returns up to limit wrapped subject keys of a partition, in
// subject order, starting after the subject after ("" from the first).
func SubjectKeys(r Reader, prefix []byte, after string, limit int) ([]*gridpb.SubjectKeyRecord, error) {
	lo := spaceStart(prefix, spaceSubjectKey)
	if after != "" {
		lo = append(subjectKeyKey(prefix, after), 0)
	}
	var out []*gridpb.SubjectKeyRecord
	err := r.Scan(lo, prefixEnd(spaceStart(prefix, spaceSubjectKey)), limit, func(_, v []byte) error {
		k := &gridpb.SubjectKeyRecord{}
		if err := proto.Unmarshal(v, k); err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	return out, err
}
