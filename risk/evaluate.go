package risk

import (
	"fmt"
	"math"
	"slices"
)

// CalibrationBins is the number of bins of an Evaluation's calibration
// table: predicted probabilities [0, 0.1), [0.1, 0.2), … [0.9, 1].
const CalibrationBins = 10

// CalibrationBin is one row of a calibration table.
type CalibrationBin struct {
	// Low and High bound the bin's predicted probabilities.
	Low  float64 `json:"low"`
	High float64 `json:"high"`
	// PredictedMean is the mean score of the bin's examples (0 when empty).
	PredictedMean float64 `json:"predicted_mean"`
	// ObservedRate is the share of the bin's examples labelled positive (0 when empty).
	ObservedRate float64 `json:"observed_rate"`
	// Count is the number of examples in the bin.
	Count int `json:"count"`
}

// Evaluation is how well a model scores labelled examples. Each example
// counts once, whatever its weight. A measure that is undefined (no
// predicted positives for precision, one class only for ROC AUC) is 0.
type Evaluation struct {
	// Threshold is the score at and above which an order is called positive.
	Threshold      float64 `json:"threshold"`
	Examples       int     `json:"examples"`
	Positives      int     `json:"positives"`
	TruePositives  int     `json:"true_positives"`
	FalsePositives int     `json:"false_positives"`
	FalseNegatives int     `json:"false_negatives"`
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
	// ROCAUC is the exact area under the ROC curve, ties counted half.
	ROCAUC float64 `json:"roc_auc"`
	// LogLoss is the mean negative log likelihood (natural log), with
	// scores clamped to [1e-15, 1−1e-15].
	LogLoss     float64          `json:"log_loss"`
	Calibration []CalibrationBin `json:"calibration"`
}

// Evaluate scores every example with m and measures the scores against the
// labels, calling an order positive when its score is >= threshold.
func Evaluate(m *Model, examples []Example, threshold float64) Evaluation {
	ev := Evaluation{Threshold: threshold, Examples: len(examples), Calibration: make([]CalibrationBin, CalibrationBins)}
	scores := make([]float64, len(examples))
	var sums [CalibrationBins]float64
	var pos [CalibrationBins]int
	for i := range examples {
		s := m.Score(&examples[i].Features)
		scores[i] = s
		y := examples[i].Label
		if y {
			ev.Positives++
		}
		switch {
		case s >= threshold && y:
			ev.TruePositives++
		case s >= threshold:
			ev.FalsePositives++
		case y:
			ev.FalseNegatives++
		}
		q := min(max(s, 1e-15), 1-1e-15)
		if y {
			ev.LogLoss -= math.Log(q)
		} else {
			ev.LogLoss -= math.Log(1 - q)
		}
		b := min(max(int(s*CalibrationBins), 0), CalibrationBins-1)
		sums[b] += s
		ev.Calibration[b].Count++
		if y {
			pos[b]++
		}
	}
	if n := len(examples); n > 0 {
		ev.LogLoss /= float64(n)
	}
	for b := range ev.Calibration {
		c := &ev.Calibration[b]
		c.Low, c.High = float64(b)/CalibrationBins, float64(b+1)/CalibrationBins
		if c.Count > 0 {
			c.PredictedMean = sums[b] / float64(c.Count)
			c.ObservedRate = float64(pos[b]) / float64(c.Count)
		}
	}
	if d := ev.TruePositives + ev.FalsePositives; d > 0 {
		ev.Precision = float64(ev.TruePositives) / float64(d)
	}
	if ev.Positives > 0 {
		ev.Recall = float64(ev.TruePositives) / float64(ev.Positives)
	}
	if ev.Precision+ev.Recall > 0 {
		ev.F1 = 2 * ev.Precision * ev.Recall / (ev.Precision + ev.Recall)
	}
	ev.ROCAUC = rocAUC(scores, examples)
	return ev
}

// rocAUC is the Mann–Whitney statistic: the chance that a random positive
// scores above a random negative, ties counting half; 0 with one class.
func rocAUC(scores []float64, examples []Example) float64 {
	n := len(scores)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	// Sum the (average, 1-based) ranks of the positives.
	var rankSum float64
	positives := 0
	for i := 0; i < n; {
		j := i
		for j < n && scores[order[j]] == scores[order[i]] {
			j++
		}
		avg := float64(i+1+j) / 2 // mean of ranks i+1..j
		for k := i; k < j; k++ {
			if examples[order[k]].Label {
				rankSum += avg
				positives++
			}
		}
		i = j
	}
	negatives := n - positives
	if positives == 0 || negatives == 0 {
		return 0
	}
	p := float64(positives)
	return (rankSum - p*(p+1)/2) / (p * float64(negatives))
}

// validate checks an evaluation read from a model file.
func (e *Evaluation) validate() error {
	for _, f := range [...]struct {
		name   string
		v, max float64
	}{
		{"threshold", e.Threshold, 1}, {"precision", e.Precision, 1}, {"recall", e.Recall, 1},
		{"f1", e.F1, 1}, {"roc_auc", e.ROCAUC, 1}, {"log_loss", e.LogLoss, 100},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > f.max {
			return fieldErr(f.name, "must be 0..%g, got %v", f.max, f.v)
		}
	}
	for _, c := range [...]struct {
		name string
		v    int
	}{{"examples", e.Examples}, {"positives", e.Positives}, {"true_positives", e.TruePositives},
		{"false_positives", e.FalsePositives}, {"false_negatives", e.FalseNegatives}} {
		if c.v < 0 || c.v > ExamplesMax {
			return fieldErr(c.name, "must be 0..%d, got %d", ExamplesMax, c.v)
		}
	}
	if len(e.Calibration) > CalibrationBins {
		return fieldErr("calibration", "must have at most %d bins, got %d", CalibrationBins, len(e.Calibration))
	}
	for i, c := range e.Calibration {
		at := fmt.Sprintf("calibration[%d]", i)
		for _, f := range [...]struct {
			name string
			v    float64
		}{{"low", c.Low}, {"high", c.High}, {"predicted_mean", c.PredictedMean}, {"observed_rate", c.ObservedRate}} {
			if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
				return fieldErr(at+"."+f.name, "must be 0..1, got %v", f.v)
			}
		}
		if c.Count < 0 || c.Count > ExamplesMax {
			return fieldErr(at+".count", "must be 0..%d, got %d", ExamplesMax, c.Count)
		}
	}
	return nil
}

// Split deals the examples into a training part and a held-out part of
// round(holdoutFraction × len) examples, drawn with the seed; both keep the
// examples' order. A fraction outside [0, 1] is clamped. The same input
// and seed always give the same split.
func Split(examples []Example, holdoutFraction float64, seed int64) (train, test []Example) {
	if math.IsNaN(holdoutFraction) {
		holdoutFraction = 0
	}
	n := len(examples)
	k := int(math.Round(min(max(holdoutFraction, 0), 1) * float64(n)))
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	rng := newSplitMix(seed)
	for i := n - 1; i > 0; i-- { // Fisher–Yates
		j := int(rng.next() % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	held := make([]bool, n)
	for _, i := range perm[:k] {
		held[i] = true
	}
	train = make([]Example, 0, n-k)
	test = make([]Example, 0, k)
	for i := range examples {
		if held[i] {
			test = append(test, examples[i])
		} else {
			train = append(train, examples[i])
		}
	}
	return train, test
}
