package risk

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Limits and defaults of training.
const (
	// ExamplesMax bounds the examples of one training run (and of a file).
	ExamplesMax = 5_000_000
	// BinsMax bounds TrainOptions.Bins (a bin index fits a byte).
	BinsMax = 256
	// MinLeafMax bounds TrainOptions.MinLeaf.
	MinLeafMax = 1_000_000
	// WeightMax bounds an example's weight.
	WeightMax = 1000

	defaultTrees        = 60
	defaultDepth        = 3
	defaultLearningRate = 0.15
	defaultMinLeaf      = 20
	defaultBins         = 32

	// subsampleFraction is the share of the examples each tree is grown
	// on, drawn with the seed (stochastic gradient boosting).
	subsampleFraction = 0.8
	// l2 is the L2 regularisation of leaf values (λ): a leaf's value is
	// −G/(H+λ) times the learning rate.
	l2 = 1.0
	// hessianMin is the least hessian a child of a split must cover.
	hessianMin = 1e-3
	// gainMin is the least loss reduction a split must bring.
	gainMin = 1e-9
	// binSampleMax bounds the examples sampled to place bin cuts.
	binSampleMax = 200_000
	// rateMin keeps the base score finite: the positive rate is clamped
	// to [rateMin, 1−rateMin].
	rateMin = 1e-6
)

// Example is one labelled order.
type Example struct {
	Features Features `json:"features"`
	// Label is true for fraud or abuse: the order should not ship.
	Label bool `json:"label"`
	// Weight is how much the example counts in training; 0 means 1.
	Weight float64 `json:"weight,omitempty"`
}

// weight is the example's effective weight.
func (e *Example) weight() float64 {
	if e.Weight == 0 {
		return 1
	}
	return e.Weight
}

// Validate returns a *FieldError naming the first bad field of e
// ("features.amount", "weight").
func (e *Example) Validate() error {
	if err := e.Features.Validate(); err != nil {
		return prefixed("features", err)
	}
	if math.IsNaN(e.Weight) || e.Weight < 0 || e.Weight > WeightMax {
		return fieldErr("weight", "must be 0..%d (0 means 1), got %v", WeightMax, e.Weight)
	}
	return nil
}

// TrainOptions tune Train. Zero values take the defaults.
type TrainOptions struct {
	// Trees is the number of boosting rounds, 1..TreesMax (default 60).
	Trees int
	// Depth is each tree's maximum depth, 1..DepthMax (default 3).
	Depth int
	// LearningRate shrinks each tree's values, (0, 1] (default 0.15).
	LearningRate float64
	// MinLeaf is the fewest examples a leaf may hold, 1..MinLeafMax (default 20).
	MinLeaf int
	// Seed draws each tree's subsample of the examples and the sample
	// that places bin cuts.
	Seed int64
	// Bins is the number of quantile bins per column that splits choose
	// among, 2..BinsMax (default 32).
	Bins int
	// At is recorded as the training time; zero records none, so the
	// model file is a function of the examples and options alone.
	At time.Time
	// Progress, when set, is called after each tree with the number of
	// trees grown and the weighted log loss on the training examples
	// before that tree.
	Progress func(trees int, trainLogLoss float64)
}

func (o *TrainOptions) withDefaults() (TrainOptions, error) {
	r := *o
	if r.Trees == 0 {
		r.Trees = defaultTrees
	}
	if r.Depth == 0 {
		r.Depth = defaultDepth
	}
	if r.LearningRate == 0 {
		r.LearningRate = defaultLearningRate
	}
	if r.MinLeaf == 0 {
		r.MinLeaf = defaultMinLeaf
	}
	if r.Bins == 0 {
		r.Bins = defaultBins
	}
	switch {
	case r.Trees < 1 || r.Trees > TreesMax:
		return r, fieldErr("trees", "must be 1..%d, got %d", TreesMax, r.Trees)
	case r.Depth < 1 || r.Depth > DepthMax:
		return r, fieldErr("depth", "must be 1..%d, got %d", DepthMax, r.Depth)
	case !(r.LearningRate > 0 && r.LearningRate <= 1):
		return r, fieldErr("learning_rate", "must be in (0, 1], got %v", r.LearningRate)
	case r.MinLeaf < 1 || r.MinLeaf > MinLeafMax:
		return r, fieldErr("min_leaf", "must be 1..%d, got %d", MinLeafMax, r.MinLeaf)
	case r.Bins < 2 || r.Bins > BinsMax:
		return r, fieldErr("bins", "must be 2..%d, got %d", BinsMax, r.Bins)
	}
	return r, nil
}

