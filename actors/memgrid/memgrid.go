// Package memgrid is an in-memory twin of the grid's placement API
// (actors.Node's PartitionOf and Partitions), for tests of code built on
// it: every partition is a statemachine.Machine over one in-memory Pebble
// database, keys placed as a cluster places them (cluster.PartitionIndex),
// and a proposed command is applied and committed at once, as a one-node
// grid commits it. There is no Raft, no network and no grain.
package memgrid

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/cluster"
	"github.com/ordergrid/ordergrid/failure"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/statemachine"
)

// Grid is a grid of in-memory partitions. Its methods are safe for
// concurrent use; commands apply one at a time.
type Grid struct {
	// Now stamps every proposed command. Default time.Now.
	Now func() time.Time

	mu    sync.Mutex // serializes applies
	db    *pebble.DB
	parts []*partition
	index uint64
}

// New returns a grid of n partitions (at least 1).
func New(n int) (*Grid, error) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("memgrid: %w", err)
	}
	g := &Grid{Now: time.Now, db: db}
	for id := range uint32(max(n, 1)) {
		prefix := binary.BigEndian.AppendUint32([]byte("p/"), id)
		prefix = append(prefix, '/')
		m, ok := statemachine.New(id, prefix).(*statemachine.Machine)
		if !ok {
			db.Close()
			return nil, fmt.Errorf("memgrid: statemachine.New is not a *statemachine.Machine")
		}
		g.parts = append(g.parts, &partition{g: g, id: id, prefix: prefix, m: m})
	}
	return g, nil
}

// Close releases the grid's database.
func (g *Grid) Close() error { return g.db.Close() }

// PartitionOf is the partition that owns key.
func (g *Grid) PartitionOf(key string) actors.Partition {
	return g.parts[cluster.PartitionIndex(key, len(g.parts))]
}

// Partitions are every partition.
func (g *Grid) Partitions() []actors.Partition {
	out := make([]actors.Partition, len(g.parts))
	for i, p := range g.parts {
		out[i] = p
	}
	return out
}

type partition struct {
	g      *Grid
	id     uint32
	prefix []byte
	m      *statemachine.Machine
}

func (p *partition) ID() uint32     { return p.id }
func (p *partition) Prefix() []byte { return p.prefix }

// Reader reads the committed state: every proposal is committed when it
// returns, so this is what a leader's read would see.
func (p *partition) Reader() statemachine.Reader { return cluster.LocalReader{R: p.g.db} }

// IsLeader is true: a memgrid is one node, leading every partition.
func (p *partition) IsLeader() bool { return true }

// Propose applies cmd and commits it, as Node's partitions do: a command
// larger than one Raft entry is refused as failure.TooLarge.
func (p *partition) Propose(ctx context.Context, principal string, cmd *gridpb.Command) (*statemachine.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	cmd.AtUnixNano = g.Now().UnixNano()
	cmd.Principal = principal
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("memgrid: marshal command: %w", err)
	}
	if len(data) > cluster.CommandBytesMax {
		return nil, failure.MarkTooLarge(fmt.Errorf("partition %d: %d bytes, at most %d: %w", p.id, len(data), cluster.CommandBytesMax, cluster.ErrCommandTooLarge))
	}
	b := g.db.NewIndexedBatch()
	defer b.Close()
	g.index++
	res := &statemachine.Result{}
	if err := proto.Unmarshal(p.m.Apply(b, g.index, data), res); err != nil {
		return nil, fmt.Errorf("memgrid: partition %d result: %w", p.id, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("memgrid: partition %d commit: %w", p.id, err)
	}
	return res, nil
}

// quiet drops Pebble's informational chatter; errors go to stderr, and a
// fatal one panics the test.
type quiet struct{}

func (quiet) Infof(string, ...any) {}
func (quiet) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "memgrid: pebble: "+format+"\n", args...)
}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("memgrid: pebble: "+format, args...))
}
