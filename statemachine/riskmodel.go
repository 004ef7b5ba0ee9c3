package statemachine

import (
	"fmt"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/risk"
)

// The grid's risk model, put through PUT /v1/risk/model, lives with the
// routing catalog (g/m: the model file) and bumps its generation, so every
// node scores with it from its next catalog read. A model file that does
// not load is refused here, and the one before keeps serving.

func riskModelKey(prefix []byte) []byte { return key(prefix, spaceCatalog, "m") }

func (t *txn) putRiskModel(c *gridpb.PutRiskModelCommand) *Result {
	k := riskModelKey(t.m.prefix)
	if len(c.Document) == 0 {
		if _, ok, err := readRaw(t.b, k); err != nil || !ok {
			return &Result{Outcome: gridpb.Outcome_OUTCOME_NOT_FOUND, Detail: "no risk model was put"}
		}
		t.del(k)
		t.bumpGeneration()
		t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "risk_model_removed"})
		return &Result{Outcome: gridpb.Outcome_OUTCOME_OK}
	}
	m, err := risk.Parse(c.Document)
	if err != nil {
		return refused(fmt.Errorf("model: %w", err))
	}
	if err := t.b.Set(k, c.Document, nil); err != nil {
		panic(fmt.Sprintf("statemachine: set: %v", err))
	}
	t.bumpGeneration()
	t.record(&ledger.Event{Kind: ledger.KindRouting, Type: "risk_model_put",
		Details: map[string]string{"model": m.Version(), "size_bytes": fmt.Sprint(len(c.Document))}})
	return &Result{Outcome: gridpb.Outcome_OUTCOME_OK, Document: []byte(m.Version())}
}

// ReadRiskModel reads the grid's risk model file (found false: none put).
func ReadRiskModel(r Reader, prefix []byte) (doc []byte, found bool, err error) {
	doc, found, err = r.Get(riskModelKey(prefix))
	if err != nil {
		return nil, false, fmt.Errorf("statemachine: risk model: %w", err)
	}
	return doc, found, nil
}