// histBin is the sums of one bin of one column over a node's examples.
type histBin struct {
	g, h  float64
	count int32
}

// growNode is a node of a tree being grown: its examples are
// trainer.idx[lo:hi].
type growNode struct {
	lo, hi int
	g, h   float64
	depth  int
	// split, when the node is internal
	col, bin    int
	left, right int
	value       float64
}

// trainer holds the binned examples and the state of boosting.
type trainer struct {
	opts    TrainOptions
	n       int
	cuts    [ColumnCount][]float64 // per column, ascending; bin b holds cuts[b-1] <= x < cuts[b]
	bins    [ColumnCount][]uint8   // per column, per example
	label   []float64
	weight  []float64
	pred    []float64 // logit per example
	grad    []float64
	hess    []float64
	idx     []int32 // the current tree's examples, partitioned by node
	scratch []int32
	hist    []histBin // one node's histogram: ColumnCount × opts.Bins
	rng     splitMix
}

// Train grows a gradient-boosted tree ensemble for binary logistic loss on
// the examples: each tree fits the loss's gradient by second-order
// histogram splits on quantile bins, over a seeded subsample of the
// examples. Training is deterministic: the same examples and options give
// the same model, byte for byte. A bad option or example gives a
// *FieldError.
func Train(examples []Example, opts TrainOptions) (*Model, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	n := len(examples)
	if n == 0 || n > ExamplesMax {
		return nil, fieldErr("examples", "must hold 1..%d examples, got %d", ExamplesMax, n)
	}
	var posW, totalW float64
	positives := 0
	for i := range examples {
		if err := examples[i].Validate(); err != nil {
			return nil, prefixed(fmt.Sprintf("examples[%d]", i), err)
		}
		w := examples[i].weight()
		totalW += w
		if examples[i].Label {
			posW += w
			positives++
		}
	}
	if positives == 0 || positives == n {
		return nil, fieldErr("examples", "need both labels: %d of %d are positive", positives, n)
	}
	if totalW <= 0 {
		return nil, fieldErr("examples", "total weight must be positive")
	}
	rate := min(max(posW/totalW, rateMin), 1-rateMin)
	base := math.Log(rate / (1 - rate))

	t := &trainer{opts: o, n: n, rng: newSplitMix(o.Seed)}
	t.binColumns(examples)
	t.label = make([]float64, n)
	t.weight = make([]float64, n)
	t.pred = make([]float64, n)
	t.grad = make([]float64, n)
	t.hess = make([]float64, n)
	t.idx = make([]int32, 0, n)
	t.scratch = make([]int32, n)
	t.hist = make([]histBin, ColumnCount*o.Bins)
	for i := range examples {
		if examples[i].Label {
			t.label[i] = 1
		}
		t.weight[i] = examples[i].weight()
		t.pred[i] = base
	}
	trees := make([]Tree, 0, o.Trees)
	for k := range o.Trees {
		loss := t.gradients()
		trees = append(trees, t.growTree())
		if o.Progress != nil {
			o.Progress(k+1, loss)
		}
	}
	info := TrainingInfo{Examples: n, Positives: positives, Seed: o.Seed}
	if !o.At.IsZero() {
		info.At = o.At.UTC().Format(time.RFC3339)
	}
	return newModel(base, trees, info)
}

// colValue is column c of f's input vector.
func colValue(f *Features, c int) float64 {
	var x [ColumnCount]float64
	f.fill(&x)
	return x[c]
}

