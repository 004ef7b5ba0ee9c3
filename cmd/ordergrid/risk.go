package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/risk"
)

const riskUsage = `usage:
  ordergrid risk synth --n N [--seed S] [--out FILE]
      writes a seeded synthetic labelled order history as JSON Lines
  ordergrid risk train --data FILE.jsonl [--overrides FILE.jsonl [--key KEY]] [--out model.json] [--holdout 0.2]
                       [--seed S] [--trees N] [--depth D] [--threshold 0.5]
      trains a fraud/abuse model on the data (less a held-out part) and every override, reports on the held-out part;
      --overrides is override lines or an audit export (read as risk overrides reads it, verified with --key)
  ordergrid risk overrides --audit EXPORT.jsonl [--key KEY] [--out FILE]
      writes the reviewers' decisions of an audit export (hold_decided events with features, the last per order)
      as override lines; with --key (the log's verifier key) only from an export that verifies
  ordergrid risk eval [--model model.json] --data FILE.jsonl [--threshold 0.5]
      reports how a model (default: the shipped one) scores labelled orders
  ordergrid risk explain [--model model.json] --features '{"customer_orders_1h":12,...}'
      scores one order and lists each feature's contribution`

// riskProgressEvery is how many trees pass between progress lines of risk train.
const riskProgressEvery = 10

// riskHoldoutMax bounds --holdout: most of the data stays for training.
const riskHoldoutMax = 0.9

// runRisk runs `ordergrid risk ...`: 0 on success, 2 on bad flags or
// input, 1 when an output cannot be written or an audit export does not
// verify.
func runRisk(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, riskUsage)
		return 2
	}
	switch args[0] {
	case "synth":
		return runRiskSynth(args[1:], stdout, stderr)
	case "train":
		return runRiskTrain(args[1:], stdout, stderr)
	case "overrides":
		return runRiskOverrides(args[1:], stdout, stderr)
	case "eval":
		return runRiskEval(args[1:], stdout, stderr)
	case "explain":
		return runRiskExplain(args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, riskUsage)
		return 2
	}
}

// riskFlags makes the flag set of one risk subcommand.
func riskFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("risk "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseRiskFlags parses args, refusing positional arguments; ok is false
// after it has said why on stderr.
func parseRiskFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ordergrid %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}

func runRiskSynth(args []string, stdout, stderr io.Writer) int {
	fs := riskFlags("synth", stderr)
	n := fs.Int("n", 10_000, fmt.Sprintf("examples to write, 1..%d", risk.ExamplesMax))
	seed := fs.Int64("seed", 1, "seed: the same seed writes the same examples")
	out := fs.String("out", "-", "file to write, - for standard output")
	if !parseRiskFlags(fs, args, stderr) {
		return 2
	}
	if *n < 1 || *n > risk.ExamplesMax {
		fmt.Fprintf(stderr, "ordergrid risk synth: --n must be 1..%d, got %d\n", risk.ExamplesMax, *n)
		return 2
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "ordergrid risk synth: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	if err := risk.WriteExamples(w, risk.Synthetic(*seed, *n)); err != nil {
		fmt.Fprintf(stderr, "ordergrid risk synth: %v\n", err)
		return 1
	}
	return 0
}

// readRiskFile reads a JSON Lines file with read; errors name the flag,
// the file, the line and the field.
func readRiskFile(flagName, path string, read func(io.Reader, int) ([]risk.Example, error)) ([]risk.Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	defer f.Close()
	ex, err := read(f, risk.ExamplesMax)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flagName, path, err)
	}
	return ex, nil
}

// loadRiskModel loads the model file at path, or the shipped model when
// path is empty.
func loadRiskModel(path string) (*risk.Model, error) {
	if path == "" {
		return risk.Default(), nil
	}
	m, err := risk.Load(path)
	if err != nil {
		return nil, fmt.Errorf("--model: %w", err)
	}
	return m, nil
}

func checkThreshold(t float64) error {
	if math.IsNaN(t) || t < 0 || t > 1 {
		return fmt.Errorf("--threshold must be 0..1, got %v", t)
	}
	return nil
}

