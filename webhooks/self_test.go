package webhooks

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The delivery client refuses the node's own listen port on any address of
// this machine, whatever name led there; other ports are reached.
func TestDeliveryClientRefusesTheNodeItself(t *testing.T) {
	own := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the node's own address was called")
	}))
	defer own.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer other.Close()
	_, port, _ := net.SplitHostPort(own.Listener.Addr().String())
	s, err := New(nil, nil, Options{SecretKey: make([]byte, 32), Self: []string{"0.0.0.0:" + port}})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"http://127.0.0.1:" + port + "/", "http://localhost:" + port + "/", "http://[::1]:" + port + "/"} {
		resp, err := s.opts.Client.Get(url)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: reached", url)
		}
		if !errors.Is(err, ErrSelf) && !(url == "http://[::1]:"+port+"/" && isRefusedDial(err)) {
			t.Fatalf("%s: %v, want ErrSelf", url, err)
		}
	}
	resp, err := s.opts.Client.Get(other.URL)
	if err != nil {
		t.Fatalf("another port: %v", err)
	}
	resp.Body.Close()
	if err := refuseSelf([]hostPort{{host: "0.0.0.0", port: port}}, "127.0.0.1:"+port); !errors.Is(err, ErrSelf) {
		t.Fatalf("refuseSelf: %v", err)
	}
}

// isRefusedDial: [::1] may not be served on this machine (no IPv6 loopback):
// a refused connection is not a call either.
func isRefusedDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
