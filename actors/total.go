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

// AmountDue is what the buyer owes: total - discounts + tax + shipping,
// exact, with as many decimals as the most precise of them.
func AmountDue(total string, adjustments []*pb.Adjustment) (string, error) {
	due, ok := new(big.Rat).SetString(total)
	if !ok {
		return "", fmt.Errorf("total %q is not a decimal", total)
	}
	scale := decimals(total)
	for i, a := range adjustments {
		v, ok := new(big.Rat).SetString(a.Amount)
		if !ok {
			return "", fmt.Errorf("adjustments[%d].amount %q is not a decimal", i, a.Amount)
		}
		scale = max(scale, decimals(a.Amount))
		switch a.Kind {
		case "discount":
			due.Sub(due, v)
		case "tax", "shipping":
			due.Add(due, v)
		default:
			return "", fmt.Errorf("adjustments[%d].kind %q is not discount, tax or shipping", i, a.Kind)
		}
	}
	return due.FloatString(scale), nil
}

func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}
