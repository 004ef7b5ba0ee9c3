package statemachine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/routing"
)

// The routing catalog lives in one partition (the one "routing/catalog"
// hashes to), in spaceCatalog: warehouses g/w\x00{warehouse}, strategy
// versions g/s\x00{strategy}\x00{version u64}, the selection g/a (JSON
// documents of package routing) and the generation g/n (the Raft index of
// the last change, u64, so a node's cache can tell it is stale).

// CatalogKey is what the routing catalog's partition is chosen by.
const CatalogKey = "routing/catalog"

func warehouseKey(prefix []byte, id string) []byte { return key(prefix, spaceCatalog, "w", id) }

func strategyKey(prefix []byte, name string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append(key(prefix, spaceCatalog, "s", name), 0), version)
}

func strategyPrefix(prefix []byte, name string) []byte {
	return append(key(prefix, spaceCatalog, "s", name), 0)
}

func selectionKey(prefix []byte) []byte { return key(prefix, spaceCatalog, "a") }

func generationKey(prefix []byte) []byte { return key(prefix, spaceCatalog, "n") }

func (t *txn) bumpGeneration() {
	if err := t.b.Set(generationKey(t.m.prefix), binary.BigEndian.AppendUint64(nil, t.index), nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
}

func (t *txn) putJSON(k []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("statemachine: marshal: %v", err))
	}
	if err := t.b.Set(k, b, nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
	return b
}

func (t *txn) getJSON(k []byte, v any) bool {
	raw, ok, err := readRaw(t.b, k)
	if err != nil {
		panic(fmt.Sprintf("statemachine: read %q: %v", k, err))
	}
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		panic(fmt.Sprintf("statemachine: decode %q: %v", k, err))
	}
	return true
}

func refused(err error) *Result { return &Result{Detail: err.Error()} }

func (t *txn) putWarehouse(c *gridpb.PutWarehouseCommand) *Result {
	w, err := routing.ParseWarehouse(c.Document, "")
	if err != nil {
		return refused(err)
	}
	var prev routing.Warehouse
	had := t.getJSON(warehouseKey(t.m.prefix, w.ID), &prev)
	if c.ExpectedVersion != 0 && c.ExpectedVersion != prev.Version {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_ILLEGAL_TRANSITION,
			Detail: fmt.Sprintf("warehouse %s is at version %d, not %d", w.ID, prev.Version, c.ExpectedVersion)}
	}
	if !had {
		if n := t.count(key(t.m.prefix, spaceCatalog, "w"), routing.WarehousesMax); n >= routing.WarehousesMax {
			return &Result{Detail: fmt.Sprintf("at most %d warehouses", routing.WarehousesMax)}
		}
	}
	w.Version = prev.Version + 1
	doc := t.putJSON(warehouseKey(t.m.prefix, w.ID), w)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "warehouse_put", Warehouse: w.ID,
		Details: map[string]string{"version": strconv.FormatUint(w.Version, 10), "state": w.State, "document": string(doc)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
}

// count counts the keys under p, stopping at limit.
func (t *txn) count(p []byte, limit int) int {
	it, err := t.b.NewIter(nil)
	if err != nil {
		panic(fmt.Sprintf("statemachine: iter: %v", err))
	}
	defer it.Close()
	n := 0
	for ok := it.SeekGE(p); ok && n < limit && bytes.HasPrefix(it.Key(), p); ok = it.Next() {
		n++
	}
	return n
}

func (t *txn) putStrategy(c *gridpb.PutStrategyCommand) *Result {
	s, err := routing.ParseStrategy(c.Document, "")
	if err != nil {
		return refused(err)
	}
	n := t.count(strategyPrefix(t.m.prefix, s.Name), routing.StrategyVersions)
	if n >= routing.StrategyVersions {
		return &Result{Detail: fmt.Sprintf("strategy %s has %d versions, the most one keeps", s.Name, n)}
	}
	s.Version = uint64(n + 1)
	s.CreatedAt = ledger.FormatTime(t.at)
	s.CreatedBy = t.principal
	doc := t.putJSON(strategyKey(t.m.prefix, s.Name, s.Version), s)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "strategy_put",
		Details: map[string]string{"strategy": s.Name, "version": strconv.FormatUint(s.Version, 10), "document": string(doc)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
}

func (t *txn) activateStrategy(c *gridpb.ActivateStrategyCommand) *Result {
	sel, err := routing.ParseSelection(c.Selection)
	if err != nil {
		return refused(err)
	}
	resolve := func(field, name string, version *uint64) error {
		n := uint64(t.count(strategyPrefix(t.m.prefix, name), routing.StrategyVersions))
		switch {
		case n == 0:
			return &routing.FieldError{Field: field, Detail: fmt.Sprintf("no strategy %q", name)}
		case *version == 0:
			*version = n
		case *version > n:
			return &routing.FieldError{Field: field, Detail: fmt.Sprintf("strategy %s has no version %d (newest %d)", name, *version, n)}
		}
		return nil
	}
	if err := resolve("strategy", sel.Strategy, &sel.Version); err != nil {
		return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: err.Error()}
	}
	if a := sel.Candidate; a != nil {
		if err := resolve("candidate.strategy", a.Strategy, &a.Version); err != nil {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: err.Error()}
		}
		if a.Strategy == sel.Strategy && a.Version == sel.Version {
			return refused(routing.Errors{{Field: "candidate", Detail: "the same version as the active strategy"}})
		}
	}
	sel.ActivatedAt = ledger.FormatTime(t.at)
	sel.ActivatedBy = t.principal
	doc := t.putJSON(selectionKey(t.m.prefix), sel)
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "strategy_activated",
		Details: map[string]string{"strategy": sel.Strategy, "version": strconv.FormatUint(sel.Version, 10), "document": string(doc)}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: doc}
}

// ReadCatalog reads the routing catalog from its partition.
func ReadCatalog(r Reader, prefix []byte) (*routing.Catalog, error) {
	gen, err := ReadCatalogGeneration(r, prefix)
	if err != nil {
		return nil, err
	}
	var ws []*routing.Warehouse
	var ss []*routing.Strategy
	var sel *routing.Selection
	space := key(prefix, spaceCatalog)
	err = r.Scan(space, prefixEnd(space), 0, func(k, v []byte) error {
		rest := k[len(space):]
		switch {
		case len(rest) > 2 && rest[0] == 'w' && rest[1] == 0:
			var w routing.Warehouse
			if err := json.Unmarshal(v, &w); err != nil {
				return fmt.Errorf("warehouse %q: %w", rest[2:], err)
			}
			ws = append(ws, &w)
		case len(rest) > 2 && rest[0] == 's' && rest[1] == 0:
			var s routing.Strategy
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("strategy %q: %w", rest[2:], err)
			}
			ss = append(ss, &s)
		case len(rest) == 1 && rest[0] == 'a':
			sel = &routing.Selection{}
			if err := json.Unmarshal(v, sel); err != nil {
				return fmt.Errorf("selection: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("statemachine: routing catalog: %w", err)
	}
	return routing.NewCatalog(gen, ws, ss, sel)
}

// ReadCatalogGeneration reads the Raft index of the catalog's last change (0: none).
func ReadCatalogGeneration(r Reader, prefix []byte) (uint64, error) {
	v, ok, err := r.Get(generationKey(prefix))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, errors.New("statemachine: routing generation is not 8 bytes")
	}
	return binary.BigEndian.Uint64(v), nil
}
