package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// smallModel trains a quick model for tests that need one of real shape.
func smallModel(t testing.TB) *Model {
	t.Helper()
	m, err := Train(Synthetic(7, 3000), TrainOptions{Trees: 5, MinLeaf: 10})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFeatureNamesAndVector(t *testing.T) {
	names := FeatureNames()
	if len(names) != ColumnCount || ColumnCount != 24 {
		t.Fatalf("%d names, ColumnCount %d", len(names), ColumnCount)
	}
	if names[0] != "customer_age_hours" || names[10] != "first_order" || names[11] != "channel=douyin" || names[22] != "channel=api" || names[23] != "channel=other" {
		t.Fatalf("names = %v", names)
	}
	f := Features{CustomerAgeHours: 5, CustomerOrders1h: 2, CustomerOrders24h: 3, DeviceCustomers: 4, AddressCustomers: 6,
		Amount: 99.5, AmountRatio: 1.5, Channel: "jd", RegionMismatch: true, HourOfDay: 23, SKUPressure: 0.25, FirstOrder: false}
	want := []float64{5, 2, 3, 4, 6, 99.5, 1.5, 1, 23, 0.25, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	buf := make([]float64, 3, ColumnCount)
	got := f.Vector(buf)
	if !slices.Equal(got, want) {
		t.Fatalf("Vector = %v\nwant     %v", got, want)
	}
	if allocs := testing.AllocsPerRun(100, func() { got = f.Vector(got) }); allocs != 0 {
		t.Fatalf("Vector with capacity allocates %v times", allocs)
	}
	f.Channel = "lazada"
	if v := f.Vector(nil); v[23] != 1 || v[15] != 0 || ChannelColumn("lazada") != ChannelOther || ChannelColumn("api") != "api" {
		t.Fatalf("an unknown channel: %v", v)
	}
}

func TestValidate(t *testing.T) {
	good := Features{Amount: 10, AmountRatio: 1, HourOfDay: 0, Channel: "tmall"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Features)
	}{
		{"customer_age_hours", func(f *Features) { f.CustomerAgeHours = math.NaN() }},
		{"customer_orders_1h", func(f *Features) { f.CustomerOrders1h = -1 }},
		{"customer_orders_24h", func(f *Features) { f.CustomerOrders24h = math.Inf(1) }},
		{"device_customers", func(f *Features) { f.DeviceCustomers = -0.5 }},
		{"address_customers", func(f *Features) { f.AddressCustomers = math.Inf(-1) }},
		{"amount", func(f *Features) { f.Amount = -3 }},
		{"amount_ratio", func(f *Features) { f.AmountRatio = math.NaN() }},
		{"sku_pressure", func(f *Features) { f.SKUPressure = -0.1 }},
		{"hour_of_day", func(f *Features) { f.HourOfDay = 24 }},
		{"hour_of_day", func(f *Features) { f.HourOfDay = -1 }},
		{"channel", func(f *Features) { f.Channel = strings.Repeat("x", ChannelBytesMax+1) }},
	} {
		f := good
		c.edit(&f)
		var fe *FieldError
		if err := f.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: Validate() = %v", c.field, err)
		}
	}
}

