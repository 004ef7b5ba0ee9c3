package actors

import (
	"fmt"
	"math/big"
	"strings"

	pb "github.com/ordergrid/ordergrid/proto/ordergrid/v1"
)

// OrderTotal is the sum of qty * unit_price, exact, with as many decimals as
// the most precise price.
func OrderTotal(lines []*pb.OrderLineInput) (string, error) {
	sum := new(big.Rat)
	scale := 0
	for _, l := range lines {
		p, ok := new(big.Rat).SetString(l.UnitPrice)
		if !ok {
			return "", fmt.Errorf("unit_price %q is not a decimal", l.UnitPrice)
		}
		if i := strings.IndexByte(l.UnitPrice, '.'); i >= 0 {
			scale = max(scale, len(l.UnitPrice)-i-1)
		}
		sum.Add(sum, p.Mul(p, new(big.Rat).SetInt64(l.Qty)))
	}
	return sum.FloatString(scale), nil
}
