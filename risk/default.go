package risk

import (
	_ "embed" // the shipped model
	"fmt"
	"sync"
)

// The shipped model's recipe: Train(Synthetic(DefaultSeed, DefaultExamples),
// TrainOptions{}), with its Evaluation on Synthetic(DefaultSeed+1,
// DefaultHeldOut) at DefaultThreshold embedded (DefaultRecipe).
const (
	// DefaultSeed is the seed of the synthetic history the shipped model is trained on.
	DefaultSeed = 1
	// DefaultExamples is the size of that history.
	DefaultExamples = 50_000
	// DefaultHeldOut is the size of the held-out history it is evaluated on.
	DefaultHeldOut = 20_000
	// DefaultThreshold is the threshold of its evaluation.
	DefaultThreshold = 0.5
)

// DefaultRecipe trains the shipped model again: the same bytes as
// default_model.json on the architecture it was made on.
func DefaultRecipe() (*Model, error) {
	m, err := Train(Synthetic(DefaultSeed, DefaultExamples), TrainOptions{})
	if err != nil {
		return nil, err
	}
	return m.WithEvaluation(Evaluate(m, Synthetic(DefaultSeed+1, DefaultHeldOut), DefaultThreshold)), nil
}

//go:embed default_model.json
var defaultModelFile []byte

var defaultModel = sync.OnceValue(func() *Model {
	m, err := Parse(defaultModelFile)
	if err != nil {
		// The file is part of the build and checked by the package's tests.
		panic(fmt.Sprintf("risk: the embedded default model is invalid: %v", err))
	}
	return m
})

// Default returns the model that ships with ordergrid: trained with default
// options on Synthetic(DefaultSeed, DefaultExamples), embedded from
// default_model.json. It is a starting point until a model is trained on
// the shop's own history and reviewers' overrides.
func Default() *Model { return defaultModel() }

// DefaultModelFile returns a copy of the embedded model file's bytes.
func DefaultModelFile() []byte { return append([]byte(nil), defaultModelFile...) }
