// Package browsertest drives a real, headless Chromium from Go tests: the
// end-to-end tests of the pages a node serves (the tracking page, the ops
// page) load them as a user's browser would, take screenshots for CI to
// keep, and run a small accessibility check.
//
// Start finds Chromium (ORDERGRID_CHROMIUM, or chromium, chromium-browser,
// google-chrome on PATH); when there is none it installs Debian's chromium
// package (apt-get, as root only). A test that cannot get a browser fails
// with a message saying why; it never skips silently, except under -short,
// where browser tests are skipped. Screenshots go to ArtifactsDir:
// $ORDERGRID_ARTIFACTS_DIR/screenshots, else e2e/artifacts/screenshots in
// the module (gitignored).
//
//	b := browsertest.Start(t, browsertest.Viewport(360, 740))
//	b.SetHeaders(t, map[string]string{"Authorization": "Bearer " + token}) // optional
//	b.Open(t, url)
//	took := b.WaitText(t, "#status", "Shipped", time.Second)
//	b.Screenshot(t, "tracking-shipped")
//	b.CheckAccessibility(t)
package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Bounds of the harness.
const (
	// InstallTimeout bounds installing Chromium (apt-get update and install).
	InstallTimeout = 10 * time.Minute
	// ActionTimeout bounds one browser action (a page load, a script, a
	// screenshot).
	ActionTimeout = 30 * time.Second
	// tabbablesMax bounds the elements the keyboard check tabs through.
	tabbablesMax = 200
	// ContrastMin is the contrast the accessibility check asks of text.
	ContrastMin = 4.5
)

// ChromiumEnv names a Chromium binary to use instead of searching PATH.
const ChromiumEnv = "ORDERGRID_CHROMIUM"

// ArtifactsEnv names the folder artifacts go to (screenshots in its
// screenshots/ folder).
const ArtifactsEnv = "ORDERGRID_ARTIFACTS_DIR"

//go:embed a11y.js
var a11yJS string

// Browser is one headless Chromium with one tab.
type Browser struct {
	ctx context.Context
	// viewport is the tab's size, CSS pixels.
	width, height int64
}

// Option configures Start.
type Option func(*Browser)

// Viewport sets the tab's size in CSS pixels (default 1280×800).
func Viewport(width, height int64) Option {
	return func(b *Browser) { b.width, b.height = width, height }
}

var (
	findOnce sync.Once
	found    string
	findErr  error
)

// Chromium returns the path of a Chromium binary, installing Debian's
// chromium package when none is found and the process runs as root. The
// search and install run once per test binary.
func Chromium(ctx context.Context) (string, error) {
	findOnce.Do(func() { found, findErr = findOrInstall(ctx) })
	return found, findErr
}

func lookChromium() string {
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func findOrInstall(ctx context.Context) (string, error) {
	if p := lookChromium(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("no Chromium found (set " + ChromiumEnv + " or install Debian's chromium package: apt-get install chromium); not root, so the test cannot install it")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("no Chromium found and no apt-get to install it with (set " + ChromiumEnv + ")")
	}
	ctx, cancel := context.WithTimeout(ctx, InstallTimeout)
	defer cancel()
	var last error
	for attempt := 1; attempt <= 3; attempt++ { // another apt-get may hold the lock for a while
		if last = aptInstall(ctx); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("installing chromium: %w (last attempt: %w)", ctx.Err(), last)
		case <-time.After(time.Duration(attempt) * 5 * time.Second):
		}
	}
	if last != nil {
		return "", fmt.Errorf("installing chromium with apt-get: %w", last)
	}
	if p := lookChromium(); p != "" {
		return p, nil
	}
	return "", errors.New("apt-get installed chromium, yet no chromium is on PATH")
}

func aptInstall(ctx context.Context) error {
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			tail := string(out)
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, tail)
		}
	}
	return nil
}

// Start launches a headless Chromium (--no-sandbox when root) for the test;
// it is stopped when the test ends. Under -short it skips the test.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("drives a real browser; skipped under -short")
	}
	b := &Browser{width: 1280, height: 800}
	for _, o := range opts {
		o(b)
	}
	path, err := Chromium(context.Background())
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	aopts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(int(b.width), int(b.height)), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"), chromedp.Flag("force-color-profile", "srgb"))
	if os.Geteuid() == 0 {
		aopts = append(aopts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), aopts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b.ctx = ctx
	// The first Run starts the browser: no timeout on it (it would stop the browser).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(b.width, b.height)); err != nil {
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return b
}

// Context is the tab's chromedp context, for actions the harness has no
// method for (chromedp.Run(b.Context(), ...)).
func (b *Browser) Context() context.Context { return b.ctx }

func (b *Browser) timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, d)
}

// SetHeaders sends these HTTP headers with every request the tab makes from
// now on (an ops page's bearer token).
func (b *Browser) SetHeaders(t testing.TB, headers map[string]string) {
	t.Helper()
	h := network.Headers{}
	for k, v := range headers {
		h[k] = v
	}
	ctx, cancel := b.timeout(ActionTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
		t.Fatalf("browsertest: setting headers: %v", err)
	}
}

