// Package cluster runs ordergrid's replicated partitions: a fixed number of
// hashicorp/raft groups per node, whose logs, stable stores and state all live
// in one Pebble database, and whose traffic shares one TCP port.
//
// The port is reached through a Network (Options.Network): TCP by default;
// package cluster/clustertest puts several hosts in one process on an
// in-memory network whose links tests cut.
//
// The package knows nothing of orders or stock. A partition hands each
// committed command to a StateMachine that the domain supplies, the way
// hashicorp/raft hands log entries to an FSM. The state machine writes into a
// Pebble batch that the partition commits together with the applied Raft index,
// so a replayed entry is recognised and skipped: applying is exactly-once even
// though Raft may deliver an entry again after a restart.
//
// Key spaces in the database (every integer big-endian):
//
//	m/...                      node metadata (partition count)
//	r/{group u32}/l/{index u64} Raft log entries of one group
//	r/{group u32}/s/{key}       Raft stable store of one group
//	p/{group u32}/...           the group's state machine (StateMachine keys)
//	p/{group u32}/\x00applied   the last applied Raft index of the group
package cluster
