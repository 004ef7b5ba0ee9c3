package browsertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

const goodPage = `<!doctype html><html lang="en"><head><style>
button:focus-visible, a:focus-visible, input:focus-visible { outline: 3px solid #000; }
</style></head><body><h1>Good</h1><p id="msg">waiting</p>
<label for="q">Search</label> <input id="q"> <button type="button">Go</button> <a href="#x">More</a>
<script>setTimeout(function(){document.getElementById("msg").textContent="ready"},100)</script></body></html>`

const badPage = `<!doctype html><html lang="en"><head><style>
*:focus { outline: none; }
.pale { color: #aaaaaa; }
.dark { background: #222; color: #444; }
</style></head><body><p class="pale">faint text</p><div class="dark"><span>dark on dark</span></div>
<input id="nameless"> <button type="button"></button> <a href="#y">Link</a>
<div id="hidden" style="display:none"><button>hidden</button></div></body></html>`

func TestHarness(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/good":
			io.WriteString(w, goodPage)
		case "/bad":
			io.WriteString(w, badPage)
		case "/header":
			io.WriteString(w, `<!doctype html><html lang="en"><body><p id="h">`+r.Header.Get("X-Test")+`</p></body></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv(ArtifactsEnv, t.TempDir())
	b := Start(t, Viewport(360, 740))

	if code := b.Open(t, srv.URL+"/good"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if took := b.WaitText(t, "#msg", "ready", 5*time.Second); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	a := b.Accessibility(t)
	if p := a.Problems(); len(p) > 0 || a.Tabbable != 3 {
		t.Errorf("good page: %d tabbable, problems %v", a.Tabbable, p)
	}
	shot := b.Screenshot(t, "harness good/page")
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 || !strings.HasSuffix(shot, "harness_good_page.png") {
		t.Errorf("screenshot %s: %v", shot, err)
	}

	b.Open(t, srv.URL+"/bad")
	a = b.Accessibility(t)
	if len(a.Unnamed) != 2 || !strings.Contains(strings.Join(a.Unnamed, " "), "input#nameless") {
		t.Errorf("unnamed: %v", a.Unnamed)
	}
	if len(a.LowContrast) != 2 || !strings.Contains(a.LowContrast[0], "p.pale") || !strings.Contains(a.LowContrast[1], "dark on dark") {
		t.Errorf("low contrast: %v", a.LowContrast)
	}
	if a.Tabbable != 3 || len(a.NoFocusStyle) != 3 || len(a.Unreachable) != 0 {
		t.Errorf("keyboard: %d tabbable, no focus style %v, unreachable %v", a.Tabbable, a.NoFocusStyle, a.Unreachable)
	}

	b.SetHeaders(t, map[string]string{"X-Test": "sent"})
	b.Open(t, srv.URL+"/header")
	if got := b.Text(t, "#h"); got != "sent" {
		t.Errorf("header: %q", got)
	}
	if code := b.Open(t, srv.URL+"/nope"); code != http.StatusNotFound {
		t.Errorf("missing page: %d", code)
	}
}