func runRiskTrain(args []string, stdout, stderr io.Writer) int {
	fs := riskFlags("train", stderr)
	data := fs.String("data", "", "labelled examples, JSON Lines (required)")
	overrides := fs.String("overrides", "", "reviewers' decisions: override lines, or a JSON Lines audit export (ordergrid audit export); all used in training, weighted "+strconv.Itoa(risk.OverrideWeight))
	key := fs.String("key", "", "the log's verifier key, or a file holding it: verify the audit export of --overrides first, as ordergrid verify does")
	out := fs.String("out", "model.json", "model file to write")
	holdout := fs.Float64("holdout", 0.2, fmt.Sprintf("share of --data held out for evaluation, 0..%g (0: no evaluation)", riskHoldoutMax))
	seed := fs.Int64("seed", 0, "seed of the split and of training")
	trees := fs.Int("trees", 60, fmt.Sprintf("trees, 1..%d", risk.TreesMax))
	depth := fs.Int("depth", 3, fmt.Sprintf("tree depth, 1..%d", risk.DepthMax))
	threshold := fs.Float64("threshold", 0.5, "score at and above which an order counts as flagged in the report")
	if !parseRiskFlags(fs, args, stderr) {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ordergrid risk train: %v\n", err)
		return 2
	}
	switch {
	case *data == "":
		return fail(fmt.Errorf("--data is required"))
	case math.IsNaN(*holdout) || *holdout < 0 || *holdout > riskHoldoutMax:
		return fail(fmt.Errorf("--holdout must be 0..%g, got %v", riskHoldoutMax, *holdout))
	case *trees < 1 || *trees > risk.TreesMax:
		return fail(fmt.Errorf("--trees must be 1..%d, got %d", risk.TreesMax, *trees))
	case *depth < 1 || *depth > risk.DepthMax:
		return fail(fmt.Errorf("--depth must be 1..%d, got %d", risk.DepthMax, *depth))
	}
	if err := checkThreshold(*threshold); err != nil {
		return fail(err)
	}
	examples, err := readRiskFile("data", *data, risk.ReadExamples)
	if err != nil {
		return fail(err)
	}
	var v *checkpoint.Verifier
	if *key != "" {
		if *overrides == "" {
			return fail(fmt.Errorf("--key verifies the audit export of --overrides; there is none"))
		}
		if v, err = readVerifier(*key); err != nil {
			return fail(fmt.Errorf("--key: %w", err))
		}
	}
	var reviewed []risk.Example
	if *overrides != "" {
		var code int
		if reviewed, code, err = readTrainOverrides(*overrides, v, stderr); err != nil {
			fmt.Fprintf(stderr, "%sordergrid risk train: %v\n", auditErrorPrefix(err), err)
			return code
		}
	}
	trainPart, test := risk.Split(examples, *holdout, *seed)
	if len(trainPart)+len(reviewed) > risk.ExamplesMax {
		return fail(fmt.Errorf("more than %d examples with the overrides", risk.ExamplesMax))
	}
	trainPart = append(trainPart, reviewed...)
	fmt.Fprintf(stderr, "risk: training %d trees on %d examples (%d overrides), %d held out\n", *trees, len(trainPart), len(reviewed), len(test))
	start := time.Now()
	m, err := risk.Train(trainPart, risk.TrainOptions{Trees: *trees, Depth: *depth, Seed: *seed, At: start,
		Progress: func(n int, loss float64) {
			if n%riskProgressEvery == 0 || n == *trees {
				fmt.Fprintf(stderr, "risk: %d/%d trees, training log loss %.4f, %s\n", n, *trees, loss, time.Since(start).Round(time.Millisecond))
			}
		}})
	if err != nil {
		return fail(fmt.Errorf("training: %w", err))
	}
	fmt.Fprintf(stdout, "model %s: %d trees, trained on %d examples (%d positive, %d overrides)\n",
		m.Version(), len(m.Trees()), m.Trained().Examples, m.Trained().Positives, len(reviewed))
	if len(test) > 0 {
		ev := risk.Evaluate(m, test, *threshold)
		m = m.WithEvaluation(ev)
		fmt.Fprintln(stdout)
		writeRiskReport(stdout, "held-out", ev)
	} else {
		fmt.Fprintln(stdout, "no held-out examples: no evaluation")
	}
	if err := m.Save(*out); err != nil {
		fmt.Fprintf(stderr, "ordergrid risk train: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	return 0
}

func runRiskEval(args []string, stdout, stderr io.Writer) int {
	fs := riskFlags("eval", stderr)
	modelPath := fs.String("model", "", "model file (default: the model shipped with ordergrid)")
	data := fs.String("data", "", "labelled examples, JSON Lines (required)")
	threshold := fs.Float64("threshold", 0.5, "score at and above which an order counts as flagged")
	if !parseRiskFlags(fs, args, stderr) {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ordergrid risk eval: %v\n", err)
		return 2
	}
	if *data == "" {
		return fail(fmt.Errorf("--data is required"))
	}
	if err := checkThreshold(*threshold); err != nil {
		return fail(err)
	}
	m, err := loadRiskModel(*modelPath)
	if err != nil {
		return fail(err)
	}
	examples, err := readRiskFile("data", *data, risk.ReadExamples)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "model %s\n\n", m.Version())
	writeRiskReport(stdout, "evaluated", risk.Evaluate(m, examples, *threshold))
	return 0
}

func runRiskExplain(args []string, stdout, stderr io.Writer) int {
	fs := riskFlags("explain", stderr)
	modelPath := fs.String("model", "", "model file (default: the model shipped with ordergrid)")
	features := fs.String("features", "", `the order's features as a JSON object, e.g. '{"customer_orders_1h":12,"amount":80,"amount_ratio":1}' (required)`)
	if !parseRiskFlags(fs, args, stderr) {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "ordergrid risk explain: %v\n", err)
		return 2
	}
	if *features == "" {
		return fail(fmt.Errorf("--features is required"))
	}
	f, err := risk.ParseFeatures([]byte(*features))
	if err != nil {
		return fail(fmt.Errorf("--features: %w", err))
	}
	m, err := loadRiskModel(*modelPath)
	if err != nil {
		return fail(err)
	}
	ex := m.Explain(&f)
	fmt.Fprintf(stdout, "score %.4f  (log-odds %+.3f = base %+.3f + contributions %+.3f)\nmodel %s\n\n",
		ex.Score, ex.Logit, ex.Base, ex.Logit-ex.Base, m.Version())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "feature\tvalue\tcontribution\t")
	for _, c := range ex.Contributions {
		value := strconv.FormatFloat(c.Value, 'g', 6, 64)
		if c.Category != "" {
			value = c.Category
		}
		fmt.Fprintf(tw, "%s\t%s\t%+.4f\t\n", c.Feature, value, c.Contribution)
	}
	_ = tw.Flush()
	return 0
}

