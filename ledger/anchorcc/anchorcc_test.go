package anchorcc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/ordergrid/ordergrid/internal/fabrictest"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/ledger/merkle"
)

// logFixture is a log with its key and an in-memory tree.
type logFixture struct {
	signer *checkpoint.Signer
	vkey   string
	tree   merkle.MemTree
}

func newLog(t *testing.T, origin string) *logFixture {
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := checkpoint.NewSigner(skey)
	return &logFixture{signer: s, vkey: vkey}
}

func (l *logFixture) grow(n int) {
	for i := 0; i < n; i++ {
		l.tree.Append([]byte(fmt.Sprint("leaf ", l.tree.Size())))
	}
}

func (l *logFixture) signed(t *testing.T, size uint64) string {
	root, err := merkle.Root(&l.tree, size)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.signer.Sign(checkpoint.Checkpoint{Origin: l.signer.Origin(), Size: size, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (l *logFixture) proof(t *testing.T, from, to uint64) []string {
	p, err := merkle.ConsistencyProof(&l.tree, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return merkle.EncodeProof(p)
}

type world struct {
	state map[string][]byte
	n     int
}

func (w *world) ctx() contractapi.TransactionContextInterface {
	w.n++
	ctx := &contractapi.TransactionContext{}
	ctx.SetStub(fabrictest.NewStub(fmt.Sprintf("tx%d", w.n), nil, w.state))
	return ctx
}

func TestAnchorOnlyExtends(t *testing.T) {
	c := &Contract{}
	w := &world{state: map[string][]byte{}}
	l := newLog(t, "ordergrid.test/ledger")
	l.grow(10)

	a, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 10), nil)
	if err != nil || a.Size != 10 {
		t.Fatalf("first anchor: %+v, %v", a, err)
	}
	// The same checkpoint again: the same anchor (a retried transaction).
	if again, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 10), nil); err != nil || again.TxID != a.TxID {
		t.Fatalf("same checkpoint again: %+v, %v", again, err)
	}
	l.grow(7)
	if _, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 17), l.proof(t, 10, 17)); err != nil {
		t.Fatalf("extension: %v", err)
	}
	latest, _ := c.Latest(w.ctx(), "ordergrid.test/ledger")
	if latest.Size != 17 {
		t.Fatalf("latest %d", latest.Size)
	}
	if got, _ := c.Get(w.ctx(), "ordergrid.test/ledger", 10); got.Size != 10 {
		t.Fatalf("Get(10) = %+v", got)
	}
	if got, _ := c.Get(w.ctx(), "ordergrid.test/ledger", 11); got.Size != 0 {
		t.Fatalf("Get(11) = %+v", got)
	}

	// A fork: another history of 20 leaves signed by the same key.
	fork := &logFixture{signer: l.signer, vkey: l.vkey}
	fork.grow(10)
	fork.tree.Append([]byte("a different leaf"))
	fork.grow(9)
	l.grow(3)
	refused := map[string]func() error{
		"fork with its own proof": func() error {
			_, err := c.Anchor(w.ctx(), l.vkey, fork.signed(t, 20), fork.proof(t, 17, 20))
			return err
		},
		"fork with the real proof": func() error {
			_, err := c.Anchor(w.ctx(), l.vkey, fork.signed(t, 20), l.proof(t, 17, 20))
			return err
		},
		"smaller tree": func() error {
			_, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 12), nil)
			return err
		},
		"second root for an anchored size": func() error {
			_, err := c.Anchor(w.ctx(), l.vkey, fork.signed(t, 17), nil)
			return err
		},
		"no proof": func() error {
			_, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 20), nil)
			return err
		},
	}
	for name, f := range refused {
		if err := f(); !errors.Is(err, ErrNotExtension) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Another key for the same origin, a bad signature, garbage: refused.
	other := newLog(t, "ordergrid.test/ledger")
	other.tree = l.tree
	if _, err := c.Anchor(w.ctx(), other.vkey, other.signed(t, 20), l.proof(t, 17, 20)); err == nil || !strings.Contains(err.Error(), "anchored with the key") {
		t.Errorf("other key: %v", err)
	}
	bad := []byte(l.signed(t, 20))
	bad[len(bad)-5] ^= 1
	if _, err := c.Anchor(w.ctx(), l.vkey, string(bad), l.proof(t, 17, 20)); err == nil {
		t.Error("bad signature anchored")
	}
	if _, err := c.Anchor(w.ctx(), "not a key", l.signed(t, 20), nil); err == nil {
		t.Error("bad key anchored")
	}
	if latest, _ := c.Latest(w.ctx(), "ordergrid.test/ledger"); latest.Size != 17 {
		t.Fatalf("a refused anchor changed the state: latest %d", latest.Size)
	}
	// The real extension still goes through.
	if _, err := c.Anchor(w.ctx(), l.vkey, l.signed(t, 20), l.proof(t, 17, 20)); err != nil {
		t.Fatal(err)
	}
}

func TestMetadata(t *testing.T) {
	if _, err := New(); err != nil {
		t.Fatalf("contractapi refuses the contract: %v", err)
	}
}
