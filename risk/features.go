package risk

import (
	"fmt"
	"math"
)

// FieldError names the field of an input that is wrong. Field is the JSON
// name, with a path for nested fields ("features.hour_of_day",
// "trees[3].nodes[5].left").
type FieldError struct {
	Field  string
	Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// fieldErr builds a *FieldError with a formatted detail.
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// prefixed returns err with prefix+"." in front of its field when err is a
// *FieldError, and err unchanged otherwise.
func prefixed(prefix string, err error) error {
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Field: prefix + "." + fe.Field, Detail: fe.Detail}
	}
	return err
}

// Channels is the fixed list of sales channels the model knows, in the
// order of their one-hot columns. Any other channel scores as ChannelOther.
var Channels = [...]string{"douyin", "kuaishou", "tmall", "taobao", "jd", "pinduoduo", "xiaohongshu", "wechat", "pos", "b2b", "shopify", "api"}

// ChannelOther is the channel column of every channel not in Channels.
const ChannelOther = "other"

// ChannelBytesMax bounds the length of Features.Channel.
const ChannelBytesMax = 64

// Columns of the model's input vector, in order: the numeric and boolean
// features, then one column per channel (Channels, then ChannelOther).
const (
	colCustomerAgeHours = iota
	colCustomerOrders1h
	colCustomerOrders24h
	colDeviceCustomers
	colAddressCustomers
	colAmount
	colAmountRatio
	colRegionMismatch
	colHourOfDay
	colSKUPressure
	colFirstOrder
	colChannel0 // first channel column
)

// plainNames are the JSON names of the columns before the channel ones.
var plainNames = [colChannel0]string{"customer_age_hours", "customer_orders_1h", "customer_orders_24h", "device_customers",
	"address_customers", "amount", "amount_ratio", "region_mismatch", "hour_of_day", "sku_pressure", "first_order"}

// ColumnCount is the number of the model's input columns: len(FeatureNames()).
const ColumnCount = colChannel0 + len(Channels) + 1

// featureCount is the number of features a reviewer sees: the plain
// columns and one "channel".
const featureCount = colChannel0 + 1

// channelFeature is the name under which Explain groups the channel columns.
const channelFeature = "channel"

// Features are what the model knows of one order: counts and flags about
// the order, its customer, device and address, nothing personal.
type Features struct {
	// CustomerAgeHours is the hours since the customer's first order (0 for a first order).
	CustomerAgeHours float64 `json:"customer_age_hours"`
	// CustomerOrders1h is the customer's orders in the hour before this one.
	CustomerOrders1h float64 `json:"customer_orders_1h"`
	// CustomerOrders24h is the customer's orders in the day before this one.
	CustomerOrders24h float64 `json:"customer_orders_24h"`
	// DeviceCustomers is how many distinct customers used this order's device (0 if unknown).
	DeviceCustomers float64 `json:"device_customers"`
	// AddressCustomers is how many distinct customers used this delivery address.
	AddressCustomers float64 `json:"address_customers"`
	// Amount is the order total in the currency's major unit.
	Amount float64 `json:"amount"`
	// AmountRatio is Amount over the customer's mean order amount (1 with no history).
	AmountRatio float64 `json:"amount_ratio"`
	// Channel is the sales channel, one of Channels; anything else scores as ChannelOther.
	Channel string `json:"channel"`
	// RegionMismatch: the payer's region differs from the delivery region.
	RegionMismatch bool `json:"region_mismatch"`
	// HourOfDay is the order's local hour, 0..23.
	HourOfDay int `json:"hour_of_day"`
	// SKUPressure is the fraction of the order's hottest SKU's stock taken
	// in the last minute (0..1, more when stock was added during the minute).
	SKUPressure float64 `json:"sku_pressure"`
	// FirstOrder: this is the customer's first order.
	FirstOrder bool `json:"first_order"`
}

// FeatureNames returns the model's input columns in order: the JSON names of
// the numeric and boolean features, then "channel=douyin" … "channel=api",
// "channel=other". It returns a new slice on each call.
func FeatureNames() []string {
	names := make([]string, 0, ColumnCount)
	names = append(names, plainNames[:]...)
	for _, c := range Channels {
		names = append(names, channelFeature+"="+c)
	}
	return append(names, channelFeature+"="+ChannelOther)
}

