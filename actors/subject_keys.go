package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/batching"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/privacy"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// The subjects' data keys a node seals new orders' personal fields with:
// unwrapped keys of recently active subjects, cached so sealing is CPU only,
// and the keys of new subjects made in rounds across the node's intake
// batches (package batching; one put_subject_keys entry per subject
// partition in a round). A cached key lives at most subjectKeyTTL, and an
// erasure applied on this node's replica drops it at once (statemachine's
// erasure hook), so a key never outlives its subject's erasure on a node
// by more than that replica's apply lag.

const (
	// subjectKeysCachedMax bounds the unwrapped keys a node holds.
	subjectKeysCachedMax = 100_000
	// subjectKeyTTL bounds how long an unwrapped key stays cached.
	subjectKeyTTL = 30 * time.Second
)

type cachedKey struct {
	key     *privacy.DataKey
	expires time.Time
}

// subjectKeys is a node's cache of unwrapped subject data keys.
type subjectKeys struct {
	mu   sync.Mutex
	keys map[string]cachedKey
}

func (c *subjectKeys) get(subject string, now time.Time) *privacy.DataKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[subject]
	if !ok {
		return nil
	}
	if now.After(e.expires) {
		delete(c.keys, subject)
		return nil
	}
	return e.key
}

func (c *subjectKeys) put(subject string, k *privacy.DataKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[string]cachedKey)
	}
	if len(c.keys) >= subjectKeysCachedMax {
		// Full: drop the expired, else everything (the next batches make
		// one put_subject_keys entry per partition to refill it).
		for s, e := range c.keys {
			if now.After(e.expires) {
				delete(c.keys, s)
			}
		}
		if len(c.keys) >= subjectKeysCachedMax {
			clear(c.keys)
		}
	}
	c.keys[subject] = cachedKey{key: k, expires: now.Add(subjectKeyTTL)}
}

// Forget drops a subject's cached key: called when an erasure of the
// subject is applied on this node.
func (c *subjectKeys) Forget(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.keys, subject)
}

// ForgetSubjectKey drops a subject's data key from this node's cache. The
// state machine calls it when it applies the subject's erasure.
func (n *Node) ForgetSubjectKey(subject string) { n.keys.Forget(subject) }

// keyRequest asks for one new subject's key to be stored in its partition.
type keyRequest struct {
	p   *partitionRef
	rec *gridpb.SubjectKeyRecord
}

// newKeyBatching batches new subjects' keys across the node's intake
// batches: one round at a time for the whole node (what queued while a
// round was in flight goes out as the next), and in a round one
// put_subject_keys entry per subject partition, the partitions at once.
// One lane rather than one per partition: the customers of a batch of
// orders spread over every subject partition, and per-partition rounds
// would carry one or two keys each.
func (n *Node) newKeyBatching() *batching.Coalescer[keyRequest, *gridpb.SubjectKeyRecord] {
	return batching.New(func(ctx context.Context, _ uint32, batch []keyRequest) ([]*gridpb.SubjectKeyRecord, error) {
		byPart := map[*partitionRef][]int{}
		var parts []*partitionRef
		for i, r := range batch {
			if _, ok := byPart[r.p]; !ok {
				parts = append(parts, r.p)
			}
			byPart[r.p] = append(byPart[r.p], i)
		}
		out := make([]*gridpb.SubjectKeyRecord, len(batch))
		errs := make([]error, len(parts))
		fanOut(len(parts), len(parts), func(j int) {
			at := byPart[parts[j]]
			recs := make([]*gridpb.SubjectKeyRecord, len(at))
			for m, i := range at {
				recs[m] = batch[i].rec
			}
			n.metrics.keyBatch.Observe(float64(len(recs)))
			stored, err := n.putSubjectKeys(ctx, parts[j], recs)
			if err != nil {
				errs[j] = err
				return
			}
			for m, i := range at {
				out[i] = stored[m]
			}
		})
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return out, nil
	}, batching.Options{BatchItemsMax: subjectKeysBatchMax, BatchTimeout: n.opts.RequestTimeout})
}

