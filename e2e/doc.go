// Package e2e tests ordergrid end to end: it builds the real binary, runs
// nodes as separate processes on loopback with their own data directories,
// loads them over HTTP and gRPC, kills them (SIGKILL, SIGTERM) and audits what
// survives. It has no non-test code beyond this comment.
package e2e
