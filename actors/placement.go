package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	actorcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// MetaActorAddr is the key under which a node publishes its actor address
// in its partition status, so peers can place grains on it.
const MetaActorAddr = "actor_addr"

const (
	placementActorName = "ordergrid-placement"
	// activationTimeout bounds one activation request to a member.
	activationTimeout = 5 * time.Second
	// rehomeInterval is how often a node hands grains whose partition is
	// now led elsewhere back to be activated there.
	rehomeInterval = 2 * time.Second
	// peerRefreshInterval is how often the node id -> actor address map is
	// refreshed from the peers' status.
	peerRefreshInterval = 2 * time.Second
)

// placement is ordergrid's identity lookup (a Proto.Actor IdentityLookup).
// It activates a grain on the member that leads the grain's partition, so
// the grain's reads and proposals stay on that node, and falls back to a
// rendezvous hash over the members while the leader's member is unknown.
//
// Unlike the disthash lookup it replaces, it forgets a terminated grain in
// O(1) and broadcasts nothing: a caller still holding the old PID gets a
// dead letter, and Proto.Actor's request loop drops it from its cache and
// asks again. Two members may briefly disagree on an owner during a
// leadership change; the partition's state machine judges every command, so
// two activations can never commit a conflict.
type placement struct {
	node    *Node
	cluster *actorcluster.Cluster
	pid     *actor.PID
	sub     *eventstream.Subscription
	stop    chan struct{}
	done    sync.WaitGroup
	once    sync.Once

	mu      sync.RWMutex
	members map[string]bool // actor addresses in the topology
	rdv     *actorcluster.Rendezvous
	addrs   map[string]string // node id -> actor address
}

var _ actorcluster.IdentityLookup = (*placement)(nil)

func newPlacement(n *Node) *placement {
	return &placement{node: n, rdv: actorcluster.NewRendezvous(), members: map[string]bool{}, addrs: map[string]string{}, stop: make(chan struct{})}
}

// Setup implements actorcluster.IdentityLookup.
func (p *placement) Setup(c *actorcluster.Cluster, _ []string, _ bool) {
	p.cluster = c
	p.addrs[p.node.host.NodeID()] = c.ActorSystem.Address()
	props := actor.PropsFromProducer(func() actor.Actor {
		return &placementActor{p: p, byKey: map[string]*actor.PID{}, byPID: map[string]*actorcluster.ClusterIdentity{}}
	})
	p.pid, _ = c.ActorSystem.Root.SpawnNamed(props, placementActorName)
	p.sub = c.ActorSystem.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*actorcluster.ClusterTopology); ok {
			p.onTopology(t)
		}
	})
	p.done.Add(1)
	go p.loop()
}

// Shutdown implements actorcluster.IdentityLookup. Proto.Actor may call it
// more than once.
func (p *placement) Shutdown() {
	p.once.Do(func() {
		close(p.stop)
		p.done.Wait()
		p.cluster.ActorSystem.EventStream.Unsubscribe(p.sub)
		_ = p.cluster.ActorSystem.Root.PoisonFuture(p.pid).Wait()
	})
}

func (p *placement) onTopology(t *actorcluster.ClusterTopology) {
	members := make(map[string]bool, len(t.Members))
	for _, m := range t.Members {
		members[m.Address()] = true
	}
	p.mu.Lock()
	p.members = members
	p.rdv.UpdateMembers(t.Members)
	p.mu.Unlock()
}

// loop refreshes the node id -> actor address map and asks the placement
// actor to hand back grains whose partition moved.
func (p *placement) loop() {
	defer p.done.Done()
	refresh := time.NewTicker(peerRefreshInterval)
	rehome := time.NewTicker(rehomeInterval)
	defer refresh.Stop()
	defer rehome.Stop()
	p.refreshAddrs()
	for {
		select {
		case <-p.stop:
			return
		case <-refresh.C:
			p.refreshAddrs()
		case <-rehome.C:
			p.cluster.ActorSystem.Root.Send(p.pid, rehomeTick{})
		}
	}
}

