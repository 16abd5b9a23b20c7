// Command check reads rendered manifests (`kustomize build` output) on stdin and checks
// what a schema cannot: the rules calltrack's roles need to run safely. It exits 1
// naming each broken rule.
//
//	kustomize build deployments/kubernetes/overlays/production | go run ./deployments/kubernetes/check
package main

import (
	"fmt"
	"os"
)

func main() {
	objs, err := decode(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
	problems := Check(objs)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "check:", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("check: %d objects, rules hold\n", len(objs))
}
