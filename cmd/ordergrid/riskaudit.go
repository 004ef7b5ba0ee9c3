package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ordergrid/ordergrid/ledger"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/statemachine"
)

// auditLineBytesMax bounds one line of an audit export read without its
// key: an entry holds its leaf twice (base64 and decoded) and its proof,
// as ledger's verifier bounds it.
const auditLineBytesMax = 2*ledger.LeafBytesMax + 64<<10

// errNoDecisions is an audit export without a reviewer's decision.
var errNoDecisions = errors.New("no decisions: the export holds no hold_decided event")

// auditOverrides is what an audit export holds of reviewers' decisions on
// held orders (hold_decided events).
type auditOverrides struct {
	// Decisions counts the hold_decided events read.
	Decisions int
	// Unscored counts those without features (the order had no score):
	// not training data, skipped.
	Unscored int
	// Overrides are the scored decisions, the last per order at the place
	// of its first, as risk.ReadOverrides keeps them.
	Overrides []risk.Override
	// against says, per override, that the reviewer decided against the
	// model's verdict.
	against []bool
	// Complete is how the verified export is known complete ("checkpoint"
	// or "seal"); empty when it was read without the log's key.
	Complete string
	// Checkpoint is the verified export's checkpoint.
	Checkpoint checkpoint.Checkpoint
}

// Against counts the overrides whose reviewer decided against the
// model's verdict.
func (a *auditOverrides) Against() int {
	n := 0
	for _, x := range a.against {
		if x {
			n++
		}
	}
	return n
}

// take reads one event of the export; where names its line.
func (a *auditOverrides) take(where string, at map[string]int, ev *ledger.Event) error {
	if ev.Kind != ledger.KindOrder || ev.Type != statemachine.EventHoldDecided {
		return nil
	}
	a.Decisions++
	d, err := risk.ParseDecision(ev.Order, ev.Details)
	if err != nil {
		return fmt.Errorf("%s (order %q): %w", where, ev.Order, err)
	}
	if !d.Scored {
		a.Unscored++
		return nil
	}
	if i, ok := at[ev.Order]; ok {
		a.Overrides[i], a.against[i] = d.Override, d.AgainstModel
		return nil
	}
	if len(a.Overrides) == risk.ExamplesMax {
		return fmt.Errorf("%s: more than %d orders decided", where, risk.ExamplesMax)
	}
	at[ev.Order] = len(a.Overrides)
	a.Overrides = append(a.Overrides, d.Override)
	a.against = append(a.against, d.AgainstModel)
	return nil
}

// readAuditOverrides reads the reviewers' decisions of the JSON Lines
// audit export at path. With v it verifies the export first, as ordergrid
// verify does: an error wrapping ledger.ErrExport says it does not verify,
// and nothing of it is returned. Without v the lines are taken as they
// are. Other errors are bad input, naming the line and the field; an
// export without decisions is errNoDecisions.
func readAuditOverrides(path string, v *checkpoint.Verifier) (*auditOverrides, error) {
	if err := checkJSONLinesExport(path); err != nil {
		return nil, err
	}
	a := &auditOverrides{}
	at := map[string]int{}
	if v != nil {
		var bad error
		got, _, err := verifyExport(path, v, func(where string, _ uint64, ev *ledger.Event) {
			if bad == nil {
				bad = a.take(where, at, ev)
			}
		})
		if err != nil {
			return nil, err
		}
		if bad != nil {
			return nil, bad
		}
		a.Complete, a.Checkpoint = got.Complete, got.Checkpoint
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := readExportLines(f, func(where string, ev *ledger.Event) error { return a.take(where, at, ev) }); err != nil {
			return nil, err
		}
	}
	if a.Decisions == 0 {
		return nil, errNoDecisions
	}
	return a, nil
}

// checkJSONLinesExport refuses a CSV export: decisions are read from JSON
// Lines exports only, with or without the key.
func checkJSONLinesExport(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len("checkpoint,"))
	n, _ := io.ReadFull(f, head)
	if bytes.HasPrefix(head[:n], []byte("checkpoint,")) {
		return errors.New("line 1: a CSV export: export the audit log as JSON Lines (ordergrid audit export --format jsonl)")
	}
	return nil
}

