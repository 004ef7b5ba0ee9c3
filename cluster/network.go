package cluster

import (
	"context"
	"net"
)

// Network is the medium between hosts: a host listens on its RaftAddr and
// dials its peers' through it. Everything a host sends another (Raft's
// traffic and the internal RPC) crosses it, so a test that swaps it can cut
// links while Raft, the mux and the RPC stay the real ones.
type Network interface {
	// Listen accepts the connections peers dial to address.
	Listen(address string) (net.Listener, error)
	// Dial connects to the host listening on address, within ctx.
	Dial(ctx context.Context, address string) (net.Conn, error)
}

// TCPNetwork is the default Network: TCP through the operating system.
type TCPNetwork struct{}

// Listen listens on the TCP address.
func (TCPNetwork) Listen(address string) (net.Listener, error) { return net.Listen("tcp", address) }

// Dial connects to the TCP address.
func (TCPNetwork) Dial(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", address)
}
