package risk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"
)

// FormatName is the "format" of a model file.
const FormatName = "ordergrid-risk-gbt/1"

// Limits of a model (and of training).
const (
	// TreesMax bounds the trees of a model.
	TreesMax = 500
	// DepthMax bounds the depth of a tree (a root alone has depth 0).
	DepthMax = 6
	// NodesMax bounds the nodes of a tree: a full tree of DepthMax.
	NodesMax = 1<<(DepthMax+1) - 1
	// ModelBytesMax bounds a model file.
	ModelBytesMax = 32 << 20
	// valueMax bounds every number of a model's trees (thresholds, leaf
	// values, base score): a sum over TreesMax of them stays finite.
	valueMax = 1e12
	// versionHexLen is the length of a model's version: hex of a SHA-256 prefix.
	versionHexLen = 16
)

// Node is one node of a tree in the model file. A leaf has Feature, Left
// and Right -1. An internal node sends an input x left when
// x[Feature] < Threshold and right otherwise; its children come after it
// in the tree's node list. Value is a leaf's output (log-odds); on an
// internal node it is the cover-weighted (hessian-weighted) mean of the
// leaf values below it, used for path contributions.
type Node struct {
	Feature   int     `json:"feature"`
	Threshold float64 `json:"threshold"`
	Left      int     `json:"left"`
	Right     int     `json:"right"`
	Value     float64 `json:"value"`
}

// Tree is one regression tree: its nodes, the root first.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// TrainingInfo records what a model was trained on.
type TrainingInfo struct {
	Examples  int   `json:"examples"`
	Positives int   `json:"positives"`
	Seed      int64 `json:"seed"`
	// At is when, RFC 3339; empty when the trainer was given no time (so
	// the file depends on the data and options alone).
	At string `json:"at,omitempty"`
}

// modelFile is the JSON document of a model.
type modelFile struct {
	Format     string       `json:"format"`
	Version    string       `json:"version"`
	Features   []string     `json:"features"`
	BaseScore  float64      `json:"base_score"`
	Trees      []Tree       `json:"trees"`
	Trained    TrainingInfo `json:"trained"`
	Evaluation *Evaluation  `json:"evaluation,omitempty"`
}

// flatNode is a node of Model's scoring form: children are indexes into
// Model.nodes (-1 for a leaf).
type flatNode struct {
	feature     int32
	left, right int32
	threshold   float64
	value       float64
}

// Model is a validated gradient-boosted tree ensemble. It is immutable and
// safe for concurrent use. Make one with Train, Parse, Load or Default.
type Model struct {
	file  modelFile
	nodes []flatNode // every tree's nodes, tree after tree
	roots []int32    // index in nodes of each tree's root
	// base is the logit of an input that follows no split: BaseScore plus
	// every root's value (the Base of an Explanation).
	base float64
}

// Version is the model's version: the first 16 hex digits of the SHA-256 of
// its canonical trees (feature names, base score, trees as compact JSON).
func (m *Model) Version() string { return m.file.Version }

// Trained returns what the model was trained on.
func (m *Model) Trained() TrainingInfo { return m.file.Trained }

// Trees returns a copy of the model's trees.
func (m *Model) Trees() []Tree {
	out := make([]Tree, len(m.file.Trees))
	for i, t := range m.file.Trees {
		out[i] = Tree{Nodes: slices.Clone(t.Nodes)}
	}
	return out
}

// BaseScore is the model's starting logit, before any tree.
func (m *Model) BaseScore() float64 { return m.file.BaseScore }

// Evaluation returns the evaluation embedded in the model file, if any.
func (m *Model) Evaluation() (Evaluation, bool) {
	if m.file.Evaluation == nil {
		return Evaluation{}, false
	}
	return *m.file.Evaluation, true
}

// WithEvaluation returns a copy of m with e embedded in its file. The
// version does not change: it covers the trees alone.
func (m *Model) WithEvaluation(e Evaluation) *Model {
	c := *m
	e.Calibration = slices.Clone(e.Calibration)
	c.file.Evaluation = &e
	return &c
}

