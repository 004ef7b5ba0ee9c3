package statemachine

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/lifecycle"
	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

func TestKeySpacesAreUnique(t *testing.T) {
	bytes, names := map[byte]bool{}, map[string]bool{}
	for _, s := range keySpaces {
		if bytes[s.Byte] {
			t.Errorf("space %q registered twice", s.Byte)
		}
		if names[s.Name] {
			t.Errorf("name %q registered twice", s.Name)
		}
		bytes[s.Byte], names[s.Name] = true, true
		// 0x00 after the prefix is package cluster's (the applied index),
		// and the key of a space is {space}/ only if it is not '/'.
		if s.Byte == 0 || s.Byte == '/' || s.Name == "" || s.Value == "" || s.Owner == "" {
			t.Errorf("space %q: %+v", s.Byte, s)
		}
		if s.Indexed && s.Retired {
			t.Errorf("space %q is indexed and retired", s.Byte)
		}
	}
}

// packageFiles parses the package's non-test files.
func packageFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

// TestKeyBuildersUseRegisteredSpaces checks, in the package's source, that
// every space constant is registered and that a space is never written as
// a literal where a key is built (or anywhere a registered byte is passed).
func TestKeyBuildersUseRegisteredSpaces(t *testing.T) {
	fset, files := packageFiles(t)
	registered := map[byte]bool{}
	for _, s := range keySpaces {
		registered[s.Byte] = true
	}
	// The space constants: every constant named space*.
	consts := map[string]byte{}
	constOf := map[byte]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "space") {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.CHAR {
						t.Errorf("%s: %s is not a character constant", fset.Position(n.Pos()), n.Name)
						continue
					}
					v, _, _, err := strconv.UnquoteChar(lit.Value[1:len(lit.Value)-1], '\'')
					if err != nil || v > 0xff {
						t.Errorf("%s: %s = %s", fset.Position(n.Pos()), n.Name, lit.Value)
						continue
					}
					b := byte(v)
					if prev, dup := constOf[b]; dup {
						t.Errorf("%s and %s are both %q", prev, n.Name, b)
					}
					consts[n.Name], constOf[b] = b, n.Name
					if !registered[b] {
						t.Errorf("%s (%q) is not in keySpaces", n.Name, b)
					}
				}
			}
		}
	}
	for _, s := range keySpaces {
		if _, ok := constOf[s.Byte]; !ok {
			t.Errorf("space %q has no constant", s.Byte)
		}
	}
	builders := map[string]bool{"key": true, "timedKey": true, "spaceStart": true}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok && builders[fn.Name] && len(n.Args) >= 2 {
					// A space constant, or a variable named space (inside
					// the builders, and the loops over spaces).
					ast.Inspect(n.Args[1], func(a ast.Node) bool {
						switch a := a.(type) {
						case *ast.BasicLit:
							t.Errorf("%s: %s takes its space as a literal", fset.Position(a.Pos()), fn.Name)
						case *ast.Ident:
							if _, ok := consts[a.Name]; !ok && a.Name != "space" && a.Name != "byte" {
								t.Errorf("%s: %s takes its space from %s, not a space constant", fset.Position(a.Pos()), fn.Name, a.Name)
							}
						}
						return true
					})
				}
				for i, a := range n.Args {
					if fn, ok := n.Fun.(*ast.Ident); ok && builders[fn.Name] && i == 1 {
						continue // reported above
					}
					checkLiteral(t, fset, a, registered)
				}
			case *ast.KeyValueExpr:
				checkLiteral(t, fset, n.Key, registered)
			}
			return true
		})
	}
}

// checkLiteral reports a character literal that is a registered space.
func checkLiteral(t *testing.T, fset *token.FileSet, e ast.Expr, registered map[byte]bool) {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.CHAR {
		return
	}
	if v, _, _, err := strconv.UnquoteChar(lit.Value[1:len(lit.Value)-1], '\''); err == nil && v <= 0xff && registered[byte(v)] {
		t.Errorf("%s: space %s written as a literal: use its constant", fset.Position(lit.Pos()), lit.Value)
	}
}

// keyTable renders keySpaces as doc.go's table, one line each.
func keyTable() []string {
	rows := [][]string{{"key", "value", "owner", "what"}}
	for _, s := range keySpaces {
		what := s.Name
		if s.Retired {
			what = "retired: " + what
		}
		rows = append(rows, []string{string(s.Byte) + "/" + s.Layout, s.Value, s.Owner, what})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var out []string
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			fmt.Fprintf(&b, "%-*s", width[i]+2, c)
		}
		out = append(out, b.String())
	}
	return out
}

