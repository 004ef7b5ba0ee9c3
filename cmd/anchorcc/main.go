// Command anchorcc serves the ledger's anchoring chaincode (ledger/anchorcc)
// as chaincode-as-a-service: the Fabric peer connects to it. It reads
// CHAINCODE_ID (the package id from `peer lifecycle chaincode install`) and
// CHAINCODE_SERVER_ADDRESS (host:port to listen on), as Fabric's ccaas
// builder expects. scripts/fabric-up.sh starts it.
package main

import (
	"fmt"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/ordergrid/ordergrid/ledger/anchorcc"
)

func main() {
	id, addr := os.Getenv("CHAINCODE_ID"), os.Getenv("CHAINCODE_SERVER_ADDRESS")
	if id == "" || addr == "" {
		fmt.Fprintln(os.Stderr, "anchorcc: set CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS")
		os.Exit(2)
	}
	cc, err := anchorcc.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "anchorcc:", err)
		os.Exit(1)
	}
	srv := &shim.ChaincodeServer{CCID: id, Address: addr, CC: cc, TLSProps: shim.TLSProperties{Disabled: true}}
	fmt.Fprintf(os.Stderr, "anchorcc: serving %s on %s\n", id, addr)
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "anchorcc:", err)
		os.Exit(1)
	}
}
