package risk

import "math"

// The kinds of customer behind a synthetic order and the chance that each
// is labelled fraud or abuse. Benign lookalikes (resellers ordering in
// bulk, travellers paying from home) and mislabels keep the task from
// being trivially separable.
const (
	synthScalperShare  = 0.028
	synthTakeoverShare = 0.014
	synthResellerShare = 0.03
	synthTravelShare   = 0.04

	synthScalperPositive  = 0.85
	synthTakeoverPositive = 0.8
	synthResellerPositive = 0.04
	synthTravelPositive   = 0.03
	synthNormalPositive   = 0.006

	// synthSubtleShare is the share of scalpers who spread their orders
	// and look almost like ordinary customers.
	synthSubtleShare = 0.3
	// poissonStepsMax bounds the draw of one Poisson count.
	poissonStepsMax = 1000
)

// synthRand draws the synthetic data's distributions from SplitMix64.
type synthRand struct{ splitMix }

func (r *synthRand) chance(p float64) bool { return r.float() < p }

func (r *synthRand) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// normal draws a standard normal (Box–Muller).
func (r *synthRand) normal() float64 {
	u1 := 1 - r.float() // (0, 1]
	u2 := r.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

func (r *synthRand) logNormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*r.normal())
}

func (r *synthRand) exponential(mean float64) float64 { return -mean * math.Log(1-r.float()) }

// poisson draws a Poisson count of mean lambda (Knuth; lambda is small here).
func (r *synthRand) poisson(lambda float64) float64 {
	limit := math.Exp(-lambda)
	p := 1.0
	for k := range poissonStepsMax {
		p *= r.float()
		if p <= limit {
			return float64(k)
		}
	}
	return poissonStepsMax
}

// pick returns an index drawn with the given weights.
func (r *synthRand) pick(weights []float64) int {
	var total float64
	for _, w := range weights {
		total += w
	}
	u := r.float() * total
	for i, w := range weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(weights) - 1
}

// synthChannels are the channels of synthetic orders ("lazada" scores as
// other) and their weights for ordinary customers, scalpers and takeovers.
var (
	synthChannels        = []string{"douyin", "kuaishou", "tmall", "taobao", "jd", "pinduoduo", "xiaohongshu", "wechat", "pos", "b2b", "shopify", "api", "lazada"}
	synthChannelNormal   = []float64{14, 8, 16, 16, 12, 12, 5, 6, 4, 1, 3, 2, 1}
	synthChannelScalper  = []float64{18, 10, 4, 10, 4, 22, 4, 4, 0.5, 0.5, 4, 18, 1}
	synthChannelTakeover = []float64{6, 3, 20, 18, 20, 6, 4, 10, 1, 1, 8, 2, 1}
	synthChannelReseller = []float64{2, 1, 4, 4, 4, 4, 0, 4, 20, 40, 5, 12, 0}
)

// daytimeHour draws a local hour weighted to the day and evening.
var daytimeWeights = []float64{2, 1, 0.6, 0.4, 0.4, 0.6, 1.5, 3, 5, 6, 7, 7, 7, 6, 6, 6, 6, 6, 7, 8, 10, 11, 9, 5}

func round(x, unit float64) float64 { return math.Round(x/unit) * unit }

// Synthetic returns n labelled synthetic orders drawn with the seed: mostly
// ordinary customers, with scalpers (many orders an hour, young accounts,
// devices and addresses shared by many customers, night hours, hot SKUs
// under sale pressure), account takeovers (an amount far above the
// customer's mean, a payer in another region), and benign lookalikes
// (bulk resellers, travellers). About 4–5% are positive, and labels are
// noisy enough that a good model's held-out ROC AUC is about 0.9. The same
// seed and n always give the same examples; n is clamped to 0..ExamplesMax.
func Synthetic(seed int64, n int) []Example {
	n = min(max(n, 0), ExamplesMax)
	r := &synthRand{newSplitMix(seed)}
	out := make([]Example, n)
	for i := range out {
		out[i] = r.example()
	}
	return out
}

func (r *synthRand) example() Example {
	var f Features
	var positive float64
	u := r.float()
	switch {
	case u < synthScalperShare:
		r.scalper(&f)
		positive = synthScalperPositive
	case u < synthScalperShare+synthTakeoverShare:
		r.takeover(&f)
		positive = synthTakeoverPositive
	case u < synthScalperShare+synthTakeoverShare+synthResellerShare:
		r.reseller(&f)
		positive = synthResellerPositive
	case u < synthScalperShare+synthTakeoverShare+synthResellerShare+synthTravelShare:
		r.ordinary(&f)
		f.RegionMismatch = r.chance(0.9)
		if !f.FirstOrder {
			f.AmountRatio = r.logNormal(2.5, 0.6)
		}
		positive = synthTravelPositive
	default:
		r.ordinary(&f)
		positive = synthNormalPositive
	}
	f.Amount = round(f.Amount, 0.01)
	f.AmountRatio = round(f.AmountRatio, 0.0001)
	f.SKUPressure = round(f.SKUPressure, 0.0001)
	f.CustomerAgeHours = round(f.CustomerAgeHours, 0.1)
	return Example{Features: f, Label: r.chance(positive)}
}