// canonicalVersion computes the version of a model's trees.
func canonicalVersion(features []string, base float64, trees []Tree) (string, error) {
	canon, err := json.Marshal(struct {
		Features  []string `json:"features"`
		BaseScore float64  `json:"base_score"`
		Trees     []Tree   `json:"trees"`
	}{features, base, trees})
	if err != nil {
		return "", fmt.Errorf("risk: canonical trees: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])[:versionHexLen], nil
}

// MarshalJSON encodes the model file as compact JSON.
func (m *Model) MarshalJSON() ([]byte, error) { return json.Marshal(m.file) }

// UnmarshalJSON parses and validates a model file like Parse.
func (m *Model) UnmarshalJSON(data []byte) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	*m = *p
	return nil
}

// Bytes returns the model file: indented JSON ending in a newline. The same
// model always gives the same bytes.
func (m *Model) Bytes() ([]byte, error) {
	b, err := json.MarshalIndent(m.file, "", " ")
	if err != nil {
		return nil, fmt.Errorf("risk: encoding the model: %w", err)
	}
	return append(b, '\n'), nil
}

// Save writes the model file to path.
func (m *Model) Save(path string) error {
	b, err := m.Bytes()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("risk: saving the model: %w", err)
	}
	return nil
}

// Load reads and validates the model file at path.
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("risk: loading the model: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, ModelBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("risk: loading the model %s: %w", path, err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("risk: model %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes and validates a model file: its format, feature names
// (those of FeatureNames: a model for another feature set is refused),
// sizes, node indexes (each node but the root the child of exactly one
// earlier node, so no cycles), depth, finite numbers, version and embedded
// evaluation. A bad value gives a *FieldError naming it; malformed JSON a
// wrapped decoding error. It never panics.
func Parse(data []byte) (*Model, error) {
	if len(data) > ModelBytesMax {
		return nil, fmt.Errorf("model file larger than %d bytes", ModelBytesMax)
	}
	var f modelFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("model file: data after the JSON document")
	}
	if err := validateFile(&f); err != nil {
		return nil, err
	}
	return build(f)
}

// jsonError turns a decoding error into a *FieldError when it names a
// field, and wraps it otherwise.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &FieldError{Field: te.Field, Detail: fmt.Sprintf("must be %s, not %s", te.Type, te.Value)}
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

func checkNumber(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > valueMax {
		return fieldErr(field, "must be a finite number of magnitude at most %g, got %v", valueMax, v)
	}
	return nil
}

func validateFile(f *modelFile) error {
	if f.Format != FormatName {
		return fieldErr("format", "must be %q, got %q", FormatName, f.Format)
	}
	if !slices.Equal(f.Features, FeatureNames()) {
		return fieldErr("features", "the model is for other features (%d columns); this build scores %d: %v", len(f.Features), ColumnCount, FeatureNames())
	}
	if err := checkNumber("base_score", f.BaseScore); err != nil {
		return err
	}
	if len(f.Trees) == 0 || len(f.Trees) > TreesMax {
		return fieldErr("trees", "must hold 1..%d trees, got %d", TreesMax, len(f.Trees))
	}
	for i, t := range f.Trees {
		if err := validateTree(fmt.Sprintf("trees[%d]", i), t); err != nil {
			return err
		}
	}
	if err := validateTrained(f.Trained); err != nil {
		return err
	}
	if f.Evaluation != nil {
		if err := f.Evaluation.validate(); err != nil {
			return prefixed("evaluation", err)
		}
	}
	if len(f.Version) != versionHexLen {
		return fieldErr("version", "must be %d hex digits, got %q", versionHexLen, f.Version)
	}
	want, err := canonicalVersion(f.Features, f.BaseScore, f.Trees)
	if err != nil {
		return err
	}
	if f.Version != want {
		return fieldErr("version", "is %s but the trees hash to %s: the file was changed", f.Version, want)
	}
	return nil
}

