package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ordergrid/ordergrid/cluster"
)

// pipeBytesMax is how many bytes one direction of a connection holds that
// its reader has not taken (bytes held back by a cut link included): past
// it the writer blocks, as a full TCP window does.
const pipeBytesMax = 4 << 20

// acceptBacklogMax is the number of dialed connections a listener holds
// that were not accepted yet; past it a dial is refused.
const acceptBacklogMax = 128

// ErrRefused is returned by a dial to an address nobody listens on (a
// stopped node), or to a listener whose backlog is full.
var ErrRefused = errors.New("clustertest: connection refused")

// Network is an in-memory network of hosts, named by their addresses.
// Connections are byte streams with deadlines, like TCP's; a link (one
// direction between two addresses) can be cut and healed:
//
//   - while a->b is cut, bytes a writes on a connection to b are held, not
//     lost: b reads them after the heal, as TCP retransmits them (a reader
//     waiting meanwhile times out at its deadline, as it would on TCP);
//   - a dial from a to b waits, within its context, until both a->b and
//     b->a are up (the handshake needs both), as a SYN does.
//
// So a cut in one direction stalls every exchange that needs an answer
// from the far side, which is what a one-way partition does to Raft over
// TCP. Reset closes every connection of an address, as a crash of its
// process does. The zero value is not usable: NewNetwork.
type Network struct {
	mu        sync.Mutex
	cut       map[link]bool
	listeners map[string]*listener
	pipes     map[*pipe]struct{}
	// down are the addresses whose process crashed: nothing reaches them
	// or leaves them, and a dial to one is refused.
	down map[string]bool
	// changed is closed and replaced on every cut and heal: waiters for a
	// link select on it.
	changed chan struct{}
}

type link struct{ from, to string }

// NewNetwork returns a network with every link up.
func NewNetwork() *Network {
	return &Network{cut: map[link]bool{}, listeners: map[string]*listener{}, pipes: map[*pipe]struct{}{},
		down: map[string]bool{}, changed: make(chan struct{})}
}

// Endpoint is the host at address's view of the network: it listens on
// address and dials from it. It is the cluster.Network of that host.
func (n *Network) Endpoint(address string) cluster.Network { return endpoint{n: n, self: address} }

// Cut cuts the link from -> to (one direction).
func (n *Network) Cut(from, to string) { n.setLink(from, to, true) }

// Heal heals the link from -> to.
func (n *Network) Heal(from, to string) { n.setLink(from, to, false) }

// Partition cuts both directions between a and b.
func (n *Network) Partition(a, b string) { n.Cut(a, b); n.Cut(b, a) }

// Join heals both directions between a and b.
func (n *Network) Join(a, b string) { n.Heal(a, b); n.Heal(b, a) }

// Isolate cuts both directions between address and every other of
// others.
func (n *Network) Isolate(address string, others []string) {
	for _, o := range others {
		if o != address {
			n.Partition(address, o)
		}
	}
}

// HealAll heals every link.
func (n *Network) HealAll() {
	n.mu.Lock()
	n.cut = map[link]bool{}
	n.notifyLocked()
	n.mu.Unlock()
}

// IsCut reports whether the link from -> to is cut.
func (n *Network) IsCut(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[link{from, to}]
}

// Reset closes every connection from or to address, as the crash of its
// process would: both ends' next reads and writes fail.
func (n *Network) Reset(address string) {
	n.mu.Lock()
	var doomed []*pipe
	for p := range n.pipes {
		if p.addr[0] == address || p.addr[1] == address {
			doomed = append(doomed, p)
		}
	}
	n.mu.Unlock()
	for _, p := range doomed {
		p.reset()
	}
}

// Crash takes address off the network as the crash of its process would:
// its connections are reset, dials to and from it are refused, until
// Revive. Its listener stays registered until its owner closes it.
func (n *Network) Crash(address string) {
	n.mu.Lock()
	n.down[address] = true
	n.notifyLocked()
	n.mu.Unlock()
	n.Reset(address)
}

// Revive puts a crashed address back on the network (its links as they
// were cut or not), for a restarted process to listen there again.
func (n *Network) Revive(address string) {
	n.mu.Lock()
	delete(n.down, address)
	n.notifyLocked()
	n.mu.Unlock()
}

func (n *Network) setLink(from, to string, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cut[link{from, to}] = true
	} else {
		delete(n.cut, link{from, to})
	}
	n.notifyLocked()
}

func (n *Network) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// up reports whether from -> to carries bytes, and returns the channel
// closed at the next change.
func (n *Network) up(from, to string) (bool, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.cut[link{from, to}] && !n.down[from] && !n.down[to], n.changed
}

type endpoint struct {
	n    *Network
	self string
}

func (e endpoint) Listen(address string) (net.Listener, error) {
	if address != e.self {
		return nil, fmt.Errorf("clustertest: %s cannot listen on %s", e.self, address)
	}
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if _, ok := e.n.listeners[address]; ok {
		return nil, fmt.Errorf("clustertest: listen %s: address in use", address)
	}
	l := &listener{n: e.n, addr: address, backlog: make(chan net.Conn, acceptBacklogMax), done: make(chan struct{})}
	e.n.listeners[address] = l
	return l, nil
}

