package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// muxHeaderTimeout bounds how long an accepted connection may take to name
// its Raft group before it is dropped.
const muxHeaderTimeout = 5 * time.Second

// muxAcceptBacklog is the number of accepted, not yet taken connections a
// group may hold.
const muxAcceptBacklog = 64

// Mux serves every Raft group of a node on one TCP listener. A dialer writes
// the 4-byte big-endian group id first; the mux hands the connection to that
// group's StreamLayer.
type Mux struct {
	ln     net.Listener
	logger *slog.Logger
	// Dial opens connections to other muxes; nil: a net.Dialer.
	Dial func(ctx context.Context, address string) (net.Conn, error)

	mu     sync.Mutex
	groups map[uint32]*muxLayer
	closed bool
}

// ListenMux listens on addr ("host:port") over TCP.
func ListenMux(addr string, logger *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft mux: listen %s: %w", addr, err)
	}
	return ServeMux(ln, logger), nil
}

// ServeMux serves the groups on ln, which it closes when it is closed.
func ServeMux(ln net.Listener, logger *slog.Logger) *Mux {
	m := &Mux{ln: ln, logger: logger, groups: make(map[uint32]*muxLayer)}
	go m.acceptLoop()
	return m
}

// Addr is the listening address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops listening and closes every group's layer.
func (m *Mux) Close() error {
	m.mu.Lock()
	m.closed = true
	layers := make([]*muxLayer, 0, len(m.groups))
	for _, l := range m.groups {
		layers = append(layers, l)
	}
	m.mu.Unlock()
	for _, l := range layers {
		l.Close()
	}
	return m.ln.Close()
}

// Layer returns the StreamLayer of group, registering it.
func (m *Mux) Layer(group uint32) (raft.StreamLayer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, net.ErrClosed
	}
	if _, ok := m.groups[group]; ok {
		return nil, fmt.Errorf("raft mux: group %d registered twice", group)
	}
	l := &muxLayer{mux: m, group: group, conns: make(chan net.Conn, muxAcceptBacklog), done: make(chan struct{})}
	m.groups[group] = l
	return l, nil
}

func (m *Mux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.logger.Warn("raft mux: accept", slog.Any("error", err))
			}
			return
		}
		go m.route(c)
	}
}

func (m *Mux) route(c net.Conn) {
	var hdr [4]byte
	_ = c.SetReadDeadline(time.Now().Add(muxHeaderTimeout))
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	group := binary.BigEndian.Uint32(hdr[:])
	m.mu.Lock()
	l := m.groups[group]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("raft mux: connection for unknown group", slog.Uint64("group", uint64(group)), slog.String("remote", c.RemoteAddr().String()))
		c.Close()
		return
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	case <-time.After(muxHeaderTimeout):
		m.logger.Warn("raft mux: group backlog full", slog.Uint64("group", uint64(group)))
		c.Close()
	}
}

type muxLayer struct {
	mux   *Mux
	group uint32
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *muxLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *muxLayer) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.mux.mu.Lock()
		delete(l.mux.groups, l.group)
		l.mux.mu.Unlock()
	})
	return nil
}

func (l *muxLayer) Addr() net.Addr { return l.mux.Addr() }

func (l *muxLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var err error
	if dial := l.mux.Dial; dial != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c, err = dial(ctx, string(address))
		cancel()
	} else {
		c, err = net.DialTimeout("tcp", string(address), timeout)
	}
	if err != nil {
		return nil, err
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], l.group)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(hdr[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}
