// Package ordergrid is the root of the module: an order management system
// for high-volume commerce (see README.md). It holds no code. Its test,
// architecture_test.go, holds the plan of the house: which package may
// import which, checked on every test run, so the picture in the README's
// "Inside" section stays true.
package ordergrid