func (e endpoint) Dial(ctx context.Context, address string) (net.Conn, error) {
	n := e.n
	for {
		n.mu.Lock()
		down := n.down[e.self] || n.down[address]
		n.mu.Unlock()
		if down {
			return nil, fmt.Errorf("clustertest: dial %s from %s: %w", address, e.self, ErrRefused)
		}
		there, changed := n.up(e.self, address)
		back, _ := n.up(address, e.self)
		if there && back {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("clustertest: dial %s from %s: %w", address, e.self, ctx.Err())
		case <-changed:
		}
	}
	n.mu.Lock()
	l := n.listeners[address]
	if l == nil || n.down[address] || n.down[e.self] {
		n.mu.Unlock()
		return nil, fmt.Errorf("clustertest: dial %s from %s: %w", address, e.self, ErrRefused)
	}
	p := newPipe(n, e.self, address)
	n.pipes[p] = struct{}{}
	n.mu.Unlock()
	select {
	case l.backlog <- &conn{p: p, end: 1}:
		return &conn{p: p, end: 0}, nil
	case <-l.done:
	default:
	}
	p.reset()
	return nil, fmt.Errorf("clustertest: dial %s from %s: %w", address, e.self, ErrRefused)
}

// listener is one address's listener.
type listener struct {
	n       *Network
	addr    string
	backlog chan net.Conn
	once    sync.Once
	done    chan struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.backlog:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		if l.n.listeners[l.addr] == l {
			delete(l.n.listeners, l.addr)
		}
		close(l.done)
		l.n.mu.Unlock()
		for {
			select {
			case c := <-l.backlog:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return addr(l.addr) }

// addr is an address on the network.
type addr string

func (a addr) Network() string { return "clustertest" }
func (a addr) String() string  { return string(a) }

// pipe is one connection: end 0 dialed from addr[0], end 1 accepted at
// addr[1]. buf[i] holds what end i wrote and end 1-i has not read.
type pipe struct {
	n    *Network
	addr [2]string

	mu      sync.Mutex
	buf     [2][]byte
	closed  [2]bool // end i was closed: it writes no more
	broken  bool    // the connection was reset: both ends fail
	readBy  [2]time.Time
	writeBy [2]time.Time
	// wake is closed and replaced on every change of the pipe.
	wake chan struct{}
}

func newPipe(n *Network, from, to string) *pipe {
	return &pipe{n: n, addr: [2]string{from, to}, wake: make(chan struct{})}
}

func (p *pipe) notifyLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// wait releases p.mu until the pipe or the network changes, or deadline
// (zero: none) passes; it holds p.mu again when it returns.
func (p *pipe) wait(deadline time.Time, netChanged <-chan struct{}) {
	wake := p.wake
	p.mu.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-wake:
	case <-netChanged:
	case <-timeout:
	}
	p.mu.Lock()
}

func (p *pipe) reset() {
	p.mu.Lock()
	p.broken = true
	p.closed = [2]bool{true, true}
	p.buf = [2][]byte{}
	p.notifyLocked()
	p.mu.Unlock()
	p.forget()
}

func (p *pipe) forget() {
	p.n.mu.Lock()
	delete(p.n.pipes, p)
	p.n.mu.Unlock()
}

func passed(deadline time.Time) bool { return !deadline.IsZero() && !time.Now().Before(deadline) }

// errReset is what a reset connection answers, like TCP's ECONNRESET.
var errReset = errors.New("clustertest: connection reset by peer")

// conn is one end of a pipe.
type conn struct {
	p   *pipe
	end int
}

func (c *conn) Read(b []byte) (int, error) {
	p, me, peer := c.p, c.end, 1-c.end
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.broken:
			return 0, errReset
		case p.closed[me]:
			return 0, net.ErrClosed
		}
		up, changed := p.n.up(p.addr[peer], p.addr[me])
		if up && len(p.buf[peer]) > 0 {
			k := copy(b, p.buf[peer])
			p.buf[peer] = p.buf[peer][k:]
			if len(p.buf[peer]) == 0 {
				p.buf[peer] = nil
			}
			p.notifyLocked()
			return k, nil
		}
		if up && p.closed[peer] {
			return 0, io.EOF
		}
		if passed(p.readBy[me]) {
			return 0, os.ErrDeadlineExceeded
		}
		p.wait(p.readBy[me], changed)
	}
}

func (c *conn) Write(b []byte) (int, error) {
	p, me, peer := c.p, c.end, 1-c.end
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for written < len(b) {
		switch {
		case p.broken || p.closed[peer]:
			return written, errReset
		case p.closed[me]:
			return written, net.ErrClosed
		case passed(p.writeBy[me]):
			return written, os.ErrDeadlineExceeded
		}
		if room := pipeBytesMax - len(p.buf[me]); room > 0 {
			k := min(room, len(b)-written)
			p.buf[me] = append(p.buf[me], b[written:written+k]...)
			written += k
			p.notifyLocked()
			continue
		}
		_, changed := p.n.up(p.addr[me], p.addr[peer])
		p.wait(p.writeBy[me], changed)
	}
	return written, nil
}

func (c *conn) Close() error {
	p := c.p
	p.mu.Lock()
	p.closed[c.end] = true
	both := p.closed[0] && p.closed[1]
	p.notifyLocked()
	p.mu.Unlock()
	if both {
		p.forget()
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return addr(c.p.addr[c.end]) }
func (c *conn) RemoteAddr() net.Addr { return addr(c.p.addr[1-c.end]) }

func (c *conn) SetDeadline(t time.Time) error {
	c.p.mu.Lock()
	c.p.readBy[c.end], c.p.writeBy[c.end] = t, t
	c.p.notifyLocked()
	c.p.mu.Unlock()
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.p.mu.Lock()
	c.p.readBy[c.end] = t
	c.p.notifyLocked()
	c.p.mu.Unlock()
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	c.p.mu.Lock()
	c.p.writeBy[c.end] = t
	c.p.notifyLocked()
	c.p.mu.Unlock()
	return nil
}
