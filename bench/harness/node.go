package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nodeStartMax bounds the wait for a throwaway node to be ready.
const nodeStartMax = 90 * time.Second

// node is a throwaway single node the harness runs when given no URL.
type node struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	grpc string
	done chan struct{}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startNode builds (unless -ordergrid names a binary) and starts a single
// node on free ports with a fresh data directory.
func startNode(ctx context.Context, o *Options, stderr io.Writer) (*node, error) {
	dir, err := os.MkdirTemp("", "ordergrid-bench-")
	if err != nil {
		return nil, err
	}
	bin := o.NodeBinary
	if bin == "" {
		root, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(root)) == "" || strings.TrimSpace(string(root)) == os.DevNull {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("not inside the ordergrid module (go env GOMOD): run from the repository or pass -ordergrid BINARY or -url")
		}
		bin = filepath.Join(dir, "ordergrid")
		fmt.Fprintln(stderr, "bench: building ./cmd/ordergrid for a throwaway node")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ordergrid")
		build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("go build ./cmd/ordergrid: %v\n%s", err, out)
		}
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &node{dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d", httpPort), grpc: fmt.Sprintf("127.0.0.1:%d", grpcPort), done: make(chan struct{})}
	logFile, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--grpc-addr", n.grpc, "--log-level", "warn"}, o.NodeArgs...)
	n.cmd = exec.Command(bin, args...)
	if o.Token == "" {
		o.Token = throwawayToken()
	}
	n.cmd.Env = append(os.Environ(), "ORDERGRID_BOOTSTRAP_TOKEN="+o.Token)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = n.cmd.Wait(); logFile.Close(); close(n.done) }()
	fmt.Fprintf(stderr, "bench: throwaway node at %s (data and log in %s)\n", n.url, dir)
	deadline := time.Now().Add(nodeStartMax)
	for {
		select {
		case <-n.done:
			b, _ := os.ReadFile(filepath.Join(dir, "node.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the node exited:\n%s", b)
		default:
		}
		if resp, err := http.Get(n.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.stop()
			return nil, fmt.Errorf("the node was not ready within %s", nodeStartMax)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	os.RemoveAll(n.dir)
}