// binColumns places each column's bin cuts at quantiles of (a seeded
// sample of) the examples and bins every example.
func (t *trainer) binColumns(examples []Example) {
	sample := make([]int, 0, min(t.n, binSampleMax))
	if t.n <= binSampleMax {
		for i := range t.n {
			sample = append(sample, i)
		}
	} else {
		// Reservoir sampling, then example order.
		for i := range t.n {
			if len(sample) < binSampleMax {
				sample = append(sample, i)
			} else if j := int(t.rng.next() % uint64(i+1)); j < binSampleMax {
				sample[j] = i
			}
		}
		slices.Sort(sample)
	}
	vals := make([]float64, len(sample))
	for c := range ColumnCount {
		for k, i := range sample {
			vals[k] = colValue(&examples[i].Features, c)
		}
		slices.Sort(vals)
		t.cuts[c] = quantileCuts(vals, t.opts.Bins)
		t.bins[c] = make([]uint8, t.n)
	}
	var x [ColumnCount]float64
	for i := range examples {
		examples[i].Features.fill(&x)
		for c := range ColumnCount {
			t.bins[c][i] = uint8(binOf(t.cuts[c], x[c]))
		}
	}
}

// quantileCuts returns at most bins−1 ascending cuts splitting sorted into
// bins of about equal counts; every cut is a value of sorted above its
// least, so no bin is empty of data on both sides.
func quantileCuts(sorted []float64, bins int) []float64 {
	if len(sorted) == 0 {
		return nil
	}
	var uniq []float64
	for i, v := range sorted {
		if i == 0 || v != sorted[i-1] {
			uniq = append(uniq, v)
			if len(uniq) > bins {
				break
			}
		}
	}
	if len(uniq) <= bins {
		return slices.Clone(uniq[1:])
	}
	cuts := make([]float64, 0, bins-1)
	for k := 1; k < bins; k++ {
		v := sorted[k*len(sorted)/bins]
		if v > sorted[0] && (len(cuts) == 0 || v > cuts[len(cuts)-1]) {
			cuts = append(cuts, v)
		}
	}
	return cuts
}

