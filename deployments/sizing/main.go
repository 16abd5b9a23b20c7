// Command sizing prints docs/scaling.md's table: serve and work replicas, partitions,
// Redis memory and Kafka disk, and each tenant's CRM headroom, for calls a minute across
// tenants, from the per-unit figures measured on this project's runs (model.go).
//
//	go run ./deployments/sizing
package main

import "fmt"

func main() {
	fmt.Println("| calls/min | tenants | per tenant | serve | work | partitions | Redis GiB | Kafka GiB | Kylas 5/s | Zoho 10/s | Zoho credits/day per tenant |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range []float64{10, 1000, 100000} {
		for _, t := range []float64{10, 1000, 10000} {
			fmt.Println(Size(Scenario{CallsPerMin: c, Tenants: t}))
		}
	}
}