func validateTree(name string, t Tree) error {
	n := len(t.Nodes)
	if n == 0 || n > NodesMax {
		return fieldErr(name+".nodes", "must hold 1..%d nodes, got %d", NodesMax, n)
	}
	var parent [NodesMax]int // parent[i]+1; 0: none seen yet
	var depth [NodesMax]int
	for i, nd := range t.Nodes {
		at := fmt.Sprintf("%s.nodes[%d]", name, i)
		if i > 0 && parent[i] == 0 {
			return fieldErr(at, "is no node's child")
		}
		if err := checkNumber(at+".value", nd.Value); err != nil {
			return err
		}
		if err := checkNumber(at+".threshold", nd.Threshold); err != nil {
			return err
		}
		if nd.Feature == -1 && nd.Left == -1 && nd.Right == -1 {
			continue // a leaf
		}
		if nd.Feature < 0 || nd.Feature >= ColumnCount {
			return fieldErr(at+".feature", "must be 0..%d (or -1 with left and right -1 for a leaf), got %d", ColumnCount-1, nd.Feature)
		}
		if depth[i] >= DepthMax {
			return fieldErr(at, "splits below depth %d", DepthMax)
		}
		for _, c := range [...]struct {
			field string
			child int
		}{{"left", nd.Left}, {"right", nd.Right}} {
			switch {
			case c.child <= i || c.child >= n:
				return fieldErr(at+"."+c.field, "must be a later node's index, %d..%d, got %d", i+1, n-1, c.child)
			case parent[c.child] != 0:
				return fieldErr(at+"."+c.field, "node %d already has a parent, node %d", c.child, parent[c.child]-1)
			}
			parent[c.child] = i + 1
			depth[c.child] = depth[i] + 1
		}
	}
	return nil
}

func validateTrained(t TrainingInfo) error {
	if t.Examples < 0 || t.Examples > ExamplesMax {
		return fieldErr("trained.examples", "must be 0..%d, got %d", ExamplesMax, t.Examples)
	}
	if t.Positives < 0 || t.Positives > t.Examples {
		return fieldErr("trained.positives", "must be 0..examples (%d), got %d", t.Examples, t.Positives)
	}
	if t.At != "" {
		if _, err := time.Parse(time.RFC3339, t.At); err != nil {
			return fieldErr("trained.at", "must be an RFC 3339 time: %v", err)
		}
	}
	return nil
}

// build makes the scoring form of a validated file.
func build(f modelFile) (*Model, error) {
	m := &Model{file: f, base: f.BaseScore}
	total := 0
	for _, t := range f.Trees {
		total += len(t.Nodes)
	}
	m.nodes = make([]flatNode, 0, total)
	m.roots = make([]int32, 0, len(f.Trees))
	for _, t := range f.Trees {
		off := int32(len(m.nodes))
		m.roots = append(m.roots, off)
		m.base += t.Nodes[0].Value
		for _, nd := range t.Nodes {
			fn := flatNode{feature: int32(nd.Feature), left: -1, right: -1, threshold: nd.Threshold, value: nd.Value}
			if nd.Left >= 0 {
				fn.left, fn.right = off+int32(nd.Left), off+int32(nd.Right)
			}
			m.nodes = append(m.nodes, fn)
		}
	}
	return m, nil
}

// newModel makes a model from freshly trained trees.
func newModel(base float64, trees []Tree, info TrainingInfo) (*Model, error) {
	f := modelFile{Format: FormatName, Features: FeatureNames(), BaseScore: base, Trees: trees, Trained: info}
	v, err := canonicalVersion(f.Features, base, trees)
	if err != nil {
		return nil, err
	}
	f.Version = v
	if err := validateFile(&f); err != nil {
		return nil, fmt.Errorf("risk: trained model is invalid: %w", err)
	}
	return build(f)
}

// sigmoid maps a logit to a probability.
func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// logitOf sums every tree's leaf for x.
func (m *Model) logitOf(x *[ColumnCount]float64) float64 {
	z := m.file.BaseScore
	nodes := m.nodes
	for _, r := range m.roots {
		i := r
		for nodes[i].left >= 0 {
			if x[nodes[i].feature] < nodes[i].threshold {
				i = nodes[i].left
			} else {
				i = nodes[i].right
			}
		}
		z += nodes[i].value
	}
	return z
}