// subjectKeysBatchMax caps the keys of one round (so of one put_subject_keys entry).
const subjectKeysBatchMax = 1024

// dataKeys returns the data key of every subject, making and storing the
// keys of subjects that have none, batched per subject partition (the
// state machine keeps a key a subject already has and answers it, so a
// subject's key is never replaced).
func (n *Node) dataKeys(ctx context.Context, subjects []string) (map[string]*privacy.DataKey, error) {
	out := make(map[string]*privacy.DataKey, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	kr := n.opts.Keyring
	if kr == nil {
		return nil, errNoKeyring
	}
	now := n.now()
	type waiting struct {
		subject string
		p       *batching.Pending[keyRequest, *gridpb.SubjectKeyRecord]
	}
	var waits []waiting
	for _, s := range subjects {
		if _, done := out[s]; done {
			continue
		}
		if k := n.keys.get(s, now); k != nil {
			out[s] = k
			continue
		}
		out[s] = nil
		w, err := kr.NewDataKey(s)
		if err != nil {
			return nil, err
		}
		p := n.subjectPartition(s)
		pending, err := n.keyBatching.Submit(0, keyRequest{p: p,
			rec: &gridpb.SubjectKeyRecord{Subject: s, MasterKeyId: w.MasterKeyID, Nonce: w.Nonce, WrappedKey: w.Ciphertext}})
		if err != nil {
			return nil, fmt.Errorf("storing data keys: %w", err)
		}
		waits = append(waits, waiting{s, pending})
	}
	for _, w := range waits {
		rec, err := w.p.Wait(ctx)
		if err != nil {
			return nil, err
		}
		k, err := kr.Open(rec.Subject, privacy.Wrapped{MasterKeyID: rec.MasterKeyId, Nonce: rec.Nonce, Ciphertext: rec.WrappedKey})
		if err != nil {
			// Another node wrapped it: every node must hold the same master keys.
			return nil, fmt.Errorf("subject data key wrapped by master key %q (do all nodes share privacy.master_keys_file?): %w", rec.MasterKeyId, err)
		}
		out[w.subject] = k
		n.keys.put(w.subject, k, now)
	}
	return out, nil
}

func (n *Node) putSubjectKeys(ctx context.Context, p *partitionRef, recs []*gridpb.SubjectKeyRecord) ([]*gridpb.SubjectKeyRecord, error) {
	res, err := n.propose(ctx, p, "system:keys", &gridpb.Command{Kind: &gridpb.Command_PutSubjectKeys{PutSubjectKeys: &gridpb.PutSubjectKeysCommand{Keys: recs}}})
	if err != nil {
		return nil, fmt.Errorf("storing data keys: %w", err)
	}
	if len(res.SubjectKeys) != len(recs) {
		return nil, fmt.Errorf("storing data keys: %s", res.Detail)
	}
	for i, rec := range res.SubjectKeys {
		if rec.GetSubject() != recs[i].Subject {
			return nil, fmt.Errorf("storing data keys: key %d is of %q, not %q", i, rec.GetSubject(), recs[i].Subject)
		}
	}
	return res.SubjectKeys, nil
}

// sealWith seals an order's personal fields with its subject's key,
// bound to the order; the plaintext is wiped.
func sealWith(k *privacy.DataKey, orderID string, f *gridpb.PersonalFields) ([]byte, error) {
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	if err != nil {
		return nil, err
	}
	sealed, err := k.Seal(orderID, plain)
	clear(plain)
	return sealed, err
}

// personalFields are the customer's personal fields of a request, or nil.
func personalFields(c *pb.Customer) *gridpb.PersonalFields {
	f := &gridpb.PersonalFields{Name: c.GetName(), Phone: c.GetPhone(), Address: c.GetAddress(), IdNumber: c.GetIdNumber(), Email: c.GetEmail()}
	if proto.Size(f) == 0 {
		return nil
	}
	return f
}
