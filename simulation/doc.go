// Package simulation holds ordergrid's seeded simulation test
// (TestSimulation, in the spirit of TigerBeetle's simulator): a random
// sequence of operations on a three-node cluster twin
// (cluster/clustertest: real hashicorp/raft, real Pebble, the real state
// machine of package statemachine, one process, an in-memory network),
// checked against a model after every step.
//
// The operations are those of the write path below the grains, proposed
// through the cluster as the grains propose them: stock set per SKU and
// warehouse, new orders (a reserve_batch entry on the SKU's partition, then
// a create_order entry on the order's), retries of earlier orders with the
// same idempotency key (and with another request under it), order events,
// legal and illegal, with the stock action each owes (settle, then
// stock_synced); and faults: leadership transfers, links cut one way or
// both, a node isolated, a node crashed and restarted on its data
// directory. A call that fails (no leader, a cut link, a timeout) is
// retried with the same command until it has an answer, as a client
// retries with its idempotency key.
//
// After every step, on every replica: stock is conserved (for every SKU
// and warehouse pending and committed equal the replica's reservations in
// those states, and available = on_hand - pending - committed is never
// negative), and replicas that have applied the same index hold the same
// state (a hash of the partition's keys). On every partition's leader,
// after a barrier: the stock, the reservations and every acknowledged
// order equal the model's (no acknowledged order lost, no retry reserved
// twice). At the end, with every link healed and every node up, all
// replicas converge.
//
// Determinism: every choice (operation, SKU, quantity, node, fault) comes
// from one math/rand source seeded by the test's seed, which the test logs
// and $ORDERGRID_TEST_SEED replays; outcomes are checked against the
// model, so a replay takes the same choices. Raft's timers and goroutine
// scheduling stay the wall clock's: which node leads when, and how many
// attempts a call needs, may differ between replays of one seed. The
// number of steps is $ORDERGRID_SIM_STEPS (default stepsDefault).
//
// TestSimulationThroughIntake goes one layer up, as the gateway does: new
// orders in small concurrent batches (some retrying earlier keys, some
// twice in one batch) and order events go through intake.Pipeline and the
// grains of an actors.Node on node 0 of the twin (a process hosts one
// actors.Node; nodes 1 and 2 replicate only, and faults spare node 0), with
// the same checks after every step once the stock actions the grains owe
// are done (default intakeStepsDefault steps).
package simulation