func (r *synthRand) history(f *Features, firstChance, ageMeanHours float64) {
	f.FirstOrder = r.chance(firstChance)
	f.AmountRatio = 1
	if !f.FirstOrder {
		f.CustomerAgeHours = 1 + r.exponential(ageMeanHours)
	}
}

func (r *synthRand) ordinary(f *Features) {
	r.history(f, 0.12, 3000)
	f.CustomerOrders1h = r.poisson(0.05)
	f.CustomerOrders24h = f.CustomerOrders1h + r.poisson(0.3)
	if !r.chance(0.1) {
		f.DeviceCustomers = 1 + r.poisson(0.2)
	}
	f.AddressCustomers = 1 + r.poisson(0.3)
	f.Amount = r.logNormal(120, 0.8)
	if !f.FirstOrder {
		f.AmountRatio = r.logNormal(1, 0.35)
	}
	f.Channel = synthChannels[r.pick(synthChannelNormal)]
	f.RegionMismatch = r.chance(0.04)
	f.HourOfDay = r.pick(daytimeWeights)
	if r.chance(0.15) { // a flash sale
		f.SKUPressure = r.uniform(0.05, 0.5)
	} else {
		f.SKUPressure = r.exponential(0.01)
	}
}

func (r *synthRand) scalper(f *Features) {
	r.history(f, 0.4, 48)
	subtle := r.chance(synthSubtleShare)
	if subtle {
		f.CustomerOrders1h = 1 + r.poisson(1.5)
		f.CustomerOrders24h = f.CustomerOrders1h + r.poisson(3)
		f.DeviceCustomers = 1 + r.poisson(1.5)
		f.AddressCustomers = 1 + r.poisson(1)
	} else {
		f.CustomerOrders1h = 3 + r.poisson(8)
		f.CustomerOrders24h = f.CustomerOrders1h + r.poisson(15)
		f.DeviceCustomers = 3 + r.poisson(10)
		f.AddressCustomers = 2 + r.poisson(6)
	}
	if r.chance(0.15) {
		f.DeviceCustomers = 0 // unknown device
	}
	f.Amount = r.logNormal(200, 0.6)
	if !f.FirstOrder {
		f.AmountRatio = r.logNormal(1, 0.3)
	}
	f.Channel = synthChannels[r.pick(synthChannelScalper)]
	f.RegionMismatch = r.chance(0.1)
	if r.chance(0.55) {
		f.HourOfDay = int(r.uniform(0, 6))
	} else {
		f.HourOfDay = int(r.uniform(0, 24))
	}
	f.SKUPressure = r.uniform(0.2, 1.2)
	if subtle && r.chance(0.5) {
		f.SKUPressure = r.uniform(0.02, 0.5)
	}
}

func (r *synthRand) takeover(f *Features) {
	r.history(f, 0, 5000)
	f.CustomerOrders1h = r.poisson(0.5)
	f.CustomerOrders24h = f.CustomerOrders1h + r.poisson(1)
	if !r.chance(0.5) {
		f.DeviceCustomers = 1 + r.poisson(1)
	}
	f.AddressCustomers = 1 + r.poisson(2)
	f.Amount = r.logNormal(900, 0.7)
	f.AmountRatio = r.logNormal(6, 0.6)
	f.Channel = synthChannels[r.pick(synthChannelTakeover)]
	f.RegionMismatch = r.chance(0.7)
	f.HourOfDay = int(r.uniform(0, 24))
	f.SKUPressure = r.exponential(0.02)
}

func (r *synthRand) reseller(f *Features) {
	r.history(f, 0.02, 4000)
	f.CustomerOrders1h = r.poisson(4)
	f.CustomerOrders24h = f.CustomerOrders1h + r.poisson(20)
	f.DeviceCustomers = 1 + r.poisson(3)
	f.AddressCustomers = 1 + r.poisson(4)
	f.Amount = r.logNormal(2000, 1)
	if !f.FirstOrder {
		f.AmountRatio = r.logNormal(1, 0.5)
	}
	f.Channel = synthChannels[r.pick(synthChannelReseller)]
	f.RegionMismatch = r.chance(0.05)
	f.HourOfDay = r.pick(daytimeWeights)
	f.SKUPressure = r.uniform(0, 0.4)
}