func (p *placement) refreshAddrs() {
	ctx, cancel := context.WithTimeout(context.Background(), peerRefreshInterval)
	defer cancel()
	statuses, _ := p.node.host.ClusterStatus(ctx, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range statuses {
		if a := st.Meta[MetaActorAddr]; a != "" {
			p.addrs[st.NodeId] = a
		}
	}
}

// owner is the actor address of the member that should host ci.
func (p *placement) owner(ci *actorcluster.ClusterIdentity) string {
	var leader string
	switch ci.Kind {
	case "SkuGrain":
		leader = p.node.skuPartition(ci.Identity).LeaderID()
	case "OrderGrain":
		leader = p.node.orderPartition(ci.Identity).LeaderID()
	case "SubjectGrain":
		leader = p.node.subjectPartition(ci.Identity).LeaderID()
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if addr := p.addrs[leader]; addr != "" && p.members[addr] {
		return addr
	}
	return p.rdv.GetByClusterIdentity(ci)
}

// Get implements actorcluster.IdentityLookup: the PID of ci's activation,
// activating it on its owner if needed; nil when that fails (the caller retries).
func (p *placement) Get(ci *actorcluster.ClusterIdentity) *actor.PID {
	owner := p.owner(ci)
	if owner == "" {
		return nil
	}
	res, err := p.cluster.ActorSystem.Root.RequestFuture(actor.NewPID(owner, placementActorName),
		&actorcluster.ActivationRequest{ClusterIdentity: ci}, activationTimeout).Result()
	if err != nil {
		return nil
	}
	r, ok := res.(*actorcluster.ActivationResponse)
	if !ok || r.Failed {
		return nil
	}
	return r.Pid
}

// RemovePid implements actorcluster.IdentityLookup. Activations are
// forgotten by their owner when they terminate; nothing to do here.
func (p *placement) RemovePid(*actorcluster.ClusterIdentity, *actor.PID) {}

type rehomeTick struct{}

// placementActor owns the activations of one member. Its children are the
// grains, so it sees each one terminate.
type placementActor struct {
	p     *placement
	byKey map[string]*actor.PID
	byPID map[string]*actorcluster.ClusterIdentity
}

func (a *placementActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actorcluster.ActivationRequest:
		ctx.Respond(a.activate(ctx, m.ClusterIdentity))
	case *actor.Terminated:
		if ci, ok := a.byPID[m.Who.Id]; ok {
			delete(a.byPID, m.Who.Id)
			delete(a.byKey, ci.AsKey())
			if k, ok := a.p.cluster.TryGetClusterKind(ci.Kind); ok {
				k.Dec()
			}
		}
	case rehomeTick:
		self := a.p.cluster.ActorSystem.Address()
		for _, ci := range a.byPID {
			if owner := a.p.owner(ci); owner != "" && owner != self {
				ctx.Poison(a.byKey[ci.AsKey()])
			}
		}
	case *actor.Stopping:
		for _, pid := range a.byKey {
			ctx.Poison(pid)
		}
	}
}

func (a *placementActor) activate(ctx actor.Context, ci *actorcluster.ClusterIdentity) *actorcluster.ActivationResponse {
	key := ci.AsKey()
	if pid, ok := a.byKey[key]; ok {
		return &actorcluster.ActivationResponse{Pid: pid}
	}
	kind, ok := a.p.cluster.TryGetClusterKind(ci.Kind)
	if !ok {
		ctx.Logger().Error("activation of an unknown kind", slog.String("kind", ci.Kind))
		return &actorcluster.ActivationResponse{Failed: true}
	}
	pid, err := ctx.SpawnNamed(actorcluster.WithClusterIdentity(kind.Props, ci), ci.Identity+"$"+ci.Kind)
	if err != nil {
		ctx.Logger().Error("activation failed", slog.String("identity", key), slog.Any("error", err))
		return &actorcluster.ActivationResponse{Failed: true}
	}
	kind.Inc()
	a.byKey[key] = pid
	a.byPID[pid.Id] = ci
	return &actorcluster.ActivationResponse{Pid: pid}
}