// TestDocListsKeySpaces checks that the package doc's key table is the
// registry: the same spaces, in the same order, with the same layout,
// value, owner and name.
func TestDocListsKeySpaces(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", src, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("doc.go has no package doc")
	}
	// The table: the indented block that starts with its header.
	var table []string
	in := false
	for _, c := range f.Doc.List {
		line, indented := strings.CutPrefix(c.Text, "//\t")
		if indented && strings.HasPrefix(line, "key ") {
			in = true
		}
		if in && !indented {
			break
		}
		if in {
			table = append(table, line)
		}
	}
	want := keyTable()
	for i := range max(len(table), len(want)) {
		if i >= len(table) || i >= len(want) || table[i] != want[i] {
			t.Errorf("doc.go's key table differs from keySpaces at its line %d; it should read:\n//\t%s", i+1, strings.Join(want, "\n//\t"))
			break
		}
	}
}

// TestWrittenKeysAreInLiveSpaces applies commands of every aggregate and
// checks that every key the partition then holds is in a registered space
// that is not retired, and that every live space was written.
func TestWrittenKeysAreInLiveSpaces(t *testing.T) {
	h := newHarness(t)
	ok := func(res *Result) {
		t.Helper()
		if res.Outcome != gridpb.Outcome_OUTCOME_OK {
			t.Fatalf("%+v", res)
		}
	}
	order := func(id string) *gridpb.Command {
		return &gridpb.Command{Kind: &gridpb.Command_CreateOrder{CreateOrder: &gridpb.CreateOrderCommand{Order: &gridpb.OrderRecord{Id: id, RequestHash: []byte("h"),
			PayByUnixNano: 1000, Customer: &pb.Customer{Id: "cu"}, Shipments: []*gridpb.ShipmentRecord{{Warehouse: "w1", ShipDay: 3}}}}}}
	}
	reserve := func(id string) *gridpb.Command {
		return &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "A",
			Items: []*gridpb.ReserveItem{{OrderId: id, Qty: 1, Warehouse: "w1", ExpiresUnixNano: 500}}}}}
	}
	transition := func(id, to string) *gridpb.Command {
		return &gridpb.Command{Kind: &gridpb.Command_Transition{Transition: &gridpb.TransitionCommand{OrderId: id, Type: to}}}
	}
	subjectKey := func(subject string) *gridpb.Command {
		return &gridpb.Command{Kind: &gridpb.Command_PutSubjectKey{PutSubjectKey: &gridpb.PutSubjectKeyCommand{Key: &gridpb.SubjectKeyRecord{Subject: subject, MasterKeyId: "m", WrappedKey: []byte("k")}}}}
	}
	price := func(order, channel, unit string) *gridpb.Command {
		return &gridpb.Command{Kind: &gridpb.Command_NotePrice{NotePrice: &gridpb.NotePriceCommand{Sku: "A", WindowNanos: 100, Rule: "lowest",
			Price: &gridpb.ChannelPrice{OrderId: order, Channel: channel, Currency: "CNY", UnitPrice: unit, AtUnixNano: 10}}}}
	}
	ok(h.apply(10, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "A", Warehouse: "w1", OnHand: 10}}}))
	for _, id := range []string{"o1", "o2", "o3"} {
		ok(h.apply(10, order(id)))
		h.apply(10, reserve(id))
	}
	ok(h.apply(20, transition("o1", lifecycle.StatusPaid)))
	ok(h.apply(20, &gridpb.Command{Kind: &gridpb.Command_Settle{Settle: &gridpb.SettleCommand{Sku: "A", OrderId: "o1", Action: lifecycle.ActionCommit}}}))
	ok(h.apply(20, transition("o2", lifecycle.StatusCancelled)))
	ok(h.apply(20, &gridpb.Command{Kind: &gridpb.Command_StockSynced{StockSynced: &gridpb.StockSyncedCommand{OrderId: "o2", Action: lifecycle.ActionRelease}}}))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_ArchiveOrders{ArchiveOrders: &gridpb.ArchiveOrdersCommand{Archive: "a1", OrderIds: []string{"o2"}, BeforeUnixNano: 25}}}))
	ok(h.apply(30, transition("o3", lifecycle.StatusCancelled)))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_AnnotateOrder{AnnotateOrder: &gridpb.AnnotateOrderCommand{OrderId: "o1", Type: "note", Dedupe: "d"}}}))
	ok(h.apply(30, subjectKey("cu")))
	ok(h.apply(30, subjectKey("cu2")))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_EraseSubject{EraseSubject: &gridpb.EraseSubjectCommand{Subject: "cu2"}}}))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_LinkIdentity{LinkIdentity: &gridpb.LinkIdentityCommand{KeyHash: "kh", Customer: "cu"}}}))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_RememberIdentity{RememberIdentity: &gridpb.RememberIdentityCommand{KeyHash: "kh", Customer: "cu"}}}))
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_NotePurchase{NotePurchase: &gridpb.NotePurchaseCommand{Customer: "cu", WindowNanos: 100,
		Purchase: &gridpb.PurchaseRecord{OrderId: "o1", Channel: "shop", Skus: []string{"A"}, AtUnixNano: 10}}}}))
	ok(h.apply(30, price("o1", "shop", "1.00")))
	if res := h.apply(30, price("o3", "pos", "2.00")); res.Conflict == nil {
		t.Fatalf("no price conflict: %+v", res)
	}
	ok(h.apply(30, &gridpb.Command{Kind: &gridpb.Command_QueueFetches{QueueFetches: &gridpb.QueueFetchesCommand{Fetches: []*gridpb.ChannelFetchRecord{
		{Channel: "douyin", Connection: "c", OrderId: "1"}, {Channel: "douyin", Connection: "c", OrderId: "2"}}}}}))
	ok(h.apply(31, &gridpb.Command{Kind: &gridpb.Command_FetchOutcome{FetchOutcome: &gridpb.FetchOutcomeCommand{Channel: "douyin", Connection: "c", OrderId: "1", Done: true}}}))
	ok(h.apply(31, &gridpb.Command{Kind: &gridpb.Command_SetCursor{SetCursor: &gridpb.SetCursorCommand{Cursor: &gridpb.ConnectorCursorRecord{Channel: "douyin", Connection: "c", CursorUnixNano: 25}}}}))
	ok(h.apply(40, &gridpb.Command{Kind: &gridpb.Command_PutWebhook{PutWebhook: &gridpb.PutWebhookCommand{Webhook: &gridpb.WebhookRecord{Id: "wh1", Url: "http://127.0.0.1:9/"}}}}))
	ok(h.apply(40, &gridpb.Command{Kind: &gridpb.Command_AdvanceWebhook{AdvanceWebhook: &gridpb.AdvanceWebhookCommand{Id: "wh1", From: 0, To: 5,
		DeadLetter: &gridpb.WebhookDeadLetterRecord{Attempts: 8, LastError: "500"}}}}))
	ok(h.apply(40, &gridpb.Command{Kind: &gridpb.Command_SetStock{SetStock: &gridpb.SetStockCommand{Sku: "A", Warehouse: "W1", OnHand: 50, RequestId: []byte("r1")}}}))
	ok(h.apply(40, &gridpb.Command{Kind: &gridpb.Command_PutWarehouse{PutWarehouse: &gridpb.PutWarehouseCommand{
		Document: []byte(`{"id":"w1","rates":[{"region":"*","cost":"1.00","transit_days":1}]}`)}}}))

	ok(h.apply(41, &gridpb.Command{Kind: &gridpb.Command_PutLimit{PutLimit: &gridpb.PutLimitCommand{
		Document: []byte(`{"id":"two-each","skus":["A"],"per":"customer","max_qty":2}`)}}}))
	ok(h.apply(41, &gridpb.Command{Kind: &gridpb.Command_SetSkuLimit{SetSkuLimit: &gridpb.SetSkuLimitCommand{Sku: "A",
		Rule: &gridpb.SkuLimitRule{Rule: "two-each", Version: 1, Per: "customer", MaxQty: 2}}}}))
	ok(h.apply(41, &gridpb.Command{Kind: &gridpb.Command_ReserveBatch{ReserveBatch: &gridpb.ReserveBatchCommand{Sku: "A",
		Items: []*gridpb.ReserveItem{{OrderId: "o9", Qty: 1, ExpiresUnixNano: 500, Buyer: &gridpb.LimitBuyer{Customer: "cu"}}}}}}))

	live := map[byte]bool{}
	for _, s := range keySpaces {
		live[s.Byte] = !s.Retired
	}
	seen := map[byte]bool{}
	it, err := h.db.NewIter(&pebble.IterOptions{LowerBound: h.prefix, UpperBound: prefixEnd(h.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(h.prefix):]
		if len(k) < 2 || k[1] != '/' || !live[k[0]] {
			t.Errorf("key %q is not in a live registered space", k)
			continue
		}
		seen[k[0]] = true
	}
	for _, s := range keySpaces {
		if !s.Retired && !seen[s.Byte] {
			t.Errorf("live space %q (%s) holds no key", s.Byte, s.Name)
		}
	}
}
