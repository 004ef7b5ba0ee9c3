package main

import (
	"fmt"
	"time"

	"github.com/ordergrid/ordergrid/config"
	"github.com/ordergrid/ordergrid/risk"
	"github.com/ordergrid/ordergrid/screening"
)

// newScreener is the intake's screening of a node's configuration
// (holds.*): its address action, its risk model (the shipped one unless
// holds.risk_model names a file or is "off") and thresholds.
func newScreener(c config.Holds) (*screening.Screener, error) {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("holds.timezone: %w", err)
	}
	opts := screening.Options{Address: c.Address, AddressRefuse: c.AddressRefuse, RiskHold: c.RiskHold, RiskRefuse: c.RiskRefuse, Location: loc}
	switch c.RiskModel {
	case "":
		opts.Risk = risk.Default()
	case "off":
	default:
		if opts.Risk, err = risk.Load(c.RiskModel); err != nil {
			return nil, fmt.Errorf("holds.risk_model: %w", err)
		}
	}
	return screening.New(opts)
}