// binOf is the number of cuts <= x: the bin of x.
func binOf(cuts []float64, x float64) int {
	lo, hi := 0, len(cuts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cuts[mid] <= x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// gradients sets each example's gradient and hessian of the weighted log
// loss at its current prediction and returns the mean weighted loss.
func (t *trainer) gradients() float64 {
	var loss, wsum float64
	for i := range t.n {
		p := sigmoid(t.pred[i])
		w := t.weight[i]
		t.grad[i] = w * (p - t.label[i])
		t.hess[i] = w * math.Max(p*(1-p), 1e-12)
		q := min(max(p, 1e-15), 1-1e-15)
		if t.label[i] == 1 {
			loss -= w * math.Log(q)
		} else {
			loss -= w * math.Log(1-q)
		}
		wsum += w
	}
	return loss / wsum
}

// growTree grows one tree on a fresh subsample, depth by depth, adds its
// leaves to every example's prediction and returns it in file form.
func (t *trainer) growTree() Tree {
	t.idx = t.idx[:0]
	for i := range t.n {
		if t.rng.float() < subsampleFraction {
			t.idx = append(t.idx, int32(i))
		}
	}
	if len(t.idx) == 0 { // a tiny set: take every example
		for i := range t.n {
			t.idx = append(t.idx, int32(i))
		}
	}
	root := growNode{lo: 0, hi: len(t.idx), col: -1}
	for _, i := range t.idx {
		root.g += t.grad[i]
		root.h += t.hess[i]
	}
	nodes := []growNode{root}
	frontier := []int{0}
	for depth := 0; depth < t.opts.Depth && len(frontier) > 0; depth++ {
		var next []int
		for _, ni := range frontier {
			col, bin, ok := t.bestSplit(&nodes[ni])
			if !ok {
				continue
			}
			l, r := t.partition(&nodes[ni], col, bin)
			l.depth, r.depth = depth+1, depth+1
			nodes[ni].col, nodes[ni].bin = col, bin
			nodes[ni].left, nodes[ni].right = len(nodes), len(nodes)+1
			nodes = append(nodes, l, r)
			next = append(next, len(nodes)-2, len(nodes)-1)
		}
		frontier = next
	}
	// Leaf values, then internal values bottom-up (children come later).
	lr := t.opts.LearningRate
	for i := len(nodes) - 1; i >= 0; i-- {
		nd := &nodes[i]
		if nd.col < 0 {
			nd.value = -nd.g / (nd.h + l2) * lr
			continue
		}
		l, r := &nodes[nd.left], &nodes[nd.right]
		nd.value = (l.h*l.value + r.h*r.value) / (l.h + r.h)
	}
	// Update every example's prediction (in the subsample or not).
	for i := range t.n {
		k := 0
		for nodes[k].col >= 0 {
			if int(t.bins[nodes[k].col][i]) <= nodes[k].bin {
				k = nodes[k].left
			} else {
				k = nodes[k].right
			}
		}
		t.pred[i] += nodes[k].value
	}
	out := Tree{Nodes: make([]Node, len(nodes))}
	for i, nd := range nodes {
		if nd.col < 0 {
			out.Nodes[i] = Node{Feature: -1, Left: -1, Right: -1, Value: nd.value}
			continue
		}
		out.Nodes[i] = Node{Feature: nd.col, Threshold: t.cuts[nd.col][nd.bin], Left: nd.left, Right: nd.right, Value: nd.value}
	}
	return out
}

// bestSplit finds the split of nd's examples with the most gain: a column
// and a bin b, sending bins 0..b left. ok is false when no split keeps
// MinLeaf examples and hessianMin on each side and gains gainMin.
func (t *trainer) bestSplit(nd *growNode) (col, bin int, ok bool) {
	if nd.hi-nd.lo < 2*t.opts.MinLeaf {
		return 0, 0, false
	}
	idx := t.idx[nd.lo:nd.hi]
	nb := t.opts.Bins
	clear(t.hist)
	for c := range ColumnCount {
		h := t.hist[c*nb : (c+1)*nb]
		colBins := t.bins[c]
		for _, i := range idx {
			b := &h[colBins[i]]
			b.g += t.grad[i]
			b.h += t.hess[i]
			b.count++
		}
	}
	parentScore := nd.g * nd.g / (nd.h + l2)
	best := gainMin
	total := int32(nd.hi - nd.lo)
	minLeaf := int32(t.opts.MinLeaf)
	for c := range ColumnCount {
		h := t.hist[c*nb : (c+1)*nb]
		var gl, hl float64
		var nl int32
		for b := 0; b < len(t.cuts[c]); b++ {
			gl += h[b].g
			hl += h[b].h
			nl += h[b].count
			if nl < minLeaf {
				continue
			}
			if total-nl < minLeaf {
				break
			}
			gr, hr := nd.g-gl, nd.h-hl
			if hl < hessianMin || hr < hessianMin {
				continue
			}
			gain := gl*gl/(hl+l2) + gr*gr/(hr+l2) - parentScore
			if gain > best {
				best, col, bin, ok = gain, c, b, true
			}
		}
	}
	return col, bin, ok
}

// partition splits nd's examples stably into left (bin <= bin) and right
// and returns the two children with their sums.
func (t *trainer) partition(nd *growNode, col, bin int) (l, r growNode) {
	idx := t.idx[nd.lo:nd.hi]
	colBins := t.bins[col]
	nl := 0
	nr := 0
	right := t.scratch[:0]
	for _, i := range idx {
		if int(colBins[i]) <= bin {
			idx[nl] = i
			nl++
			l.g += t.grad[i]
			l.h += t.hess[i]
		} else {
			right = append(right, i)
			nr++
			r.g += t.grad[i]
			r.h += t.hess[i]
		}
	}
	copy(idx[nl:], right)
	l.lo, l.hi = nd.lo, nd.lo+nl
	r.lo, r.hi = nd.lo+nl, nd.hi
	l.col, r.col = -1, -1
	return l, r
}

// splitMix is the SplitMix64 generator: small, fast, and the same stream
// on every platform and Go release (the synthetic data and the shipped
// model depend on it).
type splitMix struct{ state uint64 }

func newSplitMix(seed int64) splitMix { return splitMix{state: uint64(seed)} }

func (s *splitMix) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a uniform float64 in [0, 1).
func (s *splitMix) float() float64 { return float64(s.next()>>11) / (1 << 53) }