// writeRiskReport prints an evaluation: counts, precision, recall, F1,
// ROC AUC, log loss and the calibration table in aligned columns.
func writeRiskReport(w io.Writer, what string, ev risk.Evaluation) {
	rate := 0.0
	if ev.Examples > 0 {
		rate = float64(ev.Positives) / float64(ev.Examples)
	}
	flagged := ev.TruePositives + ev.FalsePositives
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s examples\t%d\t(%d positive, %.2f%%)\n", what, ev.Examples, ev.Positives, 100*rate)
	fmt.Fprintf(tw, "threshold\t%.3f\t\n", ev.Threshold)
	fmt.Fprintf(tw, "precision\t%.4f\t(%d of %d flagged are positive)\n", ev.Precision, ev.TruePositives, flagged)
	fmt.Fprintf(tw, "recall\t%.4f\t(%d of %d positives flagged)\n", ev.Recall, ev.TruePositives, ev.Positives)
	fmt.Fprintf(tw, "F1\t%.4f\t\n", ev.F1)
	fmt.Fprintf(tw, "ROC AUC\t%.4f\t\n", ev.ROCAUC)
	fmt.Fprintf(tw, "log loss\t%.4f\t\n", ev.LogLoss)
	_ = tw.Flush()
	fmt.Fprintln(w, "\ncalibration")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "score\tpredicted mean\tobserved rate\tcount\t")
	for _, c := range ev.Calibration {
		if c.Count == 0 {
			fmt.Fprintf(tw, "%.1f-%.1f\t-\t-\t0\t\n", c.Low, c.High)
			continue
		}
		fmt.Fprintf(tw, "%.1f-%.1f\t%.4f\t%.4f\t%d\t\n", c.Low, c.High, c.PredictedMean, c.ObservedRate, c.Count)
	}
	_ = tw.Flush()
}
