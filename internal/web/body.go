package web

import (
	"encoding/json"
	"errors"
	"io"
)

// ErrTrailingData is a request body with something after its one JSON value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// DecodeJSON reads a request body that must be exactly one JSON value of v's shape
// (unknown fields refused). A decoder stops after the first value, so without the
// end check `{...}garbage` or two values would be acted on as if well-formed.
func DecodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}