// handModel is one tree: orders_1h < 5 ? -1 : (channel=api < 1 ? 0.5 : 2),
// with internal values the cover-weighted means (covers 30/10, 8/2).
func handModel(t *testing.T) *Model {
	t.Helper()
	tree := Tree{Nodes: []Node{
		{Feature: colCustomerOrders1h, Threshold: 5, Left: 1, Right: 2, Value: (30*-1.0 + 10*0.8) / 40},
		{Feature: -1, Left: -1, Right: -1, Value: -1},
		{Feature: colChannel0 + 11, Threshold: 1, Left: 3, Right: 4, Value: 0.8},
		{Feature: -1, Left: -1, Right: -1, Value: 0.5},
		{Feature: -1, Left: -1, Right: -1, Value: 2},
	}}
	m, err := newModel(-2, []Tree{tree}, TrainingInfo{Examples: 40, Positives: 10})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExplainHandTree(t *testing.T) {
	m := handModel(t)
	f := Features{CustomerOrders1h: 12, Channel: "api", HourOfDay: 3}
	ex := m.Explain(&f)
	root := (30*-1.0 + 10*0.8) / 40
	if ex.Base != -2+root || ex.Logit != -2+2.0 || ex.Score != 1/(1+math.Exp(0)) {
		t.Fatalf("explanation %+v", ex)
	}
	if got := m.Score(&f); got != 0.5 {
		t.Fatalf("Score = %v", got)
	}
	want := []Contribution{
		{Feature: "customer_orders_1h", Value: 12, Contribution: 0.8 - root}, // 1.35
		{Feature: "channel", Category: "api", Contribution: 2 - 0.8},
	}
	if !slices.Equal(ex.Contributions[:2], want) {
		t.Fatalf("contributions %+v\nwant %+v", ex.Contributions[:2], want)
	}
	if len(ex.Contributions) != featureCount {
		t.Fatalf("%d contributions", len(ex.Contributions))
	}
	for _, c := range ex.Contributions[2:] {
		if c.Contribution != 0 {
			t.Fatalf("a feature off the path contributes: %+v", c)
		}
	}
	if hour := ex.Contributions[slices.IndexFunc(ex.Contributions, func(c Contribution) bool { return c.Feature == "hour_of_day" })]; hour.Value != 3 {
		t.Fatalf("hour_of_day value %v", hour.Value)
	}
	f.CustomerOrders1h = 1
	if ex := m.Explain(&f); ex.Logit != -3 || ex.Contributions[0].Feature != "customer_orders_1h" || ex.Contributions[0].Contribution != -1-root {
		t.Fatalf("left path: %+v", ex)
	}
}

// Base plus the contributions is the logit, for every synthetic order.
func TestContributionsSumToLogit(t *testing.T) {
	for _, m := range []*Model{Default(), smallModel(t)} {
		for i, e := range Synthetic(11, 2000) {
			ex := m.Explain(&e.Features)
			sum := ex.Base
			for _, c := range ex.Contributions {
				sum += c.Contribution
			}
			logit := m.Logit(&e.Features)
			if math.Abs(sum-logit) > 1e-9 || ex.Logit != logit || math.Abs(ex.Score-m.Score(&e.Features)) > 1e-15 {
				t.Fatalf("example %d: base+contributions %v, logit %v, explained logit %v", i, sum, logit, ex.Logit)
			}
			for k := 1; k < len(ex.Contributions); k++ {
				if math.Abs(ex.Contributions[k].Contribution) > math.Abs(ex.Contributions[k-1].Contribution) {
					t.Fatalf("example %d: contributions not by |contribution|: %+v", i, ex.Contributions)
				}
			}
		}
	}
}

func TestScoreAllocs(t *testing.T) {
	m := Default()
	f := Synthetic(3, 1)[0].Features
	if a := testing.AllocsPerRun(200, func() { m.Score(&f) }); a != 0 {
		t.Fatalf("Score allocates %v times", a)
	}
	if a := testing.AllocsPerRun(200, func() { m.Explain(&f) }); a != 1 {
		t.Fatalf("Explain allocates %v times, want 1", a)
	}
}

func TestExplainTo(t *testing.T) {
	m := Default()
	var buf [ExplainedFeatureCount]Contribution
	for _, e := range Synthetic(5, 50) {
		want := m.Explain(&e.Features)
		got := m.ExplainTo(&e.Features, buf[:0])
		if !reflect.DeepEqual(got, want) || &got.Contributions[0] != &buf[0] || len(got.Contributions) != ExplainedFeatureCount {
			t.Fatalf("ExplainTo = %+v, want %+v in the caller's array", got, want)
		}
	}
	f := Synthetic(3, 1)[0].Features
	if a := testing.AllocsPerRun(200, func() { m.ExplainTo(&f, buf[:0]) }); a != 0 {
		t.Fatalf("ExplainTo allocates %v times, want 0", a)
	}
	// Too small a dst: a new slice.
	small := make([]Contribution, 0, 2)
	if got := m.ExplainTo(&f, small); len(got.Contributions) != ExplainedFeatureCount || !reflect.DeepEqual(got, m.Explain(&f)) {
		t.Fatalf("ExplainTo with a small dst = %+v", got)
	}
}

func TestTrainDeterministic(t *testing.T) {
	ex := Synthetic(5, 4000)
	opts := TrainOptions{Trees: 20, Seed: 9}
	a, err := Train(ex, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(ex, opts)
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := a.Bytes()
	bb, _ := b.Bytes()
	if !bytes.Equal(ab, bb) {
		t.Fatal("training twice gives different files")
	}
	opts.Seed = 10
	c, err := Train(ex, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() == a.Version() {
		t.Fatal("another seed gives the same trees")
	}
	if a.Trained() != (TrainingInfo{Examples: 4000, Positives: countPositives(ex), Seed: 9}) {
		t.Fatalf("trained = %+v", a.Trained())
	}
}

func countPositives(ex []Example) int {
	n := 0
	for _, e := range ex {
		if e.Label {
			n++
		}
	}
	return n
}

func TestHeldOutAUC(t *testing.T) {
	train, test := Split(Synthetic(21, 30_000), 0.25, 4)
	m, err := Train(train, TrainOptions{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, test, 0.5)
	if ev.ROCAUC < 0.85 || ev.ROCAUC > 0.99 {
		t.Fatalf("held-out ROC AUC %.4f, want 0.85..0.99", ev.ROCAUC)
	}
	if ev.Examples != 7500 || ev.TruePositives+ev.FalseNegatives != ev.Positives {
		t.Fatalf("evaluation %+v", ev)
	}
	n := 0
	for _, c := range ev.Calibration {
		n += c.Count
	}
	if n != 7500 {
		t.Fatalf("calibration counts sum to %d", n)
	}
}

func TestSyntheticShape(t *testing.T) {
	ex := Synthetic(1, 20_000)
	if rate := float64(countPositives(ex)) / float64(len(ex)); rate < 0.03 || rate > 0.06 {
		t.Fatalf("positive rate %.4f", rate)
	}
	for i := range ex {
		if err := ex[i].Validate(); err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
	}
	if again := Synthetic(1, 20_000); !slices.Equal(again, ex) {
		t.Fatal("Synthetic is not deterministic")
	}
	if other := Synthetic(2, 100); slices.Equal(other, ex[:100]) {
		t.Fatal("another seed gives the same examples")
	}
	if len(Synthetic(1, -5)) != 0 {
		t.Fatal("negative n")
	}
}

func TestTrainRefuses(t *testing.T) {
	ex := Synthetic(1, 500)
	for _, c := range []struct {
		field string
		ex    []Example
		opts  TrainOptions
	}{
		{"trees", ex, TrainOptions{Trees: TreesMax + 1}},
		{"depth", ex, TrainOptions{Depth: DepthMax + 1}},
		{"learning_rate", ex, TrainOptions{LearningRate: -0.1}},
		{"learning_rate", ex, TrainOptions{LearningRate: math.NaN()}},
		{"min_leaf", ex, TrainOptions{MinLeaf: -1}},
		{"bins", ex, TrainOptions{Bins: 1}},
		{"examples", nil, TrainOptions{}},
		{"examples", []Example{{Label: true}, {Label: true}}, TrainOptions{}},
		{"examples[1].features.hour_of_day", []Example{{Label: true}, {Features: Features{HourOfDay: 30}}}, TrainOptions{}},
		{"examples[0].weight", []Example{{Label: true, Weight: -1}, {}}, TrainOptions{}},
	} {
		var fe *FieldError
		if _, err := Train(c.ex, c.opts); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: Train = %v", c.field, err)
		}
	}
}

func TestTrainWeightsAndProgress(t *testing.T) {
	ex := Synthetic(3, 3000)
	calls := 0
	var last float64
	m, err := Train(ex, TrainOptions{Trees: 10, Progress: func(n int, loss float64) { calls++; last = loss }})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 10 || !(last > 0 && last < 0.3) || len(m.Trees()) != 10 {
		t.Fatalf("%d progress calls, last loss %v, %d trees", calls, last, len(m.Trees()))
	}
	// A heavily weighted positive pulls its own score up.
	f := Features{CustomerAgeHours: 5000, Amount: 50, AmountRatio: 1, Channel: "tmall", HourOfDay: 14}
	heavy := append(slices.Clone(ex), slices.Repeat([]Example{{Features: f, Label: true, Weight: WeightMax}}, 30)...)
	w, err := Train(heavy, TrainOptions{Trees: 10})
	if err != nil {
		t.Fatal(err)
	}
	if w.Score(&f) <= m.Score(&f)+0.3 {
		t.Fatalf("weighted positives: %v, without %v", w.Score(&f), m.Score(&f))
	}
}

func TestEvaluateByHand(t *testing.T) {
	m := handModel(t)
	// Scores: orders_1h < 5 → σ(-3); else api → σ(0)=0.5; else σ(-1.5).
	ex := []Example{
		{Features: Features{CustomerOrders1h: 9, Channel: "api"}, Label: true},  // 0.5
		{Features: Features{CustomerOrders1h: 9, Channel: "api"}, Label: false}, // 0.5 (tie with a positive)
		{Features: Features{CustomerOrders1h: 9, Channel: "jd"}, Label: true},   // σ(-1.5)
		{Features: Features{CustomerOrders1h: 0, Channel: "jd"}, Label: false},  // σ(-3)
	}
	ev := Evaluate(m, ex, 0.5)
	if ev.TruePositives != 1 || ev.FalsePositives != 1 || ev.FalseNegatives != 1 || ev.Precision != 0.5 || ev.Recall != 0.5 || ev.F1 != 0.5 {
		t.Fatalf("counts %+v", ev)
	}
	// Pairs (pos, neg): (0.5, 0.5) tie ½, (0.5, σ-3) 1, (σ-1.5, 0.5) 0, (σ-1.5, σ-3) 1 → 2.5/4.
	if ev.ROCAUC != 0.625 {
		t.Fatalf("ROC AUC %v", ev.ROCAUC)
	}
	s15, s3 := sigmoid(-1.5), sigmoid(-3)
	wantLoss := -(math.Log(0.5) + math.Log(0.5) + math.Log(s15) + math.Log(1-s3)) / 4
	if math.Abs(ev.LogLoss-wantLoss) > 1e-12 {
		t.Fatalf("log loss %v, want %v", ev.LogLoss, wantLoss)
	}
	c := ev.Calibration
	if c[0].Count != 1 || c[1].Count != 1 || c[5].Count != 2 || c[5].ObservedRate != 0.5 || c[5].PredictedMean != 0.5 || c[1].PredictedMean != s15 || c[1].ObservedRate != 1 {
		t.Fatalf("calibration %+v", c)
	}
	if one := Evaluate(m, ex[:1], 0.5); one.ROCAUC != 0 || one.Precision != 1 {
		t.Fatalf("one class: %+v", one)
	}
}

func TestSplit(t *testing.T) {
	ex := Synthetic(1, 1000)
	train, test := Split(ex, 0.2, 3)
	if len(train) != 800 || len(test) != 200 {
		t.Fatalf("%d + %d", len(train), len(test))
	}
	train2, test2 := Split(ex, 0.2, 3)
	if !slices.Equal(train, train2) || !slices.Equal(test, test2) {
		t.Fatal("Split is not deterministic")
	}
	if _, test3 := Split(ex, 0.2, 4); slices.Equal(test, test3) {
		t.Fatal("another seed gives the same split")
	}
	if a, b := Split(ex, -1, 1); len(a) != 1000 || len(b) != 0 {
		t.Fatal("negative fraction")
	}
	if a, b := Split(ex, 2, 1); len(a) != 0 || len(b) != 1000 {
		t.Fatal("fraction above 1")
	}
}

func TestModelFileRoundTrip(t *testing.T) {
	m := smallModel(t).WithEvaluation(Evaluate(smallModel(t), Synthetic(8, 500), 0.5))
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := p.Bytes()
	if !bytes.Equal(b, b2) || p.Version() != m.Version() {
		t.Fatal("parse then encode changes the file")
	}
	if _, ok := p.Evaluation(); !ok {
		t.Fatal("evaluation lost")
	}
	var viaJSON Model
	if err := json.Unmarshal(b, &viaJSON); err != nil || viaJSON.Version() != m.Version() {
		t.Fatalf("json.Unmarshal: %v", err)
	}
	for _, e := range Synthetic(9, 200) {
		if p.Score(&e.Features) != m.Score(&e.Features) {
			t.Fatal("a parsed model scores differently")
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, err := smallModel(t).WithEvaluation(Evaluation{Calibration: make([]CalibrationBin, CalibrationBins)}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	decode := func() modelFile {
		var f modelFile
		if err := json.Unmarshal(good, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	leaf := Node{Feature: -1, Left: -1, Right: -1}
	cases := []struct {
		name  string
		edit  func(f *modelFile)
		raw   string // used instead of edit when set
		field string // "" for a malformed document (no FieldError)
	}{
		{name: "format", edit: func(f *modelFile) { f.Format = "ordergrid-risk-gbt/2" }, field: "format"},
		{name: "renamed feature", edit: func(f *modelFile) { f.Features[3] = "device_count" }, field: "features"},
		{name: "fewer features", edit: func(f *modelFile) { f.Features = f.Features[:20] }, field: "features"},
		{name: "huge base", edit: func(f *modelFile) { f.BaseScore = 1e300 }, field: "base_score"},
		{name: "no trees", edit: func(f *modelFile) { f.Trees = nil }, field: "trees"},
		{name: "too many trees", edit: func(f *modelFile) {
			f.Trees = slices.Repeat(f.Trees[:1], TreesMax+1)
		}, field: "trees"},
		{name: "empty tree", edit: func(f *modelFile) { f.Trees[1].Nodes = nil }, field: "trees[1].nodes"},
		{name: "too many nodes", edit: func(f *modelFile) { f.Trees[0].Nodes = slices.Repeat([]Node{leaf}, NodesMax+1) }, field: "trees[0].nodes"},
		{name: "feature index", edit: func(f *modelFile) { f.Trees[0].Nodes[0].Feature = ColumnCount }, field: "trees[0].nodes[0].feature"},
		{name: "half a leaf", edit: func(f *modelFile) { f.Trees[0].Nodes[0].Feature = -1 }, field: "trees[0].nodes[0].feature"},
		{name: "cycle", edit: func(f *modelFile) { f.Trees[0].Nodes[0].Left = 0 }, field: "trees[0].nodes[0].left"},
		{name: "child out of range", edit: func(f *modelFile) { f.Trees[0].Nodes[0].Right = 99 }, field: "trees[0].nodes[0].right"},
		{name: "two parents", edit: func(f *modelFile) {
			f.Trees[2].Nodes[0].Right = f.Trees[2].Nodes[0].Left
		}, field: "trees[2].nodes[0].right"},
		{name: "orphan", edit: func(f *modelFile) { f.Trees[0].Nodes = append(f.Trees[0].Nodes, leaf) }, field: fmt.Sprintf("trees[0].nodes[%d]", len(decode().Trees[0].Nodes))},
		{name: "huge leaf", edit: func(f *modelFile) {
			n := f.Trees[0].Nodes
			n[len(n)-1].Value = -1e13
		}, field: fmt.Sprintf("trees[0].nodes[%d].value", len(decode().Trees[0].Nodes)-1)},
		{name: "too deep", edit: func(f *modelFile) {
			// Internal nodes at even indexes 0..2·DepthMax, each with a leaf
			// on the left and the next internal node on the right.
			var chain []Node
			for i := 0; i <= 2*DepthMax; i += 2 {
				chain = append(chain, Node{Feature: 0, Threshold: 1, Left: i + 1, Right: i + 2}, leaf)
			}
			chain = append(chain, leaf)
			f.Trees[0].Nodes = chain
		}, field: fmt.Sprintf("trees[0].nodes[%d]", 2*DepthMax)},
		{name: "version edited", edit: func(f *modelFile) { f.Version = "0000000000000000" }, field: "version"},
		{name: "version shape", edit: func(f *modelFile) { f.Version = "abc" }, field: "version"},
		{name: "tree edited", edit: func(f *modelFile) { f.Trees[0].Nodes[0].Threshold += 1 }, field: "version"},
		{name: "positives", edit: func(f *modelFile) { f.Trained.Positives = f.Trained.Examples + 1 }, field: "trained.positives"},
		{name: "examples", edit: func(f *modelFile) { f.Trained.Examples = -1 }, field: "trained.examples"},
		{name: "at", edit: func(f *modelFile) { f.Trained.At = "yesterday" }, field: "trained.at"},
		{name: "auc", edit: func(f *modelFile) { f.Evaluation.ROCAUC = 2 }, field: "evaluation.roc_auc"},
		{name: "calibration", edit: func(f *modelFile) { f.Evaluation.Calibration[3].ObservedRate = 1.5 }, field: "evaluation.calibration[3].observed_rate"},
		{name: "calibration bins", edit: func(f *modelFile) { f.Evaluation.Calibration = make([]CalibrationBin, 11) }, field: "evaluation.calibration"},
		{name: "wrong type", raw: `{"format":"ordergrid-risk-gbt/1","trees":"many"}`, field: "trees"},
		{name: "float overflow", raw: `{"base_score":1e999}`, field: "base_score"},
		{name: "unknown field", raw: `{"format":"ordergrid-risk-gbt/1","extra":1}`},
		{name: "not JSON", raw: `{"format":`},
		{name: "two documents", raw: string(good) + "{}"},
		{name: "empty", raw: " "},
	}
	for _, c := range cases {
		data := []byte(c.raw)
		if c.raw == "" {
			f := decode()
			c.edit(&f)
			var err error
			if data, err = json.Marshal(f); err != nil {
				t.Fatal(err)
			}
		}
		m, err := Parse(data)
		if err == nil || m != nil {
			t.Errorf("%s: Parse accepted it", c.name)
			continue
		}
		var fe *FieldError
		isField := errors.As(err, &fe)
		switch {
		case c.field == "" && isField:
			t.Errorf("%s: a field error %v for a malformed document", c.name, err)
		case c.field != "" && (!isField || fe.Field != c.field):
			t.Errorf("%s: Parse = %v; want field %s", c.name, err, c.field)
		}
	}
}

func TestReadExamples(t *testing.T) {
	ex := Synthetic(4, 50)
	ex[3].Weight = 2.5
	var buf bytes.Buffer
	if err := WriteExamples(&buf, ex); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 50 {
		t.Fatalf("%d lines", n)
	}
	got, err := ReadExamples(strings.NewReader("\n"+buf.String()+"\n  \n"), 0)
	if err != nil || !slices.Equal(got, ex) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ReadExamples(bytes.NewReader(buf.Bytes()), 49); err == nil || !strings.Contains(err.Error(), "line 50: more than 49") {
		t.Fatalf("over max: %v", err)
	}
	line := `{"features":{"amount":1,"amount_ratio":1,"hour_of_day":3},"label":false}`
	for _, c := range []struct {
		input, prefix, field string
	}{
		{line + "\n" + `{"features":{"hour_of_day":24},"label":true}`, "line 2: ", "features.hour_of_day"},
		{line + "\n\n" + `{"features":{"amount":-1},"label":true}`, "line 3: ", "features.amount"},
		{`{"features":{"hour_of_day":"3"}}`, "line 1: ", "features.hour_of_day"},
		{`{"features":{},"label":"yes"}`, "line 1: ", "label"},
		{`{"features":{},"weight":-2}`, "line 1: ", "weight"},
		{`{"features":{"customer_orders_1h":1e999}}`, "line 1: ", "features.customer_orders_1h"},
		{`{"features":{},"colour":1}`, "line 1: ", ""},
		{`{"features":{}} {"features":{}}`, "line 1: ", ""},
		{`[1,2]`, "line 1: ", ""},
		{line + "\n" + strings.Repeat("x", LineBytesMax+1), "line 2: ", ""},
	} {
		_, err := ReadExamples(strings.NewReader(c.input), 0)
		var fe *FieldError
		switch {
		case err == nil || !strings.HasPrefix(err.Error(), c.prefix):
			t.Errorf("%.40q: %v; want prefix %q", c.input, err, c.prefix)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("%.40q: %v; want field %s", c.input, err, c.field)
		}
	}
}

func TestReadOverrides(t *testing.T) {
	in := `{"order_id":"o_1","decision":"cancel","score":0.93,"model":"a6bf59a6b19bbf38","features":{"customer_orders_1h":12,"amount":10,"amount_ratio":1,"hour_of_day":2}}
{"order_id":"o_2","decision":"release","score":0.71,"model":"a6bf59a6b19bbf38","features":{"amount":10,"amount_ratio":1,"hour_of_day":2}}
{"order_id":"o_1","decision":"release","score":0.93,"model":"a6bf59a6b19bbf38","features":{"customer_orders_1h":12,"amount":10,"amount_ratio":1,"hour_of_day":2}}
`
	got, err := ReadOverrides(strings.NewReader(in), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Label || got[0].Weight != OverrideWeight || got[0].Features.CustomerOrders1h != 12 || got[1].Label {
		t.Fatalf("overrides %+v", got)
	}
	got, err = ReadOverrides(strings.NewReader(in[:strings.Index(in, "\n")]), 10)
	if err != nil || len(got) != 1 || !got[0].Label {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	for _, c := range []struct{ input, field string }{
		{`{"order_id":"o_1","decision":"ship","features":{}}`, "decision"},
		{`{"order_id":"","decision":"cancel","features":{}}`, "order_id"},
		{`{"order_id":"o","decision":"cancel","score":1.5,"features":{}}`, "score"},
		{`{"order_id":"o","decision":"cancel","features":{"hour_of_day":99}}`, "features.hour_of_day"},
	} {
		var fe *FieldError
		if _, err := ReadOverrides(strings.NewReader(c.input), 0); !errors.As(err, &fe) || fe.Field != c.field || !strings.HasPrefix(err.Error(), "line 1: ") {
			t.Errorf("%s: %v", c.field, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	good, err := Default().Bytes()
	if err != nil {
		f.Fatal(err)
	}
	small, err := handModelForFuzz().Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(small)
	f.Add([]byte(`{"format":"ordergrid-risk-gbt/1","trees":[{"nodes":[{"feature":0,"left":0,"right":0}]}]}`))
	f.Add([]byte(`{"trees":[{"nodes":[{"feature":-1,"left":-1,"right":-1,"value":1e999}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("a model with an error")
			}
			return
		}
		// A model that parses scores every input, and re-encodes to a
		// file that parses to the same version.
		for _, e := range Synthetic(1, 20) {
			if s := m.Score(&e.Features); !(s >= 0 && s <= 1) {
				t.Fatalf("score %v", s)
			}
			m.Explain(&e.Features)
		}
		b, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil || again.Version() != m.Version() {
			t.Fatalf("re-encoded model: %v", err)
		}
	})
}

// handModelForFuzz is handModel without a *testing.T.
func handModelForFuzz() *Model {
	m, err := newModel(0, []Tree{{Nodes: []Node{{Feature: 1, Threshold: 5, Left: 1, Right: 2}, {Feature: -1, Left: -1, Right: -1, Value: -1}, {Feature: -1, Left: -1, Right: -1, Value: 1}}}}, TrainingInfo{})
	if err != nil {
		panic(err)
	}
	return m
}

func FuzzReadExamples(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteExamples(&buf, Synthetic(1, 3)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"features":{"hour_of_day":24},"label":true}`))
	f.Add([]byte("{\"features\":{}}\n\n{\"weight\":-1}"))
	f.Add([]byte(`{"order_id":"o","decision":"cancel","features":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := ReadExamples(bytes.NewReader(data), 100)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("an error without its line: %v", err)
			}
			return
		}
		if len(ex) > 100 {
			t.Fatalf("%d examples over the max", len(ex))
		}
		for i := range ex {
			if err := ex[i].Validate(); err != nil {
				t.Fatalf("accepted an invalid example: %v", err)
			}
		}
		_, _ = ReadOverrides(bytes.NewReader(data), 100)
	})
}

func BenchmarkScore(b *testing.B) {
	m := Default()
	ex := Synthetic(3, 1024)
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		sink += m.Score(&ex[i&1023].Features)
		i++
	}
	_ = sink
}

func BenchmarkExplain(b *testing.B) {
	m := Default()
	ex := Synthetic(3, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = m.Explain(&ex[i&1023].Features)
		i++
	}
}

func BenchmarkTrain100k(b *testing.B) {
	ex := Synthetic(3, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Train(ex, TrainOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFromColumnsInvertsVector(t *testing.T) {
	f := Features{CustomerAgeHours: 3.5, CustomerOrders1h: 2, CustomerOrders24h: 9, DeviceCustomers: 4, AddressCustomers: 1,
		Amount: 199.9, AmountRatio: 2.5, RegionMismatch: true, HourOfDay: 3, SKUPressure: 0.4, FirstOrder: true, Channel: "douyin"}
	v := f.Vector(nil)
	got, ok := FromColumns(v[:PlainColumnCount], "douyin")
	if !ok || got != f {
		t.Fatalf("FromColumns = %+v, %v; want %+v", got, ok, f)
	}
	if _, ok := FromColumns(v, "douyin"); ok {
		t.Fatal("FromColumns took every column as the plain ones")
	}
}