// readExportLines reads a JSON Lines audit export without verifying it:
// the header, then entries, whose decoded events it hands to take;
// progress and seal records are skipped. Errors name the line and, from
// the JSON decoder, the field.
func readExportLines(r io.Reader, take func(where string, ev *ledger.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), auditLineBytesMax)
	line := 0
	for sc.Scan() {
		line++
		where := fmt.Sprintf("line %d", line)
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			var h ledger.ExportHeader
			version, _, _ := strings.Cut(ledger.ExportFormat, "/")
			if err := strictJSON(b, &h); err != nil || !strings.HasPrefix(h.Format, version+"/") {
				return fmt.Errorf("%s: not an %s header", where, ledger.ExportFormat)
			}
			continue
		}
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			var v any
			return fmt.Errorf("%s: not JSON: %w", where, json.Unmarshal(b, &v))
		}
		if bytes.HasPrefix(b, []byte(`{"progress":`)) || bytes.HasPrefix(b, []byte(`{"seal":`)) {
			continue
		}
		var e ledger.BundleEntry
		if err := strictJSON(b, &e); err != nil {
			return fmt.Errorf("%s: not an export entry: %w", where, err)
		}
		var ev ledger.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			return fmt.Errorf("%s: event: %w", where, err)
		}
		if err := take(where, &ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// strictJSON decodes one JSON value, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// reportAuditOverrides says on stderr whether the export was verified and
// what it held.
func reportAuditOverrides(w io.Writer, cmd, path string, a *auditOverrides) {
	if a.Complete == "" {
		fmt.Fprintf(w, "%s: %s was NOT verified (no --key): its lines are taken as they are\n", cmd, path)
	} else {
		fmt.Fprintf(w, "%s: %s verified against the log %s (checkpoint of %d leaves, complete by its %s)\n",
			cmd, path, a.Checkpoint.Origin, a.Checkpoint.Size, a.Complete)
	}
	fmt.Fprintf(w, "%s: %d decisions read, %d overrides (%d against the model's verdict), %d skipped without features\n",
		cmd, a.Decisions, len(a.Overrides), a.Against(), a.Unscored)
}

// auditExitCode is the exit status of an error reading an audit export:
// 1 when it does not verify, 2 for bad input.
func auditExitCode(err error) int {
	if errors.Is(err, ledger.ErrExport) {
		return 1
	}
	return 2
}

// auditErrorPrefix is how an error reading an audit export starts on
// stderr: NOT VERIFIED when it does not verify.
func auditErrorPrefix(err error) string {
	if errors.Is(err, ledger.ErrExport) {
		return "NOT VERIFIED: "
	}
	return ""
}

func runRiskOverrides(args []string, stdout, stderr io.Writer) int {
	fs := riskFlags("overrides", stderr)
	audit := fs.String("audit", "", "an audit export, JSON Lines (ordergrid audit export) (required)")
	key := fs.String("key", "", "the log's verifier key, or a file holding it: verify the export first, as ordergrid verify does")
	out := fs.String("out", "-", "overrides file to write, - for standard output")
	if !parseRiskFlags(fs, args, stderr) {
		return 2
	}
	const cmd = "ordergrid risk overrides"
	if *audit == "" {
		fmt.Fprintf(stderr, "%s: --audit is required\n", cmd)
		return 2
	}
	var v *checkpoint.Verifier
	if *key != "" {
		var err error
		if v, err = readVerifier(*key); err != nil {
			fmt.Fprintf(stderr, "%s: --key: %v\n", cmd, err)
			return 2
		}
	}
	a, err := readAuditOverrides(*audit, v)
	if err != nil {
		fmt.Fprintf(stderr, "%s%s: --audit %s: %v\n", auditErrorPrefix(err), cmd, *audit, err)
		return auditExitCode(err)
	}
	w := stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
			return 1
		}
		w = f
	}
	err = risk.WriteOverrides(w, a.Overrides)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	reportAuditOverrides(stderr, "risk overrides", *audit, a)
	return 0
}

// readTrainOverrides reads train's --overrides file: override lines
// (risk.ReadOverrides), or an audit export, told by its header, read as
// ordergrid risk overrides reads it (verified with v when v is not nil).
// code is the exit status of an error.
func readTrainOverrides(path string, v *checkpoint.Verifier, stderr io.Writer) (ex []risk.Example, code int, err error) {
	isExport, err := looksLikeExport(path)
	if err != nil {
		return nil, 2, fmt.Errorf("--overrides: %w", err)
	}
	if !isExport {
		if v != nil {
			return nil, 2, fmt.Errorf("--key verifies an audit export; --overrides %s is not one (no %s header)", path, ledger.ExportFormat)
		}
		ex, err := readRiskFile("overrides", path, risk.ReadOverrides)
		if err != nil {
			return nil, 2, err
		}
		return ex, 0, nil
	}
	a, err := readAuditOverrides(path, v)
	if err != nil {
		return nil, auditExitCode(err), fmt.Errorf("--overrides %s: %w", path, err)
	}
	reportAuditOverrides(stderr, "risk train", path, a)
	ex = make([]risk.Example, len(a.Overrides))
	for i := range a.Overrides {
		ex[i] = a.Overrides[i].Example()
	}
	return ex, 0, nil
}