// channelIndex is the index of ch in Channels, or len(Channels) for other.
func channelIndex(ch string) int {
	switch ch {
	case "douyin":
		return 0
	case "kuaishou":
		return 1
	case "tmall":
		return 2
	case "taobao":
		return 3
	case "jd":
		return 4
	case "pinduoduo":
		return 5
	case "xiaohongshu":
		return 6
	case "wechat":
		return 7
	case "pos":
		return 8
	case "b2b":
		return 9
	case "shopify":
		return 10
	case "api":
		return 11
	}
	return len(Channels)
}

// ChannelColumn returns the channel Features.Channel scores as: itself when
// it is one of Channels, ChannelOther otherwise.
func ChannelColumn(ch string) string {
	if i := channelIndex(ch); i < len(Channels) {
		return Channels[i]
	}
	return ChannelOther
}

func boolColumn(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fill writes f's columns into x.
func (f *Features) fill(x *[ColumnCount]float64) {
	x[colCustomerAgeHours] = f.CustomerAgeHours
	x[colCustomerOrders1h] = f.CustomerOrders1h
	x[colCustomerOrders24h] = f.CustomerOrders24h
	x[colDeviceCustomers] = f.DeviceCustomers
	x[colAddressCustomers] = f.AddressCustomers
	x[colAmount] = f.Amount
	x[colAmountRatio] = f.AmountRatio
	x[colRegionMismatch] = boolColumn(f.RegionMismatch)
	x[colHourOfDay] = float64(f.HourOfDay)
	x[colSKUPressure] = f.SKUPressure
	x[colFirstOrder] = boolColumn(f.FirstOrder)
	for i := colChannel0; i < ColumnCount; i++ {
		x[i] = 0
	}
	x[colChannel0+channelIndex(f.Channel)] = 1
}

// Vector appends f's ColumnCount input columns, in the order of
// FeatureNames, to dst[:0] and returns it. It does not allocate when dst has
// the capacity.
func (f *Features) Vector(dst []float64) []float64 {
	var x [ColumnCount]float64
	f.fill(&x)
	return append(dst[:0], x[:]...)
}

// Validate returns a *FieldError naming the first field that is not a
// finite number, is negative, or (hour_of_day) is outside 0..23, or a
// channel longer than ChannelBytesMax. An unknown channel is valid: it
// scores as ChannelOther.
func (f *Features) Validate() error {
	nonNegative := [...]struct {
		name string
		v    float64
	}{
		{"customer_age_hours", f.CustomerAgeHours},
		{"customer_orders_1h", f.CustomerOrders1h},
		{"customer_orders_24h", f.CustomerOrders24h},
		{"device_customers", f.DeviceCustomers},
		{"address_customers", f.AddressCustomers},
		{"amount", f.Amount},
		{"amount_ratio", f.AmountRatio},
		{"sku_pressure", f.SKUPressure},
	}
	for _, c := range nonNegative {
		switch {
		case math.IsNaN(c.v) || math.IsInf(c.v, 0):
			return fieldErr(c.name, "must be a finite number, not %v", c.v)
		case c.v < 0:
			return fieldErr(c.name, "must not be negative, got %v", c.v)
		}
	}
	if f.HourOfDay < 0 || f.HourOfDay > 23 {
		return fieldErr("hour_of_day", "must be 0..23, got %d", f.HourOfDay)
	}
	if len(f.Channel) > ChannelBytesMax {
		return fieldErr("channel", "longer than %d bytes", ChannelBytesMax)
	}
	return nil
}

// PlainColumnCount is the number of the model's columns before the
// channel's: one per feature but the channel.
const PlainColumnCount = colChannel0

// FromColumns is the inverse of Vector's plain columns: the features
// whose plain columns are plain (PlainColumnCount values, in FeatureNames
// order) and whose channel is channel. ok is false for a wrong count.
func FromColumns(plain []float64, channel string) (f Features, ok bool) {
	if len(plain) != PlainColumnCount {
		return Features{}, false
	}
	f = Features{CustomerAgeHours: plain[colCustomerAgeHours], CustomerOrders1h: plain[colCustomerOrders1h],
		CustomerOrders24h: plain[colCustomerOrders24h], DeviceCustomers: plain[colDeviceCustomers],
		AddressCustomers: plain[colAddressCustomers], Amount: plain[colAmount], AmountRatio: plain[colAmountRatio],
		RegionMismatch: plain[colRegionMismatch] != 0, HourOfDay: int(plain[colHourOfDay]), SKUPressure: plain[colSKUPressure],
		FirstOrder: plain[colFirstOrder] != 0, Channel: channel}
	return f, true
}