// Open loads url and returns the HTTP status of the document.
func (b *Browser) Open(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := b.timeout(ActionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("browsertest: opening %s: %v", url, err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Eval runs a JavaScript expression in the page and decodes its value into
// out (nil: ignored). A promise is awaited.
func (b *Browser) Eval(t testing.TB, js string, out any) {
	t.Helper()
	ctx, cancel := b.timeout(ActionTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browsertest: evaluating %.80q: %v", js, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("browsertest: %.80q answered %s: %v", js, raw, err)
		}
	}
}

// Text is the text content of the first element selector matches ("" when
// none does).
func (b *Browser) Text(t testing.TB, selector string) string {
	t.Helper()
	var s string
	b.Eval(t, fmt.Sprintf(`(function(){var e=document.querySelector(%s);return e?e.textContent:""})()`, jsString(selector)), &s)
	return s
}

// WaitText waits until the text of the first element selector matches
// contains text, and returns how long that took; past timeout it fails the
// test, saying what the element held.
func (b *Browser) WaitText(t testing.TB, selector, text string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := b.timeout(timeout + ActionTimeout)
	defer cancel()
	expr := fmt.Sprintf(`(function(){var e=document.querySelector(%s);return !!e&&e.textContent.indexOf(%s)>=0})()`, jsString(selector), jsString(text))
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("browsertest: %s does not show %q within %s (it shows %q): %v", selector, text, timeout, b.Text(t, selector), err)
	}
	return took
}

var shotName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ArtifactsDir is where screenshots go: $ORDERGRID_ARTIFACTS_DIR/screenshots,
// else e2e/artifacts/screenshots at the module's root. It is made if missing.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := ""
	if d := os.Getenv(ArtifactsEnv); d != "" {
		dir = filepath.Join(d, "screenshots")
	} else {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("browsertest: %v", err)
		}
		dir = filepath.Join(root, "e2e", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// Screenshot saves the whole page as <ArtifactsDir>/<name>.png and returns
// the file's path.
func (b *Browser) Screenshot(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := b.timeout(ActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browsertest: screenshot %s: %v", name, err)
	}
	path := filepath.Join(ArtifactsDir(t), shotName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	t.Logf("screenshot %s", path)
	return path
}

// Accessibility is what CheckAccessibility found, each a line naming the
// element.
type Accessibility struct {
	// Unnamed are links, buttons and inputs with no accessible name.
	Unnamed []string
	// LowContrast is text under ContrastMin:1 against its effective
	// background.
	LowContrast []string
	// Unreachable are interactive elements Tab did not move focus to.
	Unreachable []string
	// NoFocusStyle are elements that took focus without a visible change
	// (an outline, a box shadow, a border or background).
	NoFocusStyle []string
	// Tabbable is how many elements the keyboard check went through.
	Tabbable int
}

// Problems lists every finding.
func (a Accessibility) Problems() []string {
	var out []string
	out = append(out, a.Unnamed...)
	out = append(out, a.LowContrast...)
	for _, s := range a.Unreachable {
		out = append(out, s+": Tab never focuses it")
	}
	for _, s := range a.NoFocusStyle {
		out = append(out, s+": no visible focus style")
	}
	return out
}

// Accessibility runs the check on the page as it is: every link, button
// and input has an accessible name; text contrasts at least ContrastMin:1
// with its background (from getComputedStyle); Tab, pressed as a user
// would, moves focus to every interactive element, each with a visible
// focus style. It moves the page's focus.
func (b *Browser) Accessibility(t testing.TB) Accessibility {
	t.Helper()
	var ok bool
	b.Eval(t, a11yJS, &ok)
	var a Accessibility
	b.Eval(t, "window.__a11y.names()", &a.Unnamed)
	b.Eval(t, fmt.Sprintf("window.__a11y.contrast(%v)", ContrastMin), &a.LowContrast)
	var tabbable []string
	b.Eval(t, "window.__a11y.tabbables()", &tabbable)
	if len(tabbable) > tabbablesMax {
		t.Fatalf("browsertest: %d interactive elements; the keyboard check goes through at most %d", len(tabbable), tabbablesMax)
	}
	a.Tabbable = len(tabbable)
	reached := make([]bool, len(tabbable))
	for i := 0; i < len(tabbable); i++ {
		ctx, cancel := b.timeout(ActionTimeout)
		err := chromedp.Do(ctx, chromedp.KeyEvent("\t"))
		cancel()
		if err != nil {
			t.Fatalf("browsertest: pressing Tab: %v", err)
		}
		var f struct {
			Idx     int    `json:"idx"`
			Visible bool   `json:"visible"`
			What    string `json:"what"`
		}
		b.Eval(t, "window.__a11y.focused()", &f)
		if f.Idx < 0 || f.Idx >= len(tabbable) || reached[f.Idx] {
			continue
		}
		reached[f.Idx] = true
		if !f.Visible {
			a.NoFocusStyle = append(a.NoFocusStyle, f.What)
		}
	}
	for i, r := range reached {
		if !r {
			a.Unreachable = append(a.Unreachable, tabbable[i])
		}
	}
	return a
}

// CheckAccessibility runs Accessibility and fails the test with every
// finding.
func (b *Browser) CheckAccessibility(t testing.TB) {
	t.Helper()
	a := b.Accessibility(t)
	if p := a.Problems(); len(p) > 0 {
		t.Errorf("accessibility: %d problems:\n  %s", len(p), strings.Join(p, "\n  "))
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
