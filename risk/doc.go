// Package risk scores each new order's risk of fraud or abuse (scalping,
// account takeover) at intake, and says why.
//
// # Features
//
// Features holds what the model knows of an order, none of it personal:
// the customer's account age and recent order counts, how many customers
// share the order's device and delivery address, the amount and its ratio
// to the customer's mean, the channel, whether the payer's region differs
// from the delivery region, the local hour, the sale pressure on the
// order's hottest SKU, and whether it is a first order. Vector turns them
// into ColumnCount numeric columns, named by FeatureNames: booleans are
// 0 or 1, and the channel is one-hot over Channels plus "other".
//
// # Model
//
// The model is an ensemble of gradient-boosted regression trees for binary
// logistic loss. Train starts from the log-odds of the (weighted) positive
// rate and adds trees one by one; each fits the loss's gradient and
// hessian on a seeded 80% subsample of the examples, choosing, depth by
// depth, the split with the largest second-order gain among quantile bins
// of each column (histogram splits), with at least MinLeaf examples per
// leaf. A leaf's value is −G/(H+1) times the learning rate. Training is
// deterministic: the same examples and options give the same file, byte
// for byte. Score sums the base score and one leaf per tree into a logit
// and returns its sigmoid; it does not allocate.
//
// # Path contributions
//
// Each internal node stores a value too: the cover-weighted (hessian
// sum-weighted) mean of the leaf values below it. For one order, a tree's
// output is its root's value plus, along the order's path, each step's
// change from a node's value to its child's; Explain credits each change
// to the feature the node splits on. So the Base of an Explanation (the
// base score plus every root's value) plus all contributions is exactly
// the logit. The channel's one-hot columns are credited as one "channel"
// feature. Contributions are in log-odds: +1 multiplies the odds by e.
//
// # Model file
//
// A model is a JSON document (Model.Bytes, Parse, Load):
//
//	{"format": "ordergrid-risk-gbt/1",
//	 "version": "<first 16 hex of the SHA-256 of the canonical trees>",
//	 "features": ["customer_age_hours", …, "channel=other"],
//	 "base_score": -3.09,
//	 "trees": [{"nodes": [{"feature": 1, "threshold": 5, "left": 1, "right": 2, "value": -0.01}, …]}, …],
//	 "trained": {"examples": 50000, "positives": 2168, "seed": 0, "at": "2025-01-02T03:04:05Z"},
//	 "evaluation": {"threshold": 0.5, "precision": …, "roc_auc": …, "calibration": […]}}
//
// A node sends an input left when column[feature] < threshold; a leaf has
// feature, left and right -1. The canonical trees are the compact JSON of
// the features, base score and trees; Parse recomputes the version and
// refuses a file whose trees were changed, a file for other features, and
// any bad index, cycle, depth, size or non-finite number, naming the field.
//
// Default is the model that ships with ordergrid, trained on
// Synthetic(DefaultSeed, DefaultExamples) with default options; its tests
// retrain it and compare the file byte for byte.
//
// # Data files
//
// Labelled examples are JSON Lines ({"features": {…}, "label": true,
// "weight": 2}; ReadExamples, WriteExamples). A reviewer's decision on a
// held order is an override line ({"order_id", "decision": "release" or
// "cancel", "score", "model", "features"}); ReadOverrides makes each a
// training example weighted OverrideWeight.
package risk
