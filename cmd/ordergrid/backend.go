package main

import (
	"context"
	"io"

	"github.com/ordergrid/ordergrid/actors"
	"github.com/ordergrid/ordergrid/catalog"
	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/gateway"
	"github.com/ordergrid/ordergrid/intake"
	"github.com/ordergrid/ordergrid/internal/gridpb"
	"github.com/ordergrid/ordergrid/ledger/checkpoint"
	"github.com/ordergrid/ordergrid/privacy"
	"github.com/ordergrid/ordergrid/retention"
	"github.com/ordergrid/ordergrid/rotation"
	"github.com/ordergrid/ordergrid/statemachine"
	"github.com/ordergrid/ordergrid/webhooks"
)

// backend is what the gateway serves from on a node: the intake pipeline,
// the channel workflow over the node's batches and its fetches, and the parts of the
// grid the API reads and administers, each over the node's partitions.
func backend(node *actors.Node, orders *intake.Pipeline, routes *catalog.Admin, keyring *privacy.Keyring, flow *intake.ChannelFlow,
	store *intake.ChannelStore, fetcher *intake.Fetcher, hooks *webhooks.Service) gateway.Backend {
	return gateway.Backend{
		Intake:         orders,
		ChannelFlow:    flow,
		Fetches:        fetcher,
		Grid:           node,
		Routing:        routes,
		PriceConflicts: store,
		KeyRotation:    rotation.NewRewrapper(node, keyring),
		Archives:       nodeArchives{node: node},
		Alerts:         node,
		Webhooks:       hooks,
	}
}

// nodeArchives are the archives of a node's retention (gateway.Archives).
type nodeArchives struct {
	node *actors.Node
}

func (a nodeArchives) ReadArchived(id string) (*gridpb.ArchivedOrderRecord, bool, error) {
	return retention.ReadArchived(retentionGrid(a), id)
}

func (a nodeArchives) VerifyArchive(r io.Reader, v *checkpoint.Verifier) (*gateway.VerifiedArchive, error) {
	va, err := retention.ReadArchive(r, v)
	if err != nil {
		return nil, err
	}
	return &gateway.VerifiedArchive{Orders: len(va.Orders), Statuses: va.Statuses,
		Restore: func(ctx context.Context, name, principal string) (int, error) {
			return retention.Restore(ctx, retentionGrid(a), va, name, principal)
		}}, nil
}

// retentionGrid is a node's partitions as the retention job reaches them.
type retentionGrid struct {
	node *actors.Node
}

func (g retentionGrid) Partitions() []retention.Partition {
	ps := g.node.Partitions()
	out := make([]retention.Partition, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

func (g retentionGrid) OrderPartition(id string) retention.Partition {
	return g.node.PartitionOf(actors.OrderKey(id))
}

// stageLimits are the stuck-order alerts' stage limits of the configuration.
func stageLimits(a config.Alerts) []statemachine.StageLimit {
	out := make([]statemachine.StageLimit, 0, len(a.Stages))
	for _, s := range a.Stages {
		out = append(out, statemachine.StageLimit{Status: s.Status, Limit: s.Limit, Name: s.Name})
	}
	return out
}