// Logit returns the model's log-odds that the order with features f is
// fraud or abuse. It does not allocate.
func (m *Model) Logit(f *Features) float64 {
	var x [ColumnCount]float64
	f.fill(&x)
	return m.logitOf(&x)
}

// Score returns the model's probability (0..1) that the order with
// features f is fraud or abuse: it should not ship. It does not allocate;
// f should have passed Validate (a NaN goes right at every split).
func (m *Model) Score(f *Features) float64 { return sigmoid(m.Logit(f)) }

// Contribution is one feature's share of a score.
type Contribution struct {
	// Feature is the feature's JSON name ("channel" for all channel columns).
	Feature string `json:"feature"`
	// Value is the input; for a bool 0 or 1; for "channel" 0, with the
	// channel in Category.
	Value float64 `json:"value"`
	// Category is the channel column the order scored as, for "channel".
	Category string `json:"category,omitempty"`
	// Contribution is what the feature added to the logit (log-odds).
	Contribution float64 `json:"contribution"`
}

// Explanation is a score with each feature's contribution.
type Explanation struct {
	// Score is the probability, as Score returns it.
	Score float64 `json:"score"`
	// Logit is the score's log-odds: Base plus every Contribution.
	Logit float64 `json:"logit"`
	// Base is the log-odds of an input that decides nothing: the base
	// score plus each tree's root value (its mean output).
	Base float64 `json:"base"`
	// Contributions has one entry per feature (the channel columns as one
	// "channel"), by |Contribution| descending, then in FeatureNames order.
	Contributions []Contribution `json:"contributions"`
}

// ExplainedFeatureCount is the length of an Explanation's Contributions:
// one per plain feature and one "channel".
const ExplainedFeatureCount = featureCount

// Explain scores f and says why: each split on f's path through a tree
// credits its feature with the change from the node's value to the
// child's. Explain allocates only the Contributions slice.
func (m *Model) Explain(f *Features) Explanation { return m.ExplainTo(f, nil) }

// ExplainTo is Explain with the Contributions written to dst[:0] (a
// caller's array of ExplainedFeatureCount): it does not allocate when dst
// has the capacity.
func (m *Model) ExplainTo(f *Features, dst []Contribution) Explanation {
	var x [ColumnCount]float64
	f.fill(&x)
	var col [ColumnCount]float64
	z := m.file.BaseScore
	nodes := m.nodes
	for _, r := range m.roots {
		i := r
		for nodes[i].left >= 0 {
			next := nodes[i].right
			if x[nodes[i].feature] < nodes[i].threshold {
				next = nodes[i].left
			}
			col[nodes[i].feature] += nodes[next].value - nodes[i].value
			i = next
		}
		z += nodes[i].value
	}
	// Per feature: the plain columns, then the channel columns summed.
	var byFeature [featureCount]float64
	copy(byFeature[:], col[:colChannel0])
	for c := colChannel0; c < ColumnCount; c++ {
		byFeature[colChannel0] += col[c]
	}
	// Sort feature indexes on the stack (insertion sort, stable), then
	// fill the one allocation in that order.
	var order [featureCount]uint8
	for k := range order {
		order[k] = uint8(k)
		for j := k; j > 0 && math.Abs(byFeature[order[j]]) > math.Abs(byFeature[order[j-1]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	out := dst[:0]
	if cap(out) < featureCount {
		out = make([]Contribution, featureCount)
	}
	out = out[:featureCount]
	for k, c := range order {
		if c == colChannel0 {
			out[k] = Contribution{Feature: channelFeature, Category: ChannelColumn(f.Channel), Contribution: byFeature[c]}
			continue
		}
		out[k] = Contribution{Feature: plainNames[c], Value: x[c], Contribution: byFeature[c]}
	}
	return Explanation{Score: sigmoid(z), Logit: z, Base: m.base, Contributions: out}
}
