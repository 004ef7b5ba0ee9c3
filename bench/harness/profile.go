package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// profileRun captures the node's CPU profile over most of the run and its
// allocation profile at the end, into dir (the node must serve
// /debug/pprof/, ordergrid serve --http-pprof; a throwaway node does when
// -profile is set). It returns the files written, or why not.
func profileRun(ctx context.Context, url, dir string, d time.Duration) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Skip the first quarter (warm-up), profile the next half at most.
	wait := d / 4
	secs := max(1, int((d / 2).Seconds()))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
	}
	client := &http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}
	fetch := func(path, name string) (string, error) {
		resp, err := client.Get(url + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s (start the node with --http-pprof)", path, resp.Status)
		}
		file := filepath.Join(dir, name)
		f, err := os.Create(file)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
			f.Close()
			return "", err
		}
		return file, f.Close()
	}
	cpu, err := fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof")
	if err != nil {
		return nil, err
	}
	allocs, err := fetch("/debug/pprof/allocs", "allocs.pprof")
	if err != nil {
		return []string{cpu}, err
	}
	return []string{cpu, allocs}, nil
}

// topOf is `go tool pprof -top` of a profile, when the go tool is there.
func topOf(file string, args ...string) string {
	cmd := exec.Command("go", append(append([]string{"tool", "pprof", "-top", "-nodecount=20"}, args...), file)...)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("(go tool pprof -top %s: %v)\n", file, err)
	}
	return string(out)
}
