package testseed

import "testing"

func TestSeedReplaysTheEnvironment(t *testing.T) {
	t.Setenv(Env, "1795888020377836745")
	if got := Seed(t); got != 1795888020377836745 {
		t.Fatalf("Seed = %d, want the one in $%s", got, Env)
	}
	t.Setenv(Env, "")
	if a, b := Seed(t), Seed(t); a == 1795888020377836745 || a == b {
		t.Fatalf("fresh seeds %d, %d: not fresh", a, b)
	}
}
