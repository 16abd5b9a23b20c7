package myoperator

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Lists are split without a second decode: brackets, commas and escaped quotes inside
// strings, nested values and whitespace must not cut an item short.
func TestFlexListSplitsItems(t *testing.T) {
	var l flexList[kv]
	raw := `[ {"ky":"a,b]","vl":"x\"],{"} , null, {"ky":"n","vl":{"deep":[1,[2]]}},"not a kv", {"ky":"é\u00e9","vl":3} ]`
	assert.NoError(t, json.Unmarshal([]byte(raw), &l))
	assert.Equal(t, flexList[kv]{
		{Key: "a,b]", Value: `x"],{`},
		{Key: "n", Value: `{"deep":[1,[2]]}`},
		{Key: "éé", Value: "3"},
	}, l)

	var agents flexList[agent]
	assert.NoError(t, json.Unmarshal([]byte(`{"x":"[{\"_id\":\"u1\"}, 42, {\"_id\":\"u2\"}]"}`), &struct {
		X *flexList[agent] `json:"x"`
	}{&agents}))
	assert.Equal(t, []string{"u1", "42", "u2"}, []string{agents[0].ID.String(), agents[1].ID.String(), agents[2].ID.String()},
		"a double-encoded list, numbers as ids")

	var broken flexList[kv]
	assert.NoError(t, json.Unmarshal([]byte(`"[{\"ky\":\"a\""`), &broken))
	assert.Empty(t, broken, "a broken double-encoded list is no list")
}
