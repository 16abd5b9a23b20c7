//go:build !race

package deployments

const raceEnabled = false
