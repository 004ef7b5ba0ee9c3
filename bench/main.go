// Command bench is ordergrid's load harness (package bench/harness): run
// `go run ./bench -h` for the scenarios and flags.
package main

import (
	"os"

	"github.com/ordergrid/ordergrid/bench/harness"
)

func main() { os.Exit(harness.Main(os.Args[1:], os.Stdout, os.Stderr)) }
