package gateway

import (
	"context"
	"encoding/hex"
	"net/http"
	"sort"

	"github.com/ordergrid/ordergrid/cluster/clusterpb"
)

// ClusterAdmin is what the admin API needs of the node's partitions.
type ClusterAdmin interface {
	ClusterStatus(ctx context.Context, withHash bool) ([]*clusterpb.StatusResponse, map[string]error)
	AddVoter(ctx context.Context, id, raftAddr string) error
	RemoveServer(ctx context.Context, id string) error
}

type replicaView struct {
	Node         string `json:"node"`
	State        string `json:"state"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is the leader's commit index minus this replica's applied index.
	Lag       uint64 `json:"lag"`
	StateHash string `json:"state_hash,omitempty"`
}

type partitionView struct {
	ID          uint32        `json:"id"`
	Leader      string        `json:"leader"`
	Term        uint64        `json:"term"`
	CommitIndex uint64        `json:"commit_index"`
	Voters      []string      `json:"voters"`
	Replicas    []replicaView `json:"replicas"`
}

type memberView struct {
	ID        string `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

type clusterView struct {
	Node       string          `json:"node"`
	Members    []memberView    `json:"members"`
	Partitions []partitionView `json:"partitions"`
}

func (g *Gateway) getCluster(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "the cluster API"); p != nil {
		return p
	}
	if g.opts.Cluster == nil {
		return unavailable("no cluster")
	}
	statuses, errs := g.opts.Cluster.ClusterStatus(r.Context(), r.URL.Query().Get("state_hash") == "true")
	v := clusterView{Node: statuses[0].NodeId}
	for _, st := range statuses {
		v.Members = append(v.Members, memberView{ID: st.NodeId, RaftAddr: st.RaftAddr, Reachable: true})
	}
	for id, err := range errs {
		v.Members = append(v.Members, memberView{ID: id, Error: err.Error()})
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].ID < v.Members[j].ID })
	for i, local := range statuses[0].Partitions {
		pv := partitionView{ID: local.Id, Leader: local.LeaderId, Voters: local.Voters}
		for _, st := range statuses {
			if i >= len(st.Partitions) {
				continue
			}
			ps := st.Partitions[i]
			if ps.State == "Leader" {
				pv.Term, pv.CommitIndex = ps.Term, ps.CommitIndex
			}
			pv.Replicas = append(pv.Replicas, replicaView{Node: st.NodeId, State: ps.State, CommitIndex: ps.CommitIndex,
				AppliedIndex: ps.AppliedIndex, StateHash: hex.EncodeToString(ps.StateHash)})
		}
		for j := range pv.Replicas {
			if pv.CommitIndex > pv.Replicas[j].AppliedIndex {
				pv.Replicas[j].Lag = pv.CommitIndex - pv.Replicas[j].AppliedIndex
			}
		}
		v.Partitions = append(v.Partitions, pv)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (g *Gateway) postClusterNode(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "the cluster API"); p != nil {
		return p
	}
	var body struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
	}
	if p := g.decode(w, r, &body, false); p != nil {
		return p
	}
	var v violations
	v.name("id", body.ID)
	v.text("raft_addr", body.RaftAddr, true, 256)
	if len(v) > 0 {
		return invalid(v...)
	}
	if err := g.opts.Cluster.AddVoter(r.Context(), body.ID, body.RaftAddr); err != nil {
		return unavailable("adding " + body.ID + ": " + err.Error())
	}
	return g.getCluster(w, r)
}

func (g *Gateway) deleteClusterNode(w http.ResponseWriter, r *http.Request) *Problem {
	if p := allow(r.Context(), "the cluster API"); p != nil {
		return p
	}
	id := r.PathValue("id")
	if !namePattern.MatchString(id) {
		return notFound("node", id)
	}
	if err := g.opts.Cluster.RemoveServer(r.Context(), id); err != nil {
		return unavailable("removing " + id + ": " + err.Error())
	}
	return g.getCluster(w, r)
}
